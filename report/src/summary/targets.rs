//! The project's targets, each judged on a bundle: met, missed,
//! inconclusive, not measured or not applicable.

use std::fmt::Write as _;

use static_call_bundle::{BenchBundle, Per, control, scenario, stats};

use super::{BIG, HOT1};
use crate::fmt;
use crate::model::{Measure, Subject};

/// A target's verdict.
#[derive(Debug, Clone, PartialEq)]
pub enum Verdict {
    /// Met (the whole interval meets it), with what was measured.
    Met(String),
    /// Missed (the whole interval misses it), with what was measured.
    Missed(String),
    /// The interval straddles the target: this run cannot tell.
    Inconclusive(String),
    /// Not measured, and why.
    Unknown(String),
    /// The target does not apply to this implementation, and why.
    NotApplicable(String),
}

/// The verdict of "at most `limit`" on an interval: met when its upper
/// end meets the target, missed when its lower end misses it, otherwise
/// inconclusive.
fn on_interval(low: f64, high: f64, limit: f64, text: String) -> Verdict {
    if high <= limit {
        Verdict::Met(text)
    } else if low > limit {
        Verdict::Missed(text)
    } else {
        Verdict::Inconclusive(text)
    }
}

/// One of the project's targets, for one implementation.
#[derive(Debug, Clone, Copy)]
pub struct Target {
    /// Element id suffix.
    pub id: &'static str,
    /// What is promised.
    pub text: &'static str,
    /// Which implementations it is asked of (`None`: each of them).
    pub subject: Option<&'static str>,
    /// Asked only of implementations whose updates write code (the
    /// engine's threads, batches and synchronisations); one that stores a
    /// pointer gets "not applicable" where the bundle says so.
    pub engine_only: bool,
    eval: fn(&BenchBundle, &str) -> Verdict,
}

fn verdict(ok: bool, text: String) -> Verdict {
    if ok {
        Verdict::Met(text)
    } else {
        Verdict::Missed(text)
    }
}

fn instr_vs_direct(b: &BenchBundle, s: &str, extra: f64) -> Verdict {
    let m = Measure::call_instr(HOT1);
    let (Some(f), Some(d)) = (m.get(b, s, None), m.get(b, control::DIRECT, None)) else {
        let who = if m.get(b, s, None).is_none() {
            s
        } else {
            control::DIRECT
        };
        return Verdict::Unknown(m.why(b, Some(who)));
    };
    let text = format!(
        "{} vs direct {} ({}, {})",
        fmt::count(f.value),
        fmt::count(d.value),
        fmt::delta(f.value - d.value),
        fmt::ratio(f.value / d.value)
    );
    verdict((f.value - d.value - extra).abs() < 0.005, text)
}

fn wall_ratio(b: &BenchBundle, s: &str) -> Verdict {
    let m = Measure::call_wall(HOT1);
    let (Some(f), Some(d)) = (m.get(b, s, None), m.get(b, control::DIRECT, None)) else {
        let who = if m.get(b, s, None).is_none() {
            s
        } else {
            control::DIRECT
        };
        return Verdict::Unknown(m.why(b, Some(who)));
    };
    let Some(r) = &f.ratio else {
        return Verdict::Unknown(format!(
            "no per-round ratio in this bundle (schema {}): a point estimate ({}) cannot be judged",
            b.version,
            fmt::ratio(f.value / d.value)
        ));
    };
    // The noise floor: how far the A/A control's interval reaches from 1.
    // A difference of code placement between two copies of the same loop
    // is stable within a build, so the rounds cannot average it out; the
    // interval judged is widened by it.
    let floor = m
        .get(b, control::DIRECT_AA, None)
        .and_then(|a| a.ratio.as_ref())
        .map(|a| {
            (a.interval.low - 1.0)
                .abs()
                .max((a.interval.high - 1.0).abs())
        });
    let w = floor.unwrap_or(0.0);
    on_interval(
        r.interval.low - w,
        r.interval.high + w,
        1.03,
        format!(
            "{} [{} – {}] (median of {} per-round ratios; {} vs {}){}",
            fmt::ratio(r.value),
            fmt::bare_ratio(r.interval.low),
            fmt::bare_ratio(r.interval.high),
            r.raw.len(),
            fmt::time_ns(f.value),
            fmt::time_ns(d.value),
            match floor {
                Some(w) => format!(
                    "; judged on [{} – {}], widened by the A/A noise floor ±{}",
                    fmt::bare_ratio(r.interval.low - w),
                    fmt::bare_ratio(r.interval.high + w),
                    fmt::bare_ratio(w)
                ),
                None => "; no A/A control in this bundle".to_owned(),
            }
        ),
    )
}

