//! The subjects: every implementation of the one list
//! (`static_call_implementations::implementations!`) and the controls, each
//! with the same loop functions for the call-cost scenarios. An
//! implementation added to the list is measured in every call, update and
//! module scenario without a line here; it is described by its design
//! ([`static_call_core::Design`]), never by its name.
//!
//! Every loop is written once, in `call_loops!`, with the call
//! expression as its only parameter; each subject plugs in its own call.
//! Every loop returns a value the benchmark checks (`n` calls of `x + 1`
//! return `n`), so a loop that did not run, or called the wrong target,
//! fails the run instead of being measured.

use static_call_bundle::{SubjectKind, control};
use static_call_core::{Registry, Result, SharedObject, StaticCall, Stats};

use crate::targets::{ADD6_STEP, hook};
#[allow(unused_imports)]
use static_call_core::{Arg, Ret};

/// `extern "C" fn(u64) -> u64`.
pub type AddFn = extern "C" fn(u64) -> u64;
/// The 6-argument signature.
pub type Add6Fn = extern "C" fn(u64, u32, u16, u8, bool, *const u8) -> u64;
/// A loop function: runs `n` units, returns the checked value.
pub type LoopFn = fn(u64) -> u64;

/// The copies of a subject's many-sites loop ([`MANY_COPIES`]).
pub type ManyLoops = [LoopFn; MANY_COPIES];
/// The conditional signature.
pub type HookFn = extern "C" fn(u64);

/// The loop functions of one subject. `None`: the scenario does not apply
/// to it (the conditional scenario only compares the implementations with
/// [`control::OPTION_FN`]).
#[derive(Debug, Clone, Copy)]
pub struct Loops {
    /// `n` calls of one site (1 argument); returns `n`.
    pub hot1: Option<fn(u64) -> u64>,
    /// `n` calls of one site (6 arguments); returns `n * ADD6_STEP`.
    pub hot6: Option<fn(u64) -> u64>,
    /// `rounds` passes over [`crate::MANY_SITES`] distinct sites; returns
    /// `rounds * MANY_SITES`: [`MANY_COPIES`] copies of the same loop, each
    /// on a page of its own, which the rounds take in turn.
    pub many: Option<ManyLoops>,
    /// `n` conditional calls with a none target; returns `n` (and the hook
    /// is never called).
    pub cond_none: Option<fn(u64) -> u64>,
    /// `n` conditional calls with the target set to
    /// [`crate::peers::tick`]; returns `n`, and the target counts `n`
    /// calls.
    pub cond_some: Option<fn(u64) -> u64>,
}

/// The keys and lifecycle of an implementation, for the scenarios that
/// update keys and load modules.
#[derive(Debug)]
pub struct Implementation {
    /// The implementation's registry.
    pub registry: &'static Registry,
    /// Its `init()`.
    pub init: fn() -> Result<()>,
    /// Its `stats()`.
    pub stats: fn() -> Stats,
    /// The key of [`Loops::hot1`].
    pub hot1: &'static StaticCall<AddFn>,
    /// The key of [`Loops::hot6`].
    pub hot6: &'static StaticCall<Add6Fn>,
    /// The key of [`Loops::many`].
    pub many: &'static StaticCall<AddFn>,
    /// The key of [`Loops::cond_none`].
    pub cond: &'static StaticCall<HookFn>,
    /// The key of [`Loops::cond_some`] (target [`crate::peers::tick`]).
    pub cond_some: &'static StaticCall<HookFn>,
    /// A key with no site in the program: generated modules bring them.
    pub scale: &'static StaticCall<AddFn>,
    /// A key with exactly one site in the program, [`Implementation::call_lone`].
    pub lone: &'static StaticCall<AddFn>,
    /// Calls [`Implementation::lone`] through its one site.
    pub call_lone: fn(u64) -> u64,
    /// A key with no site in the program, for the foreign sites.
    pub foreign: &'static StaticCall<AddFn>,
    /// Opens the conformance suite's test shared object as a module.
    pub open_shared_object: fn(&str) -> Result<SharedObject>,
}

/// An implementation or a control.
#[derive(Debug)]
pub struct Subject {
    /// Its name in the bundle.
    pub name: &'static str,
    /// Implementation or control.
    pub kind: SubjectKind,
    /// One line on what it is (a control's; an implementation's comes from
    /// its design: [`Subject::describe`]).
    pub description: &'static str,
    /// Its loops.
    pub loops: Loops,
    /// For implementations: keys and lifecycle.
    pub imp: Option<&'static Implementation>,
}

impl Subject {
    /// One line on what it is: a control's own description, or what an
    /// implementation's design says its sites and updates do.
    pub fn describe(&self) -> String {
        match self.imp {
            Some(imp) => describe_design(imp.registry.design()),
            None => self.description.to_owned(),
        }
    }
}

