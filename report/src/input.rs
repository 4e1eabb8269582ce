//! What the page is built from: one [`Input`] per machine.

use std::path::{Path, PathBuf};

use static_call_bundle::{BenchBundle, BundleError, Conformance, read_bench, read_conformance};

/// One machine's results: a benchmark bundle and, when there is one, its
/// conformance matrix.
#[derive(Debug, Clone)]
pub struct Input {
    /// Column heading: the bundle's `machine.label`, made unique by
    /// [`disambiguate`].
    pub label: String,
    /// Where the bundle was read from, as shown on the page.
    pub source: String,
    /// The benchmark bundle.
    pub bench: BenchBundle,
    /// The conformance matrix, or why there is none.
    pub conformance: Matrix,
}

/// A conformance matrix, or the reason there is none.
#[derive(Debug, Clone)]
pub enum Matrix {
    /// The matrix and where it was read from.
    Present {
        /// Where it was read from, as shown on the page.
        source: String,
        /// The matrix.
        matrix: Conformance,
    },
    /// No matrix, and why.
    Absent {
        /// Shown in place of the matrix.
        reason: String,
    },
}

/// The reason shown when a bundle comes without a conformance matrix.
pub const NO_MATRIX: &str = "no conformance matrix in this bundle";

/// Where to find the conformance matrix of a bundle.
#[derive(Debug, Clone)]
pub enum ConformanceSource {
    /// `conformance.json` next to the `bench.json`, if it exists.
    Beside,
    /// This file (it must exist).
    File(PathBuf),
    /// None, for this reason.
    Absent(String),
}

impl Input {
    /// An input from a bundle, labelled by its machine, without a
    /// conformance matrix.
    pub fn new(bench: BenchBundle, source: impl Into<String>) -> Input {
        Input {
            label: bench.machine.label.clone(),
            source: source.into(),
            bench,
            conformance: Matrix::Absent {
                reason: NO_MATRIX.to_owned(),
            },
        }
    }

    /// The same input with a conformance matrix.
    pub fn with_conformance(mut self, matrix: Conformance, source: impl Into<String>) -> Input {
        self.conformance = Matrix::Present {
            source: source.into(),
            matrix,
        };
        self
    }

    /// The conformance matrix, if there is one.
    pub fn matrix(&self) -> Option<&Conformance> {
        match &self.conformance {
            Matrix::Present { matrix, .. } => Some(matrix),
            Matrix::Absent { .. } => None,
        }
    }
}

/// Reads a benchmark bundle and its conformance matrix.
///
/// # Errors
/// Either file cannot be read or is malformed; the error names the file
/// and the field.
pub fn read_input(bench: &Path, conformance: ConformanceSource) -> Result<Input, BundleError> {
    let b = read_bench(bench)?;
    let input = Input::new(b, shown(bench));
    match conformance {
        ConformanceSource::Beside => {
            let p = bench
                .parent()
                .unwrap_or(Path::new("."))
                .join("conformance.json");
            if p.exists() {
                let m = read_conformance(&p)?;
                Ok(input.with_conformance(m, shown(&p)))
            } else {
                Ok(input)
            }
        }
        ConformanceSource::File(p) => {
            let m = read_conformance(&p)?;
            Ok(input.with_conformance(m, shown(&p)))
        }
        ConformanceSource::Absent(reason) => Ok(Input {
            conformance: Matrix::Absent { reason },
            ..input
        }),
    }
}

/// A path as shown on the page: relative to the current directory when
/// it lies below it.
pub fn shown(p: &Path) -> String {
    if let Ok(cwd) = std::env::current_dir()
        && let Ok(rel) = p.strip_prefix(&cwd)
    {
        return rel.display().to_string();
    }
    p.display().to_string()
}

/// Makes the labels unique: a label two bundles share gets its bundle's
/// date, and if that is shared too, a number.
pub fn disambiguate(inputs: &mut [Input]) {
    let labels: Vec<String> = inputs
        .iter()
        .map(|i| i.bench.machine.label.clone())
        .collect();
    for (i, input) in inputs.iter_mut().enumerate() {
        let shared = labels.iter().filter(|l| **l == labels[i]).count() > 1;
        input.label = if shared {
            format!(
                "{} ({})",
                labels[i],
                crate::fmt::date(&input.bench.machine.date)
            )
        } else {
            labels[i].clone()
        };
    }
    let now: Vec<String> = inputs.iter().map(|i| i.label.clone()).collect();
    for (i, input) in inputs.iter_mut().enumerate() {
        let same: Vec<usize> = (0..now.len()).filter(|&j| now[j] == now[i]).collect();
        if same.len() > 1 {
            let n = same.iter().position(|&j| j == i).unwrap_or(0) + 1;
            input.label = format!("{} #{n}", now[i]);
        }
    }
}
