//! The results bundles of the static-call suite.
//!
//! * [`BenchBundle`]: what `cargo bench` leaves in
//!   `target/results/bench.json` — every figure of one run, the machine it
//!   ran on, the sites it decoded, and a stated reason for every figure it
//!   could not take. Versioned: [`BENCH_SCHEMA`] / [`BENCH_VERSION`].
//! * [`Conformance`]: the conformance matrix the suite writes to
//!   `target/results/conformance.json`.
//!
//! Both readers ([`read_bench`], [`read_conformance`]) return a
//! [`BundleError`] that names the file and, for a malformed bundle, the
//! JSON path of the field at fault (`figures[3].metric: unknown variant …`).
//!
//! ## The figures
//!
//! A bundle is a flat list of [`Figure`]s: one measured number each, keyed
//! by *scenario* (one of [`scenario::ALL`]), *subject* (an implementation or
//! a control, listed in [`BenchBundle::subjects`]), an optional *site
//! count* (the x axis of the scaling scenarios), the [`Metric`] and what it
//! is counted [`Per`]. A figure that could not be taken is a [`Missing`]
//! entry with its reason instead — never a zero.
#![warn(missing_docs)]

use std::fmt;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

pub mod stats;

/// The `schema` field of a benchmark bundle.
pub const BENCH_SCHEMA: &str = "static-call-bench";
/// The newest benchmark-bundle version this crate reads and writes.
///
/// History: 1 — first version. 2 — figures name their statistic and keep
/// their raw values (per-round values, per-update samples) and their
/// per-round ratio to the direct call; the bundle keeps its rounds (order,
/// CPU, steal time), the machine its reproduction details and the build
/// it was made by. Version 1 bundles still read (the new fields are empty).
pub const BENCH_VERSION: u32 = 2;

mod conformance;
pub mod control;
pub mod gungraun;
pub mod paths;
pub mod peer;
pub mod scenario;

pub use conformance::{Cell, Conformance, Outcome, parse_conformance, read_conformance};
pub use gungraun::{GUNGRAUN_VERSION, is_wanted_gungraun};

/// One benchmark run: every figure, the machine, the decoded sites.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct BenchBundle {
    /// Always [`BENCH_SCHEMA`].
    pub schema: String,
    /// The schema version ([`BENCH_VERSION`] when written by this crate).
    pub version: u32,
    /// Where it ran.
    pub machine: Machine,
    /// How it ran.
    pub run: RunInfo,
    /// The implementations and controls measured, in display order.
    pub subjects: Vec<Subject>,
    /// Every figure taken.
    pub figures: Vec<Figure>,
    /// Every figure that could not be taken, with the reason.
    #[serde(default)]
    pub missing: Vec<Missing>,
    /// Sites and trampolines as the benchmarks decoded them.
    #[serde(default)]
    pub sites: Vec<SiteDump>,
    /// The rounds of the call-cost measurements (version 2).
    #[serde(default)]
    pub rounds: Vec<Round>,
}

/// One round of the interleaved call-cost measurement: every subject of a
/// scenario measured once, in a shuffled order.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Round {
    /// The scenario.
    pub scenario: String,
    /// Its index, from 0.
    pub index: u32,
    /// The subjects in the order they were measured.
    pub order: Vec<String>,
    /// The CPUs (`sched_getcpu`) the round's measurements ran on, in
    /// order of first appearance; more than one means it migrated.
    pub cpus: Vec<i32>,
    /// Steal time during the round, in clock ticks of `/proc/stat`
    /// (`None`: not readable).
    #[serde(default)]
    pub steal_ticks: Option<u64>,
}

