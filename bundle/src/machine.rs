//! Where and how a bundle was made: the machine, the run mode, the run and
//! each benchmark binary's part of it.

use serde::{Deserialize, Serialize};

use crate::Instrument;

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
