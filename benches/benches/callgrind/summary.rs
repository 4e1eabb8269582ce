//! The `Ir` total of one gungraun benchmark, read from the `summary.json`
//! the runner saves next to its callgrind outputs (`--save-summary=json`,
//! or `GUNGRAUN_SAVE_SUMMARY=json`, which this bench sets for itself).
//!
//! Only the fields used are modelled: the schema `version`, and in the
//! Callgrind profile `data.total.metrics.Ir.values.new` (this run's count;
//! `old` is a baseline's). The schema is gungraun-runner 0.20.0's
//! (`src/summary/model.rs`, `SCHEMA_VERSION`); another version is refused,
//! not guessed at.

use std::collections::BTreeMap;
use std::fmt;
use std::path::{Path, PathBuf};
use std::time::SystemTime;

use serde::Deserialize;

/// The summary schema version gungraun-runner 0.20.0 writes.
pub const SCHEMA_VERSION: &str = "7";

/// The summary's name in a benchmark's output directory.
pub const FILE: &str = "summary.json";

/// Why a benchmark's `Ir` total could not be read.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SummaryError {
    /// No summary in the benchmark's directory (not run, filtered out, or
    /// run without `--save-summary`).
    Missing { file: PathBuf },
    /// The summary is older than the run's start: another run's.
    Stale { file: PathBuf },
    /// The summary could not be read.
    Io { file: PathBuf, error: String },
    /// The summary is not the JSON the model expects; `error` is serde's,
    /// naming the field and the line and column.
    Malformed { file: PathBuf, error: String },
    /// The summary's schema version is not [`SCHEMA_VERSION`].
    Version { file: PathBuf, found: String },
    /// A field the reader needs is absent or of the wrong kind.
    Field {
        file: PathBuf,
        field: &'static str,
        why: &'static str,
    },
}

impl fmt::Display for SummaryError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Missing { file } => write!(
                f,
                "{}: no gungraun summary (not run, filtered out, or run without --save-summary=json)",
                file.display()
            ),
            Self::Stale { file } => write!(
                f,
                "{}: older than this run's start: another run's summary, not read",
                file.display()
            ),
            Self::Io { file, error } => write!(f, "{}: {error}", file.display()),
            Self::Malformed { file, error } => {
                write!(f, "{}: malformed summary: {error}", file.display())
            }
            Self::Version { file, found } => write!(
                f,
                "{}: field `version`: schema {found:?}, this reader knows {SCHEMA_VERSION:?} (gungraun-runner 0.20.0)",
                file.display()
            ),
            Self::Field { file, field, why } => {
                write!(f, "{}: field `{field}`: {why}", file.display())
            }
        }
    }
}

impl std::error::Error for SummaryError {}

/// The schema version alone, read first so that another schema is named
/// as such rather than as whichever field it lacks.
#[derive(Deserialize)]
struct Versioned {
    version: String,
}

#[derive(Deserialize)]
struct Summary {
    profiles: Vec<Profile>,
}

#[derive(Deserialize)]
struct Profile {
    tool: String,
    data: ProfileData,
}

#[derive(Deserialize)]
struct ProfileData {
    total: ProfileTotal,
}

#[derive(Deserialize)]
struct ProfileTotal {
    /// Metric name (`Ir`, `Dr`, …) to its values; other tools' metrics
    /// have other shapes, so the values are read only for Callgrind's.
    metrics: BTreeMap<String, serde_json::Value>,
}

#[derive(Deserialize)]
struct MetricResult {
    values: Values,
}

#[derive(Deserialize)]
struct Values {
    /// This run's value; absent when only a baseline's (`old`) is there.
    new: Option<serde_json::Value>,
}

const IR_FIELD: &str = "profiles[tool=Callgrind].data.total.metrics.Ir.values.new";

/// The `Ir` total in `text`, the contents of `file` (named in errors).
pub fn parse_ir(file: &Path, text: &str) -> Result<u64, SummaryError> {
    let malformed = |e: serde_json::Error| SummaryError::Malformed {
        file: file.to_owned(),
        error: e.to_string(),
    };
    let v: Versioned = serde_json::from_str(text).map_err(malformed)?;
    if v.version != SCHEMA_VERSION {
        return Err(SummaryError::Version {
            file: file.to_owned(),
            found: v.version,
        });
    }
    let s: Summary = serde_json::from_str(text).map_err(malformed)?;
    let field = |field, why| SummaryError::Field {
        file: file.to_owned(),
        field,
        why,
    };
    let mut callgrind = s.profiles.into_iter().filter(|p| p.tool == "Callgrind");
    let profile = callgrind
        .next()
        .ok_or_else(|| field("profiles[tool=Callgrind]", "no Callgrind profile"))?;
    if callgrind.next().is_some() {
        return Err(field(
            "profiles[tool=Callgrind]",
            "more than one Callgrind profile",
        ));
    }
    let ir = profile
        .data
        .total
        .metrics
        .get("Ir")
        .ok_or_else(|| {
            field(
                "profiles[tool=Callgrind].data.total.metrics.Ir",
                "no Ir metric",
            )
        })?
        .clone();
    let ir: MetricResult = serde_json::from_value(ir).map_err(|e| SummaryError::Malformed {
        file: file.to_owned(),
        error: format!("profiles[tool=Callgrind].data.total.metrics.Ir: {e}"),
    })?;
    ir.values
        .new
        .ok_or_else(|| field(IR_FIELD, "absent (only a baseline's value)"))?
        .as_u64()
        .ok_or_else(|| field(IR_FIELD, "not an unsigned integer"))
}

/// The `Ir` total of the benchmark whose output directory is `dir`, from
/// its summary, only if this run wrote it (modified at or after `since`,
/// the run's start; an older file is another run's and is never read).
pub fn instructions(dir: &Path, since: SystemTime) -> Result<u64, SummaryError> {
    let file = dir.join(FILE);
    let modified = match std::fs::metadata(&file).and_then(|m| m.modified()) {
        Ok(t) => t,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            return Err(SummaryError::Missing { file });
        }
        Err(e) => {
            return Err(SummaryError::Io {
                file,
                error: e.to_string(),
            });
        }
    };
    if modified < since {
        return Err(SummaryError::Stale { file });
    }
    let text = std::fs::read_to_string(&file).map_err(|e| SummaryError::Io {
        file: file.clone(),
        error: e.to_string(),
    })?;
    parse_ir(&file, &text)
}