/// The machine a bundle comes from.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Machine {
    /// A short label for column headings: `STATIC_CALL_MACHINE_LABEL`, or
    /// the CPU model and core count.
    pub label: String,
    /// `model name` from `/proc/cpuinfo`.
    pub cpu_model: String,
    /// Logical CPUs online.
    pub logical_cpus: u32,
    /// `uname -sr`.
    pub kernel: String,
    /// `/sys/devices/system/cpu/vulnerabilities/spectre_v2`.
    pub spectre_v2: String,
    /// `rustc --version` of the toolchain that built the benchmarks.
    pub rustc: String,
    /// The git commit of the sources (`unknown` outside a checkout), with
    /// `-dirty` when the work tree had changes.
    pub commit: String,
    /// When the run ended, RFC 3339 UTC.
    pub date: String,
    /// How the engine writes code and synchronises cores
    /// (`engine_info()`), or why it could not say.
    pub engine: String,
    /// `valgrind --version`, when valgrind was found.
    #[serde(default)]
    pub valgrind: Option<String>,
    /// What it takes to reproduce the run (version 2; absent before).
    #[serde(default)]
    pub details: Option<MachineDetails>,
}

/// The details of a machine and build that a reader needs to reproduce a
/// run. Every field says what could not be read instead of guessing.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct MachineDetails {
    /// `vendor_id` of `/proc/cpuinfo`.
    pub cpu_vendor: String,
    /// `cpu family`, `model`, `stepping` of `/proc/cpuinfo`.
    pub cpu_family_model_stepping: String,
    /// `microcode` of `/proc/cpuinfo`.
    pub microcode: String,
    /// The CPU flags that bear on indirect calls (`ibrs_enhanced`,
    /// `retpoline`-related, `hypervisor`, …) that `/proc/cpuinfo` lists.
    pub flags_of_interest: Vec<String>,
    /// Every file of `/sys/devices/system/cpu/vulnerabilities/`, name and
    /// contents.
    pub vulnerabilities: Vec<(String, String)>,
    /// `/proc/cmdline`.
    pub kernel_cmdline: String,
    /// The cpufreq governor of CPU 0, or why it is unknown.
    pub governor: String,
    /// Turbo / boost state, or why it is unknown.
    pub turbo: String,
    /// `/sys/devices/system/cpu/smt/control`, or why it is unknown.
    pub smt: String,
    /// The CPUs this process may run on (`sched_getaffinity`).
    pub affinity: Vec<u32>,
    /// The cargo profile the benchmarks were built with, and whether
    /// debug assertions were on.
    pub build_profile: String,
    /// `RUSTFLAGS` / `CARGO_ENCODED_RUSTFLAGS` at build time.
    pub rustflags: String,
    /// The benchmark settings: rounds, batch length, criterion's warm-up,
    /// measurement time and sample size.
    pub settings: String,
    /// What `prctl(PR_GET_SPECULATION_CTRL, PR_SPEC_INDIRECT_BRANCH)` said.
    pub indirect_branch_spec_ctrl: String,
}

/// Quick or full.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Mode {
    /// `STATIC_CALL_BENCH_QUICK=1`: fewer samples and sizes.
    Quick,
    /// The default.
    Full,
}

/// How a run was made.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RunInfo {
    /// Quick or full.
    pub mode: Mode,
    /// Each instrument's part of the run.
    pub parts: Vec<PartInfo>,
}

/// One instrument's part of a run.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PartInfo {
    /// The instrument.
    pub instrument: Instrument,
    /// Wall-clock seconds the part took.
    pub seconds: f64,
    /// When the part ended, RFC 3339 UTC.
    pub date: String,
    /// The build of the binary that wrote the part (commit, `-dirty` and a
    /// fingerprint of the changes); every part of a bundle has the same.
    #[serde(default)]
    pub build: Option<String>,
}

/// An implementation or a control.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Subject {
    /// Its name (`inline-patch`, `direct`, …).
    pub name: String,
    /// Implementation, control or peer.
    pub kind: SubjectKind,
    /// One line on what it is.
    pub description: String,
    /// For an implementation: whether an update writes code (the patching
    /// engine, its breakpoints and core synchronisations) or stores a
    /// pointer. Targets on the engine's update cost apply only where it
    /// does. Absent in bundles written before the field (unknown).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub writes_code: Option<bool>,
}

/// Implementation, control or peer.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum SubjectKind {
    /// A static-call implementation of this workspace.
    Implementation,
    /// A reference point (direct call, function pointer, …).
    Control,
    /// Another published mechanism measured beside the implementations
    /// (names: [`peer`]): the `static-keys` crate's jump labels, a call
    /// into a shared object through the PLT or the GOT. Bundles written
    /// before peers existed have none and still read.
    Peer,
}

