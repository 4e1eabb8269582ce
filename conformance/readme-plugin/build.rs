//! Writes the README plugin's source (`src/plugin.rs`, the README's text)
//! for the trampoline and indirect crates, with its `use` switched to that
//! crate and its two symbol names suffixed with the implementation, so
//! that all three copies live in one shared object.

fn main() {
    let src = concat!(env!("CARGO_MANIFEST_DIR"), "/src/plugin.rs");
    println!("cargo:rerun-if-changed={src}");
    let text = std::fs::read_to_string(src).expect("src/plugin.rs");
    let out = std::path::PathBuf::from(std::env::var_os("OUT_DIR").expect("OUT_DIR"));
    for m in ["trampoline", "indirect"] {
        let copy = text
            .replace(
                "static_call_inline_patch",
                &format!("static_call_implementations::static_call_{m}"),
            )
            .replace("\"my_add\"", &format!("\"my_add_{m}\""))
            .replace("plugin_entry", &format!("plugin_entry_{m}"));
        std::fs::write(out.join(format!("{m}.rs")), copy).expect("write the plugin's copy");
    }
}
