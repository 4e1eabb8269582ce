//! Build script of the trampoline and indirect crates: writes the
//! repository README with its `use` of the inline-patch crate switched to
//! the crate being built, so that its examples run as doctests there too:
//! the README promises that switching implementations is changing one
//! `use`.

fn main() {
    let readme = concat!(env!("CARGO_MANIFEST_DIR"), "/../../README.md");
    println!("cargo:rerun-if-changed={readme}");
    let text = std::fs::read_to_string(readme).expect("README.md");
    let out = std::path::PathBuf::from(std::env::var_os("OUT_DIR").expect("OUT_DIR"));
    std::fs::write(
        out.join("README.md"),
        text.replace(
            "static_call_inline_patch",
            &std::env::var("CARGO_PKG_NAME")
                .expect("CARGO_PKG_NAME")
                .replace('-', "_"),
        ),
    )
    .expect("write README copy");
}
