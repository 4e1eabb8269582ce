//! The summary section: per machine, the implementations' deciding
//! figures, the reference and the noise floor; then every target, machine
//! by machine.

use maud::{Markup, html};
use static_call_bundle::{BenchBundle, Instrument, Metric, Per, control, scenario};

use super::targets::{Verdict, evaluate, target_rows};
use super::{
    Cell, HOT1, at_sites, call_instr, call_wall, callers_tail, cold_call, conformance, memory,
};
use crate::fmt;
use crate::input::Input;
use crate::model::{Measure, Subject};
use crate::page::parts::{code_text, key, machine_heads};
use crate::page::{Block, Page, Section, mode};

pub(crate) const SECTION: Section = Section {
    id: "summary",
    title: "Summary",
    intro: None,
    blocks: &[Block::Custom(body)],
};

fn verdict_cell(v: &Verdict) -> Markup {
    let (class, badge, text, small_text) = match v {
        Verdict::Met(t) => ("met", "met", t, false),
        Verdict::Missed(t) => ("missed", "missed", t, false),
        Verdict::Inconclusive(t) => ("inconclusive", "inconclusive", t, false),
        Verdict::Unknown(r) => ("na", "not measured", r, true),
        Verdict::NotApplicable(r) => ("na", "not applicable", r, true),
    };
    let badge_class = if small_text { "unknown" } else { class };
    html! {
        td class=(class) {
            span class={ "badge " (badge_class) } { (badge) } " "
            @if small_text { small { (text) } } @else { (text) }
        }
    }
}

/// The measure of registry memory per site: measured heap (version 2),
/// else the registry's own count; and whether it was measured.
fn memory_measure(b: &BenchBundle) -> (Measure, bool) {
    let mem_of = |inst| Measure::new(scenario::MEMORY, Metric::RegistryBytes, Per::Site, inst);
    let measured = mem_of(Instrument::Memory);
    if b.figures.iter().any(|f| measured.holds(f)) {
        (measured, true)
    } else {
        (mem_of(Instrument::Registry), false)
    }
}

