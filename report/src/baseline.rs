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

use std::collections::BTreeMap;
use std::fmt;
use std::fmt::Write as _;
use std::str::FromStr;

use static_call_bundle::{
    BenchBundle, Figure, Instrument, Metric, Mode, Per, Statistic, control, stats,
};

use crate::fmt as f;
use crate::input::Input;

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

fn percent(t: f64) -> String {
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
    fn of(i: &Input) -> Side {
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

fn mode_name(m: Mode) -> &'static str {
    match m {
        Mode::Quick => "quick",
        Mode::Full => "full",
    }
}

fn differences(c: &BenchBundle, b: &BenchBundle) -> Vec<Difference> {
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

/// The current run's noise floor for a call scenario: how far its A/A
/// control's ratio interval reaches from 1; where the scenario has no A/A
/// control, the largest of the run's.
pub fn noise_floor(b: &BenchBundle, scenario: &str) -> Option<Floor> {
    let width = |fig: &Figure| {
        fig.ratio.as_ref().map(|r| {
            (r.interval.low - 1.0)
                .abs()
                .max((r.interval.high - 1.0).abs())
        })
    };
    let aa = |fig: &&Figure| {
        fig.subject == control::DIRECT_AA && fig.metric == Metric::WallTime && fig.per == Per::Call
    };
    if let Some(w) = b
        .figures
        .iter()
        .filter(aa)
        .find(|fig| fig.scenario == scenario)
        .and_then(width)
    {
        return Some(Floor {
            width: w,
            from: scenario.to_owned(),
        });
    }
    b.figures
        .iter()
        .filter(aa)
        .filter_map(|fig| width(fig).map(|w| (w, fig.scenario.clone())))
        .max_by(|x, y| x.0.total_cmp(&y.0))
        .map(|(width, sc)| Floor {
            width,
            from: format!("{sc}, the run's largest ({scenario} has no A/A control)"),
        })
}

/// Whether a figure is a count, compared exactly: callgrind's exact
/// counts, counts computed by a formula, and byte or slot counts read
/// once (resident memory excepted: one reading of it is noise).
fn is_count(fig: &Figure) -> bool {
    match fig.statistic {
        Some(Statistic::Exact | Statistic::Formula) => true,
        Some(Statistic::Single) => fig.metric != Metric::ResidentBytes,
        Some(_) => false,
        None => matches!(fig.instrument, Instrument::Callgrind | Instrument::Registry),
    }
}

/// Judges one pair of figures; `cur_bundle` gives the noise floor.
pub fn judge(
    cur: &Figure,
    base: &Figure,
    cur_bundle: &BenchBundle,
    thresholds: &Thresholds,
) -> Change {
    let key = Key::of(cur);
    let threshold = thresholds.get(cur.metric);
    let t = threshold.unwrap_or(0.0);
    let (c, b) = (cur.value, base.value);
    let mut row = Change {
        key,
        statistic: cur.statistic,
        current: c,
        baseline: b,
        ratio: if b != 0.0 {
            Some(c / b)
        } else if c == 0.0 {
            Some(1.0)
        } else {
            None
        },
        interval: None,
        floor: None,
        judged_on: None,
        threshold,
        method: Method::None,
        verdict: Verdict::Unchanged,
        remark: String::new(),
    };
    let not_judged = |mut row: Change, why: String| {
        row.verdict = Verdict::NotJudged(why);
        row
    };
    if !c.is_finite() || !b.is_finite() || c < 0.0 || b < 0.0 {
        return not_judged(row, "a value is not a finite non-negative number".into());
    }
    if let (Some(x), Some(y)) = (cur.statistic, base.statistic)
        && x != y
    {
        return not_judged(
            row,
            format!(
                "different statistics: {} here, {} in the baseline",
                x.name(),
                y.name()
            ),
        );
    }
    if is_count(cur) && is_count(base) {
        row.method = Method::Exact;
        let same = (c - b).abs() <= 1e-9 * c.abs().max(b.abs()).max(1.0);
        row.verdict = if same {
            Verdict::Unchanged
        } else if c < b {
            Verdict::Improved
        } else if b == 0.0 {
            row.remark = format!("{} from 0", f::delta(c));
            Verdict::Regressed
        } else if c / b > 1.0 + t {
            row.remark = f::delta(c - b);
            Verdict::Regressed
        } else {
            row.remark = format!("{}, within the {} threshold", f::delta(c - b), percent(t));
            Verdict::Unchanged
        };
        if row.verdict == Verdict::Improved {
            row.remark = f::delta(c - b);
        }
        return row;
    }
    if b == 0.0 {
        return not_judged(row, "the baseline's value is 0: no ratio".into());
    }
    let samples = cur.statistic == Some(Statistic::Median)
        && base.statistic == Some(Statistic::Median)
        && !cur.raw.is_empty()
        && !base.raw.is_empty();
    if samples {
        let mut rng = stats::Rng::new(stats::REPORT_SEED);
        let iv = stats::bootstrap_ratio_of_medians(&cur.raw, &base.raw, &mut rng)
            .map(|i| (i.low, i.high));
        row.interval = iv;
        row.method = Method::Samples {
            current: cur.raw.len(),
            baseline: base.raw.len(),
        };
    } else if let (Some(x), Some(y)) = (cur.interval, base.interval)
        && y.low > 0.0
    {
        row.interval = Some((x.low / y.high, x.high / y.low));
        row.method = Method::Intervals;
    } else {
        let why = if cur.metric == Metric::ResidentBytes {
            "one reading of resident memory each, no interval: not judged".to_owned()
        } else {
            "no samples and no interval: a point estimate is not judged".to_owned()
        };
        return not_judged(row, why);
    }
    let Some((lo, hi)) = row.interval else {
        return not_judged(row, "no interval could be computed".into());
    };
    if cur.metric == Metric::WallTime && cur.per == Per::Call {
        row.floor = noise_floor(cur_bundle, &cur.scenario);
    }
    let w = row.floor.as_ref().map_or(0.0, |fl| fl.width);
    let (lo, hi) = (lo - w, hi + w);
    row.judged_on = Some((lo, hi));
    row.verdict = if lo > 1.0 + t {
        Verdict::Regressed
    } else if hi < 1.0 {
        Verdict::Improved
    } else {
        if lo > 1.0 {
            row.remark = format!("all above 1, within the {} threshold", percent(t));
        }
        Verdict::Unchanged
    };
    if cur.metric == Metric::WallTime && cur.per == Per::Call && row.floor.is_none() {
        row.remark = join(
            &row.remark,
            "no A/A control in the current bundle: not widened",
        );
    }
    row
}

fn join(a: &str, b: &str) -> String {
    if a.is_empty() {
        b.to_owned()
    } else {
        format!("{a}; {b}")
    }
}

/// Compares the current bundle with the baseline, figure by figure.
///
/// # Errors
/// The baseline comes from another machine.
pub fn compare(
    current: &Input,
    baseline: &Input,
    thresholds: &Thresholds,
) -> Result<Comparison, OtherMachine> {
    let (cb, bb) = (&current.bench, &baseline.bench);
    let unchecked = same_machine(cb, bb).map_err(|differs| OtherMachine {
        current: format!("{} ({})", current.source, machine_of(cb)),
        baseline: format!("{} ({})", baseline.source, machine_of(bb)),
        differs,
    })?;
    let mut base: BTreeMap<Key, &Figure> = BTreeMap::new();
    for fig in &bb.figures {
        base.entry(Key::of(fig)).or_insert(fig);
    }
    let mut seen: BTreeMap<Key, ()> = BTreeMap::new();
    let mut rows = Vec::new();
    let mut only_current = Vec::new();
    for fig in &cb.figures {
        let k = Key::of(fig);
        if seen.insert(k.clone(), ()).is_some() {
            continue;
        }
        match base.get(&k) {
            Some(b) => rows.push(judge(fig, b, cb, thresholds)),
            None => only_current.push(k),
        }
    }
    let only_baseline: Vec<Key> = base
        .keys()
        .filter(|k| !seen.contains_key(*k))
        .cloned()
        .collect();
    rows.sort_by(|x, y| {
        x.verdict
            .rank()
            .cmp(&y.verdict.rank())
            .then(y.magnitude().total_cmp(&x.magnitude()))
            .then_with(|| x.key.cmp(&y.key))
    });
    Ok(Comparison {
        current: Side::of(current),
        baseline: Side::of(baseline),
        machine: machine_of(cb),
        differences: differences(cb, bb),
        unchecked,
        thresholds: thresholds.clone(),
        rows,
        only_current,
        only_baseline,
    })
}

/// What `--baseline-among` found among candidate bundles.
#[derive(Debug)]
pub enum Pick<'a> {
    /// A bundle of the same machine and mode: judged with the thresholds.
    Match(&'a Input),
    /// Only bundles of the same machine in another mode: the newest,
    /// compared report-only.
    OtherMode(&'a Input),
    /// None of the same machine; the candidates' machines.
    None(Vec<String>),
}

/// Picks the baseline for `current` among `candidates`: the newest of the
/// same machine and mode, else the newest of the same machine, else none.
pub fn pick<'a>(current: &BenchBundle, candidates: &'a [Input]) -> Pick<'a> {
    let newest = |mode: Option<Mode>| {
        candidates
            .iter()
            .filter(|c| same_machine(current, &c.bench).is_ok())
            .filter(|c| mode.is_none_or(|m| c.bench.run.mode == m))
            .max_by(|x, y| x.bench.machine.date.cmp(&y.bench.machine.date))
    };
    if let Some(c) = newest(Some(current.run.mode)) {
        Pick::Match(c)
    } else if let Some(c) = newest(None) {
        Pick::OtherMode(c)
    } else {
        Pick::None(
            candidates
                .iter()
                .map(|c| format!("{}: {}", c.source, machine_of(&c.bench)))
                .collect(),
        )
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