/// What a design's sites and updates do, from its description alone.
pub fn describe_design(d: &static_call_core::Design) -> String {
    use static_call_core::SiteShape;
    let site = match (d.site, d.patches_sites) {
        (SiteShape::CallTrampoline, true) => "sites patched in place to `call target`",
        (SiteShape::CallTrampoline, false) => {
            "sites call a per-key trampoline whose `jmp` is rewritten"
        }
        (SiteShape::CallThunk, _) => "load the pointer, call a retpoline thunk",
        (SiteShape::LoadCallRax, _) => {
            "load the pointer, `call rax`: a plain indirect call, no retpoline"
        }
    };
    let update = if d.writes_code() {
        "an update rewrites code"
    } else {
        "an update is one atomic store"
    };
    format!("{site}; {update}")
}

/// Repeats its statements 1,024 times (4^5): each copy of a static call is
/// a distinct call site.
macro_rules! rep1024 {
    ($($s:tt)*) => { rep4! { rep4! { rep4! { rep4! { rep4! { $($s)* } } } } } };
}
macro_rules! rep4 {
    ($($s:tt)*) => { $($s)* $($s)* $($s)* $($s)* };
}

/// The call-cost loops, written once: `one(x) => EXPR` is a 1-argument
/// call returning `x + 1`, `six(x) => EXPR` the 6-argument call.
macro_rules! call_loops {
    (one($x:ident) => $one:expr; six($y:ident) => $six:expr;) => {
        call_loops! { one($x) => $one; six($y) => $six; many($x) => $one; }
    };
    (one($x:ident) => $one:expr; six($y:ident) => $six:expr; many($z:ident) => $many:expr;) => {
        /// `n` calls of one site; returns `n`.
        #[inline(never)]
        pub fn hot1(n: u64) -> u64 {
            let mut x = ::std::hint::black_box(0u64);
            for _ in 0..n {
                x = {
                    let $x = x;
                    $one
                };
            }
            x
        }
        /// `n` calls of one 6-argument site; returns `n * ADD6_STEP`.
        #[inline(never)]
        pub fn hot6(n: u64) -> u64 {
            let mut x = ::std::hint::black_box(0u64);
            for _ in 0..n {
                x = {
                    let $y = x;
                    $six
                };
            }
            x
        }
        many_loop!(many0, "0", $z => $many);
        many_loop!(many1, "1", $z => $many);
        many_loop!(many2, "2", $z => $many);
        many_loop!(many3, "3", $z => $many);
        many_loop!(many4, "4", $z => $many);
        many_loop!(many5, "5", $z => $many);
        many_loop!(many6, "6", $z => $many);
        many_loop!(many7, "7", $z => $many);
        /// The copies of the many-sites loop, in the order the rounds take
        /// them.
        pub const MANY_LOOPS: $crate::subjects::ManyLoops =
            [many0, many1, many2, many3, many4, many5, many6, many7];
    };
}

/// How many copies of each subject's many-sites loop the rounds take in
/// turn. Where 13 KiB of straight-line calls lies moves its cost by one or
/// two percent between two copies of the same bytes, even when each starts
/// on a page of its own (the A/A control showed 1.015x [1.011-1.020] with
/// one copy per subject on the Zen 5 VM, 1.083x on Zen 3 without page
/// alignment): a difference of placement, stable within a build, that no
/// number of rounds averages out. Every subject's loop is compiled this
/// many times, each copy at another address, and round `r` runs copy `r %
/// MANY_COPIES` of every subject, so each ratio is taken over several
/// placements rather than one (the idea of randomised code layout, as in
/// Curtsinger and Berger's Stabilizer, 2013, done by hand here).
pub const MANY_COPIES: usize = 8;

/// One copy of the many-sites loop: on a page of its own, in a section of
/// its own that an empty piece of assembly aligns to 4 KiB.
macro_rules! many_loop {
    ($name:ident, $k:literal, $z:ident => $many:expr) => {
        ::core::arch::global_asm!(concat!(
            ".pushsection \"sc_many:",
            module_path!(),
            ":",
            $k,
            "\",\"ax\",@progbits\n.p2align 12\n.popsection"
        ));
        /// `rounds` passes over 1,024 distinct sites; returns
        /// `rounds * 1024`.
        #[inline(never)]
        #[unsafe(link_section = concat!("sc_many:", module_path!(), ":", $k))]
        pub fn $name(rounds: u64) -> u64 {
            let mut x = ::std::hint::black_box(0u64);
            for _ in 0..rounds {
                rep1024! {
                    x = {
                        let $z = x;
                        $many
                    };
                }
            }
            x
        }
    };
}

