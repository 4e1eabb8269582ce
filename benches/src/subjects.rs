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

/// A direct `call rel32` to an `#[inline(never)] extern "C" fn`.
///
/// The call is emitted the way a static-call site is (inline assembly with
/// the C ABI's clobbers), because rustc does not reliably emit a direct
/// call: with a call in a loop, LLVM hoists the target's address into a
/// register and emits `call r14`, an indirect call (the proof caught it).
pub mod direct {
    /// `call add1`.
    pub mod one {
        static_call_core::__static_call_fn! {
            { "call {f}", f = sym crate::targets::add1, } (u64) -> u64
        }
    }
    /// `call add6`.
    pub mod six {
        static_call_core::__static_call_fn! {
            { "call {f}", f = sym crate::targets::add6, } (u64, u32, u16, u8, bool, *const u8) -> u64
        }
    }
    call_loops! {
        one(x) => one::__call(x);
        six(x) => six::__call(x, 1, 2, 3, true, 4 as *const u8);
    }
}

/// The A/A control: the direct call's loops compiled a second time, in
/// their own functions (its conditional loop is [`option_fn::aa`]). Its ratio to [`direct`] measures nothing but the
/// noise of the run (code placement, frequency, the other tenants of the
/// machine): the noise floor every other ratio is read against.
///
/// The asm template carries a comment the direct control's lacks, so that
/// LLVM's function merging cannot fold the two loops into one (the proof
/// checks that the two loops are distinct functions with the same bytes).
pub mod direct_aa {
    /// `call add1`, a second copy.
    pub mod one {
        static_call_core::__static_call_fn! {
            { "call {f} /* a/a copy */", f = sym crate::targets::add1, } (u64) -> u64
        }
    }
    /// `call add6`, a second copy.
    pub mod six {
        static_call_core::__static_call_fn! {
            { "call {f} /* a/a copy */", f = sym crate::targets::add6, } (u64, u32, u16, u8, bool, *const u8) -> u64
        }
    }
    call_loops! {
        one(x) => one::__call(x);
        six(x) => six::__call(x, 1, 2, 3, true, 4 as *const u8);
    }
}

/// Function-pointer slots the controls load their target from at every
/// call. They are written at run time ([`slots::set_slots`], before anything is
/// measured), so that no optimiser can treat them as constants, and the
/// Rust controls read them with a volatile load, which it may neither
/// hoist out of the loop nor drop.
pub mod slots {
    use std::sync::atomic::{AtomicPtr, Ordering};

    /// The 1-argument target.
    pub static ONE: AtomicPtr<()> = AtomicPtr::new(crate::targets::add1 as super::AddFn as *mut ());
    /// The 6-argument target.
    pub static SIX: AtomicPtr<()> =
        AtomicPtr::new(crate::targets::add6 as super::Add6Fn as *mut ());

    /// Writes the slots at run time (once; [`super::run_checked`] calls it
    /// before the first loop runs).
    pub fn set_slots() {
        static ONCE: std::sync::Once = std::sync::Once::new();
        ONCE.call_once(store);
    }

    fn store() {
        ONE.store(
            crate::targets::add1 as super::AddFn as *mut (),
            Ordering::SeqCst,
        );
        SIX.store(
            crate::targets::add6 as super::Add6Fn as *mut (),
            Ordering::SeqCst,
        );
        super::dyn_trait::set_object();
        for hook in [
            &super::option_fn::some::HOOK_SOME,
            &super::option_fn::aa_some::HOOK_AA_SOME,
        ] {
            hook.store(
                crate::peers::tick as super::HookFn as *mut (),
                Ordering::SeqCst,
            );
        }
    }
}

/// A call through a plain function pointer (no retpoline), loaded from a
/// slot written at run time at every call: `mov rax, [rip + slot]; call
/// rax` (or `call [rip + slot]`).
pub mod fn_pointer {
    use super::*;

