//! Static calls that patch every call site: an update rewrites each
//! recorded `call` to call the new target directly (a trampoline remains
//! for sites that cannot reach the target and for calls before `init()`).
//!
//! See the repository README for an example.
#![warn(missing_docs)]

pub use static_call_core::{
    Error, InitPolicy, Place, Result, Signature, StaticCall, Stats, static_call, static_call_cond,
};

#[doc(hidden)]
pub mod __private {
    pub use static_call_core::*;

    pub static REGISTRY: Registry = Registry::new(Flavor::InlinePatch, main_image, None);
    static_call_core::__static_call_image!(
        main_image,
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

/// Patches every call site of the program to its key's current target.
/// Call it once, early; later calls do nothing. Sites in init text are
/// patched too (see [`init_with`] for the strict policy).
///
/// # Errors
/// A corrupt site table, a site that is not the expected call, or a failed
/// system call; nothing is patched then.
pub fn init() -> Result<()> {
    __private::REGISTRY.init(InitPolicy::Track)
}

/// [`init`] with an explicit policy for call sites in init text.
///
/// # Errors
/// As for [`init`], plus [`Error::InitSitesRefused`] under
/// [`InitPolicy::Strict`] when any site lies in init text.
pub fn init_with(policy: InitPolicy) -> Result<()> {
    __private::REGISTRY.init(policy)
}

/// Releases the init text (its whole pages become inaccessible); later
/// updates skip the call sites inside it. Returns the released range.
///
/// # Errors
/// A failed `mprotect`; nothing changes then.
pub fn free_init() -> Result<(usize, usize)> {
    __private::REGISTRY.free_init()
}

/// Points `key` at `f`. Same as [`StaticCall::update`].
///
/// # Errors
/// See [`StaticCall::update`].
pub fn update<F: Signature>(key: &'static StaticCall<F>, f: F) -> Result<()> {
    key.update(f)
}

/// The current target of `key` (`None` for a conditional key set to none).
pub fn query<F: Signature>(key: &StaticCall<F>) -> Option<F> {
    key.query()
}

/// Statistics of this implementation's registry.
pub fn stats() -> Stats {
    __private::REGISTRY.stats()
}

#[cfg(doctest)]
#[doc = include_str!("../../../README.md")]
struct ReadmeDoctests;
