//! Call cost: per call scenario, a dot chart of wall time and one of
//! instructions, and the table of ratios to the direct call.

use maud::{Markup, html};
use static_call_bundle::{control, scenario};

use super::figures::dot_figure;
use super::parts::{code_text, interval_text, machine_heads, na, subject_head};
use super::{Block, Page, Section};
use crate::fmt;
use crate::model::Measure;

/// A call scenario on the page.
#[derive(Debug)]
pub(crate) struct CallScenario {
    /// Its name in the bundle (`call/…`).
    pub scenario: &'static str,
    /// The charts above its ratio table.
    pub charts: Charts,
}

/// The charts of a call scenario.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Charts {
    /// Wall time and instructions (callgrind), side by side.
    Both,
    /// Wall time only: the scenario has no callgrind figures (the cold and
    /// predictor scenarios run on generated code, timed only).
    Wall,
    /// Only the ratio table.
    None,
}

/// The call scenarios, in page order: adding one to the page is one entry
/// here (its description comes from `scenario::describe`).
pub(crate) const CALL_SCENARIOS: &[CallScenario] = &[
    CallScenario {
        scenario: scenario::CALL_HOT_1,
        charts: Charts::Both,
    },
    CallScenario {
        scenario: scenario::CALL_HOT_6,
        charts: Charts::Both,
    },
    CallScenario {
        scenario: scenario::CALL_MANY,
        charts: Charts::Both,
    },
    CallScenario {
        scenario: scenario::CALL_COND_NONE,
        charts: Charts::Both,
    },
    CallScenario {
        scenario: scenario::CALL_COND_SOME,
        charts: Charts::Both,
    },
    CallScenario {
        scenario: scenario::CALL_COLD_16K,
        charts: Charts::Wall,
    },
    CallScenario {
        scenario: scenario::CALL_COLD_64K,
        charts: Charts::Wall,
    },
    CallScenario {
        scenario: scenario::CALL_TRASHED,
        charts: Charts::Wall,
    },
    CallScenario {
        scenario: scenario::CALL_HOT_1_IB_OFF,
        charts: Charts::None,
    },
];

pub(crate) const SECTION: Section = Section {
    id: "calls",
    title: "Call cost",
    intro: Some(
        "What one call costs, per implementation and control: wall time (point: the median of the per-round values of interleaved rounds; whiskers: its bootstrap 95% interval; a version 1 bundle: criterion's mean and its interval) and exact instruction counts under callgrind. The dashed line is the direct call on the first machine. Figures include the benchmark loop's own increment-compare-branch, the same for every subject. Beside each chart, the ratio to the direct call: the median of the per-round ratios with its bootstrap 95% interval; `direct-aa`, the reference loop compiled a second time (the direct call's; for cond-none the `Option<fn>` one), is the noise floor. `plain-indirect` (the implementation: `mov rax, [key]; call rax`) and `call-mem-indirect` (`call [rip + slot]`) are the indirect calls an Enhanced-IBRS kernel makes, `lfence-indirect` the AMD-style retpoline, `indirect` the generic retpoline: which one this machine's kernel uses is its `spectre_v2` line (under Machines). Peers, marked *peer*: the `static-keys` crate's jump labels in the conditional scenarios, and a call into a shared object through its PLT stub (`plt-call`) and through the GOT (`got-call`, what rustc emits across libraries). The cold scenarios call 16,384 or 65,536 sites generated at run time in a shuffled order; the predictor scenarios time each call alone after 32 random indirect jumps (trashed) or after P other indirect jumps (polluted), the no-call window subtracted: a call's latency with a cold or crowded predictor, derived by subtraction.",
    ),
    blocks: &[Block::Custom(body)],
};

fn body(p: &Page<'_>) -> Markup {
    html! {
        @for c in CALL_SCENARIOS { (call_scenario(p, c)) }
        (super::polluted::block(p))
    }
}

/// One call scenario: its heading, its charts, its ratio table.
fn call_scenario(p: &Page<'_>, c: &CallScenario) -> Markup {
    let sc = c.scenario;
    let slug = sc.replace('/', "-");
    html! {
        h3 id=(slug) {
            (sc) " " small { "— " (code_text(scenario::describe(sc).unwrap_or(""))) }
        }
        @match c.charts {
            Charts::Both => div class="pair" {
                (dot_figure(p, Measure::call_wall(sc), &format!("{slug}-wall"), &format!("{sc}: wall time per call")))
                (dot_figure(p, Measure::call_instr(sc), &format!("{slug}-instructions"), &format!("{sc}: instructions per call (callgrind)")))
            },
            Charts::Wall => div class="pair" {
                (dot_figure(p, Measure::call_wall(sc), &format!("{slug}-wall"), &format!("{sc}: wall time per call")))
            },
            Charts::None => {},
        }
        (ratio_table(p, sc))
    }
}

/// Ratios to the direct call, round by round: median and interval, per
/// subject and machine.
fn ratio_table(p: &Page<'_>, sc: &'static str) -> Markup {
    let m = Measure::call_wall(sc);
    let inputs = p.inputs;
    let rows: Vec<&str> = p
        .subjects
        .iter()
        .filter(|sub| {
            inputs
                .iter()
                .any(|i| m.get(&i.bench, &sub.name, None).is_some())
        })
        .map(|sub| sub.name.as_str())
        .collect();
    html! {
        table class="point ratios" id={ "ratios-" (sc.replace('/', "-")) } {
            caption { (sc) ": wall time per call (median of rounds) and ratio to the reference (median of per-round ratios, bootstrap 95% interval)" }
            thead { tr { th { "subject" } (machine_heads(inputs)) } }
            tbody {
                @for n in &rows {
                    tr class=[(*n == control::DIRECT_AA).then_some("noise")] {
                        (subject_head(p, n))
                        @for i in inputs {
                            @match m.get(&i.bench, n, None) {
                                Some(f) => td {
                                    @match &f.ratio {
                                        Some(r) => {
                                            (fmt::ratio(r.value)) " [" (fmt::bare_ratio(r.interval.low)) " – " (fmt::bare_ratio(r.interval.high)) "] "
                                            small { "÷ " (r.reference) }
                                        },
                                        None if f.statistic.is_none() => small { "no per-round ratio (version 1 bundle)" },
                                        None => small { "the reference" },
                                    }
                                    br;
                                    small { (fmt::value(f.metric, f.value)) (interval_text(f)) }
                                },
                                None => (na(&m.why(&i.bench, Some(n)))),
                            }
                        }
                    }
                }
                @if rows.is_empty() {
                    tr {
                        td class="na" colspan="99" {
                            small {
                                @for (k, i) in inputs.iter().enumerate() {
                                    @if k > 0 { "; " }
                                    (i.label) ": " (m.why(&i.bench, None))
                                }
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
    use static_call_bundle::scenario;

    use super::CALL_SCENARIOS;

    #[test]
    fn call_scenarios_are_known_once_each_and_calls() {
        for (k, c) in CALL_SCENARIOS.iter().enumerate() {
            assert!(
                c.scenario.starts_with("call/"),
                "{} is not a call scenario",
                c.scenario
            );
            assert!(
                scenario::describe(c.scenario).is_some(),
                "{} has no description in bundle::scenario",
                c.scenario
            );
            assert!(
                CALL_SCENARIOS[..k].iter().all(|o| o.scenario != c.scenario),
                "{} listed twice",
                c.scenario
            );
        }
    }
}
