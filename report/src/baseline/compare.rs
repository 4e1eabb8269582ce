//! Judging each figure of the current bundle against the baseline's.

use std::collections::BTreeMap;

use static_call_bundle::{
    BenchBundle, Figure, Instrument, Metric, Mode, Per, Statistic, control, stats,
};

use super::machine::{differences, machine_of, same_machine};
use super::{
    Change, Comparison, Floor, Key, Method, OtherMachine, Side, Thresholds, Verdict, percent,
};
use crate::fmt as f;
use crate::input::Input;

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
