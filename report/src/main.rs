//! `static-call-report`: runs the benchmarks and the conformance matrix
//! and writes one HTML page comparing the implementations and machines.
//!
//! ```text
//! cargo run --release -p static-call-report                 # fresh run, full
//! cargo run --release -p static-call-report -- --quick      # fresh run, quick
//! cargo run --release -p static-call-report -- --from results/*/bench.json
//! cargo run --release -p static-call-report -- --quick --baseline results/x/bench.json \
//!     --fail-on-regression wall=5%,instructions=0
//! ```
//!
//! Exit status: 0; 1 when a stage failed (the page is still written when
//! there is a benchmark bundle to write it from); 2 for a usage error, a
//! bundle that cannot be read, or a baseline of another machine; 3 when a
//! figure regressed past its `--fail-on-regression` threshold (the page
//! and the text summary are still written; 1 wins over 3).

use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::Instant;

use clap::Parser;
use static_call_bundle::BundleError;
use static_call_report::baseline::{self, Comparison, OtherMachine, Pick, Thresholds};
use static_call_report::input::shown;
use static_call_report::run::{self, Stage};
use static_call_report::{
    ConformanceSource, Input, disambiguate, read_input, render, render_with_baseline,
};

/// Runs the static-call benchmarks and conformance matrix and writes one
/// self-contained HTML page comparing the implementations and machines.
///
/// Without --from: installs the callgrind runner when missing, runs
/// `cargo bench -p static-call-bench`, runs the conformance matrix, and
/// writes the page from what they leave in target/results/. With --from:
/// writes the page from existing bundles only, one column per bundle.
#[derive(Debug, Parser)]
#[command(name = "static-call-report", version)]
struct Args {
    /// Run the benchmarks in quick mode (STATIC_CALL_BENCH_QUICK=1): fewer
    /// samples and sizes.
    #[arg(long, conflicts_with = "from")]
    quick: bool,

    /// Build the page from these benchmark bundles only, without running
    /// anything; several bundles are several machines side by side.
    #[arg(long, value_name = "BENCH_JSON", num_args = 1..)]
    from: Vec<PathBuf>,

    /// With --from: the conformance matrix of the bundle in the same
    /// position (default: conformance.json next to each bench.json, if
    /// there is one).
    #[arg(long, value_name = "FILE", num_args = 1.., requires = "from")]
    conformance: Vec<PathBuf>,

    /// Add these committed bundles as further columns (their
    /// conformance.json next to them, if there is one).
    #[arg(long, value_name = "BENCH_JSON", num_args = 1..)]
    compare: Vec<PathBuf>,

    /// Where to write the page [default: <target>/report/index.html].
    #[arg(long, value_name = "FILE")]
    out: Option<PathBuf>,

    /// Also print the first bundle's summary as Markdown on standard
    /// output: call cost as ratios to the direct call, latencies, targets.
    #[arg(long)]
    markdown: bool,

    /// Compare every figure of the run (with --from: of the first bundle)
    /// with the same figure of this bundle of the same machine: a "Changes
    /// against" section at the top of the page, a text summary on standard
    /// error and in <page>-changes.txt. A bundle of another machine is
    /// refused (exit 2); another mode or commit is allowed and shown.
    #[arg(long, value_name = "BENCH_JSON", conflicts_with = "baseline_among")]
    baseline: Option<PathBuf>,

    /// As --baseline, with the baseline picked among these bundles: the
    /// newest of the same machine and mode; else the newest of the same
    /// machine, compared report-only (no threshold applies); else none
    /// (said, exit 0).
    #[arg(long, value_name = "BENCH_JSON", num_args = 1..)]
    baseline_among: Vec<PathBuf>,

    /// With a baseline: exit with status 3 when a figure regresses past its
    /// metric's threshold, METRIC=PERCENT[,METRIC=PERCENT...] with the
    /// percentage written with % or as 0 (wall=5%,instructions=0). Metrics:
    /// wall, instructions, cycles, branch-misses, task-clock,
    /// context-switches, page-faults, registry-bytes, code-bytes,
    /// private-text-bytes, trap-table-slots, resident-bytes.
    #[arg(long, value_name = "THRESHOLDS", value_parser = parse_thresholds)]
    fail_on_regression: Option<Thresholds>,
}

