//! Writes `$OUT_DIR/copies.rs`: the README plugin's source (`src/plugin.rs`,
//! the README's text) as the body of a macro, `readme_copies!`, that
//! `src/lib.rs` expands over the workspace's one list
//! (`static_call_implementations::implementations!`): one module per
//! implementation, with the plugin's `use` switched to that
//! implementation's crate and its two symbol names suffixed with the
//! module's name (`my_add_<m>`, `plugin_entry_<m>`), so that every copy
//! lives in one shared object. A README edit that drops one of the three
//! places switched stops the build, naming it.

fn main() {
    // The manifest directory of this build (read at run time: a build
    // script compiled once may run for another checkout).
    let dir = std::env::var("CARGO_MANIFEST_DIR").expect("CARGO_MANIFEST_DIR");
    let src = std::path::Path::new(&dir).join("src/plugin.rs");
    println!("cargo:rerun-if-changed={}", src.display());
    let text = std::fs::read_to_string(&src).expect("src/plugin.rs");
    let mut body = text;
    for (from, to) in [
        ("use static_call_inline_patch::", "use sc::"),
        (
            "#[link_name = \"my_add\"]",
            "#[link_name = concat!(\"my_add_\", stringify!($m))]",
        ),
        (
            "#[unsafe(no_mangle)]\npub extern \"C\" fn plugin_entry",
            "#[unsafe(export_name = concat!(\"plugin_entry_\", stringify!($m)))]\npub extern \"C\" fn plugin_entry",
        ),
    ] {
        assert!(
            body.contains(from),
            "src/plugin.rs (the README's plugin) no longer has {from:?}, which the build switches per implementation"
        );
        body = body.replace(from, to);
    }
    let copies = format!(
        "/// One copy of the README's plugin per implementation of the list.\n\
         macro_rules! readme_copies {{\n\
         ($(($m:ident, $krate:path, $name:literal))*) => {{$(\n\
         #[doc = concat!(\"The README's plugin over \", $name, \".\")]\n\
         pub mod $m {{\n\
         use $krate as sc;\n\
         {body}\n\
         }}\n\
         )*}};\n\
         }}\n"
    );
    let out = std::path::PathBuf::from(std::env::var_os("OUT_DIR").expect("OUT_DIR"));
    std::fs::write(out.join("copies.rs"), copies).expect("write the plugin's copies");
}