    fn one() -> AddFn {
        // SAFETY: the slot is an aligned static that only ever holds an
        // `AddFn`.
        let p = unsafe { std::ptr::read_volatile(slots::ONE.as_ptr()) };
        // SAFETY: as above, the pointer is an `AddFn`.
        unsafe { std::mem::transmute::<*mut (), AddFn>(p) }
    }
    fn six() -> Add6Fn {
        // SAFETY: as in `one`, for an `Add6Fn`.
        let p = unsafe { std::ptr::read_volatile(slots::SIX.as_ptr()) };
        // SAFETY: as above, the pointer is an `Add6Fn`.
        unsafe { std::mem::transmute::<*mut (), Add6Fn>(p) }
    }
    call_loops! {
        one(x) => one()(x);
        six(x) => six()(x, 1, 2, 3, true, 4 as *const u8);
    }
}

/// An indirect call through memory, written as a kernel with Enhanced IBRS
/// may emit it: `call qword ptr [rip + slot]` (inline assembly, so the
/// load is in the instruction itself, at every call). The control
/// `call-mem-indirect`; the implementation `plain-indirect` loads the key
/// into `rax` and calls it instead.
pub mod call_mem_indirect {
    /// `call [rip + ONE]`.
    pub mod one {
        static_call_core::__static_call_fn! {
            { "call qword ptr [rip + {s}]", s = sym super::super::slots::ONE, } (u64) -> u64
        }
    }
    /// `call [rip + SIX]`.
    pub mod six {
        static_call_core::__static_call_fn! {
            { "call qword ptr [rip + {s}]", s = sym super::super::slots::SIX, } (u64, u32, u16, u8, bool, *const u8) -> u64
        }
    }
    call_loops! {
        one(x) => one::__call(x);
        six(x) => six::__call(x, 1, 2, 3, true, 4 as *const u8);
    }
}

/// The AMD-style retpoline (`retpoline,lfence`): load the pointer, fence
/// speculation, call the register: `mov rax, [rip + slot]; lfence; call
/// rax`.
pub mod lfence_indirect {
    /// `mov rax, [rip + ONE]; lfence; call rax`.
    pub mod one {
        static_call_core::__static_call_fn! {
            { "mov rax, qword ptr [rip + {s}]", "lfence", "call rax", s = sym super::super::slots::ONE, } (u64) -> u64
        }
    }
    /// `mov rax, [rip + SIX]; lfence; call rax`.
    pub mod six {
        static_call_core::__static_call_fn! {
            { "mov rax, qword ptr [rip + {s}]", "lfence", "call rax", s = sym super::super::slots::SIX, } (u64, u32, u16, u8, bool, *const u8) -> u64
        }
    }
    call_loops! {
        one(x) => one::__call(x);
        six(x) => six::__call(x, 1, 2, 3, true, 4 as *const u8);
    }
}

/// A `dyn Trait` method call whose object (data and vtable pointer) is
/// loaded from a slot at every call, as a `Box<dyn Op>` field behind a
/// pointer would be: the vtable entry is then loaded at every call too
/// (`call [vtable + offset]`), and the optimiser cannot devirtualise it.
pub mod dyn_trait {
    use std::cell::UnsafeCell;

    /// The trait behind the call.
    pub trait Op {
        /// `x + 1`.
        fn one(&self, x: u64) -> u64;
        /// The 6-argument body.
        fn six(&self, a: u64, b: u32, c: u16, d: u8, e: bool, f: *const u8) -> u64;
    }
    /// The one implementation, with the same bodies as the targets.
    #[derive(Debug)]
    pub struct Adder;
    impl Op for Adder {
        #[inline(never)]
        fn one(&self, x: u64) -> u64 {
            x.wrapping_add(1)
        }
        #[inline(never)]
        fn six(&self, a: u64, b: u32, c: u16, d: u8, e: bool, f: *const u8) -> u64 {
            crate::targets::add6_body(a, b, c, d, e, f)
        }
    }
    /// A `Box<dyn Op>`-like slot, read with a volatile load per call.
    struct Slot(UnsafeCell<&'static (dyn Op + Sync)>);
    // SAFETY: written only by `set_object` (one aligned store of the same
    // value, before any benchmark runs), otherwise only read.
    unsafe impl Sync for Slot {}
    static ADDER: Adder = Adder;
    static SLOT: Slot = Slot(UnsafeCell::new(&ADDER));

    /// Stores the object into the slot at run time.
    pub(super) fn set_object() {
        // SAFETY: the slot is aligned and valid; this stores the value it
        // already holds, before the benchmarks' threads start.
        unsafe { std::ptr::write_volatile(SLOT.0.get(), &ADDER) };
    }

    fn op() -> &'static (dyn Op + Sync) {
        // SAFETY: the slot is aligned and always holds a valid reference.
        unsafe { std::ptr::read_volatile(SLOT.0.get()) }
    }
    call_loops! {
        one(x) => op().one(x);
        six(x) => op().six(x, 1, 2, 3, true, 4 as *const u8);
    }
}

