//! Sites, decoded: the bytes of call sites and trampolines as the
//! benchmarks read them back, before and after an update.

use maud::{Markup, html};
use static_call_bundle::{BenchBundle, SiteDump};

use super::parts::key;
use super::{Block, Page, Section};
use crate::model::{self, Subject};

pub(crate) const SECTION: Section = Section {
    id: "sites",
    title: "Sites, decoded",
    intro: Some(
        "The bytes of a call site and of its key's trampoline as the benchmarks read them back, decoded by iced-x86, before and after an update: what the CPU actually executes. One key per implementation; the controls show the call in their loop.",
    ),
    blocks: &[Block::Custom(body)],
};

fn body(p: &Page<'_>) -> Markup {
    let several = p.inputs.len() > 1;
    html! {
        @for (k, i) in p.inputs.iter().enumerate() {
            @let tables = html! {
                @if i.bench.sites.is_empty() {
                    p class="nodata" { "No decoded site: " (model::NOT_MEASURED) "." }
                } @else {
                    (site_tables(&i.bench, p.subjects))
                }
            };
            @if k > 0 {
                details {
                    summary { (i.label) " (" (i.bench.sites.len()) " decoded places)" }
                    (tables)
                }
            } @else {
                @if several { h3 { (i.label) } }
                (tables)
            }
        }
    }
}

/// One line of disassembly, its `; symbol` comment set apart.
fn asm_line(line: &str) -> Markup {
    html! {
        @match line.split_once(" ; ") {
            Some((insn, sym)) => { (insn.trim_end()) " " span class="sym" { "; " (sym.trim()) } },
            None => (line),
        }
    }
}

fn dump_cell(d: &SiteDump) -> Markup {
    html! {
        td {
            div class="form" { (d.form) }
            div class="addr" { (format!("{:#x}", d.addr)) }
            code class="bytes" { (d.bytes) }
            pre class="asm" {
                @for (n, l) in d.asm.iter().enumerate() {
                    @if n > 0 { "\n" }
                    (asm_line(l))
                }
            }
        }
    }
}

fn first_seen<'a>(it: impl Iterator<Item = &'a str>) -> Vec<&'a str> {
    let mut v: Vec<&str> = Vec::new();
    for x in it {
        if !v.contains(&x) {
            v.push(x);
        }
    }
    v
}

/// A row of a dump table: `head` (the subject's cells), then where the
/// place was read, the place, and the decoded bytes.
fn dump_row(head: Markup, d: &SiteDump) -> Markup {
    html! { tr { (head) td { (d.phase) } td { (d.place) } (dump_cell(d)) } }
}

/// One implementation's table: for one of its keys (one that was updated
/// when there is one), each place in each phase.
fn implementation_table(n: &str, dumps: &[&SiteDump]) -> Markup {
    let keys = first_seen(dumps.iter().map(|d| d.key.as_str()));
    let phases_of = |k: &str| {
        first_seen(
            dumps
                .iter()
                .filter(|d| d.key == k)
                .map(|d| d.phase.as_str()),
        )
    };
    let updated = |k: &str| phases_of(k).iter().filter(|p| p.contains("update")).count() >= 2;
    let key_name = keys
        .iter()
        .copied()
        .find(|k| updated(k))
        .or_else(|| keys.iter().copied().find(|k| phases_of(k).len() > 1))
        .unwrap_or(keys[0]);
    let all = phases_of(key_name);
    let phases: Vec<&str> = if updated(key_name) {
        all.into_iter().filter(|p| p.contains("update")).collect()
    } else {
        all
    };
    let places = first_seen(
        dumps
            .iter()
            .filter(|d| d.key == key_name)
            .map(|d| d.place.as_str()),
    );
    html! {
        div {
            h4 {
                (key(n)) (n) " "
                small {
                    "key " code { (key_name) }
                    @if keys.len() > 1 { ", one of " (keys.len()) " keys decoded" }
                }
            }
            table class="dump" {
                thead { tr { th {} @for p in &phases { th { (p) } } } }
                tbody {
                    @for pl in &places {
                        tr {
                            th { (pl) }
                            @for ph in &phases {
                                @match dumps.iter().find(|d| d.key == key_name && d.place == *pl && d.phase == *ph) {
                                    Some(d) => (dump_cell(d)),
                                    None => td class="na" { small { "not decoded in this phase" } },
                                }
                            }
                        }
                    }
                }
            }
        }
    }
}

fn site_tables(b: &BenchBundle, subjects: &[Subject]) -> Markup {
    let mut names: Vec<&str> = subjects.iter().map(|x| x.name.as_str()).collect();
    for n in first_seen(b.sites.iter().map(|d| d.subject.as_str())) {
        if !names.contains(&n) {
            names.push(n);
        }
    }
    let is_impl = |n: &str| {
        subjects.iter().find(|x| x.name == n).map_or_else(
            || b.sites.iter().any(|d| d.subject == n && d.place != "loop"),
            |x| x.implementation,
        )
    };
    let mut implementations: Vec<(&str, Vec<&SiteDump>)> = Vec::new();
    let mut controls: Vec<&SiteDump> = Vec::new();
    for n in names {
        let dumps: Vec<&SiteDump> = b.sites.iter().filter(|d| d.subject == n).collect();
        if dumps.is_empty() {
            continue;
        }
        if is_impl(n) {
            implementations.push((n, dumps));
        } else {
            controls.extend(dumps);
        }
    }
    html! {
        div class="dumps" {
            @for (n, dumps) in &implementations { (implementation_table(n, dumps)) }
        }
        @if !controls.is_empty() {
            h4 { "Controls " small { "the call in each benchmark loop" } }
            table class="dump controls" {
                thead { tr { th { "control" } th { "read in" } th { "place" } th { "decoded" } } }
                tbody {
                    @for d in &controls {
                        (dump_row(html! { th { (key(&d.subject)) (d.subject) br; small { code { (d.key) } } } }, d))
                    }
                }
            }
        }
        details class="alldumps" {
            summary { "Every place decoded in this bundle (" (b.sites.len()) ")" }
            table class="dump all" {
                thead { tr { th { "subject" } th { "key" } th { "read in" } th { "place" } th { "decoded" } } }
                tbody {
                    @for d in &b.sites {
                        (dump_row(html! { td { (key(&d.subject)) (d.subject) } td { code { (d.key) } } }, d))
                    }
                }
            }
        }
    }
}
