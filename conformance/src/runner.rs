//! Runs the catalogue: one child process per cell, a printed matrix, a JSON
//! file, and a failing exit status when any cell fails.

use std::collections::BTreeMap;
use std::io::Write;
use std::path::PathBuf;
use std::process::{Command, ExitCode, Stdio};
use std::sync::OnceLock;
use std::time::{Duration, Instant};

/// How a cell ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    /// It passed; the text gives what was measured or checked.
    Pass(String),
    /// It failed, and why.
    Fail(String),
    /// It does not apply to this implementation, and why.
    Skip(String),
}

impl Outcome {
    fn kind(&self) -> &'static str {
        match self {
            Outcome::Pass(_) => "pass",
            Outcome::Fail(_) => "fail",
            Outcome::Skip(_) => "skip",
        }
    }
    fn text(&self) -> &str {
        match self {
            Outcome::Pass(s) | Outcome::Fail(s) | Outcome::Skip(s) => s,
        }
    }
}

/// What a scenario body returns: `Err` is a failure.
pub type ScenarioResult = Result<Outcome, String>;

/// Where a scenario runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    /// In a fresh child process of its own (the default).
    Child,
    /// In the runner's process: it only spawns children of its own.
    Parent,
    /// Only as a child spawned by another scenario; not in the matrix.
    Hidden,
}

/// One named scenario of the catalogue.
#[derive(Debug, Clone, Copy)]
pub struct Scenario {
    /// Its name (the matrix row, and what filters match).
    pub name: &'static str,
    /// Its body.
    pub run: fn() -> ScenarioResult,
    /// Where it runs.
    pub mode: Mode,
}

/// One implementation and its catalogue.
#[derive(Debug)]
pub struct Implementation {
    /// Its name (the matrix column).
    pub name: &'static str,
    /// The scenarios, in order.
    pub scenarios: Vec<Scenario>,
}

/// Settings the test binary passes in.
#[derive(Debug, Clone)]
pub struct Config {
    /// Path of the `crafted` binary (site tables with deliberate errors).
    pub crafted_bin: PathBuf,
    /// The file in `target/results` an unfiltered run writes its matrix
    /// to: `conformance.json` for this workspace's implementations (the
    /// report reads it), `conformance-<name>.json` for another crate's.
    /// A filtered run writes `<stem>-filtered.json` instead, so a partial
    /// matrix never replaces a whole one.
    pub matrix_file: String,
}

static CONFIG: OnceLock<Config> = OnceLock::new();

/// The configuration given to [`main`].
pub fn config() -> &'static Config {
    CONFIG.get().expect("runner::main sets the configuration")
}

const CELL_ENV: &str = "STATIC_CALL_CONFORMANCE_CELL";
const OUTCOME_TAG: &str = "@@outcome ";

/// How many times longer than default the torture and cycle scenarios run
/// (`STATIC_CALL_SOAK`, default 1).
pub fn soak_factor() -> u64 {
    std::env::var("STATIC_CALL_SOAK")
        .ok()
        .and_then(|s| s.parse().ok())
        .filter(|&n| n >= 1)
        .unwrap_or(1)
}

/// The result of running one cell in a child process.
#[derive(Debug)]
pub struct ChildRun {
    /// The outcome the child printed, if it got that far.
    pub outcome: Option<Outcome>,
    /// Its exit status in words (`exit 0`, `signal 11`, `timed out`).
    pub status: String,
    /// Whether it exited with status 0.
    pub success: bool,
    /// The signal that killed it, if one did.
    pub signal: Option<i32>,
    /// Its standard output.
    pub stdout: String,
    /// Its standard error.
    pub stderr: String,
}

impl ChildRun {
    /// The child's outcome as a scenario result: what it printed if it
    /// exited 0, its failure, or how it ended and its stderr.
    pub fn result(self) -> ScenarioResult {
        match (self.outcome, self.success) {
            (Some(o), true) => Ok(o),
            (Some(Outcome::Fail(m)), _) => Err(m),
            _ => Err(format!("child {}: {}", self.status, self.stderr)),
        }
    }
}

