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

pub use static_call_core::insn::Form;
pub use static_call_core::signals::{SigmaskGuard, guard as sigmask_guard};
pub use static_call_core::site::SiteTable;
pub use static_call_core::text::exec::ExecMemory;
pub use static_call_core::text::{EngineInfo, EngineStats, check_sigtrap_masks};
pub use static_call_core::{
    Batch, CallOnly, Error, ImageSections, InitPolicy, ModuleId, ModuleSpec, ModuleStats, Place,
    Result, ReturnsZero, STUB_LEN, SharedObject, Signature, SiteInfo, StaticCall, Stats, near_stub,
    static_call, static_call_cond,
};

#[doc(hidden)]
pub mod __private {
    pub use static_call_core::*;

    // SAFETY: `main_image` reports this image's inline-patch site table
    // and init text (the sections this crate's macros emit).
    pub static REGISTRY: Registry =
        unsafe { Registry::new(&Design::INLINE_PATCH, main_image, None) };
    static_call_core::__static_call_image!(
        pub main_image,
        "static_call_sites_inline",
        "static_call_init_inline"
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
/// Keys can be used from other crates by path.
///
/// The default must be the path of a function: a `static` or `const`
/// holding a function pointer is refused at compile time (the trampoline
/// would otherwise be assembled as a jump into the data):
///
/// ```compile_fail,E0080
/// use static_call_inline_patch::define_static_call;
/// extern "C" fn f_a(x: u64) -> u64 { x + 1 }
/// static DEFAULT: extern "C" fn(u64) -> u64 = f_a;
/// define_static_call!(static ADD: extern "C" fn(u64) -> u64 = DEFAULT;);
/// # fn main() {}
/// ```
///
/// ```compile_fail,E0080
/// use static_call_inline_patch::define_static_call;
/// extern "C" fn f_a(x: u64) -> u64 { x + 1 }
/// const DEFAULT: extern "C" fn(u64) -> u64 = f_a;
/// define_static_call!(static ADD: extern "C" fn(u64) -> u64 = DEFAULT;);
/// # fn main() {}
/// ```
///
/// Mistakes in a definition are compile errors. The signature must be an
/// `extern "C" fn`:
///
/// ```compile_fail
/// use static_call_inline_patch::define_static_call;
/// extern "C" fn f_a(x: u64) -> u64 { x + 1 }
/// define_static_call!(static ADD: fn(u64) -> u64 = f_a;);
/// # fn main() {}
/// ```
///
/// with at most six arguments (the registers of the C calling convention):
///
/// ```compile_fail
/// use static_call_inline_patch::define_static_call;
/// extern "C" fn f7(_: u8, _: u8, _: u8, _: u8, _: u8, _: u8, _: u8) {}
/// define_static_call!(static K: extern "C" fn(u8, u8, u8, u8, u8, u8, u8) = f7;);
/// # fn main() {}
/// ```
///
/// and the default must have exactly the key's signature (the error names
/// the default, `f_a` here: expected `extern "C" fn(u64) -> u64`, found
/// `extern "C" fn(u32) -> u64`):
///
/// ```compile_fail,E0308
/// use static_call_inline_patch::define_static_call;
/// extern "C" fn f_a(x: u32) -> u64 { x as u64 + 1 }
/// define_static_call!(static ADD: extern "C" fn(u64) -> u64 = f_a;);
/// # fn main() {}
/// ```
///
/// A key whose function returns nothing has no RET0 (use a conditional
/// key and `update_cond(None)`):
///
/// ```compile_fail,E0599
/// use static_call_inline_patch::define_static_call;
/// define_static_call!(static HOOK: extern "C" fn(u64) = None;);
/// fn main() { let _ = HOOK.update_ret0(); }
/// ```
///
/// A key may be defined inside a function, even with the name of another
/// key; each names itself:
///
/// ```
/// use static_call_inline_patch::{self as sc, define_static_call, static_call};
/// extern "C" fn f_a(x: u64) -> u64 { x + 1 }
/// extern "C" fn f_b(x: u64) -> u64 { x + 2 }
/// define_static_call!(static ADD: extern "C" fn(u64) -> u64 = f_a;);
/// fn local() -> u64 {
///     define_static_call!(static ADD: extern "C" fn(u64) -> u64 = self::f_b;);
///     static_call!(ADD(1))
/// }
/// # fn main() -> Result<(), sc::Error> {
/// sc::init()?;
/// assert_eq!((static_call!(ADD(1)), local()), (2, 3));
/// # Ok(())
/// # }
/// ```
#[macro_export]
macro_rules! define_static_call {
    ($($t:tt)*) => {
        $crate::__private::__static_call_define_patched! { [$crate::__private::REGISTRY, "static_call_sites_inline"] $($t)* }
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
        $crate::__private::__static_call_init_text! { "static_call_init_inline"; $($t)* }
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
/// The main program must export the symbol dynamically (for example
/// `-Wl,--export-dynamic-symbol=my_add`). The module's call sites then
/// work wherever the object lands.
///
/// The declared key is a [`CallOnly`]: the module can call and query it,
/// never update it (that is the program's job):
///
/// ```compile_fail,E0599
/// use static_call_inline_patch::declare_static_call;
/// declare_static_call!(#[link_name = "my_add"] static ADD: extern "C" fn(u64) -> u64;);
/// extern "C" fn f(x: u64) -> u64 { x }
/// fn main() {
///     // SAFETY: (would be) the program's key.
///     let _ = unsafe { &ADD }.update(f); // no method `update` on CallOnly
/// }
/// ```
#[macro_export]
macro_rules! declare_static_call {
    ($($t:tt)*) => {
        $crate::__private::__static_call_declare! { patched ["static_call_sites_inline"] $($t)* }
    };
}

/// Makes this crate (built as a `cdylib`) a module: exports the
/// descriptor [`load_shared_object`] looks for. Optionally names an init
/// function (`extern "C" fn() -> i32`, 0 for success) that runs at load;
/// call sites in its init text are patched while it runs and released
/// after.
///
/// ```text
/// module!();
/// module!(init = my_init);
/// ```
#[macro_export]
macro_rules! module {
    () => {
        $crate::__private::__static_call_module!(
            static_call_module_inline_patch,
            $crate::__private::main_image,
            None
        );
    };
    (init = $f:path) => {
        $crate::__private::__static_call_module!(
            static_call_module_inline_patch,
            $crate::__private::main_image,
            Some($f as extern "C" fn() -> i32)
        );
    };
}

static_call_core::__static_call_api!(__private::REGISTRY, c"static_call_module_inline_patch");

/// Updates many keys of this implementation in one round of the patching
/// protocol (three core synchronisations in total, however many keys):
///
/// ```text
/// sc::batch(|b| {
///     b.update(&A, f)?;
///     b.update_cond(&B, None)?;
///     Ok(())
/// })?;
/// ```
///
/// Everything is checked before anything is written; all or nothing.
///
/// # Errors
/// A key twice ([`Error::BatchDuplicateKey`]), a key of another
/// implementation ([`Error::BatchForeignKey`]), an error of the closure, or
/// any error one of the updates would return; every key then keeps its old
/// target. See [`Registry::batch`](static_call_core::Registry::batch).
pub fn batch(f: impl FnOnce(&mut Batch<'_>) -> Result<()>) -> Result<()> {
    __private::REGISTRY.batch(f)
}

/// The README's examples (the crate's own and, in a checkout, the repository's).
#[cfg(doctest)]
#[doc = include_str!(concat!(env!("OUT_DIR"), "/README.md"))]
struct ReadmeDoctests;

/// The assembler directives of one site-table entry in this
/// implementation's section, for hand-written sites (test inputs).
#[doc(hidden)]
#[macro_export]
macro_rules! __site_entry {
    () => {
        $crate::__private::__static_call_entry!("static_call_sites_inline")
    };
}
