//! "Changes against `<baseline>`": the first bundle's figures against the
//! baseline's, as a table sorted by change.

use maud::{Markup, html};

use super::mode;
use super::parts::key;
use crate::baseline::{self, Change, Comparison, Method, Side, Verdict};
use crate::fmt;

/// "; judged on [lo – hi], widened by the noise floor ±w (from)" when the
/// change's interval was widened by a noise floor, else nothing.
fn widened(r: &Change, lo: f64, hi: f64) -> String {
    r.floor.as_ref().map_or(String::new(), |fl| {
        format!(
            "; judged on [{} – {}], widened by the noise floor ±{} ({})",
            fmt::bare_ratio(lo),
            fmt::bare_ratio(hi),
            fmt::bare_ratio(fl.width),
            fl.from
        )
    })
}

/// How a change was judged, in words.
fn how(r: &Change) -> String {
    match (&r.method, r.judged_on) {
        (Method::Exact, _) => "exact counts: any difference is a change".to_owned(),
        (Method::Samples { current, baseline }, Some((lo, hi))) => {
            let (a, b) = r.interval.unwrap_or((lo, hi));
            format!(
                "[{} – {}] bootstrap 95% of the ratio of medians ({current} vs {baseline} values){}",
                fmt::bare_ratio(a),
                fmt::bare_ratio(b),
                widened(r, lo, hi)
            )
        }
        (Method::Intervals, Some((lo, hi))) => {
            format!(
                "[{} – {}] quotient of the two figures' intervals{}",
                fmt::bare_ratio(r.interval.map_or(lo, |i| i.0)),
                fmt::bare_ratio(r.interval.map_or(hi, |i| i.1)),
                widened(r, lo, hi)
            )
        }
        _ => String::new(),
    }
}

/// The row's class and its badge's words.
fn badge(r: &Change) -> (&'static str, &'static str) {
    match &r.verdict {
        Verdict::Regressed if r.fails() => ("regressed", "regressed past threshold"),
        v => (
            match v {
                Verdict::Regressed => "regressed",
                Verdict::Improved => "improved",
                Verdict::Unchanged => "unchanged",
                Verdict::NotJudged(_) => "notjudged",
            },
            v.name(),
        ),
    }
}

/// The remark after the badge: why it was not judged, or the change's own
/// remark; and its threshold.
fn remark(r: &Change) -> String {
    let mut remark = match &r.verdict {
        Verdict::NotJudged(why) => why.clone(),
        _ => r.remark.clone(),
    };
    if let Some(t) = r.threshold {
        let th = format!("threshold {}", fmt::trim(format!("{:.3}", t * 100.0)) + "%");
        remark = if remark.is_empty() {
            th
        } else {
            format!("{remark}; {th}")
        };
    }
    remark
}

/// One row of the baseline comparison.
fn change_row(r: &Change) -> Markup {
    let k = &r.key;
    let (class, badge) = badge(r);
    let remark = remark(r);
    html! {
        tr class=(class) {
            td {
                (k.scenario) " · " (key(&k.subject)) (k.subject)
                @if let Some(n) = k.sites { " · " (baseline::sites(n)) }
                br;
                small {
                    (k.metric.name()) " per " (k.per.name()) " · " (baseline::instrument_short(k.instrument))
                    @if let Some(s) = r.statistic { " · " (s.name()) }
                }
            }
            td class="num" { (fmt::value(k.metric, r.baseline)) }
            td class="num" { (fmt::value(k.metric, r.current)) }
            td class="num" { (baseline::ratio_text(r)) }
            td { small { (how(r)) } }
            td {
                span class={ "badge " (class) } { (badge) }
                @if !remark.is_empty() { " " small { (remark) } }
            }
        }
    }
}

fn change_table(id: &str, rows: &[&Change]) -> Markup {
    html! {
        table class="changes" id=(id) {
            thead {
                tr {
                    th { "figure" } th { "baseline" } th { "current" } th { "current ÷ baseline" }
                    th { "interval" } th { "verdict" }
                }
            }
            tbody { @for r in rows { (change_row(r)) } }
        }
    }
}