fn at_most(b: &BenchBundle, s: &str, m: Measure, sites: u64, limit_ns: f64) -> Verdict {
    match m.get(b, s, Some(sites)) {
        Some(f) => match (f.statistic, f.interval) {
            (Some(st), Some(iv)) => on_interval(
                iv.low,
                iv.high,
                limit_ns,
                format!(
                    "{} {} [{} – {}]",
                    st.name(),
                    fmt::time_ns(f.value),
                    fmt::time_ns(iv.low),
                    fmt::time_ns(iv.high)
                ),
            ),
            _ => verdict(
                f.value <= limit_ns,
                format!("{} (criterion's mean)", fmt::time_ns(f.value)),
            ),
        },
        None => {
            let mut why = m.why(b, Some(s));
            if let Some(l) = m.largest(b, s).and_then(|f| f.sites) {
                let _ = write!(why, " (largest measured: {} sites)", fmt::thousands(l));
            }
            Verdict::Unknown(why)
        }
    }
}

/// An update among foreign sites and what it is compared with.
#[derive(Debug, Clone, Copy)]
pub struct Foreign<'a> {
    /// The update with the foreign sites present.
    pub with: &'a static_call_bundle::Figure,
    /// The same update alone.
    pub alone: &'a static_call_bundle::Figure,
    /// What "alone" is.
    pub alone_is: &'static str,
}

impl Foreign<'_> {
    /// `with / alone`.
    pub fn ratio(&self) -> f64 {
        self.with.value / self.alone.value
    }
}

/// Finds the update among foreign sites and its baseline. A bundle may
/// give the scenario at two foreign-site counts (`sites` 0 and 100,000:
/// the baseline is the one with none), or once (then the baseline is
/// update/idle with 1 site).
///
/// # Errors
/// Why a figure is missing.
pub fn foreign_pair<'a>(b: &'a BenchBundle, s: &str) -> Result<Foreign<'a>, String> {
    let f = Measure::wall(scenario::UPDATE_FOREIGN, Per::Update);
    let figs = f.all(b, s);
    let Some(with) = figs.last().copied() else {
        return Err(f.why(b, Some(s)));
    };
    let zero = figs.iter().copied().find(|x| x.sites == Some(0));
    let (alone, alone_is) = match zero {
        Some(z) if with.sites.is_some_and(|n| n > 0) => (z, "the same key with no foreign site"),
        _ => {
            let a = Measure::wall(scenario::UPDATE_IDLE, Per::Update);
            let y = a.get(b, s, Some(1)).ok_or_else(|| a.why(b, Some(s)))?;
            (y, "update/idle, 1 site")
        }
    };
    if alone.value > 0.0 {
        Ok(Foreign {
            with,
            alone,
            alone_is,
        })
    } else {
        Err("the figure alone is zero".into())
    }
}

/// A bootstrap 95% interval of `median(a) / median(b)`, resampling each
/// sample on its own (the bundle crate's
/// [`bootstrap_ratio_of_medians`](static_call_bundle::stats::bootstrap_ratio_of_medians),
/// the benchmarks' own, on a fixed seed: the page is reproducible).
pub fn ratio_of_medians_interval(a: &[f64], b: &[f64]) -> Option<(f64, f64)> {
    let mut rng = stats::Rng::new(stats::REPORT_SEED);
    stats::bootstrap_ratio_of_medians(a, b, &mut rng).map(|i| (i.low, i.high))
}

fn foreign(b: &BenchBundle, s: &str) -> Verdict {
    match foreign_pair(b, s) {
        Ok(p) if !p.with.raw.is_empty() && !p.alone.raw.is_empty() => {
            let (lo, hi) =
                ratio_of_medians_interval(&p.with.raw, &p.alone.raw).expect("both have samples");
            on_interval(
                lo,
                hi,
                1.2,
                format!(
                    "{} [{} – {}] (medians {} vs {} for {}; bootstrap 95% interval)",
                    fmt::ratio(p.ratio()),
                    fmt::bare_ratio(lo),
                    fmt::bare_ratio(hi),
                    fmt::time_ns(p.with.value),
                    fmt::time_ns(p.alone.value),
                    p.alone_is
                ),
            )
        }
        Ok(p) => verdict(
            p.ratio() <= 1.2,
            format!(
                "{} ({} vs {} for {})",
                fmt::ratio(p.ratio()),
                fmt::time_ns(p.with.value),
                fmt::time_ns(p.alone.value),
                p.alone_is
            ),
        ),
        Err(why) => Verdict::Unknown(why),
    }
}

