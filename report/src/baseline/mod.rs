//! Regressions against a baseline bundle of the same machine.
//!
//! [`compare`] pairs every figure of the current bundle with the same
//! figure of the baseline (same scenario, subject, sites, metric, per and
//! instrument: a [`Key`]) and judges the ratio current ÷ baseline:
//!
//! * **Counts** (callgrind's exact instruction counts, byte and slot
//!   counts): exact, so any difference is a change.
//! * **Medians with samples** (call cost per round, single updates): the
//!   ratio of the two medians with a bootstrap 95% interval from both
//!   bundles' raw values ([`static_call_bundle::stats`], the benchmarks'
//!   own bootstrap); a call-cost interval is widened by the current run's
//!   noise floor, how far its A/A control (`direct-aa`) reaches from 1.
//! * **Means with an interval** (criterion, version 1 bundles): the
//!   quotient of the two intervals, the widest ratio they allow.
//! * Anything else (one reading of a noisy quantity, a point estimate with
//!   no interval) is shown and **not judged**.
//!
//! Verdict on the (widened) interval: **regressed** when all of it lies
//! above 1 (above 1 + the metric's threshold when one is given),
//! **improved** when all of it lies below 1, **unchanged** otherwise. Every
//! metric measured here is better lower.
//!
//! A baseline of another machine is refused ([`OtherMachine`]); another
//! mode, commit, kernel or build is allowed and listed in
//! [`Comparison::differences`].
//!
//! This file holds the model (keys, thresholds, verdicts, the comparison
//! and its text); `machine.rs` the identity of a machine and what else
//! differs; `compare.rs` the judging.
use std::collections::BTreeMap;
use std::fmt;
use std::fmt::Write as _;
use std::str::FromStr;

use static_call_bundle::{Figure, Instrument, Metric, Per, Statistic};

use crate::fmt as f;

mod compare;
mod machine;

pub use compare::{Pick, compare, judge, noise_floor, pick};
use machine::mode_name;
pub use machine::{Difference, OtherMachine, Side, machine_of, same_machine};

/// What makes two figures of two bundles the same figure.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub struct Key {
    /// The scenario.
    pub scenario: String,
    /// The implementation or control.
    pub subject: String,
    /// The site count (or the scenario's other x value).
    pub sites: Option<u64>,
    /// The metric.
    pub metric: Metric,
    /// What it is per.
    pub per: Per,
    /// What took it.
    pub instrument: Instrument,
}

impl Key {
    /// The key of a figure.
    pub fn of(fig: &Figure) -> Key {
        Key {
            scenario: fig.scenario.clone(),
            subject: fig.subject.clone(),
            sites: fig.sites,
            metric: fig.metric,
            per: fig.per,
            instrument: fig.instrument,
        }
    }

    /// `call/hot-1arg · inline-patch · wall time per call (timer)`, with
    /// `· 1,000 sites` where the figure has a site count.
    pub fn describe(&self) -> String {
        let mut s = format!("{} · {}", self.scenario, self.subject);
        if let Some(n) = self.sites {
            let _ = write!(s, " · {}", sites(n));
        }
        let _ = write!(
            s,
            " · {} per {} ({})",
            self.metric.name(),
            self.per.name(),
            instrument_short(self.instrument)
        );
        s
    }
}

/// `1 site`, `10,000 sites`.
pub fn sites(n: u64) -> String {
    format!("{} site{}", f::thousands(n), if n == 1 { "" } else { "s" })
}

/// A short name of an instrument (`timer`, `callgrind`).
pub fn instrument_short(i: Instrument) -> &'static str {
    match i {
        Instrument::Criterion => "criterion",
        Instrument::Callgrind => "callgrind",
        Instrument::PerfEvent => "perf-event",
        Instrument::Registry => "registry",
        Instrument::Timer => "timer",
        Instrument::Memory => "memory",
    }
}

