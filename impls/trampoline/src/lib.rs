//! Static calls through a per-key trampoline: call sites always call the
//! trampoline, and an update rewrites only its `jmp`.
//!
//! ```
//! use static_call_trampoline::{self as sc, define_static_call, static_call};
//!
//! extern "C" fn f_a(x: u64) -> u64 { x + 1 }
//! extern "C" fn f_b(x: u64) -> u64 { x + 2 }
//!
//! define_static_call!(pub static ADD: extern "C" fn(u64) -> u64 = f_a;);
//!
//! # fn main() -> Result<(), sc::Error> {
//! assert_eq!(static_call!(ADD(2)), 3);
//! sc::init()?;
//! ADD.update(f_b)?; // the trampoline of `ADD` now jumps to `f_b`
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
    design: Design::TRAMPOLINE,
    sites_section: "static_call_sites_tramp",
    init_section: "static_call_init_tramp",
    descriptor: static_call_module_trampoline,
    sites: patched,
}
