//! The baseline: every call loads the key's function pointer and calls
//! through a retpoline thunk, as code built with Spectre v2 mitigations
//! does. An update is one atomic store; nothing is patched.
//!
//! ```
//! use static_call_indirect::{self as sc, define_static_call, static_call};
//!
//! extern "C" fn f_a(x: u64) -> u64 { x + 1 }
//! extern "C" fn f_b(x: u64) -> u64 { x + 2 }
//!
//! define_static_call!(pub static ADD: extern "C" fn(u64) -> u64 = f_a;);
//!
//! # fn main() -> Result<(), sc::Error> {
//! assert_eq!(static_call!(ADD(2)), 3);
//! sc::init()?;
//! ADD.update(f_b)?; // `ADD`'s pointer now holds `f_b`
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
    design: Design::INDIRECT,
    sites_section: "static_call_sites_indirect",
    init_section: "static_call_init_indirect",
    descriptor: static_call_module_indirect,
    sites: thunk(retpoline_rax),
}

/// The retpoline thunk for `rax` that every call site of this
/// implementation calls: the `call` pushes a return address into a capture
/// loop (`pause; lfence`) that speculation falls into, then the real return
/// address is overwritten with the target and `ret` jumps there.
#[doc(hidden)]
#[unsafe(naked)]
pub extern "C" fn retpoline_rax() {
    core::arch::naked_asm!(
        "call 4f",
        "5:",
        "pause",
        "lfence",
        "jmp 5b",
        "4:",
        "mov qword ptr [rsp], rax",
        "ret",
    )
}
