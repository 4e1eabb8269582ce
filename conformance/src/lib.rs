//! The conformance suite: one catalogue of scenarios, run over every
//! static-call implementation through a small adapter each.
//!
//! * [`Adapter`] is what an implementation must provide: its keys (defined
//!   with its own macros, so their call sites are its call sites), thin
//!   functions that call them, and its lifecycle functions. The
//!   [`adapter!`] macro writes one for an implementation crate, so adding a
//!   fourth implementation is one line in `tests/conformance.rs`.
//! * [`scenarios`] holds the scenario bodies, written once, generic over
//!   the adapter. A scenario that does not apply to an implementation
//!   returns [`runner::Outcome::Skip`] with its reason.
//! * [`runner`] runs every (implementation, scenario) cell in its own
//!   child process, prints the matrix, writes it as JSON, and fails when
//!   any cell fails.
//! * [`decode`] is the independent check: site and trampoline bytes are
//!   decoded with iced-x86 rather than trusted from the library.

macro_rules! ensure {
    ($cond:expr, $($fmt:tt)*) => {
        if !$cond {
            return Err(format!($($fmt)*));
        }
    };
}

pub mod decode;
pub mod genmod;
pub mod place;
pub mod runner;
pub mod scenarios;

use static_call_core::{Design, InitPolicy, Registry, Result, SiteShape, StaticCall, Stats};

/// Signature of the arithmetic keys: `x -> x + n`.
pub type AddFn = extern "C" fn(u64) -> u64;
/// Signature of the six-argument key.
pub type MixFn = extern "C" fn(u64, u32, i16, i8, bool, *const u8) -> i64;
/// Signature of the conditional keys.
pub type HookFn = extern "C" fn(u64);

/// Target functions shared by every implementation's keys.
///
/// They are `#[inline(never)]`: with optimisations rustc may otherwise make
/// a private copy of a small function in each codegen unit that takes its
/// address, and the suite compares the addresses it decodes in call sites
/// with the functions it passed to `update`.
pub mod targets {
    use std::sync::atomic::{AtomicU64, Ordering};

    /// `x + 1` (the kernel self-test's `func_a`).
    #[inline(never)]
    pub extern "C" fn add1(x: u64) -> u64 {
        x + 1
    }
    /// `x + 2` (the kernel self-test's `func_b`).
    #[inline(never)]
    pub extern "C" fn add2(x: u64) -> u64 {
        x + 2
    }
    /// `x + 3`.
    #[inline(never)]
    pub extern "C" fn add3(x: u64) -> u64 {
        x + 3
    }
    /// Mixes six arguments of different types, so a wrong register or a
    /// wrong width shows.
    #[inline(never)]
    pub extern "C" fn mix6(a: u64, b: u32, c: i16, d: i8, e: bool, f: *const u8) -> i64 {
        let tail = (f as usize % 1000) as i64;
        a as i64 * 1_000_000 + b as i64 * 10_000 + c as i64 * 100 + d as i64 + e as i64 * 7 + tail
    }
    /// The same with the opposite sign, as a second target.
    #[inline(never)]
    pub extern "C" fn mix6_neg(a: u64, b: u32, c: i16, d: i8, e: bool, f: *const u8) -> i64 {
        -mix6(a, b, c, d, e, f)
    }
    /// `x` is odd.
    #[inline(never)]
    pub extern "C" fn is_odd(x: u64) -> bool {
        x % 2 == 1
    }
    /// `x` is even.
    #[inline(never)]
    pub extern "C" fn is_even(x: u64) -> bool {
        x.is_multiple_of(2)
    }
    /// Counts how often a conditional hook ran, and the last argument.
    pub static HOOK_CALLS: AtomicU64 = AtomicU64::new(0);
    /// Sum of the arguments the hook was called with.
    pub static HOOK_SUM: AtomicU64 = AtomicU64::new(0);
    /// A conditional hook.
    #[inline(never)]
    pub extern "C" fn hook(x: u64) {
        HOOK_CALLS.fetch_add(1, Ordering::SeqCst);
        HOOK_SUM.fetch_add(x, Ordering::SeqCst);
    }
}

