//! Static calls that patch every call site: an update rewrites each
//! recorded `call` to call the new target directly (a trampoline remains
//! for sites that cannot reach the target and for calls before `init()`).
//!
//! ```
//! use static_call_inline_patch::{self as sc, define_static_call, static_call};
//!
//! extern "C" fn f_a(x: u64) -> u64 { x + 1 }
//! extern "C" fn f_b(x: u64) -> u64 { x + 2 }
//!
//! define_static_call!(pub static ADD: extern "C" fn(u64) -> u64 = f_a;);
//!
//! # fn main() -> Result<(), sc::Error> {
//! assert_eq!(static_call!(ADD(2)), 3);
//! sc::init()?;
//! ADD.update(f_b)?; // every site of `ADD` now calls `f_b` directly
//! assert_eq!(static_call!(ADD(2)), 4);
//! # Ok(())
//! # }
//! ```
//!
//! The same code works with any of the three implementation crates; see
//! the repository README for the whole API, modules included.
#![warn(missing_docs)]

static_call_core::implementation_crate! {
    crate,
    design: Design::INLINE_PATCH,
    sites_section: "static_call_sites_inline",
    init_section: "static_call_init_inline",
    descriptor: static_call_module_inline_patch,
    sites: patched,
}