/// `if let Some(f) = hook { f(x) }` on an `Option<fn>` read from a static
/// at every call, as a hook that can change at run time is.
pub mod option_fn {
    use std::sync::atomic::{AtomicPtr, Ordering};

    /// The loop over one hook static, compiled once per use: the control,
    /// and its A/A copy (a second static, so that the two functions differ
    /// in the address they load and no function merging folds them).
    macro_rules! option_fn_loop {
        ($hook:ident) => {
            /// The hook: null for none.
            pub static $hook: AtomicPtr<()> = AtomicPtr::new(std::ptr::null_mut());

            fn current() -> Option<$crate::subjects::HookFn> {
                let p = $hook.load(Ordering::Relaxed);
                (!p.is_null()).then(|| {
                    // SAFETY: the hook only ever holds null or a `HookFn`.
                    unsafe { std::mem::transmute::<*mut (), $crate::subjects::HookFn>(p) }
                })
            }

            /// `n` conditional calls with the hook at none; returns `n`.
            #[inline(never)]
            pub fn cond_none(n: u64) -> u64 {
                let mut c = ::std::hint::black_box(0u64);
                for i in 0..n {
                    if let Some(f) = current() {
                        f(i);
                    }
                    c += 1;
                }
                c
            }
        };
    }
    option_fn_loop!(HOOK);

    /// Sets the hook (used only to show the loop can call it).
    pub fn set(f: Option<super::HookFn>) {
        HOOK.store(
            f.map_or(std::ptr::null_mut(), |f| f as *mut ()),
            Ordering::Relaxed,
        );
    }

    /// The A/A copy of the loop, over its own hook (always none).
    pub mod aa {
        use std::sync::atomic::{AtomicPtr, Ordering};
        option_fn_loop!(HOOK_AA);
    }

    /// The loop over a hook set to [`crate::peers::tick`] at run time
    /// ([`super::slots::set_slots`]), for `call/cond-some`.
    pub mod some {
        use std::sync::atomic::{AtomicPtr, Ordering};
        option_fn_loop!(HOOK_SOME);
    }

    /// The A/A copy of [`some`]'s loop, over its own hook (set alike).
    pub mod aa_some {
        use std::sync::atomic::{AtomicPtr, Ordering};
        option_fn_loop!(HOOK_AA_SOME);
    }
}

/// The controls, in display order.
pub static CONTROLS: [&Subject; 7] = [
    &DIRECT,
    &DIRECT_AA,
    &CALL_MEM_INDIRECT,
    &LFENCE_INDIRECT,
    &FN_POINTER,
    &DYN_TRAIT,
    &OPTION_FN,
];

/// Every subject, in display order: the implementations (the one list's
/// order), then the controls, then the peers ([`crate::peers::PEERS`]).
pub static SUBJECTS: [&Subject;
    IMPLEMENTATION_SUBJECTS.len() + CONTROLS.len() + crate::peers::PEERS.len()] = {
    let mut all =
        [CONTROLS[0]; IMPLEMENTATION_SUBJECTS.len() + CONTROLS.len() + crate::peers::PEERS.len()];
    let mut i = 0;
    while i < IMPLEMENTATION_SUBJECTS.len() {
        all[i] = IMPLEMENTATION_SUBJECTS[i];
        i += 1;
    }
    let mut j = 0;
    while j < CONTROLS.len() {
        all[i + j] = CONTROLS[j];
        j += 1;
    }
    let mut k = 0;
    while k < crate::peers::PEERS.len() {
        all[i + j + k] = crate::peers::PEERS[k];
        k += 1;
    }
    all
};

