//! Figures: a dot chart of one measure per subject, and line charts of
//! one measure against a count (sites, threads), each with its legend and
//! what the machines lack.

use maud::{Markup, html};
use static_call_bundle::{Figure, Metric, control};

use super::parts::{absences, legend, no_data};
use super::{Lines, Page, target};
use crate::charts::{self, DotChart, DotPoint, DotRow, LineChart, Point, Series};
use crate::fmt;
use crate::model::{Measure, color};

/// The tick labels of a metric's axis.
fn tick(m: Metric) -> fn(f64) -> String {
    match m {
        Metric::WallTime | Metric::TaskClock => fmt::time_tick,
        _ => fmt::count_tick,
    }
}

/// One measure per subject, a dot per machine, the direct call of the
/// first machine dashed.
pub(crate) fn dot_figure(p: &Page<'_>, m: Measure, id: &str, title: &str) -> Markup {
    let inputs = p.inputs;
    let expected: Vec<&str> = p
        .subjects
        .iter()
        .filter(|sub| {
            sub.implementation
                || inputs
                    .iter()
                    .any(|i| m.get(&i.bench, &sub.name, None).is_some())
        })
        .map(|sub| sub.name.as_str())
        .collect();
    let rows: Vec<DotRow> = expected
        .iter()
        .map(|&n| DotRow {
            label: n.to_owned(),
            color: color(n),
            points: inputs
                .iter()
                .enumerate()
                .filter_map(|(k, i)| {
                    let f = m.get(&i.bench, n, None)?;
                    Some(DotPoint {
                        style: k,
                        value: f.value,
                        interval: f.interval.map(|iv| (iv.low, iv.high)),
                        text: fmt::bare(f.metric, f.value),
                    })
                })
                .collect(),
        })
        .collect();
    let reference = m.get(&inputs[0].bench, control::DIRECT, None).map(|f| {
        let label = if inputs.len() > 1 {
            format!("direct call on {}", inputs[0].label)
        } else {
            "direct call".to_owned()
        };
        (f.value, label)
    });
    let chart = DotChart {
        id: id.to_owned(),
        title: title.to_owned(),
        x_label: format!(
            "{} per {} ({})",
            m.metric.name(),
            m.per.name(),
            m.metric.unit()
        ),
        x_tick: tick(m.metric),
        styles: inputs.len(),
        rows,
        reference,
    };
    let with_points: Vec<usize> = (0..inputs.len())
        .filter(|&k| {
            expected
                .iter()
                .any(|n| m.get(&inputs[k].bench, n, None).is_some())
        })
        .collect();
    html! {
        figure id={ "fig-" (id) } {
            figcaption { (title) }
            @match charts::dot_chart(&chart) {
                Some(svg) => {
                    (svg)
                    @if inputs.len() > 1 { (legend(inputs, &[], &with_points)) }
                    (absences(inputs, &expected, m, &|k, n| m.get(&inputs[k].bench, n, None).is_some()))
                },
                None => (no_data(inputs, m)),
            }
        }
    }
}

/// A line chart in its figure: the legend of the subjects `present` and
/// the machines with a line, and what each machine lacks among `expected`.
pub(crate) fn lines_figure(
    p: &Page<'_>,
    chart: &LineChart,
    m: Measure,
    present: &[&str],
    expected: &[&str],
) -> Markup {
    let inputs = p.inputs;
    let mut ks: Vec<usize> = chart.series.iter().map(|x| x.style).collect();
    ks.dedup();
    html! {
        figure id={ "fig-" (chart.id) } {
            figcaption { (chart.title) }
            @match charts::line_chart(chart) {
                Some(svg) => {
                    (svg)
                    (legend(inputs, present, &ks))
                    (absences(inputs, expected, m, &|k, n| !m.all(&inputs[k].bench, n).is_empty()))
                },
                None => (no_data(inputs, m)),
            }
        }
    }
}

/// The series of `m` for the subjects `expected`, one per subject and
/// machine, x from each figure's site count by `x`; and the subjects with
/// a series, in the order of `expected`.
pub(crate) fn series<'e>(
    p: &Page<'_>,
    m: Measure,
    expected: &[&'e str],
    x: fn(u64) -> f64,
) -> (Vec<Series>, Vec<&'e str>) {
    let mut series = Vec::new();
    let mut present: Vec<&str> = Vec::new();
    for (k, input) in p.inputs.iter().enumerate() {
        for &n in expected {
            let figs: Vec<&Figure> = m
                .all(&input.bench, n)
                .into_iter()
                .filter(|f| f.sites.is_some())
                .collect();
            if figs.is_empty() {
                continue;
            }
            if !present.contains(&n) {
                present.push(n);
            }
            series.push(Series {
                name: n.to_owned(),
                color: color(n),
                style: k,
                points: figs
                    .iter()
                    .map(|f| Point {
                        x: x(f.sites.unwrap_or(0)),
                        y: f.value,
                        interval: f.interval.map(|iv| (iv.low, iv.high)),
                    })
                    .collect(),
            });
        }
    }
    present.sort_by_key(|n| expected.iter().position(|e| e == n));
    (series, present)
}

/// One measure against the number of sites, log x.
pub(crate) fn sites_figure(p: &Page<'_>, c: &Lines) -> Markup {
    let m = c.m;
    let expected: Vec<&str> = p
        .subjects
        .iter()
        .filter(|sub| {
            sub.implementation
                || p.inputs
                    .iter()
                    .any(|i| !m.all(&i.bench, &sub.name).is_empty())
        })
        .map(|sub| sub.name.as_str())
        .collect();
    let (series, present) = series(p, m, &expected, |n| n as f64);
    let values: Vec<f64> = series
        .iter()
        .flat_map(|s| s.points.iter().map(|p| p.y))
        .collect();
    let min = values.iter().copied().fold(f64::INFINITY, f64::min);
    let max = values.iter().copied().fold(0.0, f64::max);
    let y_log = min > 0.0 && (c.log || max / min >= 20.0);
    let chart = LineChart {
        id: c.id.to_owned(),
        title: c.title.to_owned(),
        x_label: "sites (log scale)".to_owned(),
        y_label: format!(
            "{} per {}{}",
            m.metric.name(),
            m.per.name(),
            if y_log { " (log scale)" } else { "" }
        ),
        x_tick: fmt::count_tick,
        y_tick: tick(m.metric),
        y_log,
        series,
        targets: c.targets.iter().map(target).collect(),
    };
    lines_figure(p, &chart, m, &present, &expected)
}
