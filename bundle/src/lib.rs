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

mod figure;
mod machine;
mod read;

pub use figure::{Bucket, Figure, Histogram, Interval, Missing, Ratio, Statistic};
pub use machine::{Machine, MachineDetails, Mode, PartInfo, RunInfo};
use read::json_error;
pub use read::{BundleError, BundleErrorKind, parse_bench, read_bench};
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
    use std::path::Path;

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