/// The three loops of a control that has them all but the conditional one.
macro_rules! control_loops {
    ($m:ident) => {
        Loops {
            hot1: Some($m::hot1),
            hot6: Some($m::hot6),
            many: Some($m::MANY_LOOPS),
            cond_none: None,
            cond_some: None,
        }
    };
}

static DIRECT_AA: Subject = Subject {
    name: control::DIRECT_AA,
    kind: SubjectKind::Control,
    description: "the A/A control: each scenario's reference loop compiled a second time (the direct call's; for cond-none the Option<fn> loop's); its ratio to the reference is the run's noise floor",
    loops: Loops {
        hot1: Some(direct_aa::hot1),
        hot6: Some(direct_aa::hot6),
        many: Some(direct_aa::MANY_LOOPS),
        cond_none: Some(option_fn::aa::cond_none),
        cond_some: Some(option_fn::aa_some::cond_none),
    },
    imp: None,
};
static CALL_MEM_INDIRECT: Subject = Subject {
    name: control::CALL_MEM_INDIRECT,
    kind: SubjectKind::Control,
    description: "an indirect call through memory, `call qword ptr [rip + slot]` (what an Enhanced-IBRS kernel may emit)",
    loops: control_loops!(call_mem_indirect),
    imp: None,
};
static LFENCE_INDIRECT: Subject = Subject {
    name: control::LFENCE_INDIRECT,
    kind: SubjectKind::Control,
    description: "`mov rax, [rip + slot]; lfence; call rax` (the AMD-style lfence retpoline)",
    loops: control_loops!(lfence_indirect),
    imp: None,
};

static DIRECT: Subject = Subject {
    name: control::DIRECT,
    kind: SubjectKind::Control,
    description: "a direct `call rel32` to an #[inline(never)] extern \"C\" fn (the physical limit), emitted as a static-call site is",
    loops: Loops {
        hot1: Some(direct::hot1),
        hot6: Some(direct::hot6),
        many: Some(direct::MANY_LOOPS),
        cond_none: None,
        cond_some: None,
    },
    imp: None,
};
static FN_POINTER: Subject = Subject {
    name: control::FN_POINTER,
    kind: SubjectKind::Control,
    description: "a call through a plain function pointer loaded from a run-time-written static at every call (no retpoline)",
    loops: Loops {
        hot1: Some(fn_pointer::hot1),
        hot6: Some(fn_pointer::hot6),
        many: Some(fn_pointer::MANY_LOOPS),
        cond_none: None,
        cond_some: None,
    },
    imp: None,
};
static DYN_TRAIT: Subject = Subject {
    name: control::DYN_TRAIT,
    kind: SubjectKind::Control,
    description: "a dyn Trait method call, object and vtable entry loaded at every call",
    loops: Loops {
        hot1: Some(dyn_trait::hot1),
        hot6: Some(dyn_trait::hot6),
        many: Some(dyn_trait::MANY_LOOPS),
        cond_none: None,
        cond_some: None,
    },
    imp: None,
};
static OPTION_FN: Subject = Subject {
    name: control::OPTION_FN,
    kind: SubjectKind::Control,
    description: "if let Some(f) on an Option<fn> read at each call",
    loops: Loops {
        hot1: None,
        hot6: None,
        many: None,
        cond_none: Some(option_fn::cond_none),
        cond_some: Some(option_fn::some::cond_none),
    },
    imp: None,
};

/// The implementations, in display order.
pub fn implementations() -> impl Iterator<Item = (&'static Subject, &'static Implementation)> {
    SUBJECTS.iter().filter_map(|s| s.imp.map(|i| (*s, i)))
}

/// The subject every ratio of a call scenario is taken against, and that
/// the A/A control copies: the direct call, or (the conditional scenario,
/// which the direct call lacks) the `Option<fn>` control.
pub fn reference(sc: &CallScenario) -> &'static str {
    if (sc.pick)(&DIRECT.loops).is_some() {
        control::DIRECT
    } else {
        control::OPTION_FN
    }
}

