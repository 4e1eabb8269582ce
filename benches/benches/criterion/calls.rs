//! Call cost: the hot call loops in interleaved rounds with an A/A control, and
//! the cold, trashed-predictor and polluted-predictor calls of generated code.

use std::time::{Duration, Instant};

use static_call_bench::quick;
use static_call_bench::rounds;
use static_call_bench::subjects::{self, CALL_SCENARIOS, SUBJECTS};
use static_call_bundle::{Instrument, Metric, scenario};

use super::{Ctx, fail, left_out, seed, selection};

/// Runs every call loop for a while before the first measurement, so
/// that the first subject measured does not pay for a cold CPU (clock
/// ramp, caches, predictors) that the later ones do not.
fn warm_up() {
    let until = Instant::now() + Duration::from_millis(if quick() { 300 } else { 2000 });
    while Instant::now() < until {
        for sc in &CALL_SCENARIOS {
            for s in SUBJECTS {
                if let Some(f) = (sc.pick)(&s.loops) {
                    subjects::run_checked(sc, s.name, f, 10_000 / sc.calls_per_unit);
                }
            }
        }
    }
}

pub(super) fn calls(ctx: &mut Ctx) {
    warm_up();
    let (n, batch) = (static_call_bench::rounds(), static_call_bench::batch_ns());
    let of = |sc: &subjects::CallScenario| -> Vec<&'static str> {
        SUBJECTS
            .iter()
            .filter(|s| (sc.pick)(&s.loops).is_some())
            .map(|s| s.name)
            .collect()
    };
    // A scenario selected for any subject is measured for all of its
    // subjects: the ratios need their references in the same rounds.
    for sc in &CALL_SCENARIOS {
        if !selection().selects_scenario(sc.id) {
            left_out(ctx, sc.id, of(sc), Instrument::Timer);
            continue;
        }
        let m = rounds::measure(sc, sc.id, n, batch, seed());
        eprintln!("call rounds: {} ({n} rounds)", sc.id);
        ctx.part.figures.extend(m.figures);
        ctx.part.rounds.extend(m.rounds);
    }
    let id = scenario::CALL_HOT_1_IB_OFF;
    if !selection().selects_scenario(id) {
        left_out(ctx, id, of(&CALL_SCENARIOS[0]), Instrument::Timer);
        return;
    }
    let s = seed();
    match rounds::with_indirect_speculation_disabled(move || {
        rounds::measure(&CALL_SCENARIOS[0], id, n, batch, s)
    }) {
        Ok((mut m, state)) => {
            eprintln!("call rounds: {id} ({n} rounds); the thread's control: {state}");
            for f in &mut m.figures {
                if let Some(note) = &mut f.note {
                    note.push_str(&format!(
                        "; on a thread after prctl(PR_SET_SPECULATION_CTRL, PR_SPEC_INDIRECT_BRANCH, PR_SPEC_FORCE_DISABLE), which then reported {state}"
                    ));
                }
            }
            ctx.part.figures.extend(m.figures);
            ctx.part.rounds.extend(m.rounds);
        }
        Err(e) => ctx.part.missing(id, None, Metric::WallTime, e),
    }
}

/// call/cold-*, call/trashed-predictor, call/polluted-*: generated code
/// (`static_call_bench::cold`).
pub(super) fn cold_calls(ctx: &mut Ctx) {
    let o = static_call_bench::cold::run(&selection(), seed()).unwrap_or_else(|e| fail(&e));
    ctx.part.figures.extend(o.figures);
    ctx.part.rounds.extend(o.rounds);
    ctx.part.missing.extend(o.missing);
    ctx.part.sites.extend(o.sites);
}
