//! The controls (a direct call and its A/A copy, calls through memory,
//! `lfence` before an indirect call, a plain function pointer, a
//! `dyn Trait` call, an `Option<fn>`), each with the same loops as the
//! implementations; [`CONTROLS`] and [`SUBJECTS`].

use super::*;

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

pub(super) static DIRECT: Subject = Subject {
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
