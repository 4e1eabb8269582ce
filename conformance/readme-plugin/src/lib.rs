//! The README's plugin, as a crate of the suite, once per implementation
//! of the workspace's one list. `src/plugin.rs` is the README's text (the
//! conformance suite checks they are the same); the build script turns it
//! into a macro whose expansion over the list gives one module per
//! implementation, with the `use` switched to that implementation's crate
//! (through the list's re-export) and the key's symbol and the entry point
//! suffixed with the module's name (`my_add_<m>`, `plugin_entry_<m>`).
//! Each copy's `init_text!` and `module!` share a module, and the release
//! profile builds this crate as one codegen unit (see the workspace's
//! `Cargo.toml`), so the init text's section declarations of both macros
//! meet in one object. The conformance scenario `readme_plugin` builds it
//! in debug and release and loads it.

include!(concat!(env!("OUT_DIR"), "/copies.rs"));

static_call_implementations::implementations!(readme_copies);