fn parse_thresholds(s: &str) -> Result<Thresholds, String> {
    s.parse()
        .map_err(|e: baseline::ThresholdError| e.to_string())
}

/// The baseline asked for, read before anything runs.
enum BaselineArg {
    None,
    One(Box<Input>),
    Among(Vec<Input>),
}

fn read_baseline(args: &Args) -> Result<BaselineArg, Failure> {
    if args.fail_on_regression.is_some()
        && args.baseline.is_none()
        && args.baseline_among.is_empty()
    {
        return Err(Failure::Usage(
            "--fail-on-regression needs a baseline: --baseline <BENCH_JSON> or --baseline-among <BENCH_JSON>...".into(),
        ));
    }
    if let Some(p) = &args.baseline {
        return Ok(BaselineArg::One(Box::new(read_input(
            p,
            ConformanceSource::Absent("a baseline".into()),
        )?)));
    }
    if args.baseline_among.is_empty() {
        return Ok(BaselineArg::None);
    }
    let mut v = Vec::new();
    for p in &args.baseline_among {
        v.push(read_input(
            p,
            ConformanceSource::Absent("a baseline".into()),
        )?);
    }
    Ok(BaselineArg::Among(v))
}

enum Failure {
    /// A bundle could not be read: exit 2.
    Bundle(BundleError),
    /// The baseline is of another machine: exit 2.
    Machine(OtherMachine),
    /// Usage: exit 2.
    Usage(String),
    /// Anything else: exit 1.
    Other(String),
}

impl From<BundleError> for Failure {
    fn from(e: BundleError) -> Failure {
        Failure::Bundle(e)
    }
}

fn main() -> ExitCode {
    let args = Args::parse();
    match report(args) {
        Ok(code) => code,
        Err(Failure::Bundle(e)) => {
            eprintln!("error: {e}");
            ExitCode::from(2)
        }
        Err(Failure::Machine(e)) => {
            eprintln!("error: {e}");
            ExitCode::from(2)
        }
        Err(Failure::Usage(m)) => {
            eprintln!("error: {m}");
            ExitCode::from(2)
        }
        Err(Failure::Other(m)) => {
            eprintln!("error: {m}");
            ExitCode::from(1)
        }
    }
}

fn report(args: Args) -> Result<ExitCode, Failure> {
    let root = run::workspace_root();
    let target = run::target_dir();
    let out = args
        .out
        .clone()
        .unwrap_or_else(|| target.join("report").join("index.html"));
    let base = read_baseline(&args)?;
    if args.from.is_empty() {
        fresh(&args, base, &root, &target, &out)
    } else {
        let t = Instant::now();
        if args.conformance.len() > args.from.len() {
            return Err(Failure::Usage(format!(
                "{} --conformance files for {} --from bundles: each belongs to the bundle in the same position",
                args.conformance.len(),
                args.from.len()
            )));
        }
        let mut inputs = Vec::new();
        for (k, p) in args.from.iter().enumerate() {
            let c = args
                .conformance
                .get(k)
                .map_or(ConformanceSource::Beside, |c| {
                    ConformanceSource::File(c.clone())
                });
            inputs.push(read_input(p, c)?);
        }
        for p in &args.compare {
            inputs.push(read_input(p, ConformanceSource::Beside)?);
        }
        let changes = write_page(&args, &mut inputs, base, &out)?;
        if args.markdown {
            println!("{}", static_call_report::text::markdown(&inputs[0]));
        }
        eprintln!(
            "page from {} bundle{} written in {:.2} s",
            inputs.len(),
            if inputs.len() == 1 { "" } else { "s" },
            t.elapsed().as_secs_f64()
        );
        println!("{}", out.display());
        Ok(verdict(changes, false))
    }
}

