//! How the cold, trashed and polluted scenarios are measured: interleaved
//! rounds of batches, the figure made from their per-round values, and the
//! time-stamp counter's rate.

use static_call_bundle::{Figure, Instrument, Metric, Per, Ratio, Round, Statistic, control};

use crate::gencode::GenSubject;
use crate::rounds::{
    BATCHES_PER_ROUND, Rng, bootstrap_median_clustered, calibrate, cpu, median, steal_ticks,
};

/// One subject's batch: runs `units` units, checking the result, and
/// returns the nanoseconds it measured (the whole batch, or the timed
/// windows of a loop).
pub(super) type Batch<'a> = Box<dyn Fn(u64) -> Result<f64, String> + 'a>;

/// Per subject its per-round values, the rounds, and the units per batch.
type Interleaved = (Vec<Vec<f64>>, Vec<Round>, u64);

/// Interleaved rounds over `runners` (name, batch): per subject and round
/// the minimum of [`BATCHES_PER_ROUND`] batches, in measured ns per call;
/// `units` calibrated on `runners[reference]` so that its batches of a
/// round take about `batch_ns` of wall time.
pub(super) fn interleaved(
    id: &str,
    runners: &[(&'static str, Batch<'_>)],
    reference: usize,
    calls_per_unit: u64,
    (rounds, batch_ns, seed): (u32, u64, u64),
) -> Result<Interleaved, String> {
    let time = |f: &Batch<'_>, units: u64| f(units);
    let units = calibrate(batch_ns, 1, |units| {
        time(&runners[reference].1, units).map(drop)
    })?;
    for (_, f) in runners {
        f(units / 4 + 1)?;
    }
    let mut rng = Rng::new(seed);
    let mut per = vec![Vec::new(); runners.len()];
    let mut out = Vec::new();
    for r in 0..rounds {
        let mut order: Vec<usize> = (0..runners.len()).collect();
        rng.shuffle(&mut order);
        let steal0 = steal_ticks();
        let mut cpus = Vec::new();
        for &k in &order {
            let c0 = cpu();
            let mut best = f64::INFINITY;
            for _ in 0..BATCHES_PER_ROUND {
                best = best.min(time(&runners[k].1, units)?);
            }
            for c in [c0, cpu()] {
                if !cpus.contains(&c) {
                    cpus.push(c);
                }
            }
            per[k].push(best / (units * calls_per_unit) as f64);
        }
        out.push(Round {
            scenario: id.into(),
            index: r,
            order: order.iter().map(|&k| runners[k].0.to_owned()).collect(),
            cpus,
            steal_ticks: match (steal0, steal_ticks()) {
                (Some(a), Some(b)) => Some(b.saturating_sub(a)),
                _ => None,
            },
        });
    }
    Ok((per, out, units))
}

/// A per-call figure from per-round values and per-round ratios.
pub(super) fn figure(
    id: &str,
    subject: &str,
    raw: Vec<f64>,
    ratio: Option<Vec<f64>>,
    note: String,
    clusters: usize,
    rng: &mut Rng,
) -> Figure {
    let ratio = ratio.map(|r| Ratio {
        reference: control::DIRECT.into(),
        value: median(&r),
        interval: bootstrap_median_clustered(&r, clusters, rng),
        raw: r,
    });
    Figure {
        scenario: id.into(),
        subject: subject.into(),
        sites: None,
        metric: Metric::WallTime,
        per: Per::Call,
        instrument: Instrument::Timer,
        value: median(&raw),
        interval: Some(bootstrap_median_clustered(&raw, clusters, rng)),
        samples: Some(raw.len() as u64),
        note: Some(note),
        statistic: Some(Statistic::Median),
        raw,
        first: None,
        ratio,
        histogram: None,
    }
}

pub(super) fn per_round(a: &[f64], b: &[f64], f: impl Fn(f64, f64) -> f64) -> Vec<f64> {
    a.iter().zip(b).map(|(x, y)| f(*x, *y)).collect()
}

pub(super) fn position(subs: &[GenSubject], name: &str) -> Result<usize, String> {
    subs.iter()
        .position(|s| s.name == name)
        .ok_or_else(|| format!("no {name} among the generated subjects"))
}

/// Time-stamp counter ticks per nanosecond, measured against the clock
/// over 20 ms.
pub(super) fn ticks_per_ns() -> f64 {
    // SAFETY: `rdtsc` has no preconditions on x86-64.
    let tsc = || unsafe { core::arch::x86_64::_rdtsc() };
    let (t0, c0) = (std::time::Instant::now(), tsc());
    std::thread::sleep(std::time::Duration::from_millis(20));
    let (t1, c1) = (std::time::Instant::now(), tsc());
    c1.wrapping_sub(c0) as f64 / (t1 - t0).as_nanos().max(1) as f64
}
