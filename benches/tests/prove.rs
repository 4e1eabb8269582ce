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