/// What took a figure.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Instrument {
    /// criterion: wall time with a confidence interval.
    Criterion,
    /// gungraun (formerly iai-callgrind): exact instruction counts under
    /// callgrind.
    Callgrind,
    /// perf-event counters (hardware and software).
    PerfEvent,
    /// The registry's own statistics.
    Registry,
    /// The suite's own timer (version 2): interleaved rounds of call
    /// loops, single updates timed one by one.
    Timer,
    /// A counting global allocator and `/proc/self/smaps` in the benchmark
    /// binary, and decoded code (version 2).
    Memory,
}

impl Instrument {
    /// Display name.
    pub fn name(self) -> &'static str {
        match self {
            Instrument::Criterion => "criterion",
            Instrument::Callgrind => "gungraun (callgrind)",
            Instrument::PerfEvent => "perf-event",
            Instrument::Registry => "registry stats",
            Instrument::Timer => "timer (interleaved rounds, single updates)",
            Instrument::Memory => "counting allocator, smaps, decoded code",
        }
    }
}

/// What a figure measures.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Metric {
    /// Wall time, nanoseconds.
    WallTime,
    /// Instructions executed (callgrind `Ir`, or the hardware counter).
    Instructions,
    /// CPU cycles (hardware counter).
    Cycles,
    /// Mispredicted branches (hardware counter).
    BranchMisses,
    /// Task clock, nanoseconds of CPU time (software counter).
    TaskClock,
    /// Context switches (software counter).
    ContextSwitches,
    /// Page faults (software counter).
    PageFaults,
    /// Heap bytes the registry holds.
    RegistryBytes,
    /// Bytes of code (version 2).
    CodeBytes,
    /// Bytes of `Private_Dirty` executable mappings (version 2).
    PrivateTextBytes,
    /// Slots in the trap handler's table of known slot addresses
    /// (version 2, [`scenario::MEMORY_CHURN`]).
    TrapTableSlots,
    /// Resident memory of the process, bytes (`/proc/self/statm`; version
    /// 2, [`scenario::MEMORY_CHURN`]).
    ResidentBytes,
    /// Calls made ([`Per::Second`]: a caller's throughput, in the
    /// `callers/…` scenarios).
    Calls,
    /// Updates completed ([`Per::Second`]: the rate an updater achieved,
    /// in the `callers/…` scenarios that update).
    Updates,
    /// Calls that met a breakpoint and were served by the engine's trap
    /// handler ([`Per::Update`], in the `callers/…` scenarios that
    /// update).
    Breakpoints,
}

impl Metric {
    /// The unit figures of this metric are in.
    pub fn unit(self) -> &'static str {
        match self {
            Metric::WallTime | Metric::TaskClock => "ns",
            Metric::Instructions => "instructions",
            Metric::Cycles => "cycles",
            Metric::BranchMisses => "misses",
            Metric::ContextSwitches => "switches",
            Metric::PageFaults => "faults",
            Metric::RegistryBytes
            | Metric::CodeBytes
            | Metric::PrivateTextBytes
            | Metric::ResidentBytes => "bytes",
            Metric::TrapTableSlots => "slots",
            Metric::Calls => "calls",
            Metric::Updates => "updates",
            Metric::Breakpoints => "breakpoints",
        }
    }

    /// Display name.
    pub fn name(self) -> &'static str {
        match self {
            Metric::WallTime => "wall time",
            Metric::Instructions => "instructions",
            Metric::Cycles => "cycles",
            Metric::BranchMisses => "branch misses",
            Metric::TaskClock => "task clock",
            Metric::ContextSwitches => "context switches",
            Metric::PageFaults => "page faults",
            Metric::RegistryBytes => "registry bytes",
            Metric::CodeBytes => "code bytes",
            Metric::PrivateTextBytes => "private text bytes",
            Metric::TrapTableSlots => "trap-table slots",
            Metric::ResidentBytes => "resident bytes",
            Metric::Calls => "calls",
            Metric::Updates => "updates",
            Metric::Breakpoints => "breakpoints met",
        }
    }
}

