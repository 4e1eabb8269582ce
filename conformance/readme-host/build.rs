//! Writes the README's host program and plugin over the implementation
//! that `STATIC_CALL_README_IMPL` names (a module name of the one list,
//! `static_call_implementations`: `inline_patch`, `trampoline`, …): the
//! README's two blocks (the program under "Modules", and the plugin,
//! `../readme-plugin/src/plugin.rs`) with their `use` switched from
//! `static_call_inline_patch` to that crate through the list's re-export.
//! Nothing else is changed: the symbol names (`my_add`, `plugin_entry`) and
//! the plugin's path are the README's.

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
    // Read at run time: a build script compiled once may run for another
    // checkout.
    let dir = PathBuf::from(std::env::var_os("CARGO_MANIFEST_DIR").expect("CARGO_MANIFEST_DIR"));
    let readme = dir.join("../../README.md");
    let plugin = dir.join("../readme-plugin/src/plugin.rs");
    println!("cargo:rerun-if-changed={}", readme.display());
    println!("cargo:rerun-if-changed={}", plugin.display());
    println!("cargo:rerun-if-env-changed=STATIC_CALL_README_IMPL");
    // The README's link flag for the program, as it gives it.
    println!("cargo:rustc-link-arg-bins=-Wl,--export-dynamic-symbol=my_add");
    let out = PathBuf::from(std::env::var_os("OUT_DIR").expect("OUT_DIR"));
    let m = match std::env::var("STATIC_CALL_README_IMPL") {
        Ok(m) if !m.is_empty() && m.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_') => m,
        // A workspace-wide build (clippy, `cargo test --workspace`) names
        // none: the program then says how it is meant to be built.
        _ => {
            let main = "fn main() {\n    eprintln!(\"readme-host: build with STATIC_CALL_README_IMPL=<a module name of static_call_implementations>\");\n    std::process::exit(2);\n}\n";
            std::fs::write(out.join("host.rs"), main).expect("write host.rs");
            std::fs::write(out.join("plugin.rs"), "").expect("write plugin.rs");
            return;
        }
    };
    let readme = std::fs::read_to_string(&readme).expect("README.md");
    let host = host_block(&readme).expect("README.md: the host block under \"Modules\"");
    let plugin = std::fs::read_to_string(&plugin).expect("readme-plugin/src/plugin.rs");
    let switch = |t: &str| {
        t.replace(
            "use static_call_inline_patch::",
            &format!("use static_call_implementations::static_call_{m}::"),
        )
    };
    std::fs::write(out.join("host.rs"), switch(host)).expect("write host.rs");
    std::fs::write(out.join("plugin.rs"), switch(&plugin)).expect("write plugin.rs");
}
