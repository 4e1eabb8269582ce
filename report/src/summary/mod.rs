//! The summary: per implementation, the figures that decide between them
//! (cells, this file), and the project's targets, met or missed
//! (`targets.rs`); `render.rs` draws the section.

use maud::{Markup, html};
use static_call_bundle::{BenchBundle, Outcome, control, scenario};

use crate::fmt;
use crate::input::{Input, Matrix};
use crate::model::Measure;

mod render;
mod targets;

pub(crate) use render::SECTION;
pub use render::{kernel_indirect, noise_floor};
pub use targets::{
    Foreign, TARGETS, Target, Verdict, evaluate, foreign_pair, ratio_of_medians_interval,
    target_rows,
};

/// A summary cell: a value with a line below it, or a reason.
enum Cell {
    Value(String, String),
    /// Counts, build, whether a cell failed.
    Conformance(String, String, bool),
    Reason(String),
}

impl Cell {
    fn html(&self) -> Markup {
        html! {
            @match self {
                Cell::Value(v, sub) => td {
                    span class="v" { (v) }
                    @if !sub.is_empty() { br; small { (sub) } }
                },
                Cell::Conformance(v, sub, failed) => td class={ "conf" @if *failed { " failed" } } {
                    span class="v" { (v) } br; small { (sub) }
                },
                Cell::Reason(r) => td class="na" { small { (r) } },
            }
        }
    }
}

pub(crate) const HOT1: &str = scenario::CALL_HOT_1;
pub(crate) const BIG: u64 = 10_000;

fn call_wall(b: &BenchBundle, s: &str) -> Cell {
    ratio_cell(b, HOT1, s)
}

/// A cold call's cost: the ratio to direct in the largest cold scenario the
/// bundle has (65,536 sites in a full run, 16,384 in a quick one), the
/// scenario named below the value.
fn cold_call(b: &BenchBundle, s: &str) -> Cell {
    let Some(sc) = scenario::CALL_COLD
        .iter()
        .rev()
        .map(|(_, sc)| *sc)
        .find(|sc| Measure::call_wall(sc).get(b, s, None).is_some())
    else {
        return Cell::Reason(Measure::call_wall(scenario::CALL_COLD_64K).why(b, Some(s)));
    };
    match ratio_cell(b, sc, s) {
        Cell::Value(v, sub) => Cell::Value(v, format!("{sc}; {sub}")),
        c => c,
    }
}

/// A subject's call cost in scenario `sc` as its ratio to direct.
fn ratio_cell(b: &BenchBundle, sc: &'static str, s: &str) -> Cell {
    let m = Measure::call_wall(sc);
    match (m.get(b, s, None), m.get(b, control::DIRECT, None)) {
        (Some(f), Some(d)) if f.ratio.is_some() => {
            let r = f.ratio.as_ref().expect("checked");
            Cell::Value(
                format!(
                    "{} [{} – {}]",
                    fmt::ratio(r.value),
                    fmt::bare_ratio(r.interval.low),
                    fmt::bare_ratio(r.interval.high)
                ),
                format!(
                    "median of {} per-round ratios; {} vs {} (medians)",
                    r.raw.len(),
                    fmt::time_ns(f.value),
                    fmt::time_ns(d.value)
                ),
            )
        }
        (Some(f), Some(d)) if d.value > 0.0 => Cell::Value(
            fmt::ratio(f.value / d.value),
            format!("{} vs {}", fmt::time_ns(f.value), fmt::time_ns(d.value)),
        ),
        (None, _) => Cell::Reason(m.why(b, Some(s))),
        _ => Cell::Reason(format!("direct: {}", m.why(b, Some(control::DIRECT)))),
    }
}

fn call_instr(b: &BenchBundle, s: &str) -> Cell {
    let m = Measure::call_instr(HOT1);
    match (m.get(b, s, None), m.get(b, control::DIRECT, None)) {
        (Some(f), Some(d)) if d.value > 0.0 => Cell::Value(
            format!(
                "{} ({})",
                fmt::count(f.value),
                fmt::delta(f.value - d.value)
            ),
            format!(
                "{} of direct's {}",
                fmt::ratio(f.value / d.value),
                fmt::count(d.value)
            ),
        ),
        (None, _) => Cell::Reason(m.why(b, Some(s))),
        _ => Cell::Reason(format!("direct: {}", m.why(b, Some(control::DIRECT)))),
    }
}

/// A caller's p99.99 per call while the key is updated 1,000 times a
/// second and its p99 while it is updated flat out (`callers/…`, from the
/// figures' histograms).
fn callers_tail(b: &BenchBundle, s: &str) -> Cell {
    let m = crate::threads::callers_measure;
    let q = |sc, p: f64| {
        m(sc)
            .get(b, s, Some(1))
            .and_then(|f| f.histogram.as_ref())
            .map(|h| h.quantile(p))
    };
    match (
        q(scenario::CALLERS_1KHZ, 0.9999),
        q(scenario::CALLERS_FLAT_OUT, 0.99),
    ) {
        (Some(a), Some(z)) => Cell::Value(
            format!("{} · {}", fmt::time_ns(a), fmt::time_ns(z)),
            "p99.99 at 1,000 updates/s · p99 flat out".to_owned(),
        ),
        _ => Cell::Reason(m(scenario::CALLERS_1KHZ).why(b, Some(s))),
    }
}

fn at_sites(b: &BenchBundle, m: Measure, s: &str, sites: Option<u64>) -> Cell {
    let f = match sites {
        Some(n) => m.get(b, s, Some(n)),
        None => m.largest(b, s),
    };
    match f {
        Some(f) => Cell::Value(
            fmt::value(f.metric, f.value),
            f.sites
                .map(|n| {
                    format!(
                        "{} site{}",
                        fmt::thousands(n),
                        if n == 1 { "" } else { "s" }
                    )
                })
                .unwrap_or_default(),
        ),
        None => Cell::Reason(m.why(b, Some(s))),
    }
}

fn memory(b: &BenchBundle, m: Measure, s: &str) -> Cell {
    match (m.largest(b, s), m.get(b, s, Some(1))) {
        (Some(f), one) => Cell::Value(
            fmt::count(f.value),
            match (f.sites, one) {
                (Some(n), Some(o)) if n != 1 => {
                    format!(
                        "{} sites; {} at 1 site",
                        fmt::thousands(n),
                        fmt::count(o.value)
                    )
                }
                (Some(n), _) => format!(
                    "{} site{}",
                    fmt::thousands(n),
                    if n == 1 { "" } else { "s" }
                ),
                (None, _) => String::new(),
            },
        ),
        (None, _) => Cell::Reason(m.why(b, Some(s))),
    }
}

fn conformance(input: &Input, s: &str) -> Cell {
    match &input.conformance {
        Matrix::Absent { reason } => Cell::Reason(reason.clone()),
        Matrix::Present { matrix, .. } => {
            let cells: Vec<_> = matrix
                .cells
                .iter()
                .filter(|c| c.implementation == s)
                .collect();
            if cells.is_empty() {
                return Cell::Reason("not in the conformance matrix".into());
            }
            let n = |o: Outcome| cells.iter().filter(|c| c.outcome == o).count();
            Cell::Conformance(
                format!(
                    "{} pass / {} fail / {} skip",
                    n(Outcome::Pass),
                    n(Outcome::Fail),
                    n(Outcome::Skip)
                ),
                format!("{} build", matrix.profile),
                n(Outcome::Fail) > 0,
            )
        }
    }
}
