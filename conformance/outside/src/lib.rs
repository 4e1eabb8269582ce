//! An implementation that lives outside the workspace's implementations
//! list, as one in another repository would: plain-indirect's design under
//! its own name and sections. Its test (`tests/conformance.rs`) runs the
//! whole conformance catalogue on it through
//! `static_call_conformance::run`, with nothing edited elsewhere.
//!
//! The plain indirect call: every call site loads the key's function
//! pointer and calls it, `mov rax, [rip + key]; call rax`, without a
//! retpoline (the indirect call a kernel makes on an Enhanced-IBRS
//! machine). An update is one atomic store; nothing is patched.
//!
//! ```
//! use static_call_outside::{self as sc, define_static_call, static_call};
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

pub use static_call_core::insn::Form;
pub use static_call_core::site::SiteTable;
pub use static_call_core::text::exec::ExecMemory;
pub use static_call_core::text::{EngineInfo, EngineStats};
pub use static_call_core::{
    CallOnly, Error, ImageSections, InitPolicy, ModuleId, ModuleSpec, ModuleStats, Place, Result,
    ReturnsZero, STUB_LEN, SharedObject, Signature, SiteInfo, StaticCall, Stats, near_stub,
    static_call, static_call_cond,
};

use static_call_core::{Design, NoneTarget, SiteShape};

/// This design, as the suite and `sctool` see it: sites `mov rax, [rip +
/// key]; call rax` (a module's through its key slot), no trampoline,
/// nothing patched, none stored as the shared `ret` stub.
pub static DESIGN: Design = Design {
    name: "outside",
    sites_section: "static_call_sites_outside",
    init_section: "static_call_init_outside",
    registry_symbol: "static_call_outside::__private::REGISTRY",
    site: SiteShape::LoadCallRax,
    trampoline: false,
    patches_sites: false,
    none: NoneTarget::RetStub,
    thunk: &[],
};

#[doc(hidden)]
pub mod __private {
    pub use static_call_core::*;

    // SAFETY: `main_image` reports this image's site table and init text
    // (the sections this crate's macros emit), in the shape `DESIGN`
    // describes.
    pub static REGISTRY: Registry = unsafe { Registry::new(&super::DESIGN, main_image, None) };
    static_call_core::__static_call_image!(
        pub main_image,
        "static_call_sites_outside",
        "static_call_init_outside"
    );
}

/// Defines a static call key.
///
/// ```text
/// define_static_call!(pub static NAME: extern "C" fn(ARGS…) -> RET = DEFAULT;);
/// define_static_call!(pub static NAME: extern "C" fn(ARGS…) = None;); // conditional, starts as none
/// ```
///
/// The signature must be an `extern "C" fn` with up to six arguments of
/// integer, `bool`, pointer or reference type and an integer, `bool`,
/// pointer or unit return; `DEFAULT` is the path of such a function.
///
/// ```compile_fail,E0080
/// use static_call_outside::define_static_call;
/// extern "C" fn f_a(x: u64) -> u64 { x + 1 }
/// static DEFAULT: extern "C" fn(u64) -> u64 = f_a;
/// define_static_call!(static ADD: extern "C" fn(u64) -> u64 = DEFAULT;);
/// # fn main() {}
/// ```
#[macro_export]
macro_rules! define_static_call {
    ($($t:tt)*) => {
        $crate::__private::__static_call_define_indirect! {
            [$crate::__private::REGISTRY] {
                "2:", "mov rax, qword ptr [rip + {key}]", "call rax",
                $crate::__private::__static_call_entry!("static_call_sites_outside"),
            }
            $($t)*
        }
    };
}

/// Defines a function that lives in init text: call it during start-up,
/// then release it with [`free_init`].
///
/// ```text
/// init_text! { fn setup() { … } }
/// ```
#[macro_export]
macro_rules! init_text {
    ($($t:tt)*) => {
        $crate::__private::__static_call_init_text! { "static_call_init_outside"; $($t)* }
    };
}

/// Declares, in a module (a shared object loaded at run time), a key that
/// the main program defines and exports.
///
/// ```text
/// // main program: define and export under a symbol name
/// define_static_call!(#[unsafe(export_name = "my_add")] pub static ADD: extern "C" fn(u64) -> u64 = f;);
/// // module crate (cdylib):
/// declare_static_call!(#[link_name = "my_add"] static ADD: extern "C" fn(u64) -> u64;);
/// ```
///
/// The module's sites load the key's address from their own key slot,
/// then its pointer: `mov rax, [rip + slot]; mov rax, [rax]; call rax`.
#[macro_export]
macro_rules! declare_static_call {
    ($($t:tt)*) => {
        $crate::__private::__static_call_declare! {
            @emit { "2:", "mov rax, qword ptr [rip + __sc_ref_{key}]", "mov rax, qword ptr [rax]",
                    "call rax", $crate::__private::__static_call_ref_entry!("static_call_sites_outside"), }
            $($t)*
        }
    };
}

/// Makes this crate (built as a `cdylib`) a module: exports the
/// descriptor [`load_shared_object`] looks for. Optionally names an init
/// function (`extern "C" fn() -> i32`, 0 for success) that runs at load.
///
/// ```text
/// module!();
/// module!(init = my_init);
/// ```
#[macro_export]
macro_rules! module {
    () => {
        $crate::__private::__static_call_module!(
            static_call_module_outside,
            $crate::__private::main_image,
            None
        );
    };
    (init = $f:path) => {
        $crate::__private::__static_call_module!(
            static_call_module_outside,
            $crate::__private::main_image,
            Some($f as extern "C" fn() -> i32)
        );
    };
}

static_call_core::__static_call_api!(__private::REGISTRY, c"static_call_module_outside");

/// The assembler directives of one site-table entry in this
/// implementation's section, for hand-written sites (test inputs).
#[doc(hidden)]
#[macro_export]
macro_rules! __site_entry {
    () => {
        $crate::__private::__static_call_entry!("static_call_sites_outside")
    };
}
