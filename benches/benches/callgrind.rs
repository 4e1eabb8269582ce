//! Instruction counts with gungraun (formerly iai-callgrind): the four
//! call scenarios over every subject, and a 1-site update per
//! implementation, each under callgrind.
//!
//! A per-call figure is the difference between two loop lengths divided by
//! the difference in calls, so the loop's entry, the check of its result
//! and the harness cancel out: what remains is exactly what one more call
//! costs. The counts are exact (two runs give the same numbers). Each is
//! the `Ir` total of the `summary.json` the runner saves per benchmark
//! ([`summary`]), read only if this run wrote it.
//!
//! The runner must be installed at the library's version:
//! `cargo install gungraun-runner --version =0.20.0 --locked`. Without it,
//! or without valgrind, the part records why and the run goes on.

use std::hint::black_box;

use gungraun::{Callgrind, LibraryBenchmarkConfig, library_benchmark, library_benchmark_group};
use static_call_bench::parts::{Part, write_and_assemble};
use static_call_bench::subjects::{self, CALL_SCENARIOS, SUBJECTS, implementations};
use static_call_bench::{CALLGRIND_LOOP, prove};
use static_call_bundle::{Figure, Instrument, Metric, Per, Statistic, scenario};

/// The runner version that matches the library.
use static_call_bundle::GUNGRAUN_VERSION as RUNNER_VERSION;

#[path = "callgrind/summary.rs"]
mod summary;

/// The runner's switch that saves each benchmark's `summary.json` (read
/// by [`summary::instructions`]). gungraun 0.20's `LibraryBenchmarkConfig`
/// has no such setting, so this binary sets it for the runner it starts:
/// `cargo bench` alone gets it, no caller must remember it.
const SAVE_SUMMARY_ENV: &str = "GUNGRAUN_SAVE_SUMMARY";

/// One measured loop: subject, scenario, loop length.
#[derive(Debug, Clone, Copy)]
struct Case {
    subject: usize,
    scenario: usize,
    n: u64,
}

/// This run's selection: the command line's filter in the process cargo
/// started, [`subjects::FILTER_ENV`] in the processes the runner starts
/// (whose command lines are the runner's: `--gungraun-run …`).
fn selection() -> subjects::Selection {
    let inner = std::env::args().any(|a| a == "--gungraun-run");
    if inner || std::env::var_os(subjects::FILTER_ENV).is_some() {
        subjects::Selection::from_env()
    } else {
        subjects::Selection::current()
    }
}

/// Loop lengths for a scenario: a base and twice the base.
fn lengths(scenario: usize) -> [u64; 2] {
    let base = if CALL_SCENARIOS[scenario].calls_per_unit > 1 {
        10
    } else {
        CALLGRIND_LOOP
    };
    [base, 2 * base]
}

/// The measured loops this run selects ([`subjects::Selection`]: the
/// filter reaches the runner's processes through
/// [`subjects::FILTER_ENV`]).
fn cases() -> Vec<Case> {
    let sel = selection();
    let mut out = Vec::new();
    for (subject, s) in SUBJECTS.iter().enumerate() {
        for (scenario, sc) in CALL_SCENARIOS.iter().enumerate() {
            if (sc.pick)(&s.loops).is_some() && sel.selects(sc.id, s.name) {
                for n in lengths(scenario) {
                    out.push(Case {
                        subject,
                        scenario,
                        n,
                    });
                }
            }
        }
    }
    out
}

/// Update cases: implementation index, updates.
const UPDATES: [u64; 2] = [10, 20];

fn update_cases() -> Vec<(usize, u64)> {
    let sel = selection();
    implementations()
        .enumerate()
        .filter(|(_, (s, _))| sel.selects(scenario::UPDATE_VALGRIND_PATH, s.name))
        .flat_map(|(i, _)| UPDATES.map(|n| (i, n)))
        .collect()
}

fn init_all() {
    for (s, imp) in implementations() {
        if let Err(e) = (imp.init)() {
            panic!("{}: init: {e}", s.name);
        }
    }
}

/// Runs before each measured loop (not counted): init, then prove the
/// site the loop measures.
fn prepare(c: Case) -> Case {
    init_all();
    let s = SUBJECTS[c.subject];
    let sc = &CALL_SCENARIOS[c.scenario];
    if let Err(e) = prove::prove(s, sc) {
        panic!("not measuring what the name says: {e}");
    }
    c
}

#[library_benchmark]
#[benches::call(iter = cases(), setup = prepare)]
fn call(c: Case) -> u64 {
    let s = SUBJECTS[c.subject];
    let sc = &CALL_SCENARIOS[c.scenario];
    let f = (sc.pick)(&s.loops).expect("a case exists only where the loop does");
    black_box(subjects::run_checked(sc, s.name, f, black_box(c.n)))
}

fn prepare_update(c: (usize, u64)) -> (usize, u64) {
    init_all();
    let (s, imp) = implementations().nth(c.0).expect("an implementation");
    if let Err(e) = prove::prove_lone(s, imp) {
        panic!("not measuring what the name says: {e}");
    }
    c
}

