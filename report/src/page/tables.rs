//! All figures: every figure of every bundle, by scenario, and the
//! figures not taken.

use maud::{Markup, html};
use static_call_bundle::{BenchBundle, Figure, Instrument, Metric, Per, control, scenario};

use super::parts::{code_text, key};
use super::{Block, Page, Section};
use crate::fmt;
use crate::input::Input;
use crate::model::{self, Subject, why};

pub(crate) const SECTION: Section = Section {
    id: "tables",
    title: "All figures",
    intro: Some(
        "Every figure of every bundle, by scenario: value and which statistic it is (median, mean, exact count, single measurement, formula), its confidence interval where there is one, and its ratio to the direct call (same scenario, metric and instrument; for call cost, the median of the per-round ratios). A latency's footnote gives its p99, max and first (cold) update. A machine without a figure says why.",
    ),
    blocks: &[Block::Custom(body)],
};

type RowKey = (Instrument, Metric, Per, usize, String, Option<u64>);

fn row_keys(inputs: &[Input], subjects: &[Subject], sc: &str) -> Vec<RowKey> {
    let mut keys: Vec<RowKey> = Vec::new();
    for i in inputs {
        for f in i.bench.figures.iter().filter(|f| f.scenario == sc) {
            let idx = subjects
                .iter()
                .position(|s| s.name == f.subject)
                .unwrap_or(usize::MAX);
            let k = (
                f.instrument,
                f.metric,
                f.per,
                idx,
                f.subject.clone(),
                f.sites,
            );
            if !keys.contains(&k) {
                keys.push(k);
            }
        }
    }
    keys.sort();
    keys
}

fn find<'a>(b: &'a BenchBundle, sc: &str, k: &RowKey) -> Option<&'a Figure> {
    b.figures.iter().find(|f| {
        f.scenario == sc
            && f.instrument == k.0
            && f.metric == k.1
            && f.per == k.2
            && f.subject == k.4
            && f.sites == k.5
    })
}

/// The `data-figure` attribute of a figure's value cell in the All figures
/// tables: `machine|scenario|instrument|metric|per|subject|sites` (sites
/// `-` where the figure has none), one per figure of every bundle.
pub fn figure_key(machine: &str, f: &Figure) -> String {
    format!(
        "{machine}|{}|{}|{}|{}|{}|{}",
        f.scenario,
        f.instrument.name(),
        f.metric.name(),
        f.per.name(),
        f.subject,
        f.sites.map_or("-".to_owned(), |n| n.to_string())
    )
}

/// Which statistic a figure is: as it says (version 2), or what its
/// instrument gave in version 1.
fn statistic_of(f: &Figure) -> &'static str {
    match f.statistic {
        Some(st) => st.name(),
        None => match f.instrument {
            Instrument::Criterion => "mean",
            Instrument::Callgrind => "exact count",
            Instrument::PerfEvent => "mean",
            Instrument::Registry => "registry's count",
            Instrument::Timer | Instrument::Memory => "single measurement",
        },
    }
}

fn body(p: &Page<'_>) -> Markup {
    html! {
        @for sc in model::scenarios(p.inputs) {
            (scenario_table(p, &sc))
        }
        h3 id="not-taken" { "Figures not taken" }
        (all_missing(p.inputs))
    }
}

