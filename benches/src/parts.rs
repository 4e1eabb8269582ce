//! Each benchmark binary writes its *part* of the results to
//! `target/results/bench-parts/<instrument>.json`; [`assemble`] joins the
//! parts into the bundle, `target/results/bench.json`. Every binary
//! assembles after writing its part, so the bundle is whole whichever runs
//! last, and a binary run alone refreshes its own part of it.
//!
//! Every part carries the build of the binary that wrote it
//! ([`crate::machine::commit`]: commit, dirty flag and fingerprint,
//! embedded at build time). [`assemble`] refuses parts of different builds
//! or modes; [`write_part`] first removes the parts another build or mode
//! left behind (saying so), so a bundle only ever joins parts of one build.

use std::path::PathBuf;

use serde::{Deserialize, Serialize};
use static_call_bundle::{
    BENCH_SCHEMA, BENCH_VERSION, BenchBundle, Figure, Instrument, Machine, Missing, Mode, PartInfo,
    Round, RunInfo, SiteDump, Subject,
};

/// One instrument's results.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Part {
    /// The instrument.
    pub instrument: Instrument,
    /// Quick or full.
    pub mode: Mode,
    /// Seconds the part took.
    pub seconds: f64,
    /// The machine, as this part saw it.
    pub machine: Machine,
    /// Figures taken.
    pub figures: Vec<Figure>,
    /// Figures that could not be taken.
    pub missing: Vec<Missing>,
    /// Decoded sites.
    pub sites: Vec<SiteDump>,
    /// The build of the binary that wrote it.
    pub build: String,
    /// Rounds of the interleaved call measurements.
    #[serde(default)]
    pub rounds: Vec<Round>,
}

impl Part {
    /// An empty part for `instrument`, started now.
    pub fn new(instrument: Instrument) -> Part {
        Part {
            instrument,
            mode: crate::mode(),
            seconds: 0.0,
            machine: crate::machine::this_machine(),
            figures: Vec::new(),
            missing: Vec::new(),
            sites: Vec::new(),
            build: crate::machine::commit(),
            rounds: Vec::new(),
        }
    }

    /// Records a figure that could not be taken, and says so on stderr.
    pub fn missing(
        &mut self,
        scenario: &str,
        subject: Option<&str>,
        metric: static_call_bundle::Metric,
        reason: impl Into<String>,
    ) {
        let reason = reason.into();
        eprintln!(
            "{}: {scenario}{} {}: {reason}",
            self.instrument.name(),
            subject.map(|s| format!(" {s}")).unwrap_or_default(),
            metric.name()
        );
        self.missing.push(Missing {
            scenario: scenario.into(),
            subject: subject.map(Into::into),
            metric,
            instrument: self.instrument,
            reason,
        });
    }
}

/// Where parts live.
pub fn parts_dir() -> PathBuf {
    crate::results_dir().join("bench-parts")
}

fn part_path(i: Instrument) -> PathBuf {
    let name = serde_json::to_value(i)
        .ok()
        .and_then(|v| v.as_str().map(str::to_owned))
        .unwrap_or_else(|| format!("{i:?}"));
    parts_dir().join(format!("{name}.json"))
}

fn read_parts() -> Result<Vec<(PathBuf, Part)>, String> {
    let dir = parts_dir();
    let mut parts = Vec::new();
    for e in std::fs::read_dir(&dir).map_err(|e| format!("{}: {e}", dir.display()))? {
        let p = e.map_err(|e| e.to_string())?.path();
        if p.extension().is_some_and(|x| x == "json") {
            let text = std::fs::read_to_string(&p).map_err(|e| format!("{}: {e}", p.display()))?;
            let part: Part = serde_json::from_str(&text)
                .map_err(|e| format!("{}: not a part of this build's format: {e}", p.display()))?;
            parts.push((p, part));
        }
    }
    Ok(parts)
}

