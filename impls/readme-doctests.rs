//! Build script of the three implementation crates. Each crate's `build.rs`
//! is a link to `impls/readme-doctests.rs`, so that each crate's package
//! holds its own copy.
//!
//! It writes `$OUT_DIR/README.md`, whose examples the crate runs as
//! doctests: the crate's own README and, in a checkout of the repository
//! (not in a package, which holds only the crate's files), the repository
//! README, with the inline-patch crate's name switched to the crate being
//! built (the README promises that switching implementations is changing
//! one `use`).

use std::path::Path;

fn main() {
    let dir = std::env::var("CARGO_MANIFEST_DIR").expect("CARGO_MANIFEST_DIR");
    let dir = Path::new(&dir);
    let mut readmes = vec![dir.join("README.md")];
    // This script's own file next to the crate marks a checkout.
    if dir.join("../readme-doctests.rs").is_file() {
        readmes.push(dir.join("../../README.md"));
    }
    let mut text = String::new();
    for readme in readmes {
        println!("cargo:rerun-if-changed={}", readme.display());
        let part = std::fs::read_to_string(&readme)
            .unwrap_or_else(|e| panic!("{}: {e}", readme.display()));
        text.push_str(&part);
        text.push('\n');
    }
    let name = std::env::var("CARGO_PKG_NAME").expect("CARGO_PKG_NAME");
    let text = text.replace("static_call_inline_patch", &name.replace('-', "_"));
    let out = std::env::var_os("OUT_DIR").expect("OUT_DIR");
    std::fs::write(Path::new(&out).join("README.md"), text).expect("write the README copy");
}