/// One side of the comparison: label, source, date, mode, commit.
fn side(x: &Side) -> Markup {
    html! {
        b { (x.label) } " (" code { (x.source) } ", " (fmt::date(&x.date)) ", " (mode(x.mode)) " run, commit " code { (x.commit) } ")"
    }
}

/// The "Changes against `<baseline>`" section: the first bundle's figures
/// against the baseline's, as a table sorted by change.
pub(crate) fn section(c: &Comparison) -> Markup {
    let fails = c.failures().count();
    let changed: Vec<&Change> = c
        .rows
        .iter()
        .filter(|r| matches!(r.verdict, Verdict::Regressed | Verdict::Improved))
        .collect();
    let rest = |name: &str| -> Vec<&Change> {
        c.rows.iter().filter(|r| r.verdict.name() == name).collect()
    };
    let plural = fails != 1;
    html! {
        section id="changes" {
            h2 { "Changes against " code { (c.baseline.source) } }
            p class="intro" {
                "Every figure of " (side(&c.current)) " against the same figure of the baseline " (side(&c.baseline))
                ": the same scenario, subject, sites, metric, per and instrument, on the same machine (" (c.machine) "). The ratio is current ÷ baseline."
            }
            @if !c.differences.is_empty() {
                div class="warn" id="baseline-differences" {
                    b { "The two runs differ" } " (same machine; a change below may come from these):"
                    ul {
                        @for d in &c.differences {
                            li { (d.field) ": " code { (d.current) } " here, " code { (d.baseline) } " in the baseline" }
                        }
                    }
                }
            }
            @if !c.unchecked.is_empty() {
                p class="note" { "Machine identity not fully checked: " (c.unchecked.join("; ")) "." }
            }
            p class="tally" {
                "Figures: "
                span class="badge regressed" { (c.count("regressed")) " regressed" } " "
                span class="badge improved" { (c.count("improved")) " improved" } " "
                span class="badge unchanged" { (c.count("unchanged")) " unchanged" } " "
                span class="badge notjudged" { (c.count("not judged")) " not judged" }
                " · " (c.only_current.len()) " only in current, " (c.only_baseline.len()) " only in baseline · thresholds: "
                @if c.thresholds.is_empty() {
                    "none (report-only)"
                } @else {
                    (c.thresholds.describe()) " — " (fails) " figure" @if plural { "s" } " past "
                    @if plural { "their thresholds" } @else { "its threshold" }
                }
            }
            @if changed.is_empty() {
                p class="nodata" id="changes-none" { "No figure regressed or improved." }
            } @else {
                (change_table("changes-table", &changed))
            }
            @for (id, name) in [("changes-unchanged", "unchanged"), ("changes-not-judged", "not judged")] {
                @let rows = rest(name);
                @if !rows.is_empty() {
                    details { summary { (rows.len()) " " (name) } (change_table(id, &rows)) }
                }
            }
            @for (id, what, keys) in [("changes-only-current", "only in current", &c.only_current), ("changes-only-baseline", "only in baseline", &c.only_baseline)] {
                @if !keys.is_empty() {
                    details id=(id) {
                        summary { (keys.len()) " " (what) }
                        ul class="absent" { @for k in keys { li { (k.describe()) } } }
                    }
                }
            }
            p class="note" {
                "How to read it: " b { "regressed" } " when the whole 95% interval of current ÷ baseline lies above 1 (above 1 + the metric's threshold when one is given), " b { "improved" } " when it lies wholly below 1, " b { "unchanged" } " when it includes 1 — no change these two runs can show. A call cost's interval is widened first by the current run's noise floor (how far its A/A control, " code { "direct-aa" } ", reaches from 1). Medians are compared with a bootstrap interval resampling both bundles' raw values; criterion's means by the quotient of their intervals. Instruction counts (callgrind) and byte counts are exact: any difference is a change. A figure with neither samples nor an interval, or one reading of resident memory, is shown and not judged. Sorted by change: regressed, improved, unchanged, not judged; within each, the largest change first."
            }
        }
    }
}
