//! Counters: perf-event counters per machine, scenario and subject.

use maud::{Markup, html};
use static_call_bundle::{Figure, Instrument, Metric, Per};

use super::parts::{key, na};
use super::{Block, Page, Section};
use crate::fmt;
use crate::input::Input;
use crate::model::{self, Subject, why};

pub(crate) const SECTION: Section = Section {
    id: "counters",
    title: "Counters",
    intro: Some(
        "perf-event counters: hardware (cycles, instructions, branch misses) around the call loops, software (task clock, context switches, page faults) around updates and loads. A counter the machine does not offer is shown with the error `perf_event_open` gave; — marks a subject the scenario does not measure.",
    ),
    blocks: &[Block::Custom(body)],
};

/// Where a counters row goes: scenario rank, sites, counter, per.
type CounterRank = (usize, Option<u64>, Metric, Per);

/// A row of a counters table.
enum CounterRow {
    /// Figures of one scenario, site count and counter.
    Taken(String, Option<u64>, Metric, Per),
    /// A counter that could not be opened: scenario, counter, reason.
    Missing(String, Metric, String),
}

fn body(p: &Page<'_>) -> Markup {
    let order = model::scenarios(p.inputs);
    html! { @for i in p.inputs { (machine(i, p.subjects, &order)) } }
}

/// One machine's counters table.
fn machine(i: &Input, subjects: &[Subject], order: &[String]) -> Markup {
    let rank = |sc: &str| order.iter().position(|x| x == sc).unwrap_or(usize::MAX);
    let b = &i.bench;
    let figs: Vec<&Figure> = b
        .figures
        .iter()
        .filter(|f| f.instrument == Instrument::PerfEvent)
        .collect();
    let missing: Vec<_> = b
        .missing
        .iter()
        .filter(|m| m.instrument == Instrument::PerfEvent)
        .collect();
    if figs.is_empty() && missing.is_empty() {
        return html! {
            h3 { (i.label) }
            p class="nodata" { "No perf-event counter: " (why(b, "*", None, Metric::Cycles, Instrument::PerfEvent)) "." }
        };
    }
    let cols: Vec<&str> = subjects
        .iter()
        .filter(|sub| sub.implementation || figs.iter().any(|f| f.subject == sub.name))
        .map(|sub| sub.name.as_str())
        .collect();
    let mut rows: Vec<(CounterRank, CounterRow)> = Vec::new();
    for f in &figs {
        let k = (rank(&f.scenario), f.sites, f.metric, f.per);
        if !rows
            .iter()
            .any(|(rk, r)| *rk == k && matches!(r, CounterRow::Taken(sc, ..) if *sc == f.scenario))
        {
            rows.push((
                k,
                CounterRow::Taken(f.scenario.clone(), f.sites, f.metric, f.per),
            ));
        }
    }
    for m in &missing {
        let covered = figs
            .iter()
            .any(|f| f.scenario == m.scenario && f.metric == m.metric);
        let dup = rows.iter().any(|(_, r)| {
            matches!(r, CounterRow::Missing(sc, mt, re) if *sc == m.scenario && *mt == m.metric && *re == m.reason)
        });
        if !covered && !dup {
            rows.push((
                (rank(&m.scenario), None, m.metric, Per::Call),
                CounterRow::Missing(m.scenario.clone(), m.metric, m.reason.clone()),
            ));
        }
    }
    rows.sort_by_key(|r| r.0);
    let cell = |sc: &str, sites: Option<u64>, metric: Metric, per: Per, c: &str| {
        let f = figs.iter().find(|f| {
            f.scenario == sc
                && f.sites == sites
                && f.metric == metric
                && f.per == per
                && f.subject == c
        });
        let measured_here = b.figures.iter().any(|f| f.scenario == sc && f.subject == c);
        html! {
            @match f {
                Some(f) => td class="num" { (fmt::value(f.metric, f.value)) },
                None if !measured_here => td class="num" { "—" },
                None => (na(&why(b, sc, Some(c), metric, Instrument::PerfEvent))),
            }
        }
    };
    let who = |sc: &str, metric: Metric, reason: &str| {
        let subs: Vec<&str> = missing
            .iter()
            .filter(|x| x.scenario == sc && x.metric == metric && x.reason == reason)
            .filter_map(|x| x.subject.as_deref())
            .collect();
        if subs.is_empty() {
            String::new()
        } else {
            format!("{}: ", subs.join(", "))
        }
    };
    html! {
        h3 { (i.label) }
        table class="counters" {
            thead {
                tr {
                    th { "scenario" } th { "sites" } th { "counter" }
                    @for c in &cols { th { (key(c)) (c) } }
                }
            }
            tbody {
                @for (_, row) in &rows {
                    @match row {
                        CounterRow::Taken(sc, sites, metric, per) => tr {
                            td { (sc) }
                            td class="num" { (sites.map_or("—".to_owned(), fmt::thousands)) }
                            td { (metric.name()) " per " (per.name()) }
                            @for c in &cols { (cell(sc, *sites, *metric, *per, c)) }
                        },
                        CounterRow::Missing(sc, metric, reason) => tr {
                            td { (if sc == "*" { "every scenario" } else { sc }) }
                            td class="num" { "—" }
                            td { (metric.name()) }
                            td class="na" colspan=(cols.len()) { small { (who(sc, *metric, reason)) (reason) } }
                        },
                    }
                }
            }
        }
    }
}