/// One scenario's heading, table, notes and figures not taken.
fn scenario_table(p: &Page<'_>, sc: &str) -> Markup {
    let inputs = p.inputs;
    let keys = row_keys(inputs, p.subjects, sc);
    let not_taken = scenario_missing(inputs, sc);
    let of_sc = || {
        inputs
            .iter()
            .flat_map(|i| i.bench.figures.iter())
            .filter(|f| f.scenario == sc)
    };
    let has_sites = keys.iter().any(|k| k.5.is_some());
    let has_ci = of_sc().any(|f| f.interval.is_some());
    let has_direct = of_sc().any(|f| f.subject == control::DIRECT);
    let per_machine = 1 + usize::from(has_ci) + usize::from(has_direct);
    let cols = 1 + usize::from(has_sites) + per_machine * inputs.len();
    // Each distinct note once, numbered in order of first use.
    let mut notes: Vec<&str> = Vec::new();
    for k in &keys {
        for i in inputs {
            if let Some(n) = find(&i.bench, sc, k).and_then(|f| f.note.as_deref())
                && !notes.contains(&n)
            {
                notes.push(n);
            }
        }
    }
    let note_no = |f: &Figure| {
        f.note
            .as_deref()
            .and_then(|n| notes.iter().position(|x| *x == n))
            .map(|x| x + 1)
    };
    // A row of its own before each (instrument, metric, per) group.
    let group = |k: &RowKey| (k.0, k.1, k.2);
    html! {
        h3 id={ "table-" (sc.replace('/', "-")) } {
            (sc)
            @if let Some(d) = scenario::describe(sc) {
                " " small { "— " (code_text(d)) }
            }
        }
        @if keys.is_empty() {
            p class="nodata" {
                "No figure in any bundle: "
                @if !not_taken.0 { (model::NOT_MEASURED) } @else { "see below" }
                "."
            }
        } @else {
            table class="figures" {
                thead {
                    tr {
                        th rowspan="2" { "subject" }
                        @if has_sites { th rowspan="2" { "sites" } }
                        @for i in inputs { th colspan=(per_machine) class="machine" { (i.label) } }
                    }
                    tr {
                        @for _ in inputs {
                            th { "value" }
                            @if has_ci { th { "interval" } }
                            @if has_direct { th { "÷ direct" } }
                        }
                    }
                }
                tbody {
                    @for (n, k) in keys.iter().enumerate() {
                        @if n == 0 || group(&keys[n - 1]) != group(k) {
                            tr class="group" {
                                th colspan=(cols) {
                                    (k.1.name()) " per " (k.2.name()) " "
                                    small { "· " (k.0.name()) " · " (k.1.unit()) }
                                }
                            }
                        }
                        tr {
                            td { (key(&k.4)) (k.4) }
                            @if has_sites {
                                td class="num" { (k.5.map_or("—".to_owned(), fmt::thousands)) }
                            }
                            @for i in inputs {
                                @match find(&i.bench, sc, k) {
                                    Some(f) => {
                                        td class="num" data-figure=(figure_key(&i.label, f)) {
                                            (fmt::value(f.metric, f.value))
                                            @if let Some(n) = note_no(f) { sup { (n) } }
                                            " " small class="stat" { (statistic_of(f)) }
                                        }
                                        @if has_ci {
                                            td class="num ci" {
                                                @match f.interval {
                                                    Some(iv) => {
                                                        (fmt::bare(f.metric, iv.low)) " – " (fmt::bare(f.metric, iv.high))
                                                        @if let Some(n) = f.samples {
                                                            " " small { "(" (format!("{:.0}", iv.level * 100.0)) "%, n=" (n) ")" }
                                                        }
                                                    },
                                                    None => "—",
                                                }
                                            }
                                        }
                                        @if has_direct {
                                            td class="num" {
                                                @if f.subject == control::DIRECT {
                                                    "reference"
                                                } @else {
                                                    (model::ratio_to_direct(&i.bench, f).map_or("—".to_owned(), fmt::ratio))
                                                }
                                            }
                                        }
                                    },
                                    None => td class="na" colspan=(per_machine) {
                                        small { (why(&i.bench, sc, Some(&k.4), k.1, k.0)) }
                                    },
                                }
                            }
                        }
                    }
                }
            }
            @if !notes.is_empty() {
                ol class="notes" { @for n in &notes { li { (n) } } }
            }
        }
        (not_taken.1)
    }
}

/// The missing entries of one scenario, grouped by machine and reason:
/// whether there are any, and the list.
fn scenario_missing(inputs: &[Input], sc: &str) -> (bool, Markup) {
    let mut lines: Vec<(&str, String, String)> = Vec::new();
    for i in inputs {
        let mut groups: Vec<(String, Vec<String>)> = Vec::new();
        for m in i.bench.missing.iter().filter(|m| m.scenario == sc) {
            let what = format!(
                "{} ({}){}",
                m.metric.name(),
                m.instrument.name(),
                m.subject
                    .as_ref()
                    .map_or(String::new(), |s| format!(" for {s}"))
            );
            push_grouped(&mut groups, m.reason.clone(), what);
        }
        for (reason, whats) in groups {
            lines.push((&i.label, whats.join(", "), reason));
        }
    }
    let list = html! {
        @if !lines.is_empty() {
            p class="nt" { "Not taken:" }
            ul class="absent" {
                @for (label, whats, reason) in &lines {
                    li { b { (label) } ": " (whats) " — " (reason) }
                }
            }
        }
    };
    (!lines.is_empty(), list)
}

/// Adds `what` to the group `head` (made when new), once.
fn push_grouped(groups: &mut Vec<(String, Vec<String>)>, head: String, what: String) {
    match groups.iter_mut().find(|g| g.0 == head) {
        Some(g) => {
            if !g.1.contains(&what) {
                g.1.push(what);
            }
        }
        None => groups.push((head, vec![what])),
    }
}

fn all_missing(inputs: &[Input]) -> Markup {
    html! {
        @for i in inputs {
            h4 { (i.label) }
            @if i.bench.missing.is_empty() {
                p class="note" { "Every figure this bundle tried to take was taken." }
            } @else {
                ul class="missing" {
                    @for (head, whats) in missing_groups(&i.bench) {
                        li {
                            span class="reason" { (head) }
                            br;
                            small { (whats.join(" · ")) }
                        }
                    }
                }
            }
        }
    }
}

/// A bundle's missing figures grouped by instrument and reason.
fn missing_groups(b: &BenchBundle) -> Vec<(String, Vec<String>)> {
    let mut groups: Vec<(String, Vec<String>)> = Vec::new();
    for m in &b.missing {
        let what = format!(
            "{} {}{}",
            if m.scenario == "*" {
                "every scenario:"
            } else {
                &m.scenario
            },
            m.metric.name(),
            m.subject
                .as_ref()
                .map_or(String::new(), |s| format!(" ({s})"))
        );
        push_grouped(
            &mut groups,
            format!("{}: {}", m.instrument.name(), m.reason),
            what,
        );
    }
    groups
}
