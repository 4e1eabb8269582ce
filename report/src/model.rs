//! Looking figures up in bundles, and the subjects across bundles.

use static_call_bundle::{
    BenchBundle, Figure, Instrument, Metric, Per, SubjectKind, control, scenario,
};

use crate::input::Input;

/// Said of a figure a bundle neither has nor gives a reason for.
pub const NOT_MEASURED: &str = "not measured in this bundle";

/// What one figure is: everything but its subject and site count.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub struct Measure {
    /// The scenario.
    pub scenario: &'static str,
    /// The metric.
    pub metric: Metric,
    /// What it is per.
    pub per: Per,
    /// What took it.
    pub instrument: Instrument,
}

impl Measure {
    /// A measure.
    pub const fn new(
        scenario: &'static str,
        metric: Metric,
        per: Per,
        instrument: Instrument,
    ) -> Measure {
        Measure {
            scenario,
            metric,
            per,
            instrument,
        }
    }

    /// Wall time per call, criterion.
    pub const fn call_wall(scenario: &'static str) -> Measure {
        Measure::new(scenario, Metric::WallTime, Per::Call, Instrument::Criterion)
    }

    /// Instructions per call, callgrind.
    pub const fn call_instr(scenario: &'static str) -> Measure {
        Measure::new(
            scenario,
            Metric::Instructions,
            Per::Call,
            Instrument::Callgrind,
        )
    }

    /// Wall time per `per`, criterion.
    pub const fn wall(scenario: &'static str, per: Per) -> Measure {
        Measure::new(scenario, Metric::WallTime, per, Instrument::Criterion)
    }

    /// One figure of this measure.
    pub fn get<'a>(
        &self,
        b: &'a BenchBundle,
        subject: &str,
        sites: Option<u64>,
    ) -> Option<&'a Figure> {
        b.figures
            .iter()
            .find(|f| self.holds(f) && f.subject == subject && f.sites == sites)
    }

    /// Whether a figure is of this measure. A wall time of the suite's own
    /// timer (version 2 bundles: interleaved rounds, single updates) stands
    /// where a version 1 bundle has criterion's.
    pub fn holds(&self, f: &Figure) -> bool {
        f.scenario == self.scenario
            && f.metric == self.metric
            && f.per == self.per
            && (f.instrument == self.instrument
                || (self.instrument == Instrument::Criterion && f.instrument == Instrument::Timer))
    }

    /// Every figure of this measure for one subject, by site count.
    pub fn all<'a>(&self, b: &'a BenchBundle, subject: &str) -> Vec<&'a Figure> {
        let mut v: Vec<&Figure> = b
            .figures
            .iter()
            .filter(|f| self.holds(f) && f.subject == subject)
            .collect();
        v.sort_by_key(|f| f.sites);
        v
    }

    /// The figure at the largest site count for one subject.
    pub fn largest<'a>(&self, b: &'a BenchBundle, subject: &str) -> Option<&'a Figure> {
        self.all(b, subject).into_iter().next_back()
    }

    /// Why a bundle lacks a figure of this measure (for `subject`, or any).
    pub fn why(&self, b: &BenchBundle, subject: Option<&str>) -> String {
        why(b, self.scenario, subject, self.metric, self.instrument)
    }
}

/// The stated reason a figure is missing, or [`NOT_MEASURED`].
pub fn why(
    b: &BenchBundle,
    scen: &str,
    subject: Option<&str>,
    metric: Metric,
    instrument: Instrument,
) -> String {
    let fits = |m: &&static_call_bundle::Missing, sc: &str, exact_subject: bool| {
        m.scenario == sc
            && m.metric == metric
            && m.instrument == instrument
            && if exact_subject {
                subject.is_some() && m.subject.as_deref() == subject
            } else {
                m.subject.is_none()
            }
    };
    let found = b
        .missing
        .iter()
        .find(|m| fits(m, scen, true))
        .or_else(|| b.missing.iter().find(|m| fits(m, scen, false)))
        .or_else(|| b.missing.iter().find(|m| fits(m, "*", true)))
        .or_else(|| b.missing.iter().find(|m| fits(m, "*", false)));
    match found {
        Some(m) => m.reason.clone(),
        None if b.run.mode == static_call_bundle::Mode::Quick => {
            format!("{NOT_MEASURED} (a quick run)")
        }
        None => NOT_MEASURED.to_owned(),
    }
}