/// Runs cell `implementation/scenario` of this binary in a child process,
/// optionally under a wrapper command (such as valgrind), with extra
/// environment variables, for at most `timeout`.
pub fn spawn_cell(
    implementation: &str,
    scenario: &str,
    wrapper: &[&str],
    env: &[(&str, &str)],
    timeout: Duration,
) -> ChildRun {
    let exe = std::env::current_exe().expect("current_exe");
    let mut cmd = if let Some((first, rest)) = wrapper.split_first() {
        let mut c = Command::new(first);
        c.args(rest).arg(&exe);
        c
    } else {
        Command::new(&exe)
    };
    cmd.env(CELL_ENV, format!("{implementation}/{scenario}"))
        .envs(env.iter().copied())
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    let mut child = match cmd.spawn() {
        Ok(c) => c,
        Err(e) => {
            return ChildRun {
                outcome: None,
                status: format!("spawn failed: {e}"),
                success: false,
                signal: None,
                stdout: String::new(),
                stderr: String::new(),
            };
        }
    };
    // Read the pipes on threads so a chatty child cannot block.
    let mut so = child.stdout.take().expect("piped");
    let mut se = child.stderr.take().expect("piped");
    let t_out = std::thread::spawn(move || {
        let mut s = String::new();
        let _ = std::io::Read::read_to_string(&mut so, &mut s);
        s
    });
    let t_err = std::thread::spawn(move || {
        let mut s = String::new();
        let _ = std::io::Read::read_to_string(&mut se, &mut s);
        s
    });
    let start = Instant::now();
    let status = loop {
        match child.try_wait() {
            Ok(Some(st)) => break Some(st),
            Ok(None) if start.elapsed() > timeout => {
                let _ = child.kill();
                let _ = child.wait();
                break None;
            }
            Ok(None) => std::thread::sleep(Duration::from_millis(5)),
            Err(_) => break None,
        }
    };
    let stdout = t_out.join().unwrap_or_default();
    let stderr = t_err.join().unwrap_or_default();
    let outcome = stdout
        .lines()
        .rev()
        .find_map(|l| l.strip_prefix(OUTCOME_TAG))
        .map(parse_outcome);
    let (status, success, signal) = match status {
        None => (format!("timed out after {timeout:?}"), false, None),
        Some(st) => {
            use std::os::unix::process::ExitStatusExt;
            match (st.code(), st.signal()) {
                (Some(c), _) => (format!("exit {c}"), c == 0, None),
                (None, Some(s)) => (format!("killed by signal {s}"), false, Some(s)),
                _ => ("unknown".into(), false, None),
            }
        }
    };
    ChildRun {
        outcome,
        status,
        success,
        signal,
        stdout,
        stderr,
    }
}

fn parse_outcome(line: &str) -> Outcome {
    let (kind, text) = line.split_once(' ').unwrap_or((line, ""));
    let text = text.replace("\\n", "\n");
    match kind {
        "pass" => Outcome::Pass(text),
        "skip" => Outcome::Skip(text),
        _ => Outcome::Fail(text),
    }
}

/// Prints an outcome in the form the parent reads.
pub fn print_outcome(o: &Outcome) {
    println!(
        "{OUTCOME_TAG}{} {}",
        o.kind(),
        o.text().replace('\n', "\\n")
    );
    let _ = std::io::stdout().flush();
}

fn run_body(s: &Scenario) -> Outcome {
    match std::panic::catch_unwind(s.run) {
        Ok(Ok(o)) => o,
        Ok(Err(msg)) => Outcome::Fail(msg),
        Err(p) => Outcome::Fail(format!(
            "panicked: {}",
            p.downcast_ref::<String>()
                .map(String::as_str)
                .or_else(|| p.downcast_ref::<&str>().copied())
                .unwrap_or("?")
        )),
    }
}

fn tail(s: &str, n: usize) -> String {
    let lines: Vec<&str> = s.lines().collect();
    lines[lines.len().saturating_sub(n)..].join("\n")
}

/// Whether filter `f` selects cell `im/sc` (`impls`: every implementation
/// name). `imp/scen`: implementation `imp` exactly (any, when empty) and
/// scenarios containing `scen`. Without a `/`: the implementation of that
/// exact name, or else every scenario containing `f`.
pub fn selects(f: &str, impls: &[&str], im: &str, sc: &str) -> bool {
    match f.split_once('/') {
        Some((fi, fs)) => (fi.is_empty() || fi == im) && sc.contains(fs),
        None if impls.contains(&f) => f == im,
        None => sc.contains(f),
    }
}