/// A thread-axis figure: its samples' median ratio to another's (the
/// idle 1-key update), judged on a bootstrap interval: "at most `limit`".
fn thread_ratio(
    b: &BenchBundle,
    s: &str,
    (sc, param, what): (&'static str, u64, &str),
    limit: f64,
) -> Verdict {
    let (m, base) = (
        crate::threads::measure(sc),
        crate::threads::measure(scenario::UPDATE_THREADS),
    );
    let Some(f) = m.get(b, s, Some(param)) else {
        return Verdict::Unknown(m.why(b, Some(s)));
    };
    let Some(z) = base.get(b, s, Some(0)) else {
        return Verdict::Unknown(base.why(b, Some(s)));
    };
    match ratio_of_medians_interval(&f.raw, &z.raw) {
        Some((lo, hi)) => on_interval(
            lo,
            hi,
            limit,
            format!(
                "{} [{} – {}] (medians {} {what} vs {} with no other thread; bootstrap 95% interval)",
                fmt::ratio(f.value / z.value),
                fmt::bare_ratio(lo),
                fmt::bare_ratio(hi),
                fmt::time_ns(f.value),
                fmt::time_ns(z.value)
            ),
        ),
        None => Verdict::Unknown(
            "no samples in the figures: a ratio of two points is not judged".into(),
        ),
    }
}

/// The project's targets, in display order.
pub const TARGETS: &[Target] = &[
    Target {
        id: "instr-inline",
        text: "instructions per call = direct exactly (ratio 1.000), call/hot-1arg",
        subject: Some("inline-patch"),
        engine_only: false,
        eval: |b, s| instr_vs_direct(b, s, 0.0),
    },
    Target {
        id: "instr-tramp",
        text: "instructions per call = direct + 1 (the trampoline's jmp), call/hot-1arg",
        subject: Some("trampoline"),
        engine_only: false,
        eval: |b, s| instr_vs_direct(b, s, 1.0),
    },
    Target {
        id: "wall-inline",
        text: "wall time per call ≤ 1.03 × direct, call/hot-1arg",
        subject: Some("inline-patch"),
        engine_only: false,
        eval: wall_ratio,
    },
    Target {
        id: "update-1",
        text: "update of a 1-site key, idle ≤ 10 µs",
        subject: None,
        engine_only: false,
        eval: |b, s| {
            at_most(
                b,
                s,
                Measure::wall(scenario::UPDATE_IDLE, Per::Update),
                1,
                10e3,
            )
        },
    },
    Target {
        id: "update-10k",
        text: "update of a 10,000-site key, idle ≤ 2 ms",
        subject: None,
        engine_only: false,
        eval: |b, s| {
            at_most(
                b,
                s,
                Measure::wall(scenario::UPDATE_IDLE, Per::Update),
                BIG,
                2e6,
            )
        },
    },
    Target {
        id: "foreign",
        text: "1-site update among 100,000 foreign sites ÷ alone ≤ 1.2",
        subject: None,
        engine_only: false,
        eval: foreign,
    },
    Target {
        id: "threads-idle",
        text: "update of a 1-site key, no other thread in the process (update/threads) ≤ 10 µs",
        subject: None,
        engine_only: false,
        eval: |b, s| {
            at_most(
                b,
                s,
                crate::threads::measure(scenario::UPDATE_THREADS),
                0,
                10e3,
            )
        },
    },
    Target {
        id: "threads-parked",
        text: "1-site update with 1,000 parked threads ≤ 2 × with none",
        subject: None,
        engine_only: true,
        eval: |b, s| {
            thread_ratio(
                b,
                s,
                (scenario::UPDATE_THREADS, 1000, "with 1,000 parked"),
                2.0,
            )
        },
    },
    Target {
        id: "threads-busy",
        text: "1-site update with 1 busy caller ≤ 2 × with no other thread",
        subject: None,
        engine_only: true,
        eval: |b, s| {
            thread_ratio(
                b,
                s,
                (scenario::UPDATE_THREADS_BUSY, 1, "with 1 busy caller"),
                2.0,
            )
        },
    },
    Target {
        id: "batch-100",
        text: "batch of 100 keys ≤ 3 × one 1-key update",
        subject: None,
        engine_only: true,
        eval: |b, s| {
            thread_ratio(
                b,
                s,
                (scenario::UPDATE_BATCH_100, 100, "for the batch of 100"),
                3.0,
            )
        },
    },
    Target {
        id: "load-10k",
        text: "module load, 10,000 sites ≤ 5 ms",
        subject: None,
        engine_only: false,
        eval: |b, s| {
            at_most(
                b,
                s,
                Measure::wall(scenario::MODULE_LOAD, Per::Load),
                BIG,
                5e6,
            )
        },
    },
];

/// Every (target, implementation) pair to check.
pub fn target_rows(subjects: &[Subject]) -> Vec<(&'static Target, String)> {
    let mut v = Vec::new();
    for t in TARGETS {
        for s in subjects.iter().filter(|s| s.implementation) {
            if t.subject.is_none_or(|want| want == s.name) {
                v.push((t, s.name.clone()));
            }
        }
    }
    v
}

/// Evaluates one target on one bundle.
pub fn evaluate(t: &Target, b: &BenchBundle, subject: &str) -> Verdict {
    let writes_code = b
        .subjects
        .iter()
        .find(|s| s.name == subject)
        .and_then(|s| s.writes_code);
    if t.engine_only && writes_code == Some(false) {
        return Verdict::NotApplicable(format!(
            "an update of {subject} stores a pointer and writes no code: the engine's costs this target bounds do not arise"
        ));
    }
    (t.eval)(b, subject)
}
