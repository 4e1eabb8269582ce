//! The plain indirect call: every call site loads the key's function
//! pointer and calls it, `mov rax, [rip + key]; call rax`, without a
//! retpoline (the indirect call a kernel makes on an Enhanced-IBRS
//! machine). An update is one atomic store; nothing is patched.
//!
//! ```
//! use static_call_plain_indirect::{self as sc, define_static_call, static_call};
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
//! This crate is the worked example of `docs/IMPLEMENTING.md`: it is
//! described to the rest of the suite only through [`DESIGN`].
//!
//! Why `mov rax, [rip + key]; call rax` and not `call qword ptr [rip +
//! key]`: it is the indirect implementation's site with the retpoline
//! thunk replaced by the plain `call rax` (the same load, the same
//! register), so the two measure exactly the retpoline's cost; and it is
//! what the kernel's `apply_retpolines()` leaves at a retpoline call when
//! the CPU has Enhanced IBRS.
#![warn(missing_docs)]

use static_call_core::{Design, NoneTarget, SiteShape};

/// This design, as the suite and `sctool` see it: sites `mov rax, [rip +
/// key]; call rax` (a module's through its key slot), no trampoline,
/// nothing patched, none stored as the shared `ret` stub.
pub static DESIGN: Design = Design {
    name: "plain-indirect",
    sites_section: "static_call_sites_plain",
    init_section: "static_call_init_plain",
    registry_symbol: "static_call_plain_indirect::__private::REGISTRY",
    site: SiteShape::LoadCallRax,
    trampoline: false,
    patches_sites: false,
    none: NoneTarget::RetStub,
    thunk: &[],
};

static_call_core::implementation_crate! {
    crate,
    design: super::DESIGN,
    sites_section: "static_call_sites_plain",
    init_section: "static_call_init_plain",
    descriptor: static_call_module_plain_indirect,
    // The key's pointer loaded and called; a module's site loads the key's
    // address from its key slot first.
    sites: asm {
        define: ["2:", "mov rax, qword ptr [rip + {key}]", "call rax"],
        declare: [
            "2:",
            "mov rax, qword ptr [rip + __sc_ref_{key}]",
            "mov rax, qword ptr [rax]",
            "call rax",
        ],
    },
}
