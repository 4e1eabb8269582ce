//! `static-call-report`: runs the benchmarks and the conformance matrix
//! and writes one HTML page comparing the implementations and machines.
//!
//! ```text
//! cargo run --release -p static-call-report                 # fresh run, full
//! cargo run --release -p static-call-report -- --quick      # fresh run, quick
//! cargo run --release -p static-call-report -- --from results/*/bench.json
//! ```
//!
//! Exit status: 0; 1 when a stage failed (the page is still written when
//! there is a benchmark bundle to write it from); 2 for a usage error or a
//! bundle that cannot be read.

use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::{Instant, SystemTime};

use clap::Parser;
use static_call_bundle::BundleError;
use static_call_report::input::shown;
use static_call_report::run::{self, GUNGRAUN_VERSION, Stage};
use static_call_report::{ConformanceSource, Input, disambiguate, read_input, render};

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
}

enum Failure {
    /// A bundle could not be read: exit 2.
    Bundle(BundleError),
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
    if args.from.is_empty() {
        fresh(&args, &root, &target, &out)
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
        write_page(&mut inputs, &out)?;
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
        Ok(ExitCode::SUCCESS)
    }
}

fn write_page(inputs: &mut [Input], out: &Path) -> Result<(), Failure> {
    disambiguate(inputs);
    let html = render(inputs);
    if let Some(dir) = out.parent().filter(|d| !d.as_os_str().is_empty()) {
        std::fs::create_dir_all(dir)
            .map_err(|e| Failure::Other(format!("{}: cannot create: {e}", dir.display())))?;
    }
    std::fs::write(out, html)
        .map_err(|e| Failure::Other(format!("{}: cannot write: {e}", out.display())))
}

fn fresh(args: &Args, root: &Path, target: &Path, out: &Path) -> Result<ExitCode, Failure> {
    let results = target.join("results");
    let mut failed = false;

    let st = Stage::start(
        1,
        4,
        &format!("callgrind runner (gungraun-runner {GUNGRAUN_VERSION})"),
    );
    match run::runner_version() {
        Some(v) if run::is_wanted_version(&v) => st.end(&format!("found {v}, done")),
        found => {
            eprintln!(
                "{}; installing it",
                found.map_or("gungraun-runner not found".to_owned(), |v| format!(
                    "found {v}, want {GUNGRAUN_VERSION}"
                ))
            );
            match run::install_runner() {
                Ok(s) if s.success() => st.end("installed, done"),
                Ok(s) => st.end(&format!(
                    "install failed ({s}); instruction counts may be missing,"
                )),
                Err(e) => st.end(&format!(
                    "cannot run cargo install ({e}); instruction counts may be missing,"
                )),
            }
        }
    }

    let mode = if args.quick { "quick" } else { "full" };
    let st = Stage::start(2, 4, &format!("benchmarks ({mode})"));
    let since = SystemTime::now();
    let envs: &[(&str, &str)] = if args.quick {
        &[("STATIC_CALL_BENCH_QUICK", "1")]
    } else {
        &[]
    };
    let bench = results.join("bench.json");
    let status = run::cargo_in(root, &["bench", "-p", "static-call-bench"], envs)
        .map_err(|e| Failure::Other(format!("cannot run cargo bench: {e}")))?;
    if !status.success() {
        failed = true;
    }
    if !run::written_since(&bench, since) {
        st.end(&format!("failed ({status})"));
        return Err(Failure::Other(format!(
            "the benchmarks left no new {}: no page written",
            bench.display()
        )));
    }
    st.end(if status.success() {
        "done"
    } else {
        "failed, bundle written,"
    });

    let st = Stage::start(3, 4, "conformance matrix (release)");
    let since = SystemTime::now();
    let conf = results.join("conformance.json");
    let status = run::cargo_in(
        root,
        &[
            "test",
            "--release",
            "-p",
            "static-call-conformance",
            "--test",
            "conformance",
        ],
        &[],
    )
    .map_err(|e| Failure::Other(format!("cannot run cargo test: {e}")))?;
    let conf_source = if run::written_since(&conf, since) {
        ConformanceSource::File(conf.clone())
    } else {
        ConformanceSource::Absent(format!(
            "the conformance run left no matrix (cargo test: {status})"
        ))
    };
    if !status.success() {
        failed = true;
        st.end("failed (see the page's conformance matrix),");
    } else {
        st.end("done");
    }

    let st = Stage::start(4, 4, "page");
    let mut inputs = vec![read_input(&bench, conf_source)?];
    for p in &args.compare {
        inputs.push(read_input(p, ConformanceSource::Beside)?);
    }
    write_page(&mut inputs, out)?;
    st.end("done");
    if args.markdown {
        println!("{}", static_call_report::text::markdown(&inputs[0]));
    }
    println!("{}", shown(out));
    Ok(if failed {
        ExitCode::FAILURE
    } else {
        ExitCode::SUCCESS
    })
}
