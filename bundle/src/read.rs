//! Reading a benchmark bundle: [`parse_bench`], [`read_bench`] and the
//! [`BundleError`] that names the file and the field at fault.

use std::fmt;
use std::path::{Path, PathBuf};

use serde::Deserialize;

use crate::{BENCH_SCHEMA, BENCH_VERSION, BenchBundle};

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

pub(crate) fn json_error(
    path: &Path,
    e: serde_path_to_error::Error<serde_json::Error>,
) -> BundleError {
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