/// A call scenario: its id, what a loop of `n` returns, and the loop.
#[derive(Debug, Clone, Copy)]
pub struct CallScenario {
    /// The scenario id ([`static_call_bundle::scenario`]).
    pub id: &'static str,
    /// Calls made by one unit of `n` (1, or 1,024 for the many-sites loop).
    pub calls_per_unit: u64,
    /// What the loop returns for `n`.
    pub expect: fn(u64) -> u64,
    /// The subject's loop, if the scenario applies to it (of several
    /// copies, the first).
    pub pick: fn(&Loops) -> Option<LoopFn>,
    /// Every copy of the subject's loop (one, but for the many-sites
    /// scenario's [`MANY_COPIES`]); empty if the scenario does not apply.
    pub copies: fn(&Loops) -> Vec<LoopFn>,
}

/// The call scenarios.
pub const CALL_SCENARIOS: [CallScenario; 5] = [
    CallScenario {
        id: static_call_bundle::scenario::CALL_HOT_1,
        calls_per_unit: 1,
        expect: |n| n,
        pick: |l| l.hot1,
        copies: |l| l.hot1.into_iter().collect(),
    },
    CallScenario {
        id: static_call_bundle::scenario::CALL_HOT_6,
        calls_per_unit: 1,
        expect: |n| n * ADD6_STEP,
        pick: |l| l.hot6,
        copies: |l| l.hot6.into_iter().collect(),
    },
    CallScenario {
        id: static_call_bundle::scenario::CALL_MANY,
        calls_per_unit: crate::MANY_SITES,
        expect: |n| n * crate::MANY_SITES,
        pick: |l| l.many.map(|m| m[0]),
        copies: |l| l.many.map_or(Vec::new(), |m| m.to_vec()),
    },
    CallScenario {
        id: static_call_bundle::scenario::CALL_COND_NONE,
        calls_per_unit: 1,
        expect: |n| n,
        pick: |l| l.cond_none,
        copies: |l| l.cond_none.into_iter().collect(),
    },
    CallScenario {
        id: static_call_bundle::scenario::CALL_COND_SOME,
        calls_per_unit: 1,
        expect: |n| n,
        pick: |l| l.cond_some,
        copies: |l| l.cond_some.into_iter().collect(),
    },
];

/// Runs a loop and checks its result (and, for the conditional scenarios,
/// that the none target's hook was never called, and that a set target,
/// [`crate::peers::tick`], was called once per call of `call/cond-some`
/// and never elsewhere).
///
/// # Panics
/// When the result is wrong: the benchmark must not go on measuring.
pub fn run_checked(sc: &CallScenario, subject: &str, f: fn(u64) -> u64, n: u64) -> u64 {
    slots::set_slots();
    let before = crate::targets::HOOK_CALLS.load(std::sync::atomic::Ordering::Relaxed);
    let ticks = crate::peers::ticks();
    let got = f(std::hint::black_box(n));
    let ticked = crate::peers::ticks().wrapping_sub(ticks);
    let want_ticks = if sc.id == static_call_bundle::scenario::CALL_COND_SOME {
        n
    } else {
        0
    };
    assert_eq!(
        ticked, want_ticks,
        "{subject} {}: the loop of {n} called the set target {ticked} times, expected {want_ticks}",
        sc.id
    );
    let want = (sc.expect)(n);
    assert_eq!(
        got, want,
        "{subject} {}: the loop of {n} returned {got}, expected {want}",
        sc.id
    );
    let after = crate::targets::HOOK_CALLS.load(std::sync::atomic::Ordering::Relaxed);
    assert_eq!(
        before, after,
        "{subject} {}: the none target was called",
        sc.id
    );
    got
}

