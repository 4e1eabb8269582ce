//! The benchmarks' own proofs can fail: a site whose form does not match
//! the benchmark's name is caught before anything is measured.

use static_call_bench::prove::prove;
use static_call_bench::subjects::{CALL_SCENARIOS, SUBJECTS, implementations};
use static_call_bench::targets::{add1, add2};

#[test]
fn implementations_prove_and_a_wrong_target_is_caught() {
    for (s, imp) in implementations() {
        (imp.init)().unwrap();
        for sc in &CALL_SCENARIOS {
            let dumps = prove(s, sc).unwrap_or_else(|e| panic!("{e}"));
            assert!(!dumps.is_empty(), "{} {}: nothing decoded", s.name, sc.id);
        }
        // Point the hot key at another function: the 1-argument benchmark
        // would no longer measure a call of `add1`, and must refuse.
        imp.hot1.update(add2).unwrap();
        let err = prove(s, &CALL_SCENARIOS[0]).expect_err("a wrong target must be caught");
        assert!(
            err.contains("add2") && err.contains("add1"),
            "{}: {err}",
            s.name
        );
        imp.hot1.update(add1).unwrap();
        prove(s, &CALL_SCENARIOS[0]).unwrap_or_else(|e| panic!("{e}"));
    }
}

#[test]
fn controls_prove_in_optimised_builds() {
    if cfg!(debug_assertions) {
        eprintln!(
            "SKIPPED: the controls' loops have their proven shape only when optimised \
             (cargo test --release -p static-call-bench); a debug build adds calls to helpers"
        );
        return;
    }
    for s in SUBJECTS.iter().filter(|s| s.imp.is_none()) {
        for sc in &CALL_SCENARIOS {
            if (sc.pick)(&s.loops).is_some() {
                prove(s, sc).unwrap_or_else(|e| panic!("{e}"));
            }
        }
    }
}

/// The function-pointer control as it was before the proof required the
/// load: a private static nothing writes, read with a plain load. LLVM
/// treats it as a constant, loads the address once before the loop and
/// calls a register (`call r14`) or the function directly: not an indirect
/// call through memory at every call.
mod devirtualised {
    use std::sync::atomic::{AtomicPtr, Ordering};

    use static_call_bench::subjects::AddFn;
    use static_call_bench::targets::add1;

    static ONE: AtomicPtr<()> = AtomicPtr::new(add1 as AddFn as *mut ());

    fn one() -> AddFn {
        // SAFETY: `ONE` only ever holds an `AddFn`.
        unsafe { std::mem::transmute::<*mut (), AddFn>(ONE.load(Ordering::Relaxed)) }
    }

    /// `n` calls; returns `n`.
    #[inline(never)]
    pub fn hot1(n: u64) -> u64 {
        let mut x = std::hint::black_box(0u64);
        for _ in 0..n {
            x = one()(x);
        }
        x
    }

    /// The pointer loaded once, before the loop, then called from a
    /// register: the load is hoisted by construction.
    #[inline(never)]
    pub fn hoisted(n: u64) -> u64 {
        let f = std::hint::black_box(one());
        let mut x = std::hint::black_box(0u64);
        for _ in 0..n {
            x = f(x);
        }
        x
    }
}

#[test]
fn a_devirtualised_or_hoisted_control_fails_the_proof() {
    use static_call_bench::subjects::{Loops, Subject};
    use static_call_bundle::{SubjectKind, control};
    for (what, f) in [
        (
            "today's fn-pointer control",
            devirtualised::hot1 as fn(u64) -> u64,
        ),
        ("a pointer hoisted out of the loop", devirtualised::hoisted),
    ] {
        let s = Subject {
            name: control::FN_POINTER,
            kind: SubjectKind::Control,
            description: "",
            loops: Loops {
                hot1: Some(f),
                hot6: None,
                many: None,
                cond_none: None,
                cond_some: None,
            },
            imp: None,
        };
        assert_eq!(f(10), 10, "{what}: the loop itself works");
        let err = prove(&s, &CALL_SCENARIOS[0]).expect_err(what);
        eprintln!("{what}: the proof says: {err}");
        if !cfg!(debug_assertions) {
            assert!(
                err.contains("not loaded inside the loop")
                    || err.contains("is not an indirect call")
                    || err.contains("stack slot"),
                "{what}: {err}"
            );
        }
    }
}

/// Every implementation of the one list is a subject, in its order, and
/// the controls' names never clash with an implementation's.
#[test]
fn every_listed_implementation_is_a_subject() {
    macro_rules! names {
        ($(($m:ident, $krate:path, $name:literal))*) => { [$($name),*] };
    }
    let listed = static_call_implementations::implementations!(names);
    let imps: Vec<&str> = implementations().map(|(s, _)| s.name).collect();
    assert_eq!(imps, listed, "the implementations measured");
    assert!(imps.contains(&"plain-indirect"));
    for s in SUBJECTS.iter().filter(|s| s.imp.is_none()) {
        assert!(
            !listed.contains(&s.name),
            "control {} shares an implementation's name",
            s.name
        );
    }
    for (s, imp) in implementations() {
        assert_eq!(
            imp.registry.design().name,
            s.name,
            "{}: its registry's design",
            s.name
        );
    }
}

/// A plain-indirect site must load the key inside the loop being timed:
/// the same site form (`mov rax, [rip + key]; call rax`) in a function
/// without a loop (the `LONE` key's one site, in `call_lone`) is refused.
#[test]
fn a_plain_indirect_site_outside_a_loop_is_refused() {
    use static_call_bench::subjects::{Implementation, Loops, Subject};
    use static_call_bundle::SubjectKind;
    let (s, imp) = implementations()
        .find(|(s, _)| s.name == "plain-indirect")
        .expect("plain-indirect is measured");
    (imp.init)().unwrap();
    // Its LONE key and `call_lone` posing as the hot loop.
    let fake: &'static Implementation = Box::leak(Box::new(Implementation {
        hot1: imp.lone,
        ..*imp
    }));
    let posing = Subject {
        name: s.name,
        kind: SubjectKind::Implementation,
        description: "",
        loops: Loops {
            hot1: Some(imp.call_lone),
            hot6: None,
            many: None,
            cond_none: None,
            cond_some: None,
        },
        imp: Some(fake),
    };
    let err = prove(&posing, &CALL_SCENARIOS[0]).expect_err("a site outside a loop");
    eprintln!("the proof says: {err}");
    assert!(err.contains("not inside a loop"), "{err}");
    // The real loop proves.
    prove(s, &CALL_SCENARIOS[0]).unwrap_or_else(|e| panic!("{e}"));
}