/// A subject as the page shows it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Subject {
    /// Its name.
    pub name: String,
    /// An implementation (not a control).
    pub implementation: bool,
    /// A peer: another published mechanism measured beside the
    /// implementations (the bundle's `SubjectKind::Peer`), marked so on the
    /// page.
    pub peer: bool,
    /// One line on what it is.
    pub description: String,
}

/// Every subject of every bundle: those of the first bundle in its order,
/// then the others'. Subjects only named by figures are added too.
///
/// Whether a subject is an implementation comes from the bundles alone:
/// its [`SubjectKind`] in a bundle's subject list, so a new design needs no
/// edit here. A subject named only by figures, absent from every bundle's
/// subject list, is not known to be an implementation and is shown as a
/// control (no summary row, no targets, no description).
pub fn subjects(inputs: &[Input]) -> Vec<Subject> {
    let mut v: Vec<Subject> = Vec::new();
    for i in inputs {
        for s in &i.bench.subjects {
            if !v.iter().any(|x| x.name == s.name) {
                v.push(Subject {
                    name: s.name.clone(),
                    implementation: s.kind == SubjectKind::Implementation,
                    peer: s.kind == SubjectKind::Peer,
                    description: s.description.clone(),
                });
            }
        }
    }
    for i in inputs {
        for f in &i.bench.figures {
            if !v.iter().any(|x| x.name == f.subject) {
                v.push(Subject {
                    name: f.subject.clone(),
                    // Not in any subject list: not known to be one.
                    implementation: false,
                    peer: false,
                    description: String::new(),
                });
            }
        }
    }
    v
}

/// The colour of a subject, the same in every chart. The built-in designs
/// and controls have fixed colours; any other name (a new design, which
/// the bundles alone make an implementation) gets one of a fallback
/// palette, disjoint from those, chosen by a hash of its name.
pub fn color(name: &str) -> &'static str {
    match name {
        "inline-patch" => "#d9480f",
        "trampoline" => "#1c7ed6",
        "indirect" => "#7048e8",
        "plain-indirect" => "#2b8a3e",
        control::DIRECT => "#343a40",
        control::FN_POINTER => "#0ca678",
        control::DYN_TRAIT => "#e64980",
        control::OPTION_FN => "#f59f00",
        control::DIRECT_AA => "#868e96",
        control::CALL_MEM_INDIRECT => "#66a80f",
        control::LFENCE_INDIRECT => "#5f3dc4",
        other => {
            const MORE: [&str; 5] = ["#5c940d", "#c2255c", "#1098ad", "#862e9c", "#e8590c"];
            let h = other
                .bytes()
                .fold(0usize, |a, c| a.wrapping_mul(31).wrapping_add(c as usize));
            MORE[h % MORE.len()]
        }
    }
}

/// The scenarios to show, in report order: the known ones, then any
/// other a bundle names, sorted.
pub fn scenarios(inputs: &[Input]) -> Vec<String> {
    let mut v: Vec<String> = scenario::ALL.iter().map(|(s, _)| (*s).to_owned()).collect();
    let mut extra: Vec<String> = inputs
        .iter()
        .flat_map(|i| i.bench.figures.iter().map(|f| f.scenario.clone()))
        .filter(|s| scenario::describe(s).is_none())
        .collect();
    extra.sort();
    extra.dedup();
    v.extend(extra);
    v
}

/// The value of a figure divided by the direct call's, same measure and
/// site count: the median of the per-round ratios where the figure has
/// them (version 2), else the quotient of the two figures.
pub fn ratio_to_direct(b: &BenchBundle, f: &Figure) -> Option<f64> {
    if f.subject == control::DIRECT {
        return None;
    }
    if let Some(r) = &f.ratio
        && r.reference == control::DIRECT
    {
        return Some(r.value);
    }
    let d = b.figures.iter().find(|d| {
        d.subject == control::DIRECT
            && d.scenario == f.scenario
            && d.metric == f.metric
            && d.per == f.per
            && d.instrument == f.instrument
            && d.sites == f.sites
    })?;
    (d.value > 0.0).then(|| f.value / d.value)
}