/// Keys defined in this library crate and called from the test crate, one
/// per implementation: a key declared in one crate and called from another.
pub mod cross {
    macro_rules! cross {
        ($(($m:ident, $krate:path, $name:literal))*) => {$(
            #[doc = concat!("The ", $name, " key.")]
            pub mod $m {
                use $krate as sc;
                sc::define_static_call!(
                    pub static CROSS: extern "C" fn(u64) -> u64 = crate::targets::add1;
                );
            }
        )*};
    }
    static_call_implementations::implementations!(cross);
}

/// A small function *without* `#[inline(never)]`: with optimisations the
/// key's initial pointer and its trampoline's jump can name two private
/// copies of it (see `small_default_target`).
pub extern "C" fn twice(x: u64) -> u64 {
    x * 2
}

/// What an unpatched call site of an implementation calls.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Unpatched {
    /// The key's trampoline (or a near stub that jumps through it).
    Trampoline,
    /// The design's thunk ([`SiteShape::CallThunk`]: `call <thunk>` after
    /// a load of the key; for `indirect`, the retpoline thunk).
    Thunk,
    /// Nothing: the site loads the key's pointer and calls it
    /// (`mov rax, [rip + key]; call rax`).
    ThroughKey,
}

/// What an implementation does, as far as scenarios need to know: they ask
/// this, never which implementation it is (a fourth one declares its own).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Caps {
    /// `init()`, updates and module loads rewrite call sites.
    pub patches_sites: bool,
    /// Each key has a trampoline that updates rewrite.
    pub has_trampoline: bool,
    /// What a site calls before `init()` (and always, if sites are not
    /// patched).
    pub unpatched: Unpatched,
}

impl Caps {
    /// The capabilities of a design, from its description.
    pub fn of(d: &Design) -> Caps {
        Caps {
            patches_sites: d.patches_sites,
            has_trampoline: d.trampoline,
            unpatched: match d.site {
                SiteShape::CallTrampoline => Unpatched::Trampoline,
                SiteShape::CallThunk => Unpatched::Thunk,
                SiteShape::LoadCallRax => Unpatched::ThroughKey,
            },
        }
    }

    /// Whether updates write code at all (so the breakpoint protocol, the
    /// engine and its faults apply).
    pub fn writes_code(self) -> bool {
        self.patches_sites || self.has_trampoline
    }

    /// Where a none target shows, in words.
    pub fn none_form(self) -> &'static str {
        match (self.patches_sites, self.has_trampoline) {
            (true, _) => "NOP at the site, ret in the trampoline",
            (false, true) => "ret in the trampoline",
            (false, false) => "pointer to the shared ret stub",
        }
    }
}

