//! Updates, modules and memory: charts against the number of sites and
//! small tables, described as data.

use maud::{Markup, html};
use static_call_bundle::{Instrument, Metric, Per, scenario};

use super::parts::{interval_text, machine_heads, na, subject_head};
use super::{Block, Lines, Page, Section};
use crate::fmt;
use crate::model::Measure;
use crate::summary;

pub(crate) const UPDATES: Section = Section {
    id: "updates",
    title: "Updates",
    intro: Some(
        "The latency of one update against the number of sites of the key, log–log: the median of single updates timed one by one, whiskers its bootstrap 95% interval (p99, max and the first, cold update are in the All figures tables; a version 1 bundle: criterion's mean). inline-patch rewrites every site, so it grows with them; trampoline rewrites one `jmp`; indirect stores one pointer. Dashed levels mark the targets.",
    ),
    blocks: &[
        Block::Pair(&[
            Block::Lines(Lines {
                id: "update-idle",
                title: "update/idle: one update, no other thread running",
                m: Measure::wall(scenario::UPDATE_IDLE, Per::Update),
                targets: &[(1.0, 10e3, "target ≤ 10 µs"), (1e4, 2e6, "target ≤ 2 ms")],
                log: true,
            }),
            Block::Lines(Lines {
                id: "update-busy",
                title: "update/busy: one update while two threads call the key",
                m: Measure::wall(scenario::UPDATE_BUSY, Per::Update),
                targets: &[],
                log: true,
            }),
        ]),
        Block::Lines(Lines {
            id: "update-cond-sites",
            title: "update/cond-sites: one switch of a conditional key with N compiled sites, idle — update_cond of each implementation beside the peer static-keys (enable/disable)",
            m: Measure::wall(scenario::UPDATE_COND_SITES, Per::Update),
            targets: &[],
            log: true,
        }),
        Block::Pair(&[
            Block::Custom(foreign_table),
            Block::Point {
                m: Measure::new(
                    scenario::UPDATE_VALGRIND_PATH,
                    Metric::Instructions,
                    Per::Update,
                    Instrument::Callgrind,
                ),
                sites: Some(1),
                caption: "update/valgrind-path, 1 site: instructions per update under callgrind — the engine's valgrind path (one store per slot in an mprotect window; no int3, no membarrier, no thread scan), not the native update",
            },
        ]),
    ],
};

pub(crate) const MODULES: Section = Section {
    id: "modules",
    title: "Modules",
    intro: Some(
        "Loading and unloading a generated module with N sites (criterion), log–log: registering its sites, checking their bytes and, for inline-patch, patching each to its key's current target.",
    ),
    blocks: &[
        Block::Pair(&[
            Block::Lines(Lines {
                id: "module-load",
                title: "module/load: load a generated module with N sites",
                m: Measure::wall(scenario::MODULE_LOAD, Per::Load),
                targets: &[(1e4, 5e6, "target ≤ 5 ms")],
                log: true,
            }),
            Block::Lines(Lines {
                id: "module-unload",
                title: "module/unload: unload a generated module with N sites",
                m: Measure::wall(scenario::MODULE_UNLOAD, Per::Unload),
                targets: &[],
                log: true,
            }),
        ]),
        Block::Pair(&[
            Block::Point {
                m: Measure::wall(scenario::SO_OPEN, Per::Load),
                sites: Some(3),
                caption: "shared-object/open: dlopen + registration of the test shared object (3 sites)",
            },
            Block::Point {
                m: Measure::wall(scenario::SO_CLOSE, Per::Unload),
                sites: Some(3),
                caption: "shared-object/close: unregistration + dlclose (3 sites)",
            },
        ]),
    ],
};

/// Heap bytes of the registry, per `per`, by `inst`.
const fn registry_bytes(per: Per, inst: Instrument) -> Measure {
    Measure::new(scenario::MEMORY, Metric::RegistryBytes, per, inst)
}

pub(crate) const MEMORY: Section = Section {
    id: "memory",
    title: "Memory",
    intro: Some(
        "Heap bytes, measured by a counting global allocator in the benchmark binary (version 2 bundles): per site and per module while modules of N sites load (the registry's nodes and, where a load patches its sites, the trap handler's table of published slots). The registry's own count per (key, module), capacity × size_of, is a formula and named so; version 1 bundles have only their registry's count. Code bytes and text made private by patching are in the All figures tables (memory/code, memory/private-text).",
    ),
    blocks: &[
        Block::Pair(&[
            Block::Lines(Lines {
                id: "memory-site",
                title: "memory/registry: heap bytes per site (counting allocator)",
                m: registry_bytes(Per::Site, Instrument::Memory),
                targets: &[],
                log: false,
            }),
            Block::Lines(Lines {
                id: "memory-load",
                title: "memory/registry: heap bytes per module load (counting allocator)",
                m: registry_bytes(Per::Load, Instrument::Memory),
                targets: &[],
                log: false,
            }),
            Block::Lines(Lines {
                id: "memory-key-module",
                title: "memory/registry: bytes per (key, module), the registry's own count (formula)",
                m: registry_bytes(Per::KeyModule, Instrument::Registry),
                targets: &[],
                log: false,
            }),
        ]),
        Block::Custom(crate::threads::churn_table),
    ],
};

/// update/among-100k-foreign: every figure of each implementation, with
/// the ratio to the update alone.
fn foreign_table(p: &Page<'_>) -> Markup {
    let m = Measure::wall(scenario::UPDATE_FOREIGN, Per::Update);
    html! {
        table class="point" id="foreign" {
            caption { "update/among-100k-foreign: one update of a 1-site key while 100,000 sites exist on other keys (wall time), and its ratio to the update alone (target ≤ 1.2)" }
            thead { tr { th { "subject" } (machine_heads(p.inputs)) } }
            tbody {
                @for sub in p.subjects.iter().filter(|x| x.implementation) {
                    tr {
                        (subject_head(p, &sub.name))
                        @for i in p.inputs {
                            @let figs = m.all(&i.bench, &sub.name);
                            @if figs.is_empty() {
                                (na(&m.why(&i.bench, Some(&sub.name))))
                            } @else {
                                td {
                                    @for f in &figs {
                                        div title=(f.note.as_deref().unwrap_or("")) {
                                            small class="what" { (foreign_what(f.sites)) ":" }
                                            " " (fmt::value(f.metric, f.value)) small { (interval_text(f)) }
                                        }
                                    }
                                    @match summary::foreign_pair(&i.bench, &sub.name) {
                                        Ok(pair) => div class="ratio" { b { (fmt::ratio(pair.ratio())) } " " small { "÷ " (pair.alone_is) } },
                                        Err(why) => div class="ratio" { small { "no ratio: " (why) } },
                                    }
                                }
                            }
                        }
                    }
                }
            }
        }
    }
}

/// What a figure of update/among-100k-foreign is, by its site count.
fn foreign_what(sites: Option<u64>) -> String {
    match sites {
        Some(0) => "no foreign site".to_owned(),
        Some(n) if n > 1 => format!("{} foreign sites", fmt::thousands(n)),
        _ => "among 100,000 foreign sites".to_owned(),
    }
}