/// What one figure is counted per.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Per {
    /// One call.
    Call,
    /// One update.
    Update,
    /// One module load (or shared-object open).
    Load,
    /// One module unload (or shared-object close).
    Unload,
    /// One recorded site.
    Site,
    /// One (key, module) pair.
    KeyModule,
    /// The whole registry or module, in total.
    Total,
    /// One key (version 2).
    Key,
    /// One module loaded, updated and unloaded (version 2,
    /// [`scenario::MEMORY_CHURN`]).
    Module,
    /// One second of a run (a rate: [`Metric::Calls`] or
    /// [`Metric::Updates`] per second).
    Second,
}

impl Per {
    /// Display name (`call`, `update`, …).
    pub fn name(self) -> &'static str {
        match self {
            Per::Call => "call",
            Per::Update => "update",
            Per::Load => "load",
            Per::Unload => "unload",
            Per::Site => "site",
            Per::KeyModule => "(key, module)",
            Per::Total => "total",
            Per::Key => "key",
            Per::Module => "module (load + update + unload)",
            Per::Second => "second",
        }
    }
}

/// A confidence interval.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Interval {
    /// Lower bound.
    pub low: f64,
    /// Upper bound.
    pub high: f64,
    /// Confidence level (0.95 for criterion's default).
    pub level: f64,
}

/// One measured number.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Figure {
    /// One of [`scenario::ALL`].
    pub scenario: String,
    /// A name from [`BenchBundle::subjects`].
    pub subject: String,
    /// Sites of the key or module, for the scaling scenarios (for
    /// [`scenario::UPDATE_FOREIGN`]: the foreign sites present).
    #[serde(default)]
    pub sites: Option<u64>,
    /// What it measures.
    pub metric: Metric,
    /// What it is counted per.
    pub per: Per,
    /// What took it.
    pub instrument: Instrument,
    /// The value, in [`Metric::unit`] per [`Per`], as [`Figure::statistic`]
    /// says: the median of per-round values (call cost) or of single
    /// updates (latency); criterion's point estimate of the mean time per
    /// iteration (module loads; every wall time of a version 1 bundle);
    /// callgrind's exact count per call (the difference of two loop
    /// lengths); perf-event's mean per operation; bytes.
    pub value: f64,
    /// Its confidence interval, when the instrument gives one.
    #[serde(default)]
    pub interval: Option<Interval>,
    /// How many samples (or repetitions) it rests on.
    #[serde(default)]
    pub samples: Option<u64>,
    /// How it was taken, when that needs saying.
    #[serde(default)]
    pub note: Option<String>,
    /// Which statistic [`Figure::value`] is (version 2; `None` in version 1
    /// bundles, whose wall times are criterion's means).
    #[serde(default)]
    pub statistic: Option<Statistic>,
    /// The values the statistic was computed from, in the figure's unit:
    /// the per-round values of a call-cost figure, the single-update
    /// samples of a latency figure (version 2).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub raw: Vec<f64>,
    /// For a latency: the first (cold) operation, measured on its own and
    /// not among [`Figure::raw`].
    #[serde(default)]
    pub first: Option<f64>,
    /// For a call-cost figure: its ratio to the direct call, the median of
    /// the per-round ratios with a bootstrap interval.
    #[serde(default)]
    pub ratio: Option<Ratio>,
    /// The distribution of the values, bucketed, for figures over too
    /// many operations to keep each one (a caller's calls); the value and
    /// any quantile can be recomputed from it to a bucket's width.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub histogram: Option<Histogram>,
}

/// Values bucketed by range, the empty buckets left out.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Histogram {
    /// The non-empty buckets, in increasing order.
    pub buckets: Vec<Bucket>,
    /// The largest value.
    pub max: f64,
}

/// One bucket of a [`Histogram`]: `count` values in `low..high`.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct Bucket {
    /// Lower edge (included).
    pub low: f64,
    /// Upper edge (excluded).
    pub high: f64,
    /// How many values.
    pub count: u64,
}

impl Histogram {
    /// How many values in all.
    pub fn total(&self) -> u64 {
        self.buckets.iter().map(|b| b.count).sum()
    }