/// What one implementation provides to the suite.
pub trait Adapter: 'static {
    /// Short name, as in the matrix.
    const NAME: &'static str;
    /// The implementation's registry.
    fn registry() -> &'static Registry;
    /// Its `init()`.
    fn init_with(policy: InitPolicy) -> Result<()>;
    /// Its `free_init()`.
    fn free_init() -> Result<(usize, usize)>;
    /// Its `stats()`.
    fn stats() -> Stats;

    /// Key `ADD` (default `add1`).
    fn add() -> &'static StaticCall<AddFn>;
    /// One call site of `ADD`.
    fn call_add(x: u64) -> u64;
    /// A second, separate call site of `ADD`.
    fn call_add_2(x: u64) -> u64;
    /// A call site of `ADD` inside init text.
    fn init_call_add(x: u64) -> u64;
    /// Key `HOOK`, conditional, starts as none.
    fn hook() -> &'static StaticCall<HookFn>;
    /// One conditional call site of `HOOK`.
    fn call_hook(x: u64);
    /// Key `SPIN` used by the torture run (default `add1`).
    fn spin() -> &'static StaticCall<AddFn>;
    /// One call site of `SPIN`.
    fn call_spin(x: u64) -> u64;
    /// Key `INL` (default `add1`), called only through one
    /// `#[inline(always)]` function that three functions inline.
    fn inl() -> &'static StaticCall<AddFn>;
    /// The three functions that inline the call of `INL`.
    fn call_inl(which: usize, x: u64) -> u64;
    /// Key `MIX` with six arguments of mixed types, and a call site.
    fn call_mix(a: u64, b: u32, c: i16, d: i8, e: bool, f: *const u8) -> i64;
    /// Key `MIX`.
    fn mix() -> &'static StaticCall<MixFn>;
    /// Key `PRED` returning `bool`, and a call site.
    fn call_pred(x: u64) -> bool;
    /// Key `PRED`.
    fn pred() -> &'static StaticCall<extern "C" fn(u64) -> bool>;
    /// Key `SMALL` (default [`twice`]), and a call site.
    fn small() -> &'static StaticCall<AddFn>;
    /// A call site of `SMALL`.
    fn call_small(x: u64) -> u64;
    /// Key `CROSS`, defined in this library crate (module [`cross`]).
    fn cross() -> &'static StaticCall<AddFn>;
    /// A call site of `CROSS` in the crate that invoked [`adapter!`].
    fn call_cross(x: u64) -> u64;
    /// Eight more keys (default `add1`), each with one call site.
    fn many() -> [&'static StaticCall<AddFn>; 8];
    /// Calls key `i` of [`Adapter::many`].
    fn call_many(i: usize, x: u64) -> u64;
    /// Key `SHADOW` (default `add1`), defined at module level.
    fn shadow() -> &'static StaticCall<AddFn>;
    /// The call site of the module-level `SHADOW`.
    fn call_shadow(x: u64) -> u64;
    /// A second key named `SHADOW` (default `add2`), defined inside a
    /// function, and a call site of it in that function.
    fn local_shadow() -> (&'static StaticCall<AddFn>, fn(u64) -> u64);
    /// Loads a module into this implementation's registry.
    ///
    /// # Safety
    /// As for `Registry::load_module`.
    unsafe fn load_module(
        spec: static_call_core::ModuleSpec<'_>,
        init: Option<&mut dyn FnMut() -> Result<(), String>>,
    ) -> static_call_core::Result<static_call_core::ModuleId> {
        // SAFETY: forwarded.
        unsafe { Self::registry().load_module(spec, init) }
    }
    /// Opens the test shared object as a module of this implementation.
    ///
    /// # Safety
    /// As for `SharedObject::open`.
    unsafe fn load_shared_object(
        path: &str,
    ) -> static_call_core::Result<static_call_core::SharedObject>;
    /// The ident-safe name used in exported symbols (`inline_patch`, …).
    const SYMBOL_PREFIX: &'static str;
    /// Whether the implementation is on the workspace's one list
    /// (`static_call_implementations`), so that the artifacts built from
    /// the list (the crafted binary, the test shared objects, the README
    /// plugin) have a copy for it. The scenarios that need one skip
    /// otherwise, saying so.
    const LISTED: bool = true;

    /// The design's description, from the registry.
    fn design() -> &'static Design {
        Self::registry().design()
    }

    /// What the implementation does (what scenarios ask instead of its
    /// name).
    fn caps() -> Caps {
        Caps::of(Self::design())
    }
}

