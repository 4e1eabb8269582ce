//! The call-cost measurement: interleaved rounds, per-round ratios, a
//! bootstrap interval, and the A/A noise floor.
//!
//! Why not criterion here: criterion measures one benchmark as one
//! contiguous block, so a subject measured while the machine was slow (a
//! neighbour's build, a frequency step) carries that into its figure, and
//! its interval only covers the spread inside the block. Here every round
//! measures every subject of a scenario once, in a freshly shuffled order,
//! and a subject's ratio to the direct call is taken *within* each round;
//! the figure is the median of those per-round ratios with a bootstrap 95%
//! interval (rounds resampled). The A/A control (a second, separately
//! compiled copy of the direct loop) is one of the subjects, so its ratio
//! and interval are the noise floor of the same run. A small hand-written
//! runner is enough for this; criterion has no notion of rounds.
//!
//! Each round records the CPUs its measurements ran on (`sched_getcpu`)
//! and the steal time `/proc/stat` reports over it.

use std::time::Instant;

use static_call_bundle::{Figure, Instrument, Metric, Per, Ratio, Round, Statistic};

use crate::subjects::{self, CallScenario, LoopFn, SUBJECTS};

pub use static_call_bundle::stats::{
    RESAMPLES, Rng, bootstrap_median, bootstrap_median_clustered, bootstrap_ratio_of_medians,
    median, quantile,
};

/// Batches per subject and round; the round's value is their minimum. On a
/// shared machine a batch is sometimes preempted or slowed by a neighbour;
/// the minimum of a few short batches is the subject's cost in that round
/// with such interruptions filtered out, the same way for every subject.
pub const BATCHES_PER_ROUND: u32 = 3;

/// The CPU this thread runs on now.
pub fn cpu() -> i32 {
    // SAFETY: no arguments; returns -1 on error.
    unsafe { libc::sched_getcpu() }
}

/// Total steal time in clock ticks (the `cpu` line of `/proc/stat`), if
/// readable.
pub fn steal_ticks() -> Option<u64> {
    let s = std::fs::read_to_string("/proc/stat").ok()?;
    let line = s.lines().find(|l| l.starts_with("cpu "))?;
    line.split_whitespace().nth(8)?.parse().ok()
}

/// One measured batch: per-call nanoseconds.
fn batch(sc: &CallScenario, name: &str, f: fn(u64) -> u64, units: u64) -> f64 {
    let t = Instant::now();
    subjects::run_checked(sc, name, f, units);
    t.elapsed().as_nanos() as f64 / (units * sc.calls_per_unit) as f64
}

/// The result of one scenario's rounds.
#[derive(Debug, Default)]
pub struct Measured {
    /// One figure per subject (value: median per-call ns).
    pub figures: Vec<Figure>,
    /// The rounds.
    pub rounds: Vec<Round>,
}

/// Units per batch such that [`BATCHES_PER_ROUND`] batches of the
/// reference take about `batch_ns` together: `run(units)` is timed from
/// `start` units up, four times more each try, until one run takes at
/// least a quarter of `batch_ns`, then scaled to the target.
///
/// # Errors
/// The first error of `run`.
pub(crate) fn calibrate<E>(
    batch_ns: u64,
    start: u64,
    mut run: impl FnMut(u64) -> Result<(), E>,
) -> Result<u64, E> {
    let mut units = start;
    loop {
        let t = Instant::now();
        run(units)?;
        let ns = t.elapsed().as_nanos() as u64;
        if ns >= batch_ns / 4 || units > 1 << 40 {
            return Ok((units as u128 * batch_ns as u128
                / (ns.max(1) as u128 * u128::from(BATCHES_PER_ROUND)))
            .max(1) as u64);
        }
        units *= 4;
    }
}