    /// The `q` quantile (0..=1) as the upper edge of the bucket that holds
    /// it (at most [`Histogram::max`]); NaN when empty.
    pub fn quantile(&self, q: f64) -> f64 {
        let n = self.total();
        if n == 0 {
            return f64::NAN;
        }
        let rank = ((q * n as f64).ceil() as u64).clamp(1, n);
        let mut seen = 0;
        for b in &self.buckets {
            seen += b.count;
            if seen >= rank {
                return b.high.min(self.max);
            }
        }
        self.max
    }
}

/// Which statistic a figure's value is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Statistic {
    /// The median of [`Figure::raw`]; its interval a bootstrap 95%
    /// interval of the median.
    Median,
    /// A mean (criterion's, with its bootstrap interval; perf-event's mean
    /// over operations).
    Mean,
    /// The 99th percentile of [`Figure::raw`] (nearest rank).
    P99,
    /// The largest of [`Figure::raw`].
    Max,
    /// The first (cold) operation alone.
    First,
    /// An exact count (callgrind; two runs give the same number).
    Exact,
    /// One measurement (a byte count read once).
    Single,
    /// Computed by a formula from other numbers, not measured; the
    /// figure's note gives the formula.
    Formula,
}

impl Statistic {
    /// Display name.
    pub fn name(self) -> &'static str {
        match self {
            Statistic::Median => "median",
            Statistic::Mean => "mean",
            Statistic::P99 => "p99",
            Statistic::Max => "max",
            Statistic::First => "first (cold)",
            Statistic::Exact => "exact count",
            Statistic::Single => "single measurement",
            Statistic::Formula => "formula",
        }
    }
}

/// A figure's ratio to a reference subject, round by round.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Ratio {
    /// The reference subject (`direct`).
    pub reference: String,
    /// The median of the per-round ratios.
    pub value: f64,
    /// Bootstrap 95% interval of that median (resampling rounds).
    pub interval: Interval,
    /// The per-round ratios.
    pub raw: Vec<f64>,
}

/// A figure that could not be taken.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Missing {
    /// Its scenario, or `*` for all of them.
    pub scenario: String,
    /// Its subject, when the reason is specific to one.
    #[serde(default)]
    pub subject: Option<String>,
    /// The metric that is missing.
    pub metric: Metric,
    /// The instrument that could not take it.
    pub instrument: Instrument,
    /// Why, as the failing call said it (`unavailable: …`).
    pub reason: String,
}

/// A site or trampoline as decoded during the run.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SiteDump {
    /// The implementation, control or peer.
    pub subject: String,
    /// The key (or function) it belongs to.
    pub key: String,
    /// When it was read: `before update` or `after update`, or the
    /// benchmark that checked it.
    pub phase: String,
    /// `site`, `trampoline`, or `loop` (a control's call in its loop);
    /// for the peers also `block` (a static-keys site's out-of-line block)
    /// and `plt-stub` (the PLT stub a `plt-call` site calls).
    pub place: String,
    /// Its address in that run.
    pub addr: u64,
    /// The bytes, as lowercase hex pairs separated by spaces.
    pub bytes: String,
    /// iced-x86's disassembly, one instruction a line.
    pub asm: Vec<String>,
    /// The form the benchmark claimed and checked.
    pub form: String,
}

/// A bundle that could not be read.
#[derive(Debug)]
pub struct BundleError {
    /// The file.
    pub path: PathBuf,
    /// What was wrong with it.
    pub kind: BundleErrorKind,
}

/// What was wrong with a bundle.
#[derive(Debug)]
pub enum BundleErrorKind {
    /// It could not be read.
    Io(std::io::Error),
    /// It is not valid JSON, or a field is missing or malformed.
    Json {
        /// JSON path of the field at fault (`figures[3].metric`), or `.`.
        field: String,
        /// serde's message.
        message: String,
    },
    /// It is JSON but not a bundle of the expected kind.
    Foreign {
        /// What its `schema` field says (or that it has none).
        found: String,
    },
    /// A newer schema version than this reader knows.
    Version {
        /// The bundle's version.
        found: u32,
    },
}