#[library_benchmark]
#[benches::update(iter = update_cases(), setup = prepare_update)]
fn update(c: (usize, u64)) -> u64 {
    let (_, imp) = implementations().nth(c.0).expect("an implementation");
    for i in 0..c.1 {
        let f = if i.is_multiple_of(2) {
            static_call_bench::targets::add2
        } else {
            static_call_bench::targets::add1
        };
        if let Err(e) = imp.lone.update(f) {
            panic!("update: {e}");
        }
    }
    black_box((imp.call_lone)(1))
}

library_benchmark_group!(name = calls; benchmarks = call);
library_benchmark_group!(name = updates; benchmarks = update);

/// Where gungraun leaves this binary's outputs.
fn out_dir() -> std::path::PathBuf {
    static_call_bench::target_dir().join("gungraun/static-call-bench/callgrind/harness")
}

/// Finds the output directory of benchmark `function`, id `id`.
fn bench_dir(group: &str, function: &str, id: &str) -> std::path::PathBuf {
    out_dir().join(group).join(format!("{function}.{id}"))
}

fn per_unit(
    group: &str,
    function: &str,
    ids: [String; 2],
    units: u64,
    since: std::time::SystemTime,
) -> Result<(f64, u64, u64), String> {
    let read = |id: &String| {
        summary::instructions(&bench_dir(group, function, id), since).map_err(|e| e.to_string())
    };
    let a = read(&ids[0])?;
    let b = read(&ids[1])?;
    if b < a {
        return Err(format!(
            "the longer loop counted fewer instructions ({b} < {a})"
        ));
    }
    Ok(((b - a) as f64 / units as f64, a, b))
}

/// Marks what `sel` leaves out as not selected.
fn collect_left_out(part: &mut Part, sel: &subjects::Selection) {
    for sc in &CALL_SCENARIOS {
        let of = SUBJECTS
            .iter()
            .filter(|s| (sc.pick)(&s.loops).is_some())
            .map(|s| s.name);
        part.missing
            .extend(sel.left_out(sc.id, of, Metric::Instructions, Instrument::Callgrind));
    }
    part.missing.extend(sel.left_out(
        scenario::UPDATE_VALGRIND_PATH,
        implementations().map(|(s, _)| s.name),
        Metric::Instructions,
        Instrument::Callgrind,
    ));
}

/// Reads the outputs of this run and writes the part (after all
/// benchmarks; run natively by the runner).
fn collect() {
    let start = std::fs::read_to_string(
        static_call_bench::results_dir().join("bench-parts/.callgrind-start"),
    )
    .ok()
    .and_then(|s| s.trim().parse::<f64>().ok());
    let mut part = Part::new(Instrument::Callgrind);
    part.seconds = start.map_or(0.0, |t| now_secs() - t);
    // Without the start mark, nothing can be told to be this run's.
    let since = start.map_or(std::time::SystemTime::now(), |t| {
        std::time::UNIX_EPOCH + std::time::Duration::from_secs_f64(t - 1.0)
    });
    collect_left_out(&mut part, &selection());
    for (i, c) in cases().iter().enumerate().step_by(2) {
        let s = SUBJECTS[c.subject];
        let sc = &CALL_SCENARIOS[c.scenario];
        let [n1, n2] = lengths(c.scenario);
        let ids = [format!("call_{i}"), format!("call_{}", i + 1)];
        match per_unit("calls", "call", ids, (n2 - n1) * sc.calls_per_unit, since) {
            Ok((v, a, b)) => part.figures.push(Figure {
                scenario: sc.id.into(),
                subject: s.name.into(),
                sites: None,
                metric: Metric::Instructions,
                per: Per::Call,
                instrument: Instrument::Callgrind,
                value: v,
                interval: None,
                samples: Some(2),
                note: Some(format!(
                    "Ir {a} for {n1} loop units, {b} for {n2}; ({b} - {a}) / {} calls",
                    (n2 - n1) * sc.calls_per_unit
                )),
                statistic: Some(Statistic::Exact),
                raw: Vec::new(),
                first: None,
                ratio: None,
                histogram: None,
            }),
            Err(e) => part.missing(sc.id, Some(s.name), Metric::Instructions, e),
        }
    }
    for (i, &(k, _)) in update_cases().iter().enumerate().step_by(2) {
        let (s, _) = implementations().nth(k).expect("an implementation");
        let ids = [format!("update_{i}"), format!("update_{}", i + 1)];
        match per_unit("updates", "update", ids, UPDATES[1] - UPDATES[0], since) {
            Ok((v, a, b)) => part.figures.push(Figure {
                scenario: scenario::UPDATE_VALGRIND_PATH.into(),
                subject: s.name.into(),
                sites: Some(1),
                metric: Metric::Instructions,
                per: Per::Update,
                instrument: Instrument::Callgrind,
                value: v,
                interval: None,
                samples: Some(2),
                note: Some(format!(
                    "the engine's valgrind path, not the native one: under valgrind each slot is one store in an mprotect window (no int3, no membarrier, no scan of threads' signal masks); user-space instructions only; Ir {a} for {} updates, {b} for {}",
                    UPDATES[0], UPDATES[1]
                )),
                statistic: Some(Statistic::Exact),
                raw: Vec::new(),
                first: None,
                ratio: None,
                histogram: None,
            }),
            Err(e) => part.missing(
                scenario::UPDATE_VALGRIND_PATH,
                Some(s.name),
                Metric::Instructions,
                e,
            ),
        }
    }
    match write_and_assemble(&part) {
        Ok(p) => eprintln!(
            "callgrind: {} figures; bundle {}",
            part.figures.len(),
            p.display()
        ),
        Err(e) => {
            eprintln!("callgrind: {e}");
            std::process::exit(1);
        }
    }
}