/// Runs the suite (or, in a child, one cell) and returns the exit code.
///
/// Filters: non-flag command-line arguments and `STATIC_CALL_FILTER`
/// (comma-separated) select cells as [`selects`] says: implementation
/// names match whole (`indirect/` never selects `plain-indirect/`),
/// scenario names by substring.
pub fn main(config: Config, impls: Vec<Implementation>) -> ExitCode {
    let _ = CONFIG.set(config);
    if let Ok(cell) = std::env::var(CELL_ENV) {
        let (im, sc) = cell.split_once('/').unwrap_or(("", ""));
        let found = impls
            .iter()
            .filter(|i| i.name == im)
            .flat_map(|i| i.scenarios.iter())
            .find(|s| s.name == sc);
        let o = match found {
            Some(s) => run_body(s),
            None => Outcome::Fail(format!("no cell {cell}")),
        };
        print_outcome(&o);
        return ExitCode::SUCCESS;
    }

    // The standard test-harness command line (libtest-mimic): `--list`,
    // `--exact`, `--skip`, `--test-threads`, as `cargo test` users expect.
    let mut args = libtest_mimic::Arguments::from_args();
    // Cells run one at a time unless asked otherwise: many are timed or
    // spawn threads of their own (torture, parking rounds), and the
    // machines this runs on have two cores.
    args.test_threads.get_or_insert(1);
    // The positional filter keeps this suite's meaning (implementation
    // names whole, `indirect/` never selects `plain-indirect/`; scenario
    // names by substring), as `STATIC_CALL_FILTER` (comma-separated) does;
    // with `--exact` the harness matches whole names itself.
    let mut filters: Vec<String> = Vec::new();
    if !args.exact {
        filters.extend(args.filter.take());
    }
    if let Ok(f) = std::env::var("STATIC_CALL_FILTER") {
        filters.extend(f.split(',').filter(|s| !s.is_empty()).map(String::from));
    }
    let names: Vec<&'static str> = impls.iter().map(|i| i.name).collect();
    let selected = |name: &str| {
        let (im, sc) = name.split_once('/').unwrap_or((name, ""));
        filters.is_empty() || filters.iter().any(|f| selects(f, &names, im, sc))
    };

    let started = Instant::now();
    let timeout = Duration::from_secs(120 * soak_factor());
    let mut rows: Vec<&'static str> = Vec::new();
    type Cells = BTreeMap<(&'static str, &'static str), (Outcome, f64)>;
    let cells: std::sync::Arc<std::sync::Mutex<Cells>> = Default::default();
    let mut trials = Vec::new();
    for im in &impls {
        for s in &im.scenarios {
            if s.mode == Mode::Hidden || !selected(&format!("{}/{}", im.name, s.name)) {
                continue;
            }
            if !rows.contains(&s.name) {
                rows.push(s.name);
            }
            let (im_name, s, cells) = (im.name, *s, cells.clone());
            trials.push(libtest_mimic::Trial::test(
                format!("{}/{}", im_name, s.name),
                move || {
                    let t = Instant::now();
                    let o = match s.mode {
                        Mode::Parent => run_body(&s),
                        _ => {
                            let r = spawn_cell(im_name, s.name, &[], &[], timeout);
                            match r.outcome {
                                Some(o) if r.success => o,
                                Some(Outcome::Fail(m)) => Outcome::Fail(m),
                                _ => Outcome::Fail(format!(
                                    "child {}; stderr:\n{}",
                                    r.status,
                                    tail(&r.stderr, 8)
                                )),
                            }
                        }
                    };
                    let secs = t.elapsed().as_secs_f64();
                    let fail = match &o {
                        Outcome::Fail(m) => Some(m.clone()),
                        _ => None,
                    };
                    cells
                        .lock()
                        .unwrap_or_else(|e| e.into_inner())
                        .insert((im_name, s.name), (o, secs));
                    fail.map_or(Ok(()), |m| Err(m.into()))
                },
            ));
        }
    }
    let listing = args.list;
    let conclusion = libtest_mimic::run(&args, trials);
    if listing {
        return ExitCode::SUCCESS;
    }
    let cells = std::mem::take(&mut *cells.lock().unwrap_or_else(|e| e.into_inner()));
    rows.retain(|r| cells.keys().any(|(_, sc)| sc == r));
    let filters_used = !filters.is_empty() || args.exact || !args.skip.is_empty();
    let wall = started.elapsed().as_secs_f64();
    let names: Vec<&str> = impls.iter().map(|i| i.name).collect();
    print_matrix(&rows, &names, &cells);
    let (mut pass, mut fail, mut skip) = (0, 0, 0);
    for (o, _) in cells.values() {
        match o {
            Outcome::Pass(_) => pass += 1,
            Outcome::Fail(_) => fail += 1,
            Outcome::Skip(_) => skip += 1,
        }
    }
    let file = if !filters_used {
        self::config().matrix_file.clone()
    } else {
        let f = &self::config().matrix_file;
        format!("{}-filtered.json", f.strip_suffix(".json").unwrap_or(f))
    };
    match write_json(&file, &rows, &names, &cells, wall) {
        Ok(p) => println!("matrix written to {}", p.display()),
        Err(e) => println!("could not write the JSON matrix: {e}"),
    }
    println!("suite wall time: {wall:.1} s ({} build)", profile());
    println!("{pass} passed, {fail} failed, {skip} skipped");
    if cells.is_empty() {
        println!("no cell matched the filter");
        return ExitCode::FAILURE;
    }
    if fail > 0 || conclusion.has_failed() {
        ExitCode::FAILURE
    } else {
        ExitCode::SUCCESS
    }
}