/// The metric names `--fail-on-regression` takes, with their metrics.
pub const METRIC_NAMES: &[(&str, Metric)] = &[
    ("wall", Metric::WallTime),
    ("instructions", Metric::Instructions),
    ("cycles", Metric::Cycles),
    ("branch-misses", Metric::BranchMisses),
    ("task-clock", Metric::TaskClock),
    ("context-switches", Metric::ContextSwitches),
    ("page-faults", Metric::PageFaults),
    ("registry-bytes", Metric::RegistryBytes),
    ("code-bytes", Metric::CodeBytes),
    ("private-text-bytes", Metric::PrivateTextBytes),
    ("trap-table-slots", Metric::TrapTableSlots),
    ("resident-bytes", Metric::ResidentBytes),
];

fn metric_short(m: Metric) -> &'static str {
    METRIC_NAMES
        .iter()
        .find(|(_, x)| *x == m)
        .map_or("?", |(n, _)| n)
}

/// Per metric, how far above the baseline a figure may go before it
/// counts as regressed (a fraction: 0.05 is 5%); parsed from
/// `wall=5%,instructions=0`.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Thresholds(BTreeMap<Metric, f64>);

impl Thresholds {
    /// No thresholds: the comparison is report-only.
    pub fn none() -> Thresholds {
        Thresholds::default()
    }

    /// The threshold of a metric, if one was given.
    pub fn get(&self, m: Metric) -> Option<f64> {
        self.0.get(&m).copied()
    }

    /// Whether none was given.
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// `wall 5%, instructions 0%`.
    pub fn describe(&self) -> String {
        self.0
            .iter()
            .map(|(m, t)| format!("{} {}", metric_short(*m), percent(*t)))
            .collect::<Vec<_>>()
            .join(", ")
    }
}

pub(super) fn percent(t: f64) -> String {
    f::trim(format!("{:.3}", t * 100.0)) + "%"
}

/// A `--fail-on-regression` list that does not parse: what was wrong and
/// in which item.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ThresholdError {
    /// The item at fault (`walls=5%`), or the whole list.
    pub item: String,
    /// What was wrong with it.
    pub problem: String,
}

impl fmt::Display for ThresholdError {
    fn fmt(&self, fm: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(fm, "`{}`: {}", self.item, self.problem)
    }
}

impl std::error::Error for ThresholdError {}

impl FromStr for Thresholds {
    type Err = ThresholdError;

    /// `METRIC=PERCENT[,METRIC=PERCENT…]`: a percentage with `%`
    /// (`5%`, `2.5%`) or `0`; each metric once.
    fn from_str(s: &str) -> Result<Thresholds, ThresholdError> {
        let err = |item: &str, problem: String| ThresholdError {
            item: item.to_owned(),
            problem,
        };
        if s.trim().is_empty() {
            return Err(err(
                s,
                "empty: give METRIC=PERCENT[,METRIC=PERCENT…], e.g. wall=5%,instructions=0".into(),
            ));
        }
        let mut map = BTreeMap::new();
        for item in s.split(',') {
            let item = item.trim();
            let Some((name, value)) = item.split_once('=') else {
                return Err(err(item, "expected METRIC=PERCENT, e.g. wall=5%".into()));
            };
            let (name, value) = (name.trim(), value.trim());
            let Some(&(_, metric)) = METRIC_NAMES.iter().find(|(n, _)| *n == name) else {
                return Err(err(
                    item,
                    format!(
                        "unknown metric `{name}` (known: {})",
                        METRIC_NAMES
                            .iter()
                            .map(|(n, _)| *n)
                            .collect::<Vec<_>>()
                            .join(", ")
                    ),
                ));
            };
            let t = if let Some(p) = value.strip_suffix('%') {
                p.trim().parse::<f64>().ok().map(|p| p / 100.0)
            } else if value.parse::<f64>() == Ok(0.0) {
                Some(0.0)
            } else {
                return Err(err(
                    item,
                    format!("`{value}` is not a percentage: write it with % (5%), or 0"),
                ));
            };
            let t = match t {
                Some(t) if t.is_finite() && t >= 0.0 => t,
                _ => {
                    return Err(err(
                        item,
                        format!("`{value}` is not a percentage of 0% or more"),
                    ));
                }
            };
            if map.insert(metric, t).is_some() {
                return Err(err(item, format!("`{name}` is given twice")));
            }
        }
        Ok(Thresholds(map))
    }
}

