//! The call scenarios ([`CALL_SCENARIOS`]), their reference subject, and
//! the checked run of a loop ([`run_checked`]).

use super::*;

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
