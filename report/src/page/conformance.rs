//! Conformance: the matrix of scenarios by implementation, per machine.

use maud::{Markup, html};
use static_call_bundle::{Conformance, Outcome};

use super::parts::key;
use super::{Block, Page, Section};
use crate::fmt;
use crate::input::{Input, Matrix};

pub(crate) const SECTION: Section = Section {
    id: "conformance",
    title: "Conformance",
    intro: Some(
        "The conformance suite: one catalogue of scenarios run over every implementation. Each cell says pass, fail or skip; hover a cell for what it printed. Skips and failures show their reason in the cell.",
    ),
    blocks: &[Block::Custom(body)],
};

fn body(p: &Page<'_>) -> Markup {
    html! {
        @for i in p.inputs {
            h3 { (i.label) }
            @match &i.conformance {
                Matrix::Absent { reason } => p class="nodata" { (reason) "." },
                Matrix::Present { matrix, source } => (matrix_of(i, matrix, source)),
            }
        }
    }
}

/// The first line of `t`, cut to `n` characters (`…` when cut).
fn short(t: &str, n: usize) -> String {
    let one = t.lines().next().unwrap_or("");
    if one.chars().count() > n || t.lines().count() > 1 {
        let cut: String = one.chars().take(n).collect();
        format!("{}…", cut.trim_end())
    } else {
        one.to_owned()
    }
}

fn matrix_of(i: &Input, m: &Conformance, source: &str) -> Markup {
    let n = |o: Outcome| m.cells.iter().filter(|c| c.outcome == o).count();
    let mut cols: Vec<&str> = m.implementations.iter().map(String::as_str).collect();
    let mut rows: Vec<&str> = m.scenarios.iter().map(String::as_str).collect();
    for c in &m.cells {
        if !cols.contains(&c.implementation.as_str()) {
            cols.push(&c.implementation);
        }
        if !rows.contains(&c.scenario.as_str()) {
            rows.push(&c.scenario);
        }
    }
    let fails: Vec<_> = m
        .cells
        .iter()
        .filter(|c| c.outcome == Outcome::Fail)
        .collect();
    html! {
        p class="tally" {
            span class="badge met" { (n(Outcome::Pass)) " pass" } " "
            span class="badge missed" { (n(Outcome::Fail)) " fail" } " "
            span class="badge unknown" { (n(Outcome::Skip)) " skip" }
            " · " (m.profile) " build · " (fmt::seconds(m.wall_seconds)) " · spectre_v2: " (m.spectre_v2) " · "
            code { (source) }
        }
        @if m.spectre_v2 != i.bench.machine.spectre_v2 {
            p class="warn" {
                "The matrix names a different spectre_v2 state than the benchmark bundle (" (i.bench.machine.spectre_v2) "): it may come from another machine."
            }
        }
        table class="matrix" {
            thead { tr { th { "scenario" } @for c in &cols { th { (key(c)) (c) } } } }
            tbody {
                @for r in &rows {
                    tr {
                        th { code { (r) } }
                        @for c in &cols {
                            @match m.cells.iter().find(|x| x.implementation == *c && x.scenario == *r) {
                                None => td class="none" { "—" },
                                Some(x) => {
                                    @let (class, word) = match x.outcome {
                                        Outcome::Pass => ("pass", "pass"),
                                        Outcome::Fail => ("fail", "FAIL"),
                                        Outcome::Skip => ("skip", "skip"),
                                    };
                                    @let title = format!("{} · {:.2} s", x.detail, x.seconds);
                                    td class=(class) title=(title.trim_start_matches(" · ")) {
                                        b { (word) }
                                        @if x.outcome != Outcome::Pass && !x.detail.is_empty() {
                                            small { (short(&x.detail, 90)) }
                                        }
                                    }
                                },
                            }
                        }
                    }
                }
            }
        }
        @if !fails.is_empty() {
            h4 { "Failures" }
            @for f in &fails {
                p class="failhead" { b { (f.implementation) "/" (f.scenario) } }
                pre class="fail" { (f.detail) }
            }
        }
    }
}
