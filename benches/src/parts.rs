//! Each benchmark binary writes its *part* of the results to
//! `target/results/bench-parts/<instrument>.json`; [`assemble`] joins the
//! parts into the bundle, `target/results/bench.json`. Every binary
//! assembles after writing its part, so the bundle is whole whichever runs
//! last, and a binary run alone refreshes its own part of it.

use std::path::PathBuf;

use serde::{Deserialize, Serialize};
use static_call_bundle::{
    BENCH_SCHEMA, BENCH_VERSION, BenchBundle, Figure, Instrument, Machine, Missing, Mode, PartInfo,
    RunInfo, SiteDump, Subject,
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

/// Writes a part to `target/results/bench-parts/`.
///
/// # Errors
/// A file that cannot be written.
pub fn write_part(part: &Part) -> Result<(), String> {
    let dir = parts_dir();
    std::fs::create_dir_all(&dir).map_err(|e| format!("{}: {e}", dir.display()))?;
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
/// The machine and the mode come from the newest part; a part from
/// another mode or machine label than the newest is left out, with a note
/// on stderr.
///
/// # Errors
/// A part that cannot be read, or the bundle cannot be written.
pub fn assemble() -> Result<PathBuf, String> {
    let dir = parts_dir();
    let mut parts = Vec::new();
    for e in std::fs::read_dir(&dir).map_err(|e| format!("{}: {e}", dir.display()))? {
        let p = e.map_err(|e| e.to_string())?.path();
        if p.extension().is_some_and(|x| x == "json") {
            let text = std::fs::read_to_string(&p).map_err(|e| format!("{}: {e}", p.display()))?;
            let part: Part =
                serde_json::from_str(&text).map_err(|e| format!("{}: {e}", p.display()))?;
            parts.push(part);
        }
    }
    parts.sort_by(|a, b| a.machine.date.cmp(&b.machine.date));
    let newest = parts
        .last()
        .ok_or("no benchmark parts to assemble")?
        .clone();
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
                description: s.description.into(),
            })
            .collect(),
        figures: Vec::new(),
        missing: Vec::new(),
        sites: Vec::new(),
    };
    parts.sort_by_key(|p| p.instrument);
    for p in parts {
        if p.mode != newest.mode || p.machine.label != newest.machine.label {
            eprintln!(
                "bench.json: leaving out the {} part of {} ({:?} mode, {}): the newest part is {:?} mode on {}",
                p.instrument.name(),
                p.machine.date,
                p.mode,
                p.machine.label,
                newest.mode,
                newest.machine.label
            );
            continue;
        }
        bundle.run.parts.push(PartInfo {
            instrument: p.instrument,
            seconds: p.seconds,
            date: p.machine.date.clone(),
        });
        bundle.figures.extend(p.figures);
        bundle.missing.extend(p.missing);
        bundle.sites.extend(p.sites);
    }
    let path = crate::results_dir().join("bench.json");
    std::fs::write(&path, bundle.to_json()).map_err(|e| format!("{}: {e}", path.display()))?;
    eprintln!(
        "bench.json: {} figures, {} missing, from {} ({}) -> {}",
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
        path.display()
    );
    Ok(path)
}
