//! Wall time: call cost (hot, 6 arguments, 1,024 sites, conditional
//! none; and hot-1arg again on a thread with indirect-branch speculation
//! disabled) in interleaved rounds with an A/A control
//! ([`static_call_bench::rounds`]); update latency against the key's site
//! count (idle and with two threads calling) and a 1-site update among
//! 100,000 foreign sites as single updates timed one by one (median, p99,
//! max, and the first, cold update apart); module load and unload and the
//! test shared object's open and close with criterion (its mean); the
//! thread axis of update latency ([`static_call_bench::threads`]: a 1-site
//! update with other threads parked or calling the key, a batch of 100 keys
//! against 100 updates one by one); a conditional key's switch with 1 to
//! 2,000 sites, `update_cond` against the `static-keys` peer, idle only
//! (`update/cond-sites`). Every site is decoded and checked before
//! anything is measured.
//!
//! Each figure is what this run measured: criterion's estimate files are
//! deleted before each benchmark and read only if it wrote them again, and
//! a filter (`cargo bench -- call-hot-1arg`, `-- plain-indirect/`:
//! [`static_call_bench::subjects::Selection`]) leaves the other figures
//! out of the part, marked "not selected", instead of carrying old ones
//! forward.
//!
//! `STATIC_CALL_BENCH_QUICK=1` for the quick mode.
//!
//! One module per family of scenarios: [`calls`], [`updates`], [`modules`],
//! [`threaded`] (the thread axis and the callers' side of an update),
//! [`peers`]; this file holds what they share (recording criterion's
//! figures, the selection) and runs them in order.

use std::time::Instant;

use criterion::Criterion;
use static_call_bench::parts::{Part, write_and_assemble};
use static_call_bench::prove;
use static_call_bench::subjects::{self, implementations};
use static_call_bundle::{Figure, Instrument, Interval, Metric, Per, Statistic};

mod calls;
mod modules;
mod peers;
mod threaded;
mod updates;

use calls::{calls, cold_calls};
use modules::{modules, shared_objects};
use peers::peers;
use threaded::{callers, thread_axis};
use updates::{foreign, updates};

fn fail(what: &str) -> ! {
    eprintln!("criterion benchmarks: {what}");
    eprintln!(
        "criterion benchmarks: stopping: a benchmark that does not measure what its name says is not run"
    );
    std::process::exit(1);
}

struct Ctx {
    c: Criterion,
    part: Part,
    /// This run's start: criterion's files older than it are not read.
    since: std::time::SystemTime,
}

/// Criterion's output directory of one benchmark.
fn bench_path(dir: &str, fun: &str, param: Option<u64>) -> std::path::PathBuf {
    let mut p = static_call_bench::target_dir()
        .join("criterion")
        .join(dir)
        .join(fun);
    if let Some(n) = param {
        p = p.join(n.to_string());
    }
    p
}

/// Deletes criterion's estimates of one benchmark, so that [`record`]
/// reads only what this run writes.
fn forget(dir: &str, fun: &str, param: Option<u64>) {
    let p = bench_path(dir, fun, param).join("new");
    if let Err(e) = std::fs::remove_dir_all(&p)
        && e.kind() != std::io::ErrorKind::NotFound
    {
        fail(&format!("{}: {e}", p.display()));
    }
}

/// criterion's estimates of one benchmark: the fields of
/// `new/estimates.json` that [`record`] uses. criterion 0.8 has no API
/// that returns results (its `Estimates` and reports are crate-private;
/// `bench_function` returns only `&mut Criterion`), so its files are the
/// interface.
#[derive(Debug, serde::Deserialize)]
struct Estimates {
    mean: Estimate,
}

#[derive(Debug, serde::Deserialize)]
struct Estimate {
    point_estimate: f64,
    confidence_interval: ConfidenceInterval,
}

#[derive(Debug, serde::Deserialize)]
struct ConfidenceInterval {
    confidence_level: f64,
    lower_bound: f64,
    upper_bound: f64,
}

/// The field of `new/sample.json` used: one entry per sample.
#[derive(Debug, serde::Deserialize)]
struct Sample {
    iters: Vec<f64>,
}

/// Why one of criterion's files could not be read.
#[derive(Debug)]
enum EstimatesError {
    /// Not there: not run in this run (filtered out), or no estimate.
    Missing(std::path::PathBuf),
    /// Older than this run's start: another run's, not read.
    Stale(std::path::PathBuf),
    /// Unreadable, or not the JSON modelled (serde's message names the
    /// field, line and column).
    Malformed(std::path::PathBuf, String),
}

impl std::fmt::Display for EstimatesError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Missing(p) => write!(f, "{}: not written", p.display()),
            Self::Stale(p) => write!(f, "{}: older than this run's start, not read", p.display()),
            Self::Malformed(p, e) => write!(f, "{}: {e}", p.display()),
        }
    }
}