/// Writes an [`Adapter`] for an implementation crate: defines its keys
/// with that crate's macros and forwards the lifecycle functions.
///
/// ```text
/// static_call_conformance::adapter!(pub mod inline_patch = static_call_inline_patch, "inline-patch");
/// // An implementation that is not on this workspace's list (see [`run`]):
/// static_call_conformance::adapter!(outside mod mine = my_static_calls, "mine");
/// ```
#[macro_export]
macro_rules! adapter {
    ($vis:vis mod $m:ident = $krate:path, $name:literal) => {
        $crate::adapter! {
            @ $vis mod $m = $krate, $name,
            [$crate::cross::$m::CROSS] [static_call_conformance::cross::$m::CROSS] true {}
        }
    };
    // An implementation that is not on the workspace's list (its own
    // repository's): its cross-crate key is defined here, and the
    // scenarios that need copies built from the list skip.
    (outside $vis:vis mod $m:ident = $krate:path, $name:literal) => {
        $crate::adapter! {
            @ $vis mod $m = $krate, $name, [CROSS] [CROSS] false {
                sc::define_static_call!(pub static CROSS: extern "C" fn(u64) -> u64 = $crate::targets::add1;);
            }
        }
    };
    (@ $vis:vis mod $m:ident = $krate:path, $name:literal, [$($cross:tt)*] [$($cross_call:tt)*]
     $listed:literal { $($extra:tt)* }) => {
        $vis mod $m {
            use $crate::{AddFn, HookFn};
            use $krate as sc;
            use static_call_core::{InitPolicy, Registry, Result, StaticCall, Stats};
            $($extra)*

            sc::define_static_call!(
                /// Exported for the test shared object.
                #[unsafe(export_name = concat!("static_call_key_", stringify!($m), "_ADD"))]
                pub static ADD: extern "C" fn(u64) -> u64 = $crate::targets::add1;
            );
            sc::define_static_call!(pub static INL: extern "C" fn(u64) -> u64 = $crate::targets::add1;);
            sc::define_static_call!(
                pub static MIX: extern "C" fn(u64, u32, i16, i8, bool, *const u8) -> i64 = $crate::targets::mix6;
            );
            sc::define_static_call!(pub static PRED: extern "C" fn(u64) -> bool = $crate::targets::is_odd;);
            sc::define_static_call!(pub static SMALL: extern "C" fn(u64) -> u64 = $crate::twice;);
            #[inline(always)]
            fn through_inl(x: u64) -> u64 {
                sc::static_call!(INL(x))
            }
            // Three different functions (so that none is merged with
            // another) that each inline `through_inl`.
            #[inline(never)]
            fn inl_a(x: u64) -> u64 {
                through_inl(x)
            }
            #[inline(never)]
            fn inl_b(x: u64) -> u64 {
                through_inl(::std::hint::black_box(x))
            }
            #[inline(never)]
            fn inl_c(x: u64) -> u64 {
                through_inl(x).wrapping_add(::std::hint::black_box(0))
            }
            sc::define_static_call!(pub static K0: extern "C" fn(u64) -> u64 = $crate::targets::add1;);
            sc::define_static_call!(pub static K1: extern "C" fn(u64) -> u64 = $crate::targets::add1;);
            sc::define_static_call!(pub static K2: extern "C" fn(u64) -> u64 = $crate::targets::add1;);
            sc::define_static_call!(pub static K3: extern "C" fn(u64) -> u64 = $crate::targets::add1;);
            sc::define_static_call!(pub static K4: extern "C" fn(u64) -> u64 = $crate::targets::add1;);
            sc::define_static_call!(pub static K5: extern "C" fn(u64) -> u64 = $crate::targets::add1;);
            sc::define_static_call!(pub static K6: extern "C" fn(u64) -> u64 = $crate::targets::add1;);
            sc::define_static_call!(pub static K7: extern "C" fn(u64) -> u64 = $crate::targets::add1;);
            sc::define_static_call!(pub static HOOK: extern "C" fn(u64) = None;);
            sc::define_static_call!(pub static SHADOW: extern "C" fn(u64) -> u64 = $crate::targets::add1;);
            /// A key defined inside a function, with the name of a key of
            /// the enclosing module: it must name itself.
            fn local_shadow() -> (&'static StaticCall<AddFn>, fn(u64) -> u64) {
                sc::define_static_call!(static SHADOW: extern "C" fn(u64) -> u64 = $crate::targets::add2;);
                #[inline(never)]
                fn call(x: u64) -> u64 {
                    sc::static_call!(SHADOW(x))
                }
                (&SHADOW, call)
            }
            sc::define_static_call!(pub static SPIN: extern "C" fn(u64) -> u64 = $crate::targets::add1;);

            sc::init_text! {
                /// A function in init text that calls `ADD`.
                pub fn init_call_add(x: u64) -> u64 {
                    sc::static_call!(ADD(x))
                }
            }

            /// The adapter.
            #[derive(Debug)]
            pub struct Impl;

            impl $crate::Adapter for Impl {
                const NAME: &'static str = $name;
                fn registry() -> &'static Registry {
                    &sc::__private::REGISTRY
                }
                fn init_with(policy: InitPolicy) -> Result<()> {
                    sc::init_with(policy)
                }
                fn free_init() -> Result<(usize, usize)> {
                    sc::free_init()
                }
                fn stats() -> Stats {
                    sc::stats()
                }
                fn add() -> &'static StaticCall<AddFn> {
                    &ADD
                }
                #[inline(never)]
                fn call_add(x: u64) -> u64 {
                    sc::static_call!(ADD(x))
                }
                #[inline(never)]
                fn call_add_2(x: u64) -> u64 {
                    // Different code from `call_add`, so that the optimiser
                    // does not merge the two functions (and their sites).
                    sc::static_call!(ADD(::std::hint::black_box(x)))
                }
                fn init_call_add(x: u64) -> u64 {
                    init_call_add(x)
                }
                fn hook() -> &'static StaticCall<HookFn> {
                    &HOOK
                }
                #[inline(never)]
                fn call_hook(x: u64) {
                    sc::static_call_cond!(HOOK(x))
                }
                fn spin() -> &'static StaticCall<AddFn> {
                    &SPIN
                }
                #[inline(never)]
                fn call_spin(x: u64) -> u64 {
                    sc::static_call!(SPIN(x))
                }
                fn inl() -> &'static StaticCall<AddFn> {
                    &INL
                }
                fn call_inl(which: usize, x: u64) -> u64 {
                    match which {
                        0 => inl_a(x),
                        1 => inl_b(x),
                        _ => inl_c(x),
                    }
                }
                #[inline(never)]
                fn call_mix(a: u64, b: u32, c: i16, d: i8, e: bool, f: *const u8) -> i64 {
                    sc::static_call!(MIX(a, b, c, d, e, f))
                }
                fn mix() -> &'static StaticCall<$crate::MixFn> {
                    &MIX
                }
                #[inline(never)]
                fn call_pred(x: u64) -> bool {
                    sc::static_call!(PRED(x))
                }
                fn pred() -> &'static StaticCall<extern "C" fn(u64) -> bool> {
                    &PRED
                }
                fn small() -> &'static StaticCall<AddFn> {
                    &SMALL
                }
                #[inline(never)]
                fn call_small(x: u64) -> u64 {
                    sc::static_call!(SMALL(x))
                }
                fn cross() -> &'static StaticCall<AddFn> {
                    &$($cross)*
                }
                #[inline(never)]
                fn call_cross(x: u64) -> u64 {
                    // A full path through another crate (the adapter is
                    // only expanded in crates that depend on this one).
                    sc::static_call!($($cross_call)*(x))
                }
                fn many() -> [&'static StaticCall<AddFn>; 8] {
                    [&K0, &K1, &K2, &K3, &K4, &K5, &K6, &K7]
                }
                #[inline(never)]
                fn call_many(i: usize, x: u64) -> u64 {
                    match i {
                        0 => sc::static_call!(K0(x)),
                        1 => sc::static_call!(K1(x)),
                        2 => sc::static_call!(K2(x)),
                        3 => sc::static_call!(K3(x)),
                        4 => sc::static_call!(K4(x)),
                        5 => sc::static_call!(K5(x)),
                        6 => sc::static_call!(K6(x)),
                        _ => sc::static_call!(K7(x)),
                    }
                }
                fn shadow() -> &'static StaticCall<AddFn> {
                    &SHADOW
                }
                #[inline(never)]
                fn call_shadow(x: u64) -> u64 {
                    sc::static_call!(SHADOW(x))
                }
                fn local_shadow() -> (&'static StaticCall<AddFn>, fn(u64) -> u64) {
                    local_shadow()
                }
                unsafe fn load_shared_object(
                    path: &str,
                ) -> static_call_core::Result<static_call_core::SharedObject> {
                    // SAFETY: forwarded.
                    unsafe { sc::load_shared_object(path) }
                }
                const SYMBOL_PREFIX: &'static str = stringify!($m);
                const LISTED: bool = $listed;
            }
        }
    };
}

/// Runs the whole conformance catalogue on one implementation, as the
/// `main` of a test target with `harness = false`, and returns its exit
/// code: the way an implementation in its own repository runs the suite
/// on itself (see docs/IMPLEMENTING.md).
///
/// ```text
/// // tests/conformance.rs of the implementation's crate ([[test]] harness = false)
/// static_call_conformance::adapter!(outside mod mine = my_static_calls, "mine");
/// fn main() -> std::process::ExitCode {
///     static_call_conformance::run::<mine::Impl>()
/// }
/// ```
///
/// Filters work as in this workspace's suite (`STATIC_CALL_FILTER`, or
/// arguments). The scenarios that need copies built from this workspace's
/// implementations list skip unless [`Adapter::LISTED`].
pub fn run<A: Adapter>() -> std::process::ExitCode {
    runner::main(
        runner::Config {
            crafted_bin: std::path::PathBuf::new(),
            matrix_file: format!("conformance-{}.json", A::NAME),
        },
        vec![runner::Implementation {
            name: A::NAME,
            scenarios: scenarios::catalogue::<A>(),
        }],
    )
}
