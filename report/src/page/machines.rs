//! Machines and method: where and how each bundle was measured, and how
//! each kind of figure was taken.

use maud::{Markup, html};
use static_call_bundle::{BenchBundle, Instrument, MachineDetails};

use super::{Block, Page, Section, mode};
use crate::fmt;
use crate::input::{Input, Matrix};

pub(crate) const SECTION: Section = Section {
    id: "machines",
    title: "Machines and method",
    intro: Some("Where and how each bundle was measured, column by column."),
    blocks: &[Block::Custom(body), Block::Custom(method)],
};

/// A row of the machines table: its head, and what each bundle says.
type Field = (&'static str, fn(&Input) -> String);

const FIELDS: &[Field] = &[
    ("bundle", |i| i.source.clone()),
    ("CPU", |i| i.bench.machine.cpu_model.clone()),
    ("logical CPUs", |i| i.bench.machine.logical_cpus.to_string()),
    ("kernel", |i| i.bench.machine.kernel.clone()),
    ("spectre_v2", |i| i.bench.machine.spectre_v2.clone()),
    ("rustc", |i| i.bench.machine.rustc.clone()),
    ("commit (build)", |i| i.bench.machine.commit.clone()),
    ("date", |i| fmt::date(&i.bench.machine.date)),
    ("engine", |i| i.bench.machine.engine.clone()),
    ("valgrind", |i| {
        i.bench
            .machine
            .valgrind
            .clone()
            .unwrap_or_else(|| "not found".to_owned())
    }),
    ("run mode", |i| mode(i.bench.run.mode).to_owned()),
    ("schema", |i| {
        format!("{} v{}", i.bench.schema, i.bench.version)
    }),
    ("conformance", |i| match &i.conformance {
        Matrix::Present { source, matrix } => format!(
            "{source} ({} build, {})",
            matrix.profile,
            fmt::seconds(matrix.wall_seconds)
        ),
        Matrix::Absent { reason } => reason.clone(),
    }),
];

/// A row of the machine details (version 2 bundles).
type Detail = (&'static str, fn(&MachineDetails) -> String);

const DETAILS: &[Detail] = &[
    ("CPU vendor", |d| d.cpu_vendor.clone()),
    ("family / model / stepping", |d| {
        d.cpu_family_model_stepping.clone()
    }),
    ("microcode", |d| d.microcode.clone()),
    ("CPU flags of interest", |d| d.flags_of_interest.join(" ")),
    ("vulnerabilities", |d| {
        d.vulnerabilities
            .iter()
            .map(|(k, v)| format!("{k}: {v}"))
            .collect::<Vec<_>>()
            .join("\n")
    }),
    ("indirect-branch spec ctrl (prctl)", |d| {
        d.indirect_branch_spec_ctrl.clone()
    }),
    ("kernel command line", |d| d.kernel_cmdline.clone()),
    ("governor", |d| d.governor.clone()),
    ("turbo", |d| d.turbo.clone()),
    ("SMT", |d| d.smt.clone()),
    ("CPU affinity", |d| {
        d.affinity
            .iter()
            .map(u32::to_string)
            .collect::<Vec<_>>()
            .join(",")
    }),
    ("build profile", |d| d.build_profile.clone()),
    ("RUSTFLAGS", |d| d.rustflags.clone()),
    ("settings", |d| d.settings.clone()),
];

/// The instruments whose time a bundle records, in table order.
const INSTRUMENTS: [Instrument; 6] = [
    Instrument::Timer,
    Instrument::Criterion,
    Instrument::Callgrind,
    Instrument::PerfEvent,
    Instrument::Registry,
    Instrument::Memory,
];

fn body(p: &Page<'_>) -> Markup {
    let inputs = p.inputs;
    let details = inputs.iter().any(|i| i.bench.machine.details.is_some());
    html! {
        table class="machines" {
            thead { tr { th {} @for i in inputs { th { (i.label) } } } }
            tbody {
                @for (name, get) in FIELDS {
                    tr { th { (name) } @for i in inputs { td { (get(i)) } } }
                }
                @if details {
                    @for (name, get) in DETAILS {
                        tr {
                            th { (name) }
                            @for i in inputs {
                                @match &i.bench.machine.details {
                                    Some(d) => td class="detail" { (get(d)) },
                                    None => td class="na" { small { "not recorded (version 1 bundle)" } },
                                }
                            }
                        }
                    }
                    tr {
                        th { "rounds: CPUs seen, migrations, steal" }
                        @for i in inputs { td { (rounds_text(&i.bench)) } }
                    }
                }
                @for inst in INSTRUMENTS {
                    tr {
                        th { "time: " (inst.name()) }
                        @for i in inputs {
                            @match i.bench.run.parts.iter().find(|p| p.instrument == inst) {
                                Some(p) => td { (fmt::seconds(p.seconds)) " " small { "(ended " (fmt::date(&p.date)) ")" } },
                                None => td class="na" { small { "not run" } },
                            }
                        }
                    }
                }
            }
        }
    }
}

/// What the rounds of a bundle ran on.
fn rounds_text(b: &BenchBundle) -> String {
    if b.rounds.is_empty() {
        return "no rounds recorded".into();
    }
    let mut cpus: Vec<i32> = b
        .rounds
        .iter()
        .flat_map(|r| r.cpus.iter().copied())
        .collect();
    cpus.sort_unstable();
    cpus.dedup();
    let migrated = b.rounds.iter().filter(|r| r.cpus.len() > 1).count();
    let steal: Option<u64> = b.rounds.iter().map(|r| r.steal_ticks).sum();
    format!(
        "{} rounds on CPUs {}; {} of them migrated; steal {}",
        b.rounds.len(),
        cpus.iter()
            .map(i32::to_string)
            .collect::<Vec<_>>()
            .join(","),
        migrated,
        steal.map_or("not readable".to_owned(), |t| format!("{t} ticks in all"))
    )
}

/// How each kind of figure was measured.
fn method(_: &Page<'_>) -> Markup {
    html! {
        h3 id="method" { "How each figure was measured" }
        "\n"
        dl class="method" {
            "\n"
            dt { "timer — call cost in interleaved rounds, single updates" } "\n"
            dd { "Call cost: every round measures every subject of a scenario once (one batch of calls each), in a freshly shuffled order; a subject's figure is the " b { "median" } " of its per-round time per call, with a bootstrap 95% interval of that median, and its ratio to the direct call is the " b { "median of the per-round ratios" } ", with a bootstrap interval (rounds resampled). The A/A control, " code { "direct-aa" } ", is the reference loop compiled a second time (the direct call's; for cond-none the " code { "Option<fn>" } " one): its ratio is the run's noise floor. Each round records the CPUs it ran on and the steal time. Updates: single updates timed one by one; the figure is their " b { "median" } " with a bootstrap interval, and the bundle keeps every sample, the " b { "p99" } ", the " b { "max" } " and the " b { "first (cold)" } " update apart. The loop's own increment-compare-branch is in every call figure, the same for every subject." } "\n"
            dt { "criterion — wall time of module loads and shared objects" } "\n"
            dd { "Criterion's " b { "mean" } " per load or unload, flat sampling, with its bootstrap 95% interval. A version 1 bundle's wall times are all criterion means." } "\n"
            dt { "gungraun (formerly iai-callgrind) — instruction counts" } "\n"
            dd { "Exact counts of executed instructions (callgrind's " code { "Ir" } "), run under valgrind by gungraun. No noise, so no interval. A per-call figure is the difference between two runs of different loop lengths, divided by the difference in iterations: setup, process start and loop entry cancel out, and what remains is one call plus one turn of the loop. inline-patch equal to direct means the patched site is a plain " code { "call" } "; trampoline one more means one " code { "jmp" } "." } "\n"
            dt { "perf-event — counters" } "\n"
            dd { "Counters opened with " code { "perf_event_open" } " for the benchmark thread and read around the measured loops: cycles, instructions and branch misses per call; task clock, context switches and page faults per update and per load. Hardware counters need a PMU the kernel exposes; virtual machines often have none, and then the figure is missing with the error the call returned." } "\n"
            dt { "gungraun — the update count is the valgrind path" } "\n"
            dd { "Under valgrind the engine replaces each slot with one store in a brief mprotect window (valgrind runs one thread at a time): no int3, no membarrier, no scan of the threads' signal masks. The instruction count of an update (" code { "update/valgrind-path" } ") is therefore that path's, not the native update's." } "\n"
            dt { "registry stats — memory" } "\n"
            dd { "The registry's own accounting (" code { "stats()" } ", " code { "module_stats()" } "): heap bytes held for keys, site groups and modules, divided by the sites of the key or by the (key, module) pairs. Site tables live in the binary's own sections, so nothing is allocated per site." } "\n"
            dt { "ratios and targets" } "\n"
            dd { "A call-cost ratio is the median of the per-round ratios to the direct call (version 1 bundles: the quotient of two means). A wall-time target is judged on the interval: met when the whole interval meets it, missed when the whole interval misses it, inconclusive when it straddles the target. Instruction counts are exact and compared as they are; a version 1 bundle's latencies are compared as point estimates. A target is \"not measured\" when its figure is absent, with the bundle's stated reason." } "\n"
        }
        "\n"
    }
}