impl fmt::Display for BundleError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let p = self.path.display();
        match &self.kind {
            BundleErrorKind::Io(e) => write!(f, "{p}: cannot read: {e}"),
            BundleErrorKind::Json { field, message } => {
                write!(f, "{p}: field `{field}`: {message}")
            }
            BundleErrorKind::Foreign { found } => write!(
                f,
                "{p}: field `schema`: not a static-call benchmark bundle (schema {found}, expected \"{BENCH_SCHEMA}\")"
            ),
            BundleErrorKind::Version { found } => write!(
                f,
                "{p}: field `version`: schema version {found} is newer than this reader's {BENCH_VERSION}; rebuild the report"
            ),
        }
    }
}

impl std::error::Error for BundleError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match &self.kind {
            BundleErrorKind::Io(e) => Some(e),
            _ => None,
        }
    }
}

fn json_error(path: &Path, e: serde_path_to_error::Error<serde_json::Error>) -> BundleError {
    let field = e.path().to_string();
    BundleError {
        path: path.to_owned(),
        kind: BundleErrorKind::Json {
            field,
            message: e.into_inner().to_string(),
        },
    }
}

/// Parses a benchmark bundle from JSON text (`path` names it in errors).
///
/// # Errors
/// Invalid JSON, a missing or malformed field, a foreign file, or a newer
/// schema version.
pub fn parse_bench(path: &Path, text: &str) -> Result<BenchBundle, BundleError> {
    // Check the envelope first, so that a foreign file or a newer version
    // is named as such rather than as its first unexpected field.
    #[derive(Deserialize)]
    struct Envelope {
        schema: Option<serde_json::Value>,
        version: Option<serde_json::Value>,
    }
    let env: Envelope = {
        let de = &mut serde_json::Deserializer::from_str(text);
        serde_path_to_error::deserialize(de).map_err(|e| json_error(path, e))?
    };
    match env.schema {
        Some(serde_json::Value::String(s)) if s == BENCH_SCHEMA => {}
        other => {
            return Err(BundleError {
                path: path.to_owned(),
                kind: BundleErrorKind::Foreign {
                    found: other.map_or_else(|| "missing".to_owned(), |v| v.to_string()),
                },
            });
        }
    }
    if let Some(v) = env.version.as_ref().and_then(|v| v.as_u64())
        && v > u64::from(BENCH_VERSION)
    {
        return Err(BundleError {
            path: path.to_owned(),
            kind: BundleErrorKind::Version {
                found: u32::try_from(v).unwrap_or(u32::MAX),
            },
        });
    }
    let de = &mut serde_json::Deserializer::from_str(text);
    serde_path_to_error::deserialize(de).map_err(|e| json_error(path, e))
}

/// Reads a benchmark bundle.
///
/// # Errors
/// As [`parse_bench`], or the file cannot be read.
pub fn read_bench(path: &Path) -> Result<BenchBundle, BundleError> {
    let text = std::fs::read_to_string(path).map_err(|e| BundleError {
        path: path.to_owned(),
        kind: BundleErrorKind::Io(e),
    })?;
    parse_bench(path, &text)
}

impl BenchBundle {
    /// Serialises the bundle as pretty JSON.
    pub fn to_json(&self) -> String {
        serde_json::to_string_pretty(self).expect("a bundle always serialises")
    }