/// One machine's part: the tally of targets, the implementations' table,
/// the reference, the kernel's indirect call, the noise floor.
fn machine(
    k: usize,
    input: &Input,
    imps: &[&Subject],
    rows: &[(&'static super::Target, String)],
) -> Markup {
    let b = &input.bench;
    let (mut met, mut missed, mut open, mut unknown, mut na) = (0, 0, 0, 0, 0);
    for (t, sub) in rows {
        match evaluate(t, b, sub) {
            Verdict::Met(_) => met += 1,
            Verdict::Missed(_) => missed += 1,
            Verdict::Inconclusive(_) => open += 1,
            Verdict::Unknown(_) => unknown += 1,
            Verdict::NotApplicable(_) => na += 1,
        }
    }
    let upd = Measure::wall(scenario::UPDATE_IDLE, Per::Update);
    let load = Measure::wall(scenario::MODULE_LOAD, Per::Load);
    let (mem, heap_measured) = memory_measure(b);
    let cells = |n: &str| {
        [
            call_wall(b, n),
            call_instr(b, n),
            cold_call(b, n),
            at_sites(b, upd, n, Some(1)),
            at_sites(b, upd, n, None),
            at_sites(b, load, n, None),
            callers_tail(b, n),
            match memory(b, mem, n) {
                Cell::Value(v, sub) if !heap_measured => {
                    Cell::Value(v, format!("{sub}; the registry's own count (version 1)"))
                }
                c => c,
            },
            conformance(input, n),
        ]
    };
    let mut refs = Vec::new();
    if let Some(w) = Measure::call_wall(HOT1).get(b, control::DIRECT, None) {
        refs.push(fmt::time_ns(w.value));
    }
    if let Some(i) = Measure::call_instr(HOT1).get(b, control::DIRECT, None) {
        refs.push(format!("{} instructions", fmt::count(i.value)));
    }
    html! {
        h3 id={ "summary-" (k) } {
            (input.label)
            small class="when" { " · " (fmt::date(&b.machine.date)) " · " (mode(b.run.mode)) " run" }
        }
        p class="tally" {
            "Targets: "
            span class="badge met" { (met) " met" } " "
            span class="badge missed" { (missed) " missed" } " "
            span class="badge inconclusive" { (open) " inconclusive" } " "
            span class="badge unknown" { (unknown) " not measured" }
            @if na > 0 { " " span class="badge unknown" { (na) " not applicable" } }
            " " a href="#targets" { "(details)" }
        }
        table class="summary" {
            thead {
                tr {
                    th { "implementation" }
                    th { "call: wall time" br; small { "÷ direct · call/hot-1arg" } }
                    th { "call: instructions" br; small { "vs direct · call/hot-1arg" } }
                    th { "cold call" br; small { "÷ direct · 65,536 (quick: 16,384) sites, shuffled" } }
                    th { "update, 1 site" br; small { "idle" } }
                    th { "update, most sites" br; small { "idle" } }
                    th { "module load" br; small { "most sites" } }
                    th { "a caller's tail during updates" br; small { "p99.99 at 1 kHz · p99 flat out" } }
                    th { "registry memory" br; small { "heap bytes per site, most sites" } }
                    th { "conformance" }
                }
            }
            tbody {
                @for imp in imps {
                    tr {
                        th { (key(&imp.name)) (imp.name) div class="desc" { (code_text(&imp.description)) } }
                        @for c in cells(&imp.name) { (c.html()) }
                    }
                }
            }
        }
        @if !refs.is_empty() {
            p class="note" { "The direct call (the reference): " (refs.join(", ")) " per call, call/hot-1arg." }
        }
        (machine_indirect(b, imps))
        (noise_floor(b))
    }
}

fn body(p: &Page<'_>) -> Markup {
    let imps: Vec<&Subject> = p.subjects.iter().filter(|s| s.implementation).collect();
    let rows = target_rows(p.subjects);
    html! {
        p class="lead" {
            "The trade-off: " b { "inline-patch" } " rewrites every call site to call its target directly, so a call costs what a direct call costs and an update pays per site; " b { "trampoline" } " calls a per-key trampoline that jumps on, one " code { "jmp" } " more per call and one " code { "jmp" } " rewritten per update; " b { "indirect" } " loads a pointer and calls a retpoline thunk, so an update is one store and every call pays the thunk; " b { "plain-indirect" } " loads the pointer and calls through it with no retpoline (the call an Enhanced-IBRS kernel makes), an update is one store and a call costs what the machine's indirect branch costs."
        }
        @for (k, input) in p.inputs.iter().enumerate() {
            (machine(k, input, &imps, &rows))
        }
        h3 id="targets" { "Targets" }
        table class="targets" {
            thead { tr { th { "target" } th { "implementation" } (machine_heads(p.inputs)) } }
            tbody {
                @for (t, sub) in &rows {
                    tr id={ "target-" (t.id) "-" (sub) } {
                        td { (t.text) }
                        td { (key(sub)) (sub) }
                        @for input in p.inputs { (verdict_cell(&evaluate(t, &input.bench, sub))) }
                    }
                }
            }
        }
        p class="note" {
            "A wall-time verdict is judged on the 95% interval, never on a point estimate: " b { "met" } " when the whole interval meets the target, " b { "missed" } " when the whole interval misses it, " b { "inconclusive" } " when the interval straddles it. A call-cost ratio's interval is first widened by the run's noise floor (how far the A/A control's interval reaches from 1: two copies of one loop can differ by code placement, which no number of rounds averages out). Inconclusive means this run cannot tell the difference from noise: compare it with the A/A noise floor, and rerun with more rounds (" code { "STATIC_CALL_BENCH_ROUNDS" } ") or on a quieter machine before reading anything into it. Instruction counts are exact and compared as they are; a version 1 bundle's latencies (criterion's mean, no per-update samples) are compared as point estimates and say so."
        }
    }
}

/// The run's noise floor: the A/A control's ratio to the direct call, per
/// call scenario, with its interval.
pub fn noise_floor(b: &BenchBundle) -> Markup {
    let mut parts = Vec::new();
    for (sc, _) in scenario::ALL {
        let m = Measure::call_wall(sc);
        if let Some(r) = m
            .get(b, control::DIRECT_AA, None)
            .and_then(|f| f.ratio.as_ref())
        {
            parts.push(format!(
                "{sc} {} [{} – {}]",
                fmt::ratio(r.value),
                fmt::bare_ratio(r.interval.low),
                fmt::bare_ratio(r.interval.high)
            ));
        }
    }
    html! {
        @if parts.is_empty() {
            p class="note noise" { "Noise floor: not measured in this bundle (no A/A control: a version 1 bundle)." }
        } @else {
            p class="note noise" {
                b { "Noise floor" } " (A/A: each scenario's reference loop compiled twice, the direct call's or for cond-none the " code { "Option<fn>" } " one's, measured in the same rounds; its ratio would be 1.000× with no noise): " (parts.join("; ")) ". A ratio whose interval overlaps this spread around 1 is not a difference this run can show."
            }
        }
    }
}

/// The indirect call this machine's kernel uses for its own indirect calls,
/// from its `spectre_v2` line: the generic retpoline (`indirect`), the
/// lfence one, or a plain indirect call (Enhanced IBRS and the rest: the
/// implementation `plain-indirect`, `mov rax, [key]; call rax`).
pub fn kernel_indirect(spectre_v2: &str) -> &'static str {
    let l = spectre_v2.to_ascii_lowercase();
    if l.contains("lfence") {
        control::LFENCE_INDIRECT
    } else if l.contains("retpoline") {
        "indirect"
    } else {
        "plain-indirect"
    }
}

/// Each implementation against the indirect call this machine really uses:
/// the median of the per-round quotients of their ratios to direct.
fn machine_indirect(b: &BenchBundle, imps: &[&Subject]) -> Markup {
    let m = Measure::call_wall(HOT1);
    let which = kernel_indirect(&b.machine.spectre_v2);
    let Some(ind) = m.get(b, which, None).and_then(|f| f.ratio.as_ref()) else {
        return html! {};
    };
    let mut parts = Vec::new();
    for imp in imps.iter().filter(|i| i.name != which) {
        if let Some(r) = m.get(b, &imp.name, None).and_then(|f| f.ratio.as_ref())
            && r.raw.len() == ind.raw.len()
        {
            let mut q: Vec<f64> = r.raw.iter().zip(&ind.raw).map(|(a, c)| a / c).collect();
            q.sort_by(f64::total_cmp);
            let n = q.len();
            let med = if n % 2 == 1 {
                q[n / 2]
            } else {
                (q[n / 2 - 1] + q[n / 2]) / 2.0
            };
            parts.push(format!("{} {}", imp.name, fmt::ratio(med)));
        }
    }
    html! {
        p class="note" {
            "Against the indirect call this machine's kernel uses — " b { (which) } ", by its spectre_v2 line “" (b.machine.spectre_v2) "” — per call, call/hot-1arg (median of the per-round quotients): " (parts.join(", ")) "."
        }
    }
}
