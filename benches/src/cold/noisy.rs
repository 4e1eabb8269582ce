//! The trashed and polluted scenarios: each call timed alone after the
//! noise, less a baseline loop with no call.

use crate::gencode::{self, BASELINE, GenSubject, SiteKind};
use crate::rounds::{BATCHES_PER_ROUND, Rng, median};

use super::measure::{Batch, figure, interleaved, per_round, ticks_per_ns};
use super::{LAYOUT_SEED, Output, TRASH_JUMPS, subjects_note};

/// The trashed (`p` None) or polluted (`Some(p)`) scenario.
pub(super) fn noisy(
    out: &mut Output,
    subs: &[GenSubject],
    direct: usize,
    (p, id): (Option<usize>, &str),
    settings: (u32, u64, u64),
) -> Result<(), String> {
    let noise = match p {
        None => gencode::trash(TRASH_JUMPS, LAYOUT_SEED)?,
        Some(p) => gencode::polluters(p, LAYOUT_SEED ^ p as u64)?,
    };
    let baseline = GenSubject {
        name: BASELINE,
        site: SiteKind::NoCall,
    };
    let all: Vec<GenSubject> = subs.iter().copied().chain([baseline]).collect();
    let per_ns = ticks_per_ns();
    let mut loops = Vec::new();
    for s in &all {
        let l = gencode::looped(s, &noise)?;
        let d = gencode::prove_loop(s, &l, &noise, &format!("benchmark {id}"))?;
        if s.name != BASELINE {
            out.sites.extend(d);
        }
        loops.push(l);
    }
    let runners: Vec<(&'static str, Batch<'_>)> = all
        .iter()
        .zip(&loops)
        .map(|(s, l)| {
            let name = s.name;
            let f: Batch<'_> = Box::new(move |units| {
                let (x, ticks) = l.run(0, units);
                if x != units {
                    return Err(format!(
                        "{name} {id}: a loop of {units} returned {x}, expected {units}"
                    ));
                }
                Ok(ticks as f64 / per_ns)
            });
            (name, f)
        })
        .collect();
    let (per, rounds, units) = interleaved(id, &runners, direct, 1, settings)?;
    eprintln!("call rounds: {id} ({} rounds)", rounds.len());
    let base = &per[all.len() - 1];
    let what = match p {
        None => format!(
            "before each call, {TRASH_JUMPS} indirect jumps, each to a random one of {} pads (each pad its own jump site; a random sequence of 65,536 targets walked on from call to call), the same code and sequence for every subject",
            gencode::TRASH_PADS
        ),
        Some(p) => format!(
            "before each call of the one site (target always add1), {p} other indirect jumps (each its own site; each one's target changes from call to call in its own pattern of period {}), the same code and tables for every subject",
            gencode::POLLUTER_PHASES
        ),
    };
    let noise_alone = median(base);
    let direct_diff = per_round(&per[direct], base, |a, b| a - b);
    let mut rng = Rng::new(settings.2 ^ 0x5eed);
    for (k, s) in subs.iter().enumerate() {
        let diff = per_round(&per[k], base, |a, b| a - b);
        let ratio = (k != direct).then(|| per_round(&diff, &direct_diff, |a, b| a / b));
        let totals = median(&per_round(&per[k], &per[direct], |a, b| a / b));
        let note = format!(
            "derived by subtraction: each call timed alone, between two reads of the time-stamp counter each after an `lfence` (the call's latency with the pipeline drained before it), less the same window around `lea rax, [rdi + 1]` instead of the call (the baseline loop, measured in the same round); {what}, outside the timed window; the baseline window costs {noise_alone:.2} ns, the subject's {:.2} ns (medians of the rounds); ratio: median of the per-round ratios of the differences to direct's, bootstrap 95% interval (the windows' ratio to direct's window: {totals:.4}x); median of {} interleaved rounds (shuffled order), a round's value the minimum of {BATCHES_PER_ROUND} batches of {units} iterations (the counter at {per_ns:.3} ticks/ns); {}",
            median(&per[k]),
            diff.len(),
            subjects_note()
        );
        out.figures
            .push(figure(id, s.name, diff, ratio, note, 1, &mut rng));
    }
    out.rounds.extend(rounds);
    Ok(())
}