    /// The figures of one scenario and metric.
    pub fn figures_of<'a>(
        &'a self,
        scenario: &'a str,
        metric: Metric,
    ) -> impl Iterator<Item = &'a Figure> + 'a {
        self.figures
            .iter()
            .filter(move |f| f.scenario == scenario && f.metric == metric)
    }

    /// One figure, by scenario, subject, metric and site count.
    pub fn figure(
        &self,
        scenario: &str,
        subject: &str,
        metric: Metric,
        sites: Option<u64>,
    ) -> Option<&Figure> {
        self.figures.iter().find(|f| {
            f.scenario == scenario && f.subject == subject && f.metric == metric && f.sites == sites
        })
    }

    /// The reasons recorded for a missing figure of this scenario and
    /// metric (for any subject, or for all scenarios).
    pub fn missing_reason(&self, scenario: &str, metric: Metric) -> Option<&str> {
        self.missing
            .iter()
            .find(|m| (m.scenario == scenario || m.scenario == "*") && m.metric == metric)
            .map(|m| m.reason.as_str())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample() -> BenchBundle {
        BenchBundle {
            schema: BENCH_SCHEMA.into(),
            version: BENCH_VERSION,
            machine: Machine {
                label: "test".into(),
                cpu_model: "cpu".into(),
                logical_cpus: 2,
                kernel: "Linux 6".into(),
                spectre_v2: "Mitigation: Retpolines".into(),
                rustc: "rustc 1.95".into(),
                commit: "abc".into(),
                date: "2026-11-26T00:00:00Z".into(),
                engine: "proc_mem + membarrier".into(),
                valgrind: None,
                details: None,
            },
            run: RunInfo {
                mode: Mode::Quick,
                parts: vec![],
            },
            subjects: vec![],
            figures: vec![Figure {
                scenario: scenario::CALL_HOT_1.into(),
                subject: "direct".into(),
                sites: None,
                metric: Metric::WallTime,
                per: Per::Call,
                instrument: Instrument::Criterion,
                value: 1.5,
                interval: None,
                samples: Some(10),
                note: None,
                statistic: Some(Statistic::Median),
                raw: vec![1.4, 1.5, 1.6],
                first: None,
                ratio: None,
                histogram: None,
            }],
            missing: vec![],
            sites: vec![],
            rounds: vec![],
        }
    }

    #[test]
    fn round_trip() {
        let b = sample();
        let back = parse_bench(Path::new("x.json"), &b.to_json()).unwrap();
        assert_eq!(b, back);
    }

    #[test]
    fn errors_name_file_and_field() {
        let text = sample()
            .to_json()
            .replace("\"wall_time\"", "\"wall_clock\"");
        let e = parse_bench(Path::new("b.json"), &text).unwrap_err();
        let msg = e.to_string();
        assert!(
            msg.starts_with("b.json: field `figures[0].metric`"),
            "{msg}"
        );
        assert!(msg.contains("wall_clock"), "{msg}");

        let text = sample().to_json().replace("\"logical_cpus\": 2,", "");
        let msg = parse_bench(Path::new("b.json"), &text)
            .unwrap_err()
            .to_string();
        assert!(
            msg.contains("machine") && msg.contains("logical_cpus"),
            "{msg}"
        );
    }

    #[test]
    fn subject_kinds_read_old_and_new() {
        let mut b = sample();
        for (name, kind) in [
            ("inline-patch", SubjectKind::Implementation),
            ("direct", SubjectKind::Control),
            (peer::STATIC_KEYS, SubjectKind::Peer),
        ] {
            b.subjects.push(Subject {
                name: name.into(),
                kind,
                description: String::new(),
                writes_code: None,
            });
        }
        let text = b.to_json();
        assert!(text.contains("\"kind\": \"peer\""), "{text}");
        assert_eq!(parse_bench(Path::new("p.json"), &text).unwrap(), b);
        // A bundle written before peers: only the two old kinds, read as
        // before.
        let old = text.replace("\"kind\": \"peer\"", "\"kind\": \"control\"");
        let back = parse_bench(Path::new("o.json"), &old).unwrap();
        assert!(back.subjects.iter().all(|s| s.kind != SubjectKind::Peer));
        // An unknown kind is named with its field.
        let bad = text.replace("\"kind\": \"peer\"", "\"kind\": \"rival\"");
        let msg = parse_bench(Path::new("k.json"), &bad)
            .unwrap_err()
            .to_string();
        assert!(
            msg.contains("subjects[2].kind") && msg.contains("rival"),
            "{msg}"
        );
    }

    #[test]
    fn foreign_and_newer_bundles() {
        let e = parse_bench(Path::new("c.json"), r#"{"cells": []}"#).unwrap_err();
        assert!(matches!(e.kind, BundleErrorKind::Foreign { .. }), "{e}");
        let text = sample().to_json().replace(
            &format!("\"version\": {BENCH_VERSION}"),
            &format!("\"version\": {}", BENCH_VERSION + 1),
        );
        let e = parse_bench(Path::new("n.json"), &text).unwrap_err();
        assert!(matches!(e.kind, BundleErrorKind::Version { .. }), "{e}");
        let e = parse_bench(Path::new("t.json"), "{\"schema\": ").unwrap_err();
        assert!(matches!(e.kind, BundleErrorKind::Json { .. }), "{e}");
    }
}