/// A verdict on one figure.
#[derive(Debug, Clone, PartialEq)]
pub enum Verdict {
    /// All of the (widened) interval lies above 1 (+ the threshold).
    Regressed,
    /// All of it lies below 1.
    Improved,
    /// It includes 1 (or lies above 1 within the threshold): no change
    /// these two runs can show.
    Unchanged,
    /// Not judged, and why.
    NotJudged(String),
}

impl Verdict {
    /// `regressed`, `improved`, `unchanged`, `not judged`.
    pub fn name(&self) -> &'static str {
        match self {
            Verdict::Regressed => "regressed",
            Verdict::Improved => "improved",
            Verdict::Unchanged => "unchanged",
            Verdict::NotJudged(_) => "not judged",
        }
    }

    /// The order of the groups on the page.
    pub fn rank(&self) -> u8 {
        match self {
            Verdict::Regressed => 0,
            Verdict::Improved => 1,
            Verdict::Unchanged => 2,
            Verdict::NotJudged(_) => 3,
        }
    }
}

/// How a ratio was judged.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Method {
    /// Exact counts: any difference is a change.
    Exact,
    /// A bootstrap 95% interval of the ratio of the medians, resampling
    /// both bundles' raw values.
    Samples {
        /// Values of the current figure.
        current: usize,
        /// Values of the baseline's.
        baseline: usize,
    },
    /// The quotient of the two figures' own intervals
    /// (`[low ÷ high′, high ÷ low′]`).
    Intervals,
    /// Not judged.
    None,
}

/// The noise floor a call-cost interval was widened by.
#[derive(Debug, Clone, PartialEq)]
pub struct Floor {
    /// How far the A/A control's interval reaches from 1.
    pub width: f64,
    /// Whose: `call/hot-1arg` (the scenario's own A/A control) or the
    /// largest of the run's, when the scenario has none.
    pub from: String,
}

/// One figure compared.
#[derive(Debug, Clone, PartialEq)]
pub struct Change {
    /// Which figure.
    pub key: Key,
    /// Its statistic (the current figure's).
    pub statistic: Option<Statistic>,
    /// The current value.
    pub current: f64,
    /// The baseline's.
    pub baseline: f64,
    /// current ÷ baseline; `None` when the baseline is zero and the
    /// current value is not.
    pub ratio: Option<f64>,
    /// The 95% interval of the ratio, when there is one.
    pub interval: Option<(f64, f64)>,
    /// The noise floor it was widened by (call cost only).
    pub floor: Option<Floor>,
    /// The interval judged: `interval` widened by the floor.
    pub judged_on: Option<(f64, f64)>,
    /// The metric's threshold, when one was given.
    pub threshold: Option<f64>,
    /// How it was judged.
    pub method: Method,
    /// The verdict.
    pub verdict: Verdict,
    /// A remark on the verdict (within the threshold, from zero), or
    /// empty.
    pub remark: String,
}

impl Change {
    /// Whether it regressed past a threshold that was given: these make
    /// the command exit with status 3.
    pub fn fails(&self) -> bool {
        self.verdict == Verdict::Regressed && self.threshold.is_some()
    }

    /// The size of the change: `|ln(ratio)|`, infinite from zero.
    pub fn magnitude(&self) -> f64 {
        match self.ratio {
            Some(r) if r > 0.0 && r.is_finite() => r.ln().abs(),
            Some(_) => 0.0,
            None => f64::INFINITY,
        }
    }
}

/// A whole comparison: the rows sorted by change, and what could not be
/// paired.
#[derive(Debug, Clone, PartialEq)]
pub struct Comparison {
    /// The current run.
    pub current: Side,
    /// The baseline.
    pub baseline: Side,
    /// The machine (the same for both).
    pub machine: String,
    /// What differs between the runs and is allowed.
    pub differences: Vec<Difference>,
    /// Identity fields that could not be compared.
    pub unchecked: Vec<String>,
    /// The thresholds given (none: report-only).
    pub thresholds: Thresholds,
    /// Every paired figure: regressed first, then improved, unchanged,
    /// not judged; within each, the largest change first.
    pub rows: Vec<Change>,
    /// Figures only the current bundle has.
    pub only_current: Vec<Key>,
    /// Figures only the baseline has.
    pub only_baseline: Vec<Key>,
}

