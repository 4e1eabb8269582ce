//! The conformance matrix the suite writes to `target/results/conformance.json`.

use std::path::Path;

use serde::{Deserialize, Serialize};

use crate::{BundleError, BundleErrorKind, json_error};

/// The conformance matrix (`target/results/conformance.json`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Conformance {
    /// Wall time of the whole suite.
    pub wall_seconds: f64,
    /// `debug` or `release`.
    pub profile: String,
    /// The machine's `spectre_v2` line.
    pub spectre_v2: String,
    /// Column order.
    pub implementations: Vec<String>,
    /// Row order.
    pub scenarios: Vec<String>,
    /// Every cell run.
    pub cells: Vec<Cell>,
}

/// One (implementation, scenario) cell.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Cell {
    /// Column.
    pub implementation: String,
    /// Row.
    pub scenario: String,
    /// Pass, fail or skip.
    pub outcome: Outcome,
    /// What it printed, or why it failed or was skipped.
    pub detail: String,
    /// How long it took.
    pub seconds: f64,
}

/// The outcome of a cell.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Outcome {
    /// Passed.
    Pass,
    /// Failed.
    Fail,
    /// Does not apply, with a reason.
    Skip,
}

/// Reads a conformance matrix.
///
/// # Errors
/// The file cannot be read, is not JSON, or a field is missing or malformed.
pub fn read_conformance(path: &Path) -> Result<Conformance, BundleError> {
    let text = std::fs::read_to_string(path).map_err(|e| BundleError {
        path: path.to_owned(),
        kind: BundleErrorKind::Io(e),
    })?;
    parse_conformance(path, &text)
}

/// Parses a conformance matrix from JSON text.
///
/// # Errors
/// Not JSON, or a field is missing or malformed.
pub fn parse_conformance(path: &Path, text: &str) -> Result<Conformance, BundleError> {
    let de = &mut serde_json::Deserializer::from_str(text);
    serde_path_to_error::deserialize(de).map_err(|e| json_error(path, e))
}