/// Checks that the conditional loops call a real target once it is set
/// (so that "nothing called" is the none target's doing, not a dead loop),
/// then sets every conditional key back to none.
///
/// # Errors
/// A failed update, or a loop that did not call the hook.
pub fn check_cond_loops_can_call() -> std::result::Result<(), String> {
    use std::sync::atomic::Ordering;
    for (s, imp) in implementations() {
        imp.cond
            .update_cond(Some(hook))
            .map_err(|e| format!("{}: {e}", s.name))?;
        let before = crate::targets::HOOK_CALLS.load(Ordering::Relaxed);
        let f = s
            .loops
            .cond_none
            .expect("implementations have a conditional loop");
        f(10);
        let calls = crate::targets::HOOK_CALLS.load(Ordering::Relaxed) - before;
        imp.cond
            .update_cond(None)
            .map_err(|e| format!("{}: {e}", s.name))?;
        if calls != 10 {
            return Err(format!(
                "{}: 10 conditional calls with a target made {calls}",
                s.name
            ));
        }
    }
    option_fn::set(Some(hook));
    let before = crate::targets::HOOK_CALLS.load(Ordering::Relaxed);
    option_fn::cond_none(10);
    let calls = crate::targets::HOOK_CALLS.load(Ordering::Relaxed) - before;
    option_fn::set(None);
    if calls != 10 {
        return Err(format!("option-fn: 10 calls with a hook made {calls}"));
    }
    Ok(())
}

/// The environment variable that carries a filter to the processes a
/// benchmark binary starts (the callgrind runner's), comma-separated, as
/// the command line's filter would.
pub const FILTER_ENV: &str = "STATIC_CALL_BENCH_FILTER";

/// What a filtered benchmark run measures (`cargo bench -p
/// static-call-bench -- <filter>`, or [`FILTER_ENV`]), and what it marks
/// "not selected" instead of missing.
///
/// A filter `subject/scenario` selects subject `subject` exactly (any,
/// when empty: `indirect/` never selects `plain-indirect`) in the
/// scenarios whose id (`call/hot-1arg`) or directory name
/// (`call-hot-1arg`) contains `scenario`; a filter that is a subject's
/// whole name selects that subject; any other filter selects the
/// scenarios containing it, for every subject. Several filters select
/// what any of them does; none selects everything.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Selection {
    filters: Vec<String>,
}

impl Selection {
    /// Every figure.
    pub fn all() -> Selection {
        Selection::default()
    }

    /// The given filters (empty ones ignored).
    pub fn of<S: AsRef<str>>(filters: impl IntoIterator<Item = S>) -> Selection {
        Selection {
            filters: filters
                .into_iter()
                .map(|f| f.as_ref().trim().to_owned())
                .filter(|f| !f.is_empty())
                .collect(),
        }
    }

    /// This process's selection: [`FILTER_ENV`] when set, else the
    /// command line's first argument that is not a flag (what `cargo bench
    /// -- <filter>` passes).
    pub fn current() -> Selection {
        match std::env::var(FILTER_ENV) {
            Ok(v) => Selection::of(v.split(',')),
            Err(_) => Selection::of(command_line_filter()),
        }
    }

    /// The selection [`FILTER_ENV`] carries (everything when unset): for
    /// processes whose command line is not the user's.
    pub fn from_env() -> Selection {
        std::env::var(FILTER_ENV).map_or_else(|_| Selection::all(), |v| Selection::of(v.split(',')))
    }

    /// No filter: everything is selected.
    pub fn is_all(&self) -> bool {
        self.filters.is_empty()
    }

    /// The filters, comma-separated (as [`FILTER_ENV`] takes them).
    pub fn filters(&self) -> String {
        self.filters.join(",")
    }

    /// Whether `subject`'s figure of `scenario` is selected.
    pub fn selects(&self, scenario: &str, subject: &str) -> bool {
        self.is_all() || self.filters.iter().any(|f| selects(f, scenario, subject))
    }

    /// Whether any subject's figure of `scenario` is selected.
    pub fn selects_scenario(&self, scenario: &str) -> bool {
        SUBJECTS.iter().any(|s| self.selects(scenario, s.name))
    }

    /// Why an unselected figure is absent: "not selected (…)".
    pub fn reason(&self) -> String {
        format!(
            "not selected: this run's filter `{}` left it out",
            self.filters.join("`, `")
        )
    }