impl Comparison {
    /// How many rows have this verdict (by name).
    pub fn count(&self, name: &str) -> usize {
        self.rows
            .iter()
            .filter(|r| r.verdict.name() == name)
            .count()
    }

    /// The rows that regressed past a threshold.
    pub fn failures(&self) -> impl Iterator<Item = &Change> {
        self.rows.iter().filter(|r| r.fails())
    }

    /// The tally in one line: `3 regressed, 1 improved, 300 unchanged, 20
    /// not judged; 5 only in current, 2 only in baseline`.
    pub fn tally(&self) -> String {
        format!(
            "{} regressed, {} improved, {} unchanged, {} not judged; {} only in current, {} only in baseline",
            self.count("regressed"),
            self.count("improved"),
            self.count("unchanged"),
            self.count("not judged"),
            self.only_current.len(),
            self.only_baseline.len()
        )
    }

    /// The comparison as text: the tally, what differs, then every
    /// regressed and improved figure, largest change first.
    pub fn text(&self) -> String {
        let mut s = format!(
            "changes against {} ({}; {} run, commit {}, {}): {}\n",
            self.baseline.label,
            self.baseline.source,
            mode_name(self.baseline.mode),
            self.baseline.commit,
            self.baseline.date,
            self.tally()
        );
        let _ = writeln!(
            s,
            "thresholds: {}",
            if self.thresholds.is_empty() {
                "none (report-only)".to_owned()
            } else {
                self.thresholds.describe()
            }
        );
        for d in &self.differences {
            let _ = writeln!(
                s,
                "differs: {}: {} here, {} in the baseline",
                d.field, d.current, d.baseline
            );
        }
        for r in self
            .rows
            .iter()
            .filter(|r| matches!(r.verdict, Verdict::Regressed | Verdict::Improved))
        {
            let _ = writeln!(
                s,
                "{}{}: {}",
                r.verdict.name(),
                if r.fails() { " past its threshold" } else { "" },
                line(r)
            );
        }
        s
    }
}

/// One row as a line of text: the figure, both values, the ratio, the
/// interval judged and the remark.
pub fn line(r: &Change) -> String {
    format!(
        "{}: {} -> {}, {}{}{}",
        r.key.describe(),
        f::value(r.key.metric, r.baseline),
        f::value(r.key.metric, r.current),
        ratio_text(r),
        match r.judged_on {
            Some((lo, hi)) => format!(" judged on [{} – {}]", f::bare_ratio(lo), f::bare_ratio(hi)),
            None => String::new(),
        },
        if r.remark.is_empty() {
            String::new()
        } else {
            format!("; {}", r.remark)
        }
    )
}

/// `1.200×`, or `from 0` when the baseline is zero.
pub fn ratio_text(r: &Change) -> String {
    match r.ratio {
        Some(x) => f::ratio(x),
        None => "from 0".to_owned(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn thresholds_parse() {
        let t: Thresholds = "wall=5%,instructions=0".parse().unwrap();
        assert_eq!(t.get(Metric::WallTime), Some(0.05));
        assert_eq!(t.get(Metric::Instructions), Some(0.0));
        assert_eq!(t.get(Metric::Cycles), None);
        assert_eq!(t.describe(), "wall 5%, instructions 0%");
        let t: Thresholds = " wall = 2.5% , code-bytes=0% ".parse().unwrap();
        assert_eq!(t.get(Metric::WallTime), Some(0.025));
        for (bad, says) in [
            ("", "empty"),
            ("wall", "expected METRIC=PERCENT"),
            ("walls=5%", "unknown metric `walls`"),
            ("wall=5", "not a percentage"),
            ("wall=-5%", "0% or more"),
            ("wall=x%", "0% or more"),
            ("wall=5%,wall=6%", "given twice"),
            ("wall=5%,", "expected METRIC=PERCENT"),
        ] {
            let e = bad.parse::<Thresholds>().unwrap_err().to_string();
            assert!(e.contains(says), "{bad:?}: {e}");
        }
    }
}