/// Compares the first input with the baseline, if one was asked for.
fn comparison(
    args: &Args,
    inputs: &[Input],
    base: BaselineArg,
) -> Result<Option<Comparison>, OtherMachine> {
    let none = Thresholds::none();
    let thresholds = args.fail_on_regression.as_ref().unwrap_or(&none);
    match base {
        BaselineArg::None => Ok(None),
        BaselineArg::One(b) => baseline::compare(&inputs[0], &b, thresholds).map(Some),
        BaselineArg::Among(cands) => match baseline::pick(&inputs[0].bench, &cands) {
            Pick::Match(b) => {
                eprintln!(
                    "baseline: {} (the same machine and mode among {} bundles)",
                    b.source,
                    cands.len()
                );
                baseline::compare(&inputs[0], b, thresholds).map(Some)
            }
            Pick::OtherMode(b) => {
                eprintln!(
                    "baseline: no bundle of this machine in this mode among {}; comparing with {} ({} run) report-only, no threshold applies",
                    cands.len(),
                    b.source,
                    match b.bench.run.mode {
                        static_call_bundle::Mode::Quick => "quick",
                        static_call_bundle::Mode::Full => "full",
                    }
                );
                baseline::compare(&inputs[0], b, &none).map(Some)
            }
            Pick::None(machines) => {
                eprintln!(
                    "baseline: none of the {} bundles comes from this machine ({}): no comparison ({})",
                    cands.len(),
                    baseline::machine_of(&inputs[0].bench),
                    machines.join("; ")
                );
                Ok(None)
            }
        },
    }
}

/// The exit status: 1 when a stage failed, else 3 when a figure regressed
/// past its threshold, else 0.
fn verdict(changes: Option<Comparison>, failed: bool) -> ExitCode {
    if failed {
        return ExitCode::FAILURE;
    }
    let Some(c) = changes else {
        return ExitCode::SUCCESS;
    };
    // The text summary on standard error has named each of them.
    let fails: Vec<String> = c.failures().map(baseline::line).collect();
    if fails.is_empty() {
        return ExitCode::SUCCESS;
    }
    eprintln!(
        "error: {} figure{} regressed past {} threshold ({}) against {}: exit status 3",
        fails.len(),
        if fails.len() == 1 { "" } else { "s" },
        if fails.len() == 1 { "its" } else { "their" },
        c.thresholds.describe(),
        c.baseline.source
    );
    ExitCode::from(3)
}

/// Writes the page (with the comparison, when a baseline was asked for)
/// and the comparison's text summary. A baseline of another machine is
/// refused after the page is written without it.
fn write_page(
    args: &Args,
    inputs: &mut [Input],
    base: BaselineArg,
    out: &Path,
) -> Result<Option<Comparison>, Failure> {
    disambiguate(inputs);
    let changes = comparison(args, inputs, base);
    let html = match &changes {
        Ok(Some(c)) => render_with_baseline(inputs, c),
        _ => render(inputs),
    };
    if let Some(dir) = out.parent().filter(|d| !d.as_os_str().is_empty()) {
        std::fs::create_dir_all(dir)
            .map_err(|e| Failure::Other(format!("{}: cannot create: {e}", dir.display())))?;
    }
    std::fs::write(out, html)
        .map_err(|e| Failure::Other(format!("{}: cannot write: {e}", out.display())))?;
    let changes = changes.map_err(|e| {
        eprintln!(
            "the page ({}) is written without the comparison",
            out.display()
        );
        Failure::Machine(e)
    })?;
    if let Some(c) = &changes {
        let text = c.text();
        eprint!("{text}");
        let stem = out
            .file_stem()
            .map_or_else(|| "index".into(), |s| s.to_string_lossy().into_owned());
        let p = out.with_file_name(format!("{stem}-changes.txt"));
        std::fs::write(&p, text)
            .map_err(|e| Failure::Other(format!("{}: cannot write: {e}", p.display())))?;
        eprintln!("changes written to {}", shown(&p));
    }
    Ok(changes)
}

fn fresh(
    args: &Args,
    base: BaselineArg,
    root: &Path,
    target: &Path,
    out: &Path,
) -> Result<ExitCode, Failure> {
    let measured = run::measure(root, &target.join("results"), args.quick, 4)
        .map_err(|e| Failure::Other(e.to_string()))?;
    let conf_source = match measured.conformance {
        Ok(p) => ConformanceSource::File(p),
        Err(why) => ConformanceSource::Absent(why),
    };
    let bench = measured.bench;
    let failed = measured.failed;

    let st = Stage::start(4, 4, "page");
    let mut inputs = vec![read_input(&bench, conf_source)?];
    for p in &args.compare {
        inputs.push(read_input(p, ConformanceSource::Beside)?);
    }
    let changes = write_page(args, &mut inputs, base, out)?;
    st.end("done");
    if args.markdown {
        println!("{}", static_call_report::text::markdown(&inputs[0]));
    }
    println!("{}", shown(out));
    Ok(verdict(changes, failed))
}