/// Reads one of criterion's JSON files into `T`, only if this run wrote
/// it (modified at or after `since`).
fn read_json<T: serde::de::DeserializeOwned>(
    f: &std::path::Path,
    since: std::time::SystemTime,
) -> Result<T, EstimatesError> {
    let modified = match std::fs::metadata(f).and_then(|m| m.modified()) {
        Ok(t) => t,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            return Err(EstimatesError::Missing(f.to_owned()));
        }
        Err(e) => return Err(EstimatesError::Malformed(f.to_owned(), e.to_string())),
    };
    if modified < since {
        return Err(EstimatesError::Stale(f.to_owned()));
    }
    let t = std::fs::read_to_string(f)
        .map_err(|e| EstimatesError::Malformed(f.to_owned(), e.to_string()))?;
    serde_json::from_str(&t).map_err(|e| EstimatesError::Malformed(f.to_owned(), e.to_string()))
}

/// Reads criterion's estimate of the mean for one benchmark, scaled (only
/// if this run wrote it: [`forget`] deleted the old one first, and a file
/// older than the run's start is not read).
fn record(
    ctx: &mut Ctx,
    dir: &str,
    fun: &str,
    param: Option<u64>,
    (scenario, subject, metric, per): (&str, &str, Metric, Per),
    scale: f64,
) {
    let p = bench_path(dir, fun, param);
    let since = ctx.since;
    let read = || -> Result<(Estimates, Sample), EstimatesError> {
        Ok((
            read_json(&p.join("new/estimates.json"), since)?,
            read_json(&p.join("new/sample.json"), since)?,
        ))
    };
    match read() {
        Ok((Estimates { mean }, sample)) => {
            let ci = mean.confidence_interval;
            ctx.part.figures.push(Figure {
                scenario: scenario.into(),
                subject: subject.into(),
                sites: param,
                metric,
                per,
                instrument: Instrument::Criterion,
                value: mean.point_estimate / scale,
                interval: Some(Interval {
                    low: ci.lower_bound / scale,
                    high: ci.upper_bound / scale,
                    level: ci.confidence_level,
                }),
                samples: Some(sample.iters.len() as u64),
                note: Some(
                    "criterion's mean, flat sampling, with its bootstrap 95% interval".into(),
                ),
                statistic: Some(Statistic::Mean),
                raw: Vec::new(),
                first: None,
                ratio: None,
                histogram: None,
            });
        }
        Err(e) => ctx.part.missing(
            scenario,
            Some(subject),
            metric,
            format!("not measured in this run (filtered out, or criterion wrote no estimate): {e}"),
        ),
    }
}

fn dir_name(scenario: &str) -> String {
    scenario.replace('/', "-")
}

/// The filter given on the command line (`cargo bench -- <filter>`):
/// [`subjects::Selection`] (subject names match whole, scenarios by
/// substring). criterion's own filter is switched off: this binary decides
/// what runs, and marks what it leaves out "not selected".
fn selection() -> subjects::Selection {
    subjects::Selection::current()
}

/// Marks what the selection leaves out of `scenario` among `subjects`.
fn left_out<'a>(
    ctx: &mut Ctx,
    scenario: &str,
    subjects: impl IntoIterator<Item = &'a str>,
    instrument: Instrument,
) {
    ctx.part
        .missing
        .extend(selection().left_out(scenario, subjects, Metric::WallTime, instrument));
}

fn implementation_names() -> Vec<&'static str> {
    implementations().map(|(s, _)| s.name).collect()
}

fn seed() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(1, |d| d.as_nanos() as u64)
}

fn main() {
    let start = Instant::now();
    let mut part = Part::new(Instrument::Criterion);
    for (s, imp) in implementations() {
        (imp.init)().unwrap_or_else(|e| fail(&format!("{}: init: {e}", s.name)));
    }
    subjects::check_cond_loops_can_call().unwrap_or_else(|e| fail(&e));
    part.sites = prove::prove_all().unwrap_or_else(|e| fail(&e));
    for (s, imp) in implementations() {
        part.sites
            .extend(prove::dump_update(s, imp).unwrap_or_else(|e| fail(&e)));
    }
    eprintln!(
        "criterion benchmarks: {} sites and loops decoded and checked",
        part.sites.len()
    );
    let c = Criterion::default()
        .output_directory(&static_call_bench::target_dir().join("criterion"))
        .configure_from_args()
        .with_benchmark_filter(criterion::BenchmarkFilter::AcceptAll);
    // A second's slack for the file system's coarse clock; `forget` has
    // deleted the old files anyway.
    let since = std::time::SystemTime::now() - std::time::Duration::from_secs(1);
    let mut ctx = Ctx { c, part, since };
    calls(&mut ctx);
    cold_calls(&mut ctx);
    updates(&mut ctx);
    foreign(&mut ctx);
    modules(&mut ctx);
    shared_objects(&mut ctx);
    thread_axis(&mut ctx);
    callers(&mut ctx);
    peers(&mut ctx);
    ctx.c.final_summary();
    if !selection().is_all() {
        eprintln!(
            "criterion benchmarks: filter `{}`: {} figures marked not selected",
            selection().filters(),
            ctx.part
                .missing
                .iter()
                .filter(|m| m.reason.starts_with("not selected"))
                .count()
        );
    }
    ctx.part.seconds = start.elapsed().as_secs_f64();
    match write_and_assemble(&ctx.part) {
        Ok(p) => eprintln!(
            "criterion benchmarks: {:.1} s; bundle {}",
            ctx.part.seconds,
            p.display()
        ),
        Err(e) => fail(&e),
    }
}
