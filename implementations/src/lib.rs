//! The one list of this workspace's static-call implementations.
//!
//! This crate depends on every implementation on the list and re-exports
//! it (`static_call_implementations::static_call_inline_patch`, …);
//! [`implementations!`] hands the list to a macro of the caller's, once:
//! `(module ident, crate path, name)` per implementation, the crate path
//! going through this crate's re-export. The conformance suite, the
//! crafted binary, the test shared objects, the cross-crate keys, the
//! benchmarks and `sctool` all expand from it and depend on this crate
//! alone, so another implementation is one dependency in this crate's
//! `Cargo.toml` and one line here.
//!
//! ```text
//! macro_rules! each {
//!     ($(($m:ident, $krate:path, $name:literal))*) => { $( mod $m { use $krate as sc; } )* };
//! }
//! static_call_implementations::implementations!(each);
//! ```
#![no_std]

pub use static_call_indirect;
pub use static_call_inline_patch;
pub use static_call_plain_indirect;
pub use static_call_trampoline;

/// Calls `$callback! { (inline_patch, $crate::static_call_inline_patch,
/// "inline-patch") (trampoline, …) (indirect, …) (plain_indirect, …) }`.
/// Match the crate as `$krate:path` and bring it in with `use $krate as
/// sc;` (a `path` fragment takes no further `::` segments).
#[macro_export]
macro_rules! implementations {
    ($callback:ident) => {
        $callback! {
            (inline_patch, $crate::static_call_inline_patch, "inline-patch")
            (trampoline, $crate::static_call_trampoline, "trampoline")
            (indirect, $crate::static_call_indirect, "indirect")
            (plain_indirect, $crate::static_call_plain_indirect, "plain-indirect")
        }
    };
}
