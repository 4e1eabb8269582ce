//! The polluted indirect predictor (`call/polluted-<P>`): one site, the
//! same target every call, P other indirect jumps between calls. A line
//! chart of each subject's ratio to the direct call against P, and a table
//! of those ratios, P across; the crossover the benchmark derived is quoted
//! from its figures.

use maud::{Markup, html};
use static_call_bundle::{Figure, scenario};

use super::Page;
use super::figures::lines_figure;
use super::parts::subject_head;
use crate::charts::{LineChart, Point, Series};
use crate::fmt;
use crate::model::{Measure, color};

/// One scenario of the series: its P and name.
fn levels() -> &'static [(u64, &'static str)] {
    &scenario::CALL_POLLUTED
}

/// The figure of `subject` at pressure level `sc` on a machine.
fn figure<'b>(
    b: &'b static_call_bundle::BenchBundle,
    sc: &'static str,
    subject: &str,
) -> Option<&'b Figure> {
    Measure::call_wall(sc).get(b, subject, None)
}

/// The subjects with a polluted figure on some machine, in page order.
fn subjects<'p>(p: &'p Page<'_>) -> Vec<&'p str> {
    p.subjects
        .iter()
        .filter(|s| {
            p.inputs.iter().any(|i| {
                levels()
                    .iter()
                    .any(|(_, sc)| figure(&i.bench, sc, &s.name).is_some())
            })
        })
        .map(|s| s.name.as_str())
        .collect()
}

/// The block: heading, chart, table per machine, crossovers.
pub(crate) fn block(p: &Page<'_>) -> Markup {
    let names = subjects(p);
    html! {
        h3 id="call-polluted" {
            "call/polluted-<P> " small { "— one site, the same target every call, P other indirect jumps (each with its own changing target) between two calls; each call timed alone, the no-call window subtracted; P = " (levels().iter().map(|(n, _)| n.to_string()).collect::<Vec<_>>().join(", ")) }
        }
        @if names.is_empty() {
            p class="note" { "No machine has the polluted-predictor figures (bundles made before the scenario existed)." }
        } @else {
            (chart(p, &names))
            @for i in p.inputs { (table(p, i, &names)) }
        }
    }
}

/// Ratio to direct against P (P > 0: the x axis is logarithmic; P = 0 is
/// in the table).
fn chart(p: &Page<'_>, names: &[&str]) -> Markup {
    let mut series = Vec::new();
    let mut present: Vec<&str> = Vec::new();
    for (k, i) in p.inputs.iter().enumerate() {
        for &n in names {
            let points: Vec<Point> = levels()
                .iter()
                .filter(|(lvl, _)| *lvl > 0)
                .filter_map(|(lvl, sc)| {
                    let r = figure(&i.bench, sc, n)?.ratio.as_ref()?;
                    Some(Point {
                        x: *lvl as f64,
                        y: r.value,
                        interval: Some((r.interval.low, r.interval.high)),
                    })
                })
                .collect();
            if points.is_empty() {
                continue;
            }
            if !present.contains(&n) {
                present.push(n);
            }
            series.push(Series {
                name: n.to_owned(),
                color: color(n),
                style: k,
                points,
            });
        }
    }
    let chart = LineChart {
        id: "call-polluted-ratio".to_owned(),
        title: "call/polluted-<P>: ratio to the direct call against P, the other indirect jumps between two calls".to_owned(),
        x_label: "P: other indirect jumps between calls (log scale)".to_owned(),
        y_label: "ratio to direct (median of per-round ratios)".to_owned(),
        x_tick: fmt::count_tick,
        y_tick: |v| format!("{v:.1}×"),
        y_log: false,
        series,
        targets: Vec::new(),
    };
    // What a machine lacks is judged on the first level with P > 0 that
    // some bundle has (a quick run measures fewer levels).
    let shown = levels()
        .iter()
        .filter(|(lvl, _)| *lvl > 0)
        .map(|(_, sc)| *sc)
        .find(|sc| {
            p.inputs
                .iter()
                .any(|i| names.iter().any(|n| figure(&i.bench, sc, n).is_some()))
        })
        .unwrap_or(levels()[1].1);
    lines_figure(p, &chart, Measure::call_wall(shown), &present, names)
}

/// One machine's table: subjects down, P across, the ratio to direct and
/// its interval; below it, the crossovers the run derived.
fn table(p: &Page<'_>, i: &crate::input::Input, names: &[&str]) -> Markup {
    let crossovers: Vec<(&str, &str)> = names
        .iter()
        .filter_map(|n| {
            levels().iter().find_map(|(_, sc)| {
                let note = figure(&i.bench, sc, n)?.note.as_deref()?;
                let at = note.find("crossover")?;
                Some((*n, &note[at..]))
            })
        })
        .collect();
    html! {
        table class="point ratios" id={ "polluted-" (i.label.replace(' ', "-")) } {
            caption { (i.label) ": call/polluted-<P>, ratio to the direct call (median of per-round ratios, bootstrap 95% interval), each call timed alone and the no-call window subtracted" }
            thead { tr { th { "subject" } @for (lvl, _) in levels() { th { "P = " (fmt::count(*lvl as f64)) } } } }
            tbody {
                @for n in names {
                    tr {
                        (subject_head(p, n))
                        @for (_, sc) in levels() {
                            @match figure(&i.bench, sc, n) {
                                Some(f) => td {
                                    @match &f.ratio {
                                        Some(r) => { (fmt::ratio(r.value)) br; small { "[" (fmt::bare_ratio(r.interval.low)) " – " (fmt::bare_ratio(r.interval.high)) "]" } },
                                        None => small { "the reference" },
                                    }
                                },
                                None => td class="na" { small { "—" } },
                            }
                        }
                    }
                }
            }
        }
        @for (n, text) in &crossovers {
            p class="note" { strong { (n) } ": " (text) }
        }
    }
}