/// Defines an implementation's keys, loops and [`Subject`].
macro_rules! implementation {
    ($m:ident = $krate:path, $name:expr) => {
        #[doc = concat!("The ", $name, " subject.")]
        pub mod $m {
            use super::*;
            use $krate as sc;

            sc::define_static_call!(
                pub static HOT1: extern "C" fn(u64) -> u64 = crate::targets::add1;
            );
            sc::define_static_call!(
                pub static HOT6: extern "C" fn(u64, u32, u16, u8, bool, *const u8) -> u64 =
                    crate::targets::add6;
            );
            sc::define_static_call!(
                pub static MANY: extern "C" fn(u64) -> u64 = crate::targets::add1;
            );
            sc::define_static_call!(
                pub static COND: extern "C" fn(u64) = None;
            );
            sc::define_static_call!(
                pub static COND_SOME: extern "C" fn(u64) = crate::peers::tick;
            );
            sc::define_static_call!(
                pub static SCALE: extern "C" fn(u64) -> u64 = crate::targets::add1;
            );
            sc::define_static_call!(
                pub static LONE: extern "C" fn(u64) -> u64 = crate::targets::add1;
            );
            sc::define_static_call!(
                pub static FOREIGN: extern "C" fn(u64) -> u64 = crate::targets::add1;
            );

            call_loops! {
                one(x) => sc::static_call!(HOT1(x));
                six(x) => sc::static_call!(HOT6(x, 1, 2, 3, true, 4 as *const u8));
                many(x) => sc::static_call!(MANY(x));
            }

            /// `n` conditional calls with the key at none; returns `n`.
            #[inline(never)]
            pub fn cond_none(n: u64) -> u64 {
                let mut c = ::std::hint::black_box(0u64);
                for i in 0..n {
                    sc::static_call_cond!(COND(i));
                    c += 1;
                }
                c
            }

            /// `n` conditional calls with the key's target set; returns `n`.
            #[inline(never)]
            pub fn cond_some(n: u64) -> u64 {
                let mut c = ::std::hint::black_box(0u64);
                for i in 0..n {
                    sc::static_call_cond!(COND_SOME(i));
                    c += 1;
                }
                c
            }

            /// The one site of `LONE`.
            #[inline(never)]
            pub fn call_lone(x: u64) -> u64 {
                sc::static_call!(LONE(x))
            }

            fn open_shared_object(path: &str) -> Result<SharedObject> {
                // SAFETY: the test shared object is built from this
                // workspace for this purpose; its keys bind to the keys
                // this binary exports.
                unsafe { sc::load_shared_object(path) }
            }

            /// Keys and lifecycle.
            pub static IMPL: Implementation = Implementation {
                registry: &sc::__private::REGISTRY,
                init: sc::init,
                stats: sc::stats,
                hot1: &HOT1,
                hot6: &HOT6,
                many: &MANY,
                cond: &COND,
                cond_some: &COND_SOME,
                scale: &SCALE,
                lone: &LONE,
                call_lone,
                foreign: &FOREIGN,
                open_shared_object,
            };

            /// The subject.
            pub static SUBJECT: Subject = Subject {
                name: $name,
                kind: SubjectKind::Implementation,
                description: "",
                loops: Loops {
                    hot1: Some(hot1),
                    hot6: Some(hot6),
                    many: Some(MANY_LOOPS),
                    cond_none: Some(cond_none),
                    cond_some: Some(cond_some),
                },
                imp: Some(&IMPL),
            };
        }
    };
}

/// Every implementation of the one list, each a module of its own
/// (`inline_patch`, `trampoline`, …), and [`IMPLEMENTATION_SUBJECTS`].
macro_rules! implementation_subjects {
    ($(($m:ident, $krate:path, $name:literal))*) => {
        $(implementation!($m = $krate, $name);)*
        /// The implementations' subjects, in the one list's order.
        pub static IMPLEMENTATION_SUBJECTS: [&Subject; [$($name),*].len()] = [$(&$m::SUBJECT),*];
    };
}
static_call_implementations::implementations!(implementation_subjects);

mod controls;
mod scenarios;
mod selection;

use controls::DIRECT;
pub use controls::{
    CONTROLS, SUBJECTS, call_mem_indirect, direct, direct_aa, dyn_trait, fn_pointer,
    lfence_indirect, option_fn, slots,
};
pub use scenarios::{
    CALL_SCENARIOS, CallScenario, check_cond_loops_can_call, reference, run_checked,
};
pub use selection::{FILTER_ENV, Selection, selects};

/// The implementations, in display order.
pub fn implementations() -> impl Iterator<Item = (&'static Subject, &'static Implementation)> {
    SUBJECTS.iter().filter_map(|s| s.imp.map(|i| (*s, i)))
}
