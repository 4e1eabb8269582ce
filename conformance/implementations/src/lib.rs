//! The one list of this workspace's static-call implementations.
//!
//! [`implementations!`] hands the list to a macro of the caller's, once:
//! `(module ident, crate, name)` per implementation. The conformance suite,
//! the crafted binary, the test shared objects, the cross-crate keys and the
//! benchmarks all expand from it, so another implementation is one line
//! here (and the crate it names, as a dependency of the suite crates).
//!
//! ```text
//! macro_rules! each {
//!     ($(($m:ident, $krate:ident, $name:literal))*) => { $( mod $m { use $krate as sc; } )* };
//! }
//! static_call_implementations::implementations!(each);
//! ```
#![no_std]

/// Calls `$callback! { (inline_patch, static_call_inline_patch,
/// "inline-patch") (trampoline, …) (indirect, …) (plain_indirect, …) }`. The caller's crate must
/// depend on every crate listed.
#[macro_export]
macro_rules! implementations {
    ($callback:ident) => {
        $callback! {
            (inline_patch, static_call_inline_patch, "inline-patch")
            (trampoline, static_call_trampoline, "trampoline")
            (indirect, static_call_indirect, "indirect")
            (plain_indirect, static_call_plain_indirect, "plain-indirect")
        }
    };
}
