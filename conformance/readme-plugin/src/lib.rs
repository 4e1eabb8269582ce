//! The README's plugin, as a crate of the suite. `src/plugin.rs` is the
//! README's text (the conformance suite checks they are the same), included
//! here at the crate root for the inline-patch crate, and once more in a
//! module per other implementation (the build script switches the `use`
//! and suffixes the key's symbol, `my_add_<impl>`, and the entry point,
//! `plugin_entry_<impl>`). Its `init_text!` and `module!` share a module,
//! and the release profile builds this crate as one codegen unit (see the
//! workspace's `Cargo.toml`), so the init text's section declarations of
//! both macros meet in one object. The conformance scenario
//! `readme_plugin` builds it in debug and release and loads it.

// The README's `use static_call_inline_patch::…` resolves to the list's
// re-export (the suite crates depend on the list alone).
use static_call_implementations::static_call_inline_patch;

include!("plugin.rs");

/// The README's plugin over the trampoline crate.
pub mod trampoline {
    include!(concat!(env!("OUT_DIR"), "/trampoline.rs"));
}

/// The README's plugin over the indirect crate.
pub mod indirect {
    include!(concat!(env!("OUT_DIR"), "/indirect.rs"));
}
