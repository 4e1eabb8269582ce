//! The summary: per implementation, the figures that decide between them,
//! and the project's targets, met or missed.

use std::fmt::Write as _;

use static_call_bundle::{BenchBundle, Outcome, Per, control, scenario, stats};

use crate::fmt::{self, esc};
use crate::input::{Input, Matrix};
use crate::model::{Measure, Subject, color};

/// A summary cell: a value with a line below it, or a reason.
enum Cell {
    Value(String, String),
    /// Counts, build, whether a cell failed.
    Conformance(String, String, bool),
    Reason(String),
}

impl Cell {
    fn html(&self) -> String {
        match self {
            Cell::Value(v, sub) if sub.is_empty() => {
                format!(r#"<td><span class="v">{}</span></td>"#, esc(v))
            }
            Cell::Value(v, sub) => format!(
                r#"<td><span class="v">{}</span><br><small>{}</small></td>"#,
                esc(v),
                esc(sub)
            ),
            Cell::Conformance(v, sub, failed) => format!(
                r#"<td class="conf{}"><span class="v">{}</span><br><small>{}</small></td>"#,
                if *failed { " failed" } else { "" },
                esc(v),
                esc(sub)
            ),
            Cell::Reason(r) => format!(r#"<td class="na"><small>{}</small></td>"#, esc(r)),
        }
    }
}

const HOT1: &str = scenario::CALL_HOT_1;
const BIG: u64 = 10_000;

fn call_wall(b: &BenchBundle, s: &str) -> Cell {
    let m = Measure::call_wall(HOT1);
    match (m.get(b, s, None), m.get(b, control::DIRECT, None)) {
        (Some(f), Some(d)) if f.ratio.is_some() => {
            let r = f.ratio.as_ref().expect("checked");
            Cell::Value(
                format!(
                    "{} [{} – {}]",
                    fmt::ratio(r.value),
                    fmt::bare_ratio(r.interval.low),
                    fmt::bare_ratio(r.interval.high)
                ),
                format!(
                    "median of {} per-round ratios; {} vs {} (medians)",
                    r.raw.len(),
                    fmt::time_ns(f.value),
                    fmt::time_ns(d.value)
                ),
            )
        }
        (Some(f), Some(d)) if d.value > 0.0 => Cell::Value(
            fmt::ratio(f.value / d.value),
            format!("{} vs {}", fmt::time_ns(f.value), fmt::time_ns(d.value)),
        ),
        (None, _) => Cell::Reason(m.why(b, Some(s))),
        _ => Cell::Reason(format!("direct: {}", m.why(b, Some(control::DIRECT)))),
    }
}

fn call_instr(b: &BenchBundle, s: &str) -> Cell {
    let m = Measure::call_instr(HOT1);
    match (m.get(b, s, None), m.get(b, control::DIRECT, None)) {
        (Some(f), Some(d)) if d.value > 0.0 => Cell::Value(
            format!(
                "{} ({})",
                fmt::count(f.value),
                fmt::delta(f.value - d.value)
            ),
            format!(
                "{} of direct's {}",
                fmt::ratio(f.value / d.value),
                fmt::count(d.value)
            ),
        ),
        (None, _) => Cell::Reason(m.why(b, Some(s))),
        _ => Cell::Reason(format!("direct: {}", m.why(b, Some(control::DIRECT)))),
    }
}

/// A caller's p99.99 per call while the key is updated 1,000 times a
/// second and its p99 while it is updated flat out (`callers/…`, from the
/// figures' histograms).
fn callers_tail(b: &BenchBundle, s: &str) -> Cell {
    let m = crate::threads::callers_measure;
    let q = |sc, p: f64| {
        m(sc)
            .get(b, s, Some(1))
            .and_then(|f| f.histogram.as_ref())
            .map(|h| h.quantile(p))
    };
    match (
        q(scenario::CALLERS_1KHZ, 0.9999),
        q(scenario::CALLERS_FLAT_OUT, 0.99),
    ) {
        (Some(a), Some(z)) => Cell::Value(
            format!("{} · {}", fmt::time_ns(a), fmt::time_ns(z)),
            "p99.99 at 1,000 updates/s · p99 flat out".to_owned(),
        ),
        _ => Cell::Reason(m(scenario::CALLERS_1KHZ).why(b, Some(s))),
    }
}

fn at_sites(b: &BenchBundle, m: Measure, s: &str, sites: Option<u64>) -> Cell {
    let f = match sites {
        Some(n) => m.get(b, s, Some(n)),
        None => m.largest(b, s),
    };
    match f {
        Some(f) => Cell::Value(
            fmt::value(f.metric, f.value),
            f.sites
                .map(|n| {
                    format!(
                        "{} site{}",
                        fmt::thousands(n),
                        if n == 1 { "" } else { "s" }
                    )
                })
                .unwrap_or_default(),
        ),
        None => Cell::Reason(m.why(b, Some(s))),
    }
}

fn memory(b: &BenchBundle, m: Measure, s: &str) -> Cell {
    match (m.largest(b, s), m.get(b, s, Some(1))) {
        (Some(f), one) => Cell::Value(
            fmt::count(f.value),
            match (f.sites, one) {
                (Some(n), Some(o)) if n != 1 => {
                    format!(
                        "{} sites; {} at 1 site",
                        fmt::thousands(n),
                        fmt::count(o.value)
                    )
                }
                (Some(n), _) => format!(
                    "{} site{}",
                    fmt::thousands(n),
                    if n == 1 { "" } else { "s" }
                ),
                (None, _) => String::new(),
            },
        ),
        (None, _) => Cell::Reason(m.why(b, Some(s))),
    }
}

fn conformance(input: &Input, s: &str) -> Cell {
    match &input.conformance {
        Matrix::Absent { reason } => Cell::Reason(reason.clone()),
        Matrix::Present { matrix, .. } => {
            let cells: Vec<_> = matrix
                .cells
                .iter()
                .filter(|c| c.implementation == s)
                .collect();
            if cells.is_empty() {
                return Cell::Reason("not in the conformance matrix".into());
            }
            let n = |o: Outcome| cells.iter().filter(|c| c.outcome == o).count();
            Cell::Conformance(
                format!(
                    "{} pass / {} fail / {} skip",
                    n(Outcome::Pass),
                    n(Outcome::Fail),
                    n(Outcome::Skip)
                ),
                format!("{} build", matrix.profile),
                n(Outcome::Fail) > 0,
            )
        }
    }
}

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

fn verdict_cell(v: &Verdict) -> String {
    match v {
        Verdict::Met(t) => format!(
            r#"<td class="met"><span class="badge met">met</span> {}</td>"#,
            esc(t)
        ),
        Verdict::Missed(t) => format!(
            r#"<td class="missed"><span class="badge missed">missed</span> {}</td>"#,
            esc(t)
        ),
        Verdict::Inconclusive(t) => format!(
            r#"<td class="inconclusive"><span class="badge inconclusive">inconclusive</span> {}</td>"#,
            esc(t)
        ),
        Verdict::Unknown(r) => format!(
            r#"<td class="na"><span class="badge unknown">not measured</span> <small>{}</small></td>"#,
            esc(r)
        ),
        Verdict::NotApplicable(r) => format!(
            r#"<td class="na"><span class="badge unknown">not applicable</span> <small>{}</small></td>"#,
            esc(r)
        ),
    }
}

/// The summary section.
pub fn section(inputs: &[Input], subjects: &[Subject]) -> String {
    let mut s = String::new();
    s.push_str(r#"<section id="summary"><h2>Summary</h2>"#);
    s.push_str(
        r#"<p class="lead">The trade-off: <b>inline-patch</b> rewrites every call site to call its target directly, so a call costs what a direct call costs and an update pays per site; <b>trampoline</b> calls a per-key trampoline that jumps on, one <code>jmp</code> more per call and one <code>jmp</code> rewritten per update; <b>indirect</b> loads a pointer and calls a retpoline thunk, so an update is one store and every call pays the thunk; <b>plain-indirect</b> loads the pointer and calls through it with no retpoline (the call an Enhanced-IBRS kernel makes), an update is one store and a call costs what the machine's indirect branch costs.</p>"#,
    );
    let imps: Vec<&Subject> = subjects.iter().filter(|s| s.implementation).collect();
    let rows = target_rows(subjects);
    for (k, input) in inputs.iter().enumerate() {
        let b = &input.bench;
        let (mut met, mut missed, mut open, mut unknown, mut na) = (0, 0, 0, 0, 0);
        for (t, sub) in &rows {
            match evaluate(t, b, sub) {
                Verdict::Met(_) => met += 1,
                Verdict::Missed(_) => missed += 1,
                Verdict::Inconclusive(_) => open += 1,
                Verdict::Unknown(_) => unknown += 1,
                Verdict::NotApplicable(_) => na += 1,
            }
        }
        let _ = write!(
            s,
            r#"<h3 id="summary-{k}">{}<small class="when"> · {} · {} run</small></h3>"#,
            esc(&input.label),
            esc(&fmt::date(&b.machine.date)),
            match b.run.mode {
                static_call_bundle::Mode::Quick => "quick",
                static_call_bundle::Mode::Full => "full",
            }
        );
        let _ = write!(
            s,
            r##"<p class="tally">Targets: <span class="badge met">{met} met</span> <span class="badge missed">{missed} missed</span> <span class="badge inconclusive">{open} inconclusive</span> <span class="badge unknown">{unknown} not measured</span>{} <a href="#targets">(details)</a></p>"##,
            if na > 0 {
                format!(r#" <span class="badge unknown">{na} not applicable</span>"#)
            } else {
                String::new()
            }
        );
        let upd = Measure::wall(scenario::UPDATE_IDLE, Per::Update);
        let load = Measure::wall(scenario::MODULE_LOAD, Per::Load);
        // Measured heap (version 2), else the registry's own count.
        let mem_of = |inst| {
            Measure::new(
                scenario::MEMORY,
                static_call_bundle::Metric::RegistryBytes,
                Per::Site,
                inst,
            )
        };
        let measured = mem_of(static_call_bundle::Instrument::Memory);
        let heap_measured = b.figures.iter().any(|f| measured.holds(f));
        let mem = if heap_measured {
            measured
        } else {
            mem_of(static_call_bundle::Instrument::Registry)
        };
        s.push_str(r#"<table class="summary"><thead><tr><th>implementation</th><th>call: wall time<br><small>÷ direct · call/hot-1arg</small></th><th>call: instructions<br><small>vs direct · call/hot-1arg</small></th><th>update, 1 site<br><small>idle</small></th><th>update, most sites<br><small>idle</small></th><th>module load<br><small>most sites</small></th><th>a caller's tail during updates<br><small>p99.99 at 1 kHz · p99 flat out</small></th><th>registry memory<br><small>heap bytes per site, most sites</small></th><th>conformance</th></tr></thead><tbody>"#);
        for imp in &imps {
            let n = imp.name.as_str();
            let _ = write!(
                s,
                r#"<tr><th><span class="key" style="background:{}"></span>{}<div class="desc">{}</div></th>"#,
                color(n),
                esc(n),
                fmt::esc_code(&imp.description)
            );
            for c in [
                call_wall(b, n),
                call_instr(b, n),
                at_sites(b, upd, n, Some(1)),
                at_sites(b, upd, n, None),
                at_sites(b, load, n, None),
                callers_tail(b, n),
                match memory(b, mem, n) {
                    Cell::Value(v, sub) if !heap_measured => {
                        Cell::Value(v, format!("{sub}; the registry's own count (version 1)"))
                    }
                    c => c,
                },
                conformance(input, n),
            ] {
                s.push_str(&c.html());
            }
            s.push_str("</tr>");
        }
        s.push_str("</tbody></table>");
        let w = Measure::call_wall(HOT1).get(b, control::DIRECT, None);
        let i = Measure::call_instr(HOT1).get(b, control::DIRECT, None);
        let mut refs = Vec::new();
        if let Some(w) = w {
            refs.push(fmt::time_ns(w.value));
        }
        if let Some(i) = i {
            refs.push(format!("{} instructions", fmt::count(i.value)));
        }
        if !refs.is_empty() {
            let _ = write!(
                s,
                r#"<p class="note">The direct call (the reference): {} per call, call/hot-1arg.</p>"#,
                esc(&refs.join(", "))
            );
        }
        s.push_str(&machine_indirect(b, &imps));
        s.push_str(&noise_floor(b));
    }
    // Targets, machine by machine.
    s.push_str(r#"<h3 id="targets">Targets</h3><table class="targets"><thead><tr><th>target</th><th>implementation</th>"#);
    for input in inputs {
        let _ = write!(s, "<th>{}</th>", esc(&input.label));
    }
    s.push_str("</tr></thead><tbody>");
    for (t, sub) in &rows {
        let _ = write!(
            s,
            r#"<tr id="target-{}-{}"><td>{}</td><td><span class="key" style="background:{}"></span>{}</td>"#,
            t.id,
            esc(sub),
            esc(t.text),
            color(sub),
            esc(sub)
        );
        for input in inputs {
            s.push_str(&verdict_cell(&evaluate(t, &input.bench, sub)));
        }
        s.push_str("</tr>");
    }
    s.push_str("</tbody></table>");
    s.push_str(r#"<p class="note">A wall-time verdict is judged on the 95% interval, never on a point estimate: <b>met</b> when the whole interval meets the target, <b>missed</b> when the whole interval misses it, <b>inconclusive</b> when the interval straddles it. A call-cost ratio's interval is first widened by the run's noise floor (how far the A/A control's interval reaches from 1: two copies of one loop can differ by code placement, which no number of rounds averages out). Inconclusive means this run cannot tell the difference from noise: compare it with the A/A noise floor, and rerun with more rounds (<code>STATIC_CALL_BENCH_ROUNDS</code>) or on a quieter machine before reading anything into it. Instruction counts are exact and compared as they are; a version 1 bundle's latencies (criterion's mean, no per-update samples) are compared as point estimates and say so.</p>"#);
    s.push_str("</section>");
    s
}

/// The run's noise floor: the A/A control's ratio to the direct call, per
/// call scenario, with its interval.
pub fn noise_floor(b: &BenchBundle) -> String {
    let mut parts = Vec::new();
    for (sc, _) in scenario::ALL {
        let m = Measure::call_wall(sc);
        if let Some(r) = m
            .get(b, control::DIRECT_AA, None)
            .and_then(|f| f.ratio.as_ref())
        {
            parts.push(format!(
                "{sc} {} [{} – {}]",
                fmt::ratio(r.value),
                fmt::bare_ratio(r.interval.low),
                fmt::bare_ratio(r.interval.high)
            ));
        }
    }
    if parts.is_empty() {
        return r#"<p class="note noise">Noise floor: not measured in this bundle (no A/A control: a version 1 bundle).</p>"#.to_owned();
    }
    format!(
        r#"<p class="note noise"><b>Noise floor</b> (A/A: each scenario's reference loop compiled twice, the direct call's or for cond-none the <code>Option&lt;fn&gt;</code> one's, measured in the same rounds; its ratio would be 1.000× with no noise): {}. A ratio whose interval overlaps this spread around 1 is not a difference this run can show.</p>"#,
        esc(&parts.join("; "))
    )
}

/// The indirect call this machine's kernel uses for its own indirect calls,
/// from its `spectre_v2` line: the generic retpoline (`indirect`), the
/// lfence one, or a plain indirect call (Enhanced IBRS and the rest: the
/// implementation `plain-indirect`, `mov rax, [key]; call rax`).
pub fn kernel_indirect(spectre_v2: &str) -> &'static str {
    let l = spectre_v2.to_ascii_lowercase();
    if l.contains("lfence") {
        control::LFENCE_INDIRECT
    } else if l.contains("retpoline") {
        "indirect"
    } else {
        "plain-indirect"
    }
}

/// Each implementation against the indirect call this machine really uses:
/// the median of the per-round quotients of their ratios to direct.
fn machine_indirect(b: &BenchBundle, imps: &[&Subject]) -> String {
    let m = Measure::call_wall(HOT1);
    let which = kernel_indirect(&b.machine.spectre_v2);
    let Some(ind) = m.get(b, which, None).and_then(|f| f.ratio.as_ref()) else {
        return String::new();
    };
    let mut parts = Vec::new();
    for imp in imps.iter().filter(|i| i.name != which) {
        if let Some(r) = m.get(b, &imp.name, None).and_then(|f| f.ratio.as_ref())
            && r.raw.len() == ind.raw.len()
        {
            let mut q: Vec<f64> = r.raw.iter().zip(&ind.raw).map(|(a, c)| a / c).collect();
            q.sort_by(f64::total_cmp);
            let n = q.len();
            let med = if n % 2 == 1 {
                q[n / 2]
            } else {
                (q[n / 2 - 1] + q[n / 2]) / 2.0
            };
            parts.push(format!("{} {}", imp.name, fmt::ratio(med)));
        }
    }
    format!(
        r#"<p class="note">Against the indirect call this machine's kernel uses — <b>{which}</b>, by its spectre_v2 line “{}” — per call, call/hot-1arg (median of the per-round quotients): {}.</p>"#,
        esc(&b.machine.spectre_v2),
        esc(&parts.join(", "))
    )
}