fn print_matrix(
    rows: &[&'static str],
    names: &[&str],
    cells: &BTreeMap<(&'static str, &'static str), (Outcome, f64)>,
) {
    println!();
    print!("{:<28}", "scenario");
    for n in names {
        print!(" {n:<13}");
    }
    println!();
    for r in rows {
        print!("{r:<28}");
        for n in names {
            let k = cells.get(&(n, r)).map_or("-", |(o, _)| match o {
                Outcome::Pass(_) => "pass",
                Outcome::Fail(_) => "FAIL",
                Outcome::Skip(_) => "skip",
            });
            print!(" {k:<13}");
        }
        println!();
    }
    println!();
    for ((im, sc), (o, _)) in cells {
        if !o.text().is_empty() {
            println!(
                "{:<5} {im}/{sc}: {}",
                o.kind(),
                o.text().replace('\n', "\n      ")
            );
        }
    }
    println!();
}

fn profile() -> &'static str {
    if cfg!(debug_assertions) {
        "debug"
    } else {
        "release"
    }
}

pub use static_call_bundle::paths::{results_dir, target_dir};

/// Writes the matrix as JSON (the bundle crate's [`Conformance`], which
/// the report reads back) to `file` in [`results_dir`].
fn write_json(
    file: &str,
    rows: &[&'static str],
    names: &[&str],
    cells: &BTreeMap<(&'static str, &'static str), (Outcome, f64)>,
    wall: f64,
) -> std::io::Result<PathBuf> {
    use static_call_bundle as b;
    let dir = results_dir();
    std::fs::create_dir_all(&dir)?;
    let path = dir.join(file);
    let spectre = std::fs::read_to_string("/sys/devices/system/cpu/vulnerabilities/spectre_v2")
        .unwrap_or_default();
    let matrix = b::Conformance {
        wall_seconds: (wall * 1000.0).round() / 1000.0,
        profile: profile().to_owned(),
        spectre_v2: spectre.trim().to_owned(),
        implementations: names.iter().map(|n| n.to_string()).collect(),
        scenarios: rows.iter().map(|n| n.to_string()).collect(),
        cells: cells
            .iter()
            .map(|((im, sc), (o, secs))| b::Cell {
                implementation: im.to_string(),
                scenario: sc.to_string(),
                outcome: match o {
                    Outcome::Pass(_) => b::Outcome::Pass,
                    Outcome::Fail(_) => b::Outcome::Fail,
                    Outcome::Skip(_) => b::Outcome::Skip,
                },
                detail: o.text().to_owned(),
                seconds: (secs * 1000.0).round() / 1000.0,
            })
            .collect(),
    };
    let json = serde_json::to_string_pretty(&matrix).map_err(std::io::Error::other)?;
    std::fs::write(&path, json + "\n")?;
    Ok(path)
}

#[cfg(test)]
mod filter_tests {
    use super::selects;

    const IMPLS: [&str; 3] = ["inline-patch", "indirect", "plain-indirect"];

    #[test]
    fn implementation_names_match_whole() {
        assert!(selects("indirect/", &IMPLS, "indirect", "torture"));
        assert!(!selects("indirect/", &IMPLS, "plain-indirect", "torture"));
        assert!(selects("indirect", &IMPLS, "indirect", "basic"));
        assert!(!selects("indirect", &IMPLS, "plain-indirect", "basic"));
        assert!(selects(
            "plain-indirect/tor",
            &IMPLS,
            "plain-indirect",
            "torture"
        ));
        assert!(!selects("direct/", &IMPLS, "indirect", "basic"));
    }

    #[test]
    fn scenarios_match_by_substring() {
        assert!(selects("tort", &IMPLS, "indirect", "torture"));
        assert!(selects("/tort", &IMPLS, "plain-indirect", "torture"));
        assert!(!selects("tort", &IMPLS, "indirect", "basic"));
    }
}
