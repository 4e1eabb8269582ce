//! Writes the README's host program and plugin for the implementation the
//! one enabled feature names: the README's two blocks (the program under
//! "Modules" and the plugin, `../readme-plugin/src/plugin.rs`) with their
//! `use` switched from `static_call_inline_patch` to that crate. Nothing
//! else is changed: the symbol names (`my_add`, `plugin_entry`) and the
//! plugin's path are the README's.

use std::path::PathBuf;

/// The README's host block: the `rust,no_run` fence under "Modules" that
/// loads the plugin.
fn host_block(readme: &str) -> Option<&str> {
    let fence = "```rust,no_run\nuse static_call_inline_patch::{self as sc, define_static_call};\n";
    let start = readme.find(fence)? + "```rust,no_run\n".len();
    let len = readme[start..].find("\n```\n")? + 1;
    Some(&readme[start..start + len])
}

fn main() {
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR"));
    let readme = dir.join("../../README.md");
    let plugin = dir.join("../readme-plugin/src/plugin.rs");
    println!("cargo:rerun-if-changed={}", readme.display());
    println!("cargo:rerun-if-changed={}", plugin.display());
    // The README's link flag for the program, as it gives it.
    println!("cargo:rustc-link-arg-bins=-Wl,--export-dynamic-symbol=my_add");
    let chosen: Vec<&str> = ["inline_patch", "trampoline", "indirect"]
        .into_iter()
        .filter(|m| std::env::var_os(format!("CARGO_FEATURE_{}", m.to_uppercase())).is_some())
        .collect();
    let out = PathBuf::from(std::env::var_os("OUT_DIR").expect("OUT_DIR"));
    let m = match chosen[..] {
        [m] => m,
        // A workspace-wide build (clippy, `cargo test --workspace`) enables
        // none: the program then says how it is meant to be built.
        [] => {
            let main = "fn main() {\n    eprintln!(\"readme-host: build with one of the features inline-patch, trampoline, indirect\");\n    std::process::exit(2);\n}\n";
            std::fs::write(out.join("host.rs"), main).expect("write host.rs");
            std::fs::write(out.join("plugin.rs"), "").expect("write plugin.rs");
            return;
        }
        _ => panic!(
            "enable exactly one of the features inline-patch, trampoline, indirect (got {chosen:?})"
        ),
    };
    let readme = std::fs::read_to_string(&readme).expect("README.md");
    let host = host_block(&readme).expect("README.md: the host block under \"Modules\"");
    let plugin = std::fs::read_to_string(&plugin).expect("readme-plugin/src/plugin.rs");
    let switch = |t: &str| t.replace("static_call_inline_patch", &format!("static_call_{m}"));
    std::fs::write(out.join("host.rs"), switch(host)).expect("write host.rs");
    std::fs::write(out.join("plugin.rs"), switch(&plugin)).expect("write plugin.rs");
}
