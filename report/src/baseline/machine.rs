//! Which machine a bundle comes from, and what else differs between two
//! runs of one machine.

use std::fmt;
use std::fmt::Write as _;

use static_call_bundle::{BenchBundle, Mode};

use crate::input::Input;

/// A baseline of another machine, refused: both machines and what
/// differs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OtherMachine {
    /// The current bundle's source and machine.
    pub current: String,
    /// The baseline's source and machine.
    pub baseline: String,
    /// Each differing field: `CPU family/model/stepping: family 26, … here, family 25, … in the baseline`.
    pub differs: Vec<String>,
}

impl fmt::Display for OtherMachine {
    fn fmt(&self, fm: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            fm,
            "the baseline {} is of another machine than {} ({}): a baseline must come from the same machine",
            self.baseline,
            self.current,
            self.differs.join("; ")
        )
    }
}

impl std::error::Error for OtherMachine {}

/// The machine of a bundle in one line: `AMD EPYC, 2 CPUs, AuthenticAMD
/// family 25, model 1, stepping 1`.
pub fn machine_of(b: &BenchBundle) -> String {
    let m = &b.machine;
    let mut s = format!("{}, {} CPUs", m.cpu_model, m.logical_cpus);
    if let Some(d) = &m.details {
        let _ = write!(s, ", {} {}", d.cpu_vendor, d.cpu_family_model_stepping);
    }
    s
}

/// The fields that say which machine a bundle comes from; `None` where
/// the bundle does not record it (version 1).
fn identity(b: &BenchBundle) -> [(&'static str, Option<String>); 4] {
    let m = &b.machine;
    let d = m.details.as_ref();
    [
        ("CPU model", Some(m.cpu_model.clone())),
        ("logical CPUs", Some(m.logical_cpus.to_string())),
        ("CPU vendor", d.map(|d| d.cpu_vendor.clone())),
        (
            "CPU family/model/stepping",
            d.map(|d| d.cpu_family_model_stepping.clone()),
        ),
    ]
}

/// Whether two bundles come from the same machine: the CPU model name and
/// count of logical CPUs, and where both record them the CPU vendor and
/// family/model/stepping. `Ok` holds what could not be compared.
///
/// # Errors
/// The fields that differ, each with both values.
pub fn same_machine(
    current: &BenchBundle,
    baseline: &BenchBundle,
) -> Result<Vec<String>, Vec<String>> {
    let (a, b) = (identity(current), identity(baseline));
    let mut differs = Vec::new();
    let mut unknown = Vec::new();
    for ((field, x), (_, y)) in a.iter().zip(&b) {
        match (x, y) {
            (Some(x), Some(y)) if x != y => {
                differs.push(format!("{field}: {x} here, {y} in the baseline"));
            }
            (Some(_), Some(_)) => {}
            (x, _) => unknown.push(format!(
                "{field}: not recorded in the {} bundle (version 1), not compared",
                if x.is_none() { "current" } else { "baseline" }
            )),
        }
    }
    if differs.is_empty() {
        Ok(unknown)
    } else {
        Err(differs)
    }
}

/// One side of the comparison, as the page names it.
#[derive(Debug, Clone, PartialEq)]
pub struct Side {
    /// Its label.
    pub label: String,
    /// Where it was read from.
    pub source: String,
    /// When it ran.
    pub date: String,
    /// Quick or full.
    pub mode: Mode,
    /// The commit it was built from.
    pub commit: String,
}

impl Side {
    pub(super) fn of(i: &Input) -> Side {
        Side {
            label: i.label.clone(),
            source: i.source.clone(),
            date: i.bench.machine.date.clone(),
            mode: i.bench.run.mode,
            commit: i.bench.machine.commit.clone(),
        }
    }
}

/// Something that differs between the two runs and is allowed (the
/// machine is the same): shown next to the comparison.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Difference {
    /// What differs (`mode`, `commit`, `kernel`, …).
    pub field: &'static str,
    /// The current run's value.
    pub current: String,
    /// The baseline's value.
    pub baseline: String,
}

pub(super) fn mode_name(m: Mode) -> &'static str {
    match m {
        Mode::Quick => "quick",
        Mode::Full => "full",
    }
}

pub(super) fn differences(c: &BenchBundle, b: &BenchBundle) -> Vec<Difference> {
    let detail = |x: &BenchBundle, g: fn(&static_call_bundle::MachineDetails) -> String| {
        x.machine
            .details
            .as_ref()
            .map_or_else(|| "not recorded (version 1)".to_owned(), g)
    };
    let pairs: Vec<(&'static str, String, String)> = vec![
        (
            "mode",
            mode_name(c.run.mode).into(),
            mode_name(b.run.mode).into(),
        ),
        ("commit", c.machine.commit.clone(), b.machine.commit.clone()),
        (
            "bundle version",
            c.version.to_string(),
            b.version.to_string(),
        ),
        ("kernel", c.machine.kernel.clone(), b.machine.kernel.clone()),
        (
            "spectre_v2",
            c.machine.spectre_v2.clone(),
            b.machine.spectre_v2.clone(),
        ),
        (
            "microcode",
            detail(c, |d| d.microcode.clone()),
            detail(b, |d| d.microcode.clone()),
        ),
        ("rustc", c.machine.rustc.clone(), b.machine.rustc.clone()),
        (
            "build profile",
            detail(c, |d| d.build_profile.clone()),
            detail(b, |d| d.build_profile.clone()),
        ),
        (
            "RUSTFLAGS",
            detail(c, |d| d.rustflags.clone()),
            detail(b, |d| d.rustflags.clone()),
        ),
    ];
    pairs
        .into_iter()
        .filter(|(_, x, y)| x != y)
        .map(|(field, current, baseline)| Difference {
            field,
            current,
            baseline,
        })
        .collect()
}