/// Measures every subject of `sc` in `rounds` interleaved rounds, in a
/// shuffled order each round: [`BATCHES_PER_ROUND`] batches per subject,
/// the round's value their minimum; `units` loop units per batch
/// (calibrated so that the direct call's batches of a round take about
/// `batch_ns` together). `scenario_id`
/// names the figures (the scenario's own id, or a variant's).
pub fn measure(
    sc: &CallScenario,
    scenario_id: &str,
    rounds: u32,
    batch_ns: u64,
    seed: u64,
) -> Measured {
    // Every subject's copies of its loop (one, but for the many-sites
    // scenario): round `r` runs copy `r % copies` of every subject.
    let subs: Vec<(&'static str, Vec<LoopFn>)> = SUBJECTS
        .iter()
        .map(|s| (s.name, (sc.copies)(&s.loops)))
        .filter(|(_, c)| !c.is_empty())
        .collect();
    // Calibrate on the reference: the direct call, or (cond-none) the
    // `Option<fn>` control.
    let reference = subjects::reference(sc);
    let rf = subs
        .iter()
        .find(|(n, _)| *n == reference)
        .map(|(_, f)| f[0])
        .expect("the reference is a subject");
    let units = calibrate(batch_ns, 1_000u64.div_ceil(sc.calls_per_unit), |units| {
        subjects::run_checked(sc, reference, rf, units);
        Ok::<(), std::convert::Infallible>(())
    })
    .unwrap_or_else(|e| match e {});
    // Warm every copy of every loop once.
    for (n, fs) in &subs {
        for f in fs {
            batch(sc, n, *f, units / 4 + 1);
        }
    }
    let mut rng = Rng::new(seed);
    let mut per: Vec<Vec<f64>> = vec![Vec::new(); subs.len()];
    let mut out = Measured::default();
    for r in 0..rounds {
        let mut order: Vec<usize> = (0..subs.len()).collect();
        rng.shuffle(&mut order);
        let steal0 = steal_ticks();
        let mut cpus = Vec::new();
        for &k in &order {
            let (n, ref fs) = subs[k];
            let f = fs[r as usize % fs.len()];
            let c0 = cpu();
            let v = (0..BATCHES_PER_ROUND)
                .map(|_| batch(sc, n, f, units))
                .fold(f64::INFINITY, f64::min);
            let c1 = cpu();
            for c in [c0, c1] {
                if !cpus.contains(&c) {
                    cpus.push(c);
                }
            }
            per[k].push(v);
        }
        let steal = match (steal0, steal_ticks()) {
            (Some(a), Some(b)) => Some(b.saturating_sub(a)),
            _ => None,
        };
        out.rounds.push(Round {
            scenario: scenario_id.into(),
            index: r,
            order: order.iter().map(|&k| subs[k].0.to_owned()).collect(),
            cpus,
            steal_ticks: steal,
        });
    }
    let ri = subs
        .iter()
        .position(|(n, _)| *n == reference)
        .expect("present");
    for (k, (name, fs)) in subs.iter().enumerate() {
        let values = per[k].clone();
        // Code placement matters at this scale (two copies of one loop can
        // differ by a cycle per call): say where the loop functions start.
        let at = |f: &LoopFn| (*f as usize % 64, *f as usize % 4096);
        let placement = if fs.len() == 1 {
            let (line, page) = at(&fs[0]);
            format!(
                "the loop function starts at byte {line} of a 64-byte line and byte {page} of its page"
            )
        } else {
            format!(
                "{} copies of the loop, taken in turn round by round, start at (byte of a 64-byte line, byte of the page) {}",
                fs.len(),
                fs.iter()
                    .map(|f| format!("{:?}", at(f)))
                    .collect::<Vec<_>>()
                    .join(", ")
            )
        };
        let ratio = (k != ri).then(|| {
            let raw: Vec<f64> = values.iter().zip(&per[ri]).map(|(a, b)| a / b).collect();
            Ratio {
                reference: reference.to_owned(),
                value: median(&raw),
                interval: bootstrap_median_clustered(&raw, fs.len(), &mut rng),
                raw,
            }
        });
        out.figures.push(Figure {
            scenario: scenario_id.into(),
            subject: (*name).into(),
            sites: None,
            metric: Metric::WallTime,
            per: Per::Call,
            instrument: Instrument::Timer,
            value: median(&values),
            interval: Some(bootstrap_median_clustered(&values, fs.len(), &mut rng)),
            samples: Some(values.len() as u64),
            note: Some(format!(
                "median of {} interleaved rounds (shuffled order); a round's value is the minimum of {BATCHES_PER_ROUND} batches of {} calls; ratio: median of the per-round ratios to {reference}, bootstrap 95% interval{}; {placement}",
                values.len(),
                units * sc.calls_per_unit,
                if fs.len() > 1 {
                    " (two-stage: copies of the loop, then rounds within each)"
                } else {
                    ""
                }
            )),
            statistic: Some(Statistic::Median),
            raw: values,
            first: None,
            ratio,
            histogram: None,
        });
    }
    out
}

/// Runs `f` on a new thread that first disables indirect-branch
/// speculation for itself (`prctl(PR_SET_SPECULATION_CTRL,
/// PR_SPEC_INDIRECT_BRANCH, PR_SPEC_FORCE_DISABLE)`); the calling thread
/// is unaffected. Returns `f`'s result and what
/// `PR_GET_SPECULATION_CTRL` says on that thread afterwards.
///
/// # Errors
/// The kernel's refusal, with the current control state, when the prctl
/// fails (`EPERM`: the mitigation mode does not let a task choose; `ENXIO`:
/// the CPU is not affected or has no control).
pub fn with_indirect_speculation_disabled<T: Send + 'static>(
    f: impl FnOnce() -> T + Send + 'static,
) -> Result<(T, String), String> {
    std::thread::spawn(move || {
        // SAFETY: a prctl with integer arguments; affects this thread only.
        let r = unsafe {
            libc::prctl(
                libc::PR_SET_SPECULATION_CTRL,
                libc::PR_SPEC_INDIRECT_BRANCH,
                libc::PR_SPEC_FORCE_DISABLE,
                0,
                0,
            )
        };
        if r != 0 {
            let e = std::io::Error::last_os_error();
            return Err(format!(
                "refused: prctl(PR_SET_SPECULATION_CTRL, PR_SPEC_INDIRECT_BRANCH, PR_SPEC_FORCE_DISABLE): {e}; PR_GET_SPECULATION_CTRL says {}",
                crate::machine::indirect_branch_spec_ctrl()
            ));
        }
        let state = crate::machine::indirect_branch_spec_ctrl();
        Ok((f(), state))
    })
    .join()
    .map_err(|_| "the measuring thread panicked".to_owned())?
}