/// Writes a part to `target/results/bench-parts/`, after removing the
/// parts that another build or mode left there (each named on stderr): a
/// bundle joins only parts of one build.
///
/// # Errors
/// A file that cannot be written or removed.
pub fn write_part(part: &Part) -> Result<(), String> {
    let dir = parts_dir();
    std::fs::create_dir_all(&dir).map_err(|e| format!("{}: {e}", dir.display()))?;
    for e in std::fs::read_dir(&dir).map_err(|e| format!("{}: {e}", dir.display()))? {
        let p = e.map_err(|e| e.to_string())?.path();
        if p.extension().is_none_or(|x| x != "json") {
            continue;
        }
        let old = std::fs::read_to_string(&p)
            .ok()
            .and_then(|t| serde_json::from_str::<Part>(&t).ok());
        let stale = match &old {
            Some(o) => o.build != part.build || o.mode != part.mode,
            None => true,
        };
        if stale {
            eprintln!(
                "bench-parts: removing {} ({}): not of this build ({}, {:?} mode)",
                p.display(),
                old.map_or_else(
                    || "unreadable or of an older format".to_owned(),
                    |o| format!("build {}, {:?} mode", o.build, o.mode)
                ),
                part.build,
                part.mode
            );
            std::fs::remove_file(&p).map_err(|e| format!("{}: {e}", p.display()))?;
        }
    }
    let path = part_path(part.instrument);
    let text = serde_json::to_string_pretty(part).map_err(|e| e.to_string())?;
    std::fs::write(&path, text).map_err(|e| format!("{}: {e}", path.display()))
}

/// Writes a part, then assembles the bundle.
///
/// # Errors
/// A file that cannot be written, or a part that cannot be read back.
pub fn write_and_assemble(part: &Part) -> Result<PathBuf, String> {
    write_part(part)?;
    assemble()
}

/// Joins every part into `target/results/bench.json`.
///
/// # Errors
/// A part that cannot be read, parts of different builds or modes
/// (refused, naming each), or the bundle cannot be written.
pub fn assemble() -> Result<PathBuf, String> {
    let parts = read_parts()?;
    let bundle = join(parts.into_iter().map(|(_, p)| p).collect())?;
    let path = crate::results_dir().join("bench.json");
    std::fs::write(&path, bundle.to_json()).map_err(|e| format!("{}: {e}", path.display()))?;
    eprintln!(
        "bench.json: {} figures, {} missing, from {} ({}, build {}) -> {}",
        bundle.figures.len(),
        bundle.missing.len(),
        bundle
            .run
            .parts
            .iter()
            .map(|p| p.instrument.name())
            .collect::<Vec<_>>()
            .join(", "),
        bundle.machine.label,
        bundle.machine.commit,
        path.display()
    );
    Ok(path)
}

/// Joins parts into a bundle. The machine comes from the newest part.
///
/// # Errors
/// No part, or parts of different builds, modes or machines: the message
/// names every part's instrument, build, mode and machine.
pub fn join(mut parts: Vec<Part>) -> Result<BenchBundle, String> {
    parts.sort_by(|a, b| a.machine.date.cmp(&b.machine.date));
    let newest = parts
        .last()
        .ok_or("no benchmark parts to assemble")?
        .clone();
    let mixed = parts.iter().any(|p| {
        p.build != newest.build || p.mode != newest.mode || p.machine.label != newest.machine.label
    });
    if mixed {
        return Err(format!(
            "refusing to assemble parts of different builds, modes or machines into one bundle: {}; rerun the benchmarks of one build (cargo bench) so that every part is of it",
            parts
                .iter()
                .map(|p| format!(
                    "{} = build {} ({:?} mode, {}, {})",
                    p.instrument.name(),
                    p.build,
                    p.mode,
                    p.machine.label,
                    p.machine.date
                ))
                .collect::<Vec<_>>()
                .join("; ")
        ));
    }
    let mut bundle = BenchBundle {
        schema: BENCH_SCHEMA.into(),
        version: BENCH_VERSION,
        machine: newest.machine.clone(),
        run: RunInfo {
            mode: newest.mode,
            parts: Vec::new(),
        },
        subjects: crate::subjects::SUBJECTS
            .iter()
            .map(|s| Subject {
                name: s.name.into(),
                kind: s.kind,
                description: s.describe(),
                writes_code: s.imp.map(|i| i.registry.design().writes_code()),
            })
            .collect(),
        figures: Vec::new(),
        missing: Vec::new(),
        sites: Vec::new(),
        rounds: Vec::new(),
    };
    parts.sort_by_key(|p| p.instrument);
    for p in parts {
        bundle.run.parts.push(PartInfo {
            instrument: p.instrument,
            seconds: p.seconds,
            date: p.machine.date.clone(),
            build: Some(p.build.clone()),
        });
        bundle.figures.extend(p.figures);
        bundle.missing.extend(p.missing);
        bundle.sites.extend(p.sites);
        bundle.rounds.extend(p.rounds);
    }
    Ok(bundle)
}