    /// The entries that mark what this selection leaves out of `scenario`
    /// among `subjects`: none when all are selected, one for the whole
    /// scenario when none is, else one per subject left out.
    pub fn left_out<'a>(
        &self,
        scenario: &str,
        subjects: impl IntoIterator<Item = &'a str>,
        metric: static_call_bundle::Metric,
        instrument: static_call_bundle::Instrument,
    ) -> Vec<static_call_bundle::Missing> {
        let subjects: Vec<&str> = subjects.into_iter().collect();
        let out: Vec<&str> = subjects
            .iter()
            .copied()
            .filter(|s| !self.selects(scenario, s))
            .collect();
        let entry = |subject: Option<&str>| static_call_bundle::Missing {
            scenario: scenario.into(),
            subject: subject.map(Into::into),
            metric,
            instrument,
            reason: self.reason(),
        };
        if out.is_empty() {
            Vec::new()
        } else if out.len() == subjects.len() {
            vec![entry(None)]
        } else {
            out.into_iter().map(|s| entry(Some(s))).collect()
        }
    }
}

/// The command line's filter: the first argument after the program's name
/// that is not a flag.
fn command_line_filter() -> Option<String> {
    std::env::args()
        .skip(1)
        .find(|a| !a.starts_with('-'))
        .filter(|a| !a.is_empty())
}

/// Whether one filter selects `subject`'s figure of `scenario`
/// ([`Selection`] says how).
pub fn selects(filter: &str, scenario: &str, subject: &str) -> bool {
    let known = |name: &str| SUBJECTS.iter().any(|s| s.name == name);
    let in_scenario =
        |f: &str| f.is_empty() || scenario.contains(f) || scenario.replace('/', "-").contains(f);
    match filter.split_once('/') {
        Some((who, what)) if who.is_empty() || known(who) => {
            (who.is_empty() || who == subject) && in_scenario(what)
        }
        _ if known(filter) => filter == subject,
        _ => in_scenario(filter),
    }
}

#[cfg(test)]
mod selection_tests {
    use super::{Selection, selects};

    #[test]
    fn subject_names_match_whole() {
        assert!(selects("indirect/", "call/hot-1arg", "indirect"));
        assert!(!selects("indirect/", "call/hot-1arg", "plain-indirect"));
        assert!(selects("indirect", "module/load", "indirect"));
        assert!(!selects("indirect", "module/load", "plain-indirect"));
        assert!(!selects("direct", "call/hot-1arg", "direct-aa"));
        assert!(selects(
            "plain-indirect/call-hot",
            "call/hot-6arg",
            "plain-indirect"
        ));
        assert!(!selects(
            "plain-indirect/call-hot",
            "call/many-sites",
            "plain-indirect"
        ));
    }

    #[test]
    fn scenarios_match_by_substring() {
        // The scenario's id and its directory name both work, for every
        // subject.
        assert!(selects("call-hot-1arg", "call/hot-1arg", "trampoline"));
        assert!(selects("call/hot-1arg", "call/hot-1arg", "direct"));
        assert!(selects("/update", "update/idle", "inline-patch"));
        assert!(!selects("update", "call/hot-1arg", "inline-patch"));
        assert!(Selection::all().selects("anything", "at-all"));
        let s = Selection::of(["indirect/", "direct/call"]);
        assert!(s.selects("call/hot-1arg", "direct"));
        assert!(s.selects("update/idle", "indirect"));
        assert!(!s.selects("update/idle", "plain-indirect"));
    }

    #[test]
    fn what_is_left_out_is_marked_not_selected() {
        use static_call_bundle::{Instrument, Metric};
        let s = Selection::of(["indirect/"]);
        let m = s.left_out(
            "update/idle",
            ["inline-patch", "indirect", "plain-indirect"],
            Metric::WallTime,
            Instrument::Timer,
        );
        let who: Vec<_> = m.iter().map(|m| m.subject.as_deref()).collect();
        assert_eq!(who, [Some("inline-patch"), Some("plain-indirect")]);
        assert!(m.iter().all(|m| m.reason.starts_with("not selected")));
        // A scenario nobody is selected in: one entry for all of it.
        let s = Selection::of(["call-hot"]);
        let m = s.left_out(
            "update/idle",
            ["inline-patch", "indirect"],
            Metric::WallTime,
            Instrument::Timer,
        );
        assert_eq!(m.len(), 1);
        assert_eq!(m[0].subject, None);
        assert!(
            Selection::all()
                .left_out("x", ["a"], Metric::WallTime, Instrument::Timer)
                .is_empty()
        );
    }
}
