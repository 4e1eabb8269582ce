//! Pieces the sections share: a subject's colour key, the legend, what a
//! machine lacks, a cell that says why, the machines' header cells, the
//! small point table.

use std::collections::BTreeMap;

use maud::{Markup, html};
use static_call_bundle::Figure;

use super::Page;
use crate::charts;
use crate::fmt;
use crate::input::Input;
use crate::model::{Measure, color};

/// A subject's colour key.
pub(crate) fn key(name: &str) -> Markup {
    html! { span class="key" style={ "background:" (color(name)) } {} }
}

/// Text with `code` in backticks: each pair of backticks a `<code>`; with
/// an odd number of backticks, the text as it is.
pub(crate) fn code_text(s: &str) -> Markup {
    let paired = s.matches('`').count().is_multiple_of(2);
    html! {
        @if paired {
            @for (i, part) in s.split('`').enumerate() {
                @if i % 2 == 1 { code { (part) } } @else { (part) }
            }
        } @else {
            (s)
        }
    }
}

/// A cell saying why a figure is not there.
pub(crate) fn na(why: &str) -> Markup {
    html! { td class="na" { small { (why) } } }
}

/// One header cell per machine.
pub(crate) fn machine_heads(inputs: &[Input]) -> Markup {
    html! { @for i in inputs { th { (i.label) } } }
}

/// A row's subject cell: `<th>` with the colour key.
pub(crate) fn subject_th(name: &str) -> Markup {
    html! { th { (key(name)) (name) } }
}

/// [`subject_th`], with a peer (another published mechanism, not an
/// implementation of this suite nor a control) marked as one.
pub(crate) fn subject_head(p: &Page<'_>, name: &str) -> Markup {
    let peer = p.subjects.iter().any(|s| s.name == name && s.peer);
    html! { th { (key(name)) (name) @if peer { " " small class="peer" { "peer" } } } }
}

/// Legend: subjects by colour, and machines by marker when several
/// (those of `machines`, the indices with points in the chart).
pub(crate) fn legend(inputs: &[Input], names: &[&str], machines: &[usize]) -> Markup {
    html! {
        div class="legend" {
            @for n in names {
                span { (charts::swatch(0, color(n))) (n) }
            }
            @if inputs.len() > 1 {
                @for (k, i) in inputs.iter().enumerate().filter(|(k, _)| machines.contains(k)) {
                    span class="m" { (charts::swatch(k, "#555")) (i.label) }
                }
            }
        }
    }
}

/// Notes on what each machine lacks among `expected`.
pub(crate) fn absences(
    inputs: &[Input],
    expected: &[&str],
    m: Measure,
    has: &dyn Fn(usize, &str) -> bool,
) -> Markup {
    let mut lines: Vec<(&str, String, String)> = Vec::new();
    for (k, input) in inputs.iter().enumerate() {
        let mut by_reason: BTreeMap<String, Vec<&str>> = BTreeMap::new();
        let mut order: Vec<String> = Vec::new();
        for &sub in expected {
            if !has(k, sub) {
                let r = m.why(&input.bench, Some(sub));
                if !by_reason.contains_key(&r) {
                    order.push(r.clone());
                }
                by_reason.entry(r).or_default().push(sub);
            }
        }
        for r in order {
            let subs = &by_reason[&r];
            let who = if subs.len() == expected.len() {
                "no figures".to_owned()
            } else {
                format!("no figure for {}", subs.join(", "))
            };
            lines.push((&input.label, who, r));
        }
    }
    html! {
        @if !lines.is_empty() {
            ul class="absent" {
                @for (label, who, r) in &lines {
                    li { b { (label) } ": " (who) ": " (r) }
                }
            }
        }
    }
}

/// Said in place of a chart with no point: why, machine by machine.
pub(crate) fn no_data(inputs: &[Input], m: Measure) -> Markup {
    if !inputs.iter().any(|i| knows(i, m.scenario)) {
        return newer_than_bundles(m.scenario);
    }
    let mut reasons: Vec<String> = Vec::new();
    for i in inputs {
        let r = m.why(&i.bench, None);
        let line = if inputs.len() > 1 {
            format!("{}: {}", i.label, r)
        } else {
            r
        };
        if !reasons.contains(&line) {
            reasons.push(line);
        }
    }
    html! {
        p class="nodata" { "No chart: no figure of this kind — " (reasons.join("; ")) "." }
    }
}

/// Whether a bundle names `scenario` at all: a figure of it, or a stated
/// reason for one it could not take.
pub(crate) fn knows(i: &Input, scenario: &str) -> bool {
    i.bench.figures.iter().any(|f| f.scenario == scenario)
        || i.bench
            .missing
            .iter()
            .any(|m| m.scenario == scenario || m.scenario == "*")
}

/// In place of a chart whose scenario no bundle on the page names: the
/// bundles were made before it existed.
pub(crate) fn newer_than_bundles(scenario: &str) -> Markup {
    html! {
        p class="absent" { "Not in any bundle on this page: " code { (scenario) } " is newer than the bundles shown." }
    }
}

/// ` [low – high, 95% CI]`, or nothing without an interval.
pub(crate) fn interval_text(f: &Figure) -> String {
    match f.interval {
        Some(iv) => format!(
            " [{} – {}, {:.0}% CI]",
            fmt::bare(f.metric, iv.low),
            fmt::bare(f.metric, iv.high),
            iv.level * 100.0
        ),
        None => String::new(),
    }
}

/// A figure's value with its interval: `1.23 ns<small> [… CI]</small>`.
pub(crate) fn value_with_interval(f: &Figure) -> Markup {
    html! { (fmt::value(f.metric, f.value)) small { (interval_text(f)) } }
}

/// A small table: implementations down, machines across, one measure at
/// one site count.
pub(crate) fn point_table(p: &Page<'_>, m: Measure, sites: Option<u64>, caption: &str) -> Markup {
    let rows = p.subjects.iter().filter(|sub| {
        sub.implementation
            || p.inputs
                .iter()
                .any(|i| m.get(&i.bench, &sub.name, sites).is_some())
    });
    html! {
        table class="point" {
            caption { (caption) }
            thead { tr { th { "subject" } (machine_heads(p.inputs)) } }
            tbody {
                @for sub in rows {
                    tr {
                        (subject_head(p, &sub.name))
                        @for i in p.inputs {
                            @match m.get(&i.bench, &sub.name, sites) {
                                Some(f) => td { (value_with_interval(f)) },
                                None => (na(&m.why(&i.bench, Some(&sub.name)))),
                            }
                        }
                    }
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::code_text;

    #[test]
    fn backticks_become_code_and_text_is_escaped() {
        let t = |s| code_text(s).into_string();
        assert_eq!(t("vs `if x`"), "vs <code>if x</code>");
        assert_eq!(t("a ` b"), "a ` b");
        assert_eq!(
            t("`Option<fn>` & co"),
            "<code>Option&lt;fn&gt;</code> &amp; co"
        );
    }
}