fn now_secs() -> f64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0.0, |d| d.as_secs_f64())
}

fn mark_start() {
    let dir = static_call_bench::parts::parts_dir();
    let _ = std::fs::create_dir_all(&dir);
    let _ = std::fs::write(dir.join(".callgrind-start"), now_secs().to_string());
}

mod harness {
    use super::*;

    pub fn run() {
        main()
    }

    gungraun::main!(
        config = LibraryBenchmarkConfig::default()
            .env_clear(false)
            .tool(Callgrind::with_args(["--cache-sim=no"]));
        setup = mark_start();
        teardown = collect();
        library_benchmark_groups = calls, updates
    );
}

/// Why the instruction counts cannot be taken here, if they cannot.
fn preflight() -> Result<(), String> {
    let out = |cmd: &str| {
        std::process::Command::new(cmd)
            .arg("--version")
            .output()
            .ok()
            .filter(|o| o.status.success())
            .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_owned())
    };
    out("valgrind").ok_or("valgrind not found (install it: apt-get install valgrind)")?;
    let runner = std::env::var("GUNGRAUN_RUNNER").unwrap_or_else(|_| "gungraun-runner".into());
    match out(&runner) {
        Some(v) if static_call_bundle::is_wanted_gungraun(&v) => Ok(()),
        Some(v) => Err(format!(
            "{runner} is `{v}`, the library is {RUNNER_VERSION}: cargo install gungraun-runner --version ={RUNNER_VERSION} --locked"
        )),
        None => Err(format!(
            "{runner} not found: cargo install gungraun-runner --version ={RUNNER_VERSION} --locked"
        )),
    }
}

fn main() {
    let inner = std::env::args()
        .nth(1)
        .is_some_and(|a| a == "--gungraun-run");
    if !inner && let Err(why) = preflight() {
        eprintln!("callgrind: SKIPPED: {why}");
        let mut part = Part::new(Instrument::Callgrind);
        for sc in CALL_SCENARIOS {
            part.missing(
                sc.id,
                None,
                Metric::Instructions,
                format!("unavailable: {why}"),
            );
        }
        part.missing(
            scenario::UPDATE_VALGRIND_PATH,
            None,
            Metric::Instructions,
            format!("unavailable: {why}"),
        );
        if let Err(e) = write_and_assemble(&part) {
            eprintln!("callgrind: {e}");
            std::process::exit(1);
        }
        return;
    }
    // A filter is this binary's, not the runner's (whose filter matches
    // module paths, `callgrind::calls::call::call_3`): run again without
    // it, handing it on through the environment to every process the
    // runner starts, which measure only the cases it selects. Run again
    // too when the runner would not save its summaries
    // ([`SAVE_SUMMARY_ENV`]), from which the counts are read.
    if !inner {
        let sel = selection();
        let hand_on = std::env::var_os(subjects::FILTER_ENV).is_none() && !sel.is_all();
        let save = std::env::var_os(SAVE_SUMMARY_ENV).is_none();
        if hand_on {
            eprintln!(
                "callgrind: filter `{}`: {} call loops and {} update runs selected; the rest is marked not selected",
                sel.filters(),
                cases().len(),
                update_cases().len()
            );
            if cases().is_empty() && update_cases().is_empty() {
                let mut part = Part::new(Instrument::Callgrind);
                collect_left_out(&mut part, &sel);
                if let Err(e) = write_and_assemble(&part) {
                    eprintln!("callgrind: {e}");
                    std::process::exit(1);
                }
                return;
            }
        }
        if hand_on || save {
            // The filter's words are dropped once handed on; otherwise
            // the command line goes on as it is.
            let args: Vec<String> = std::env::args()
                .skip(1)
                .filter(|a| !hand_on || a.starts_with('-'))
                .collect();
            let mut cmd = match std::env::current_exe() {
                Ok(exe) => std::process::Command::new(exe),
                Err(e) => {
                    eprintln!("callgrind: cannot run again: {e}");
                    std::process::exit(1);
                }
            };
            cmd.args(args);
            if hand_on {
                cmd.env(subjects::FILTER_ENV, sel.filters());
            }
            if save {
                cmd.env(SAVE_SUMMARY_ENV, "json");
            }
            let status = cmd.status().unwrap_or_else(|e| {
                eprintln!("callgrind: cannot run again: {e}");
                std::process::exit(1);
            });
            std::process::exit(status.code().unwrap_or(1));
        }
    }
    harness::run();
}
