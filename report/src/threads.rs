//! The thread axis of update latency (update/threads, update/threads-busy,
//! update/batch-100-keys, update/100-keys-one-by-one) and the module churn
//! table (memory/churn).

use maud::{Markup, html};
use static_call_bundle::{BenchBundle, Figure, Instrument, Metric, Per, scenario};

use crate::charts::LineChart;
use crate::fmt;
use crate::input::Input;
use crate::model::{Measure, Subject};
use crate::page::figures::{lines_figure, series};
use crate::page::parts::{interval_text, na, no_data, subject_th};
use crate::page::{Block, Page, Section};

/// Wall time per update of one thread-axis scenario.
pub fn measure(sc: &'static str) -> Measure {
    Measure::new(sc, Metric::WallTime, Per::Update, Instrument::Timer)
}

/// The `q` quantile of `v` by nearest rank, as the benchmarks compute it.
fn quantile(v: &[f64], q: f64) -> Option<f64> {
    if v.is_empty() {
        return None;
    }
    let mut s = v.to_vec();
    s.sort_by(f64::total_cmp);
    let rank = (q * s.len() as f64).ceil().max(1.0) as usize;
    Some(s[rank.min(s.len()) - 1])
}

/// The section: two charts (parked threads, busy callers) and a table of
/// every configuration (median with its interval, p99, max; the batch rows'
/// ratio to one 1-key update), then the callers' table.
pub(crate) const SECTION: Section = Section {
    id: "threads",
    title: "Updates and threads",
    intro: Some(
        "The latency of one update of a 1-site key against the other threads in the process (issue 18): parked on a condition variable (0 to 1,000) or calling the key in a loop (1 to 4 busy callers, each pinned to a CPU of its own while there are enough), log–log; the median of single updates timed one by one, whiskers its bootstrap 95% interval. And 100 keys of one site switched in one batch against one update at a time. Before anything is timed each key's site (and trampoline) is decoded. The targets (1,000 parked ≤ 2 × none; 1 busy caller ≤ 2 × none; none ≤ 10 µs; a batch of 100 ≤ 3 × one 1-key update) are judged in the summary.",
    ),
    blocks: &[
        Block::Pair(&[Block::Custom(parked), Block::Custom(busy)]),
        Block::Custom(threads_table),
        Block::Custom(callers_table),
    ],
};

fn parked(p: &Page<'_>) -> Markup {
    chart(
        p,
        scenario::UPDATE_THREADS,
        "update-threads",
        "update/threads: update latency vs threads in the process (the others parked)",
    )
}

fn busy(p: &Page<'_>) -> Markup {
    chart(
        p,
        scenario::UPDATE_THREADS_BUSY,
        "update-threads-busy",
        "update/threads-busy: update latency vs threads in the process (busy callers of the key)",
    )
}

/// The chart of one group: x is the number of threads in the process (the
/// updater and the others), log–log.
fn chart(p: &Page<'_>, sc: &'static str, id: &str, title: &str) -> Markup {
    let m = measure(sc);
    let expected: Vec<&str> = p
        .subjects
        .iter()
        .filter(|s| s.implementation)
        .map(|s| s.name.as_str())
        .collect();
    let (series, present) = series(p, m, &expected, |n| n as f64 + 1.0);
    let c = LineChart {
        id: id.to_owned(),
        title: title.to_owned(),
        x_label: "threads in the process, the updater included (log scale)".to_owned(),
        y_label: "wall time per update (log scale)".to_owned(),
        x_tick: fmt::count_tick,
        y_tick: fmt::time_tick,
        y_log: true,
        series,
        targets: Vec::new(),
    };
    lines_figure(p, &c, m, &present, &expected)
}

/// The columns of the table: scenario, parameter, heading.
fn columns(inputs: &[Input]) -> Vec<(&'static str, u64, String)> {
    let mut cols: Vec<(&'static str, u64, String)> = Vec::new();
    for (sc, what) in [
        (scenario::UPDATE_THREADS, "parked"),
        (scenario::UPDATE_THREADS_BUSY, "busy"),
        (scenario::UPDATE_BATCH_100, "batch"),
        (scenario::UPDATE_100_ONE_BY_ONE, "one by one"),
    ] {
        let mut ps: Vec<u64> = inputs
            .iter()
            .flat_map(|i| i.bench.figures.iter())
            .filter(|f| measure(sc).holds(f))
            .filter_map(|f| f.sites)
            .collect();
        ps.sort_unstable();
        ps.dedup();
        for p in ps {
            let head = match what {
                "parked" => format!("{} parked", fmt::thousands(p)),
                "busy" => format!("{p} busy caller{}", if p == 1 { "" } else { "s" }),
                "batch" => format!("{p} keys, one batch"),
                _ => format!("{p} keys, one by one"),
            };
            cols.push((sc, p, head));
        }
    }
    cols
}

/// The title attribute of a figure's cell: its note.
fn note(f: &Figure) -> &str {
    f.note.as_deref().unwrap_or("")
}

fn cell(f: &Figure) -> Markup {
    let tail = quantile(&f.raw, 0.99).zip(quantile(&f.raw, 1.0));
    html! {
        td title=(note(f)) {
            (fmt::time_ns(f.value)) small { (interval_text(f)) }
            @if let Some((p99, max)) = tail {
                br;
                small class="what" { "p99 " (fmt::time_ns(p99)) " · max " (fmt::time_ns(max)) }
            }
            @if let Some(r) = &f.ratio {
                div class="ratio" {
                    b { (fmt::ratio(r.value)) } " "
                    small { "[" (fmt::bare_ratio(r.interval.low)) " – " (fmt::bare_ratio(r.interval.high)) "] ÷ one 1-key update" }
                }
            }
        }
    }
}

/// Every configuration of the thread axis, per implementation and machine;
/// or why there is none.
fn threads_table(p: &Page<'_>) -> Markup {
    let inputs = p.inputs;
    let cols = columns(inputs);
    if cols.is_empty() {
        return no_data(inputs, measure(scenario::UPDATE_THREADS));
    }
    html! {
        table class="point" id="threads-table" {
            caption { "One update against the threads in the process; 100 keys in one batch and one by one (median [95% interval], p99 · max of the samples; hover for how each was taken)" }
            thead { tr { th { "subject" } (machine_head(inputs)) @for (_, _, h) in &cols { th { (h) } } } }
            tbody {
                @for sub in p.subjects.iter().filter(|x| x.implementation) {
                    @for i in inputs {
                        tr {
                            (row_head(inputs, sub, i))
                            @for (sc, n, _) in &cols {
                                @match measure(sc).get(&i.bench, &sub.name, Some(*n)) {
                                    Some(f) => (cell(f)),
                                    None => (na(&measure(sc).why(&i.bench, Some(&sub.name)))),
                                }
                            }
                        }
                    }
                }
            }
        }
    }
}

/// The figures of a callers' scenario (`callers/…`): a caller's per-call
/// wall time, with its histogram.
pub fn callers_measure(sc: &'static str) -> Measure {
    Measure::new(sc, Metric::WallTime, Per::Call, Instrument::Timer)
}

/// A caller's throughput in a callers' scenario: calls per second.
pub fn callers_throughput(sc: &'static str) -> Measure {
    Measure::new(sc, Metric::Calls, Per::Second, Instrument::Timer)
}

/// The breakpoints a caller met per update in a callers' scenario (the
/// engine's trap count over the updates completed).
pub fn callers_breakpoints(sc: &'static str) -> Measure {
    Measure::new(sc, Metric::Breakpoints, Per::Update, Instrument::Registry)
}

/// A caller's calls per second in `sc`: its [`callers_throughput`]
/// figure, or, in a bundle written before that figure existed (the
/// committed `results/*/bench.json`), the number the latency figure's
/// note gives (`throughput 42.1 M calls/s`).
fn throughput_of(b: &BenchBundle, subject: &str, sc: &'static str) -> Option<f64> {
    match callers_throughput(sc).get(b, subject, Some(1)) {
        Some(f) => Some(f.value),
        None => callers_measure(sc)
            .get(b, subject, Some(1))
            .and_then(|f| note_number(f, "throughput "))
            .map(|m| m * 1e6),
    }
}

/// The breakpoints met per update in `sc`: its [`callers_breakpoints`]
/// figure (none where nothing was updated), or, in a bundle written
/// before the callers' counts were figures (no [`callers_throughput`]
/// figure either), the number the latency figure's note gives (`… calls
/// met a breakpoint (0.50 per update)`).
fn breakpoints_of(b: &BenchBundle, subject: &str, sc: &'static str) -> Option<f64> {
    if let Some(f) = callers_breakpoints(sc).get(b, subject, Some(1)) {
        return Some(f.value);
    }
    match callers_throughput(sc).get(b, subject, Some(1)) {
        Some(_) => None,
        None => callers_measure(sc)
            .get(b, subject, Some(1))
            .and_then(|f| note_number(f, "calls met a breakpoint (")),
    }
}

/// The callers' side of an update (`callers/…`): one caller's per-call
/// latency with no update, 1,000 updates a second and updates flat out,
/// as quantiles of the histogram each figure keeps, with the throughput
/// against the loop with no updates and the breakpoints met per update
/// (figures of their own; from the latency figure's note in older
/// bundles).
fn callers_table(p: &Page<'_>) -> Markup {
    let inputs = p.inputs;
    let modes = [
        (scenario::CALLERS_IDLE, "no updates"),
        (scenario::CALLERS_1KHZ, "1,000 updates/s"),
        (scenario::CALLERS_FLAT_OUT, "updates flat out"),
    ];
    let m = callers_measure;
    if !inputs.iter().any(|i| {
        i.bench
            .figures
            .iter()
            .any(|f| m(scenario::CALLERS_IDLE).holds(f))
    }) {
        return html! {
            p class="note" { "Callers during updates (" code { "callers/…" } "): not in these bundles." }
        };
    }
    html! {
        table class="point" id="callers" {
            caption {
                "The callers' side of an update: one thread calls the key's one site in a loop and times every call (two " code { "rdtsc" } ", whose own cost is in every figure) while another updates the key not at all, 1,000 times a second, or flat out. Per-call latency p50 · p99 · p99.9 · p99.99 · max (from the histogram of every call), then the caller's throughput against the loop with no updates and the breakpoints met per update. No call that started after an update returned reached an older target (the run fails otherwise)."
            }
            thead { tr { th { "subject" } (machine_head(inputs)) @for (_, h) in modes { th { (h) } } } }
            tbody {
                @for sub in p.subjects.iter().filter(|x| x.implementation) {
                    @for i in inputs {
                        @let base = throughput_of(&i.bench, &sub.name, scenario::CALLERS_IDLE);
                        tr {
                            (row_head(inputs, sub, i))
                            @for (sc, _) in modes {
                                @match m(sc).get(&i.bench, &sub.name, Some(1)) {
                                    Some(f) => (callers_cell(&i.bench, sc, f, base)),
                                    None => (na(&m(sc).why(&i.bench, Some(&sub.name)))),
                                }
                            }
                        }
                    }
                }
            }
        }
    }
}

/// One cell of the callers' table: `f` the latency figure of `sc`, `idle`
/// the throughput of the loop with no updates.
fn callers_cell(b: &BenchBundle, sc: &'static str, f: &Figure, idle: Option<f64>) -> Markup {
    let Some(h) = &f.histogram else {
        return html! { td { (fmt::time_ns(f.value)) } };
    };
    let calls = throughput_of(b, &f.subject, sc);
    let tput = match (calls, idle) {
        (Some(a), Some(z)) if sc != scenario::CALLERS_IDLE => {
            format!(" · {} of idle", fmt::bare_ratio(a / z))
        }
        _ => String::new(),
    };
    let traps = breakpoints_of(b, &f.subject, sc)
        .map(|t| format!(" · {t:.2} breakpoints/update"))
        .unwrap_or_default();
    let q = |x| fmt::time_ns(h.quantile(x));
    html! {
        td title=(note(f)) {
            (q(0.5)) " · " (q(0.99)) " · " (q(0.999)) " · " (q(0.9999)) " · " (fmt::time_ns(h.max))
            br;
            small {
                (format!("{:.1} M calls/s", calls.map_or(f64::NAN, |c| c / 1e6)))
                (tput) (traps)
            }
        }
    }
}

/// The number right after `key` in a figure's note (`throughput 42.1 M
/// calls/s` gives 42.1): the fallback for the callers' counts in bundles
/// written before they were figures of their own.
fn note_number(f: &Figure, key: &str) -> Option<f64> {
    let n = f.note.as_deref()?;
    let rest = &n[n.find(key)? + key.len()..];
    let end = rest
        .find(|c: char| !(c.is_ascii_digit() || c == '.'))
        .unwrap_or(rest.len());
    rest[..end].parse().ok()
}

/// A table row's first cells: the subject with its colour, and the
/// machine when the page shows several.
fn row_head(inputs: &[Input], sub: &Subject, i: &Input) -> Markup {
    html! {
        (subject_th(&sub.name))
        @if inputs.len() > 1 { td { (i.label) } }
    }
}

/// The header cell of [`row_head`]'s machine column, when there is one.
fn machine_head(inputs: &[Input]) -> Markup {
    html! { @if inputs.len() > 1 { th { "machine" } } }
}

/// The `k`th figure of `v`.
fn at<'a>(v: &[&'a Figure], k: usize) -> Option<&'a Figure> {
    v.get(k).copied()
}

/// The churn figures of one bundle and subject for one metric, by
/// modules churned.
fn churn_pair<'a>(b: &'a BenchBundle, subject: &str, metric: Metric) -> Vec<&'a Figure> {
    let mut v: Vec<&Figure> = b
        .figures
        .iter()
        .filter(|f| {
            f.scenario == scenario::MEMORY_CHURN && f.subject == subject && f.metric == metric
        })
        .collect();
    v.sort_by_key(|f| f.sites);
    v
}

/// One row of the churn table: a subject on a machine at the first or
/// the last tenth.
struct ChurnRow<'a> {
    input: &'a Input,
    subject: &'a Subject,
    modules: u64,
    first: bool,
    slots: Option<&'a Figure>,
    rss: Option<&'a Figure>,
    time: Option<&'a Figure>,
}

/// memory/churn: trap-table slots, resident memory and time per module at
/// the first and the last tenth of the run, per implementation churned.
pub(crate) fn churn_table(p: &Page<'_>) -> Markup {
    let inputs = p.inputs;
    let mut rows: Vec<ChurnRow<'_>> = Vec::new();
    for i in inputs {
        for sub in p.subjects.iter().filter(|x| x.implementation) {
            let slots = churn_pair(&i.bench, &sub.name, Metric::TrapTableSlots);
            let rss = churn_pair(&i.bench, &sub.name, Metric::ResidentBytes);
            let time = churn_pair(&i.bench, &sub.name, Metric::WallTime);
            for k in 0..slots.len().max(time.len()) {
                rows.push(ChurnRow {
                    input: i,
                    subject: sub,
                    modules: at(&slots, k)
                        .or(at(&time, k))
                        .and_then(|f| f.sites)
                        .unwrap_or(0),
                    first: k == 0,
                    slots: at(&slots, k),
                    rss: at(&rss, k),
                    time: at(&time, k),
                });
            }
        }
    }
    let not_measured = html! { td class="na" { small { "not measured" } } };
    html! {
        table class="point" id="churn" {
            caption { "memory/churn: modules loaded, updated and unloaded one after another, each at an address no module had before (as a JIT does): the trap handler's table of known slots, the resident memory of the process and the time per module (load + update + unload; median [95% interval]) at the first and the last tenth of the run. Memory is bounded when the last tenth holds no more slots than the first." }
            thead {
                tr {
                    th { "subject" } (machine_head(inputs))
                    th { "modules" } th { "trap-table slots" } th { "resident memory" } th { "time per module" }
                }
            }
            tbody {
                @for r in &rows {
                    tr {
                        (row_head(inputs, r.subject, r.input))
                        td { (fmt::thousands(r.modules)) " " small class="what" { "(" @if r.first { "first tenth" } @else { "last tenth" } ")" } }
                        @for f in [r.slots, r.rss] {
                            @match f {
                                Some(f) => td title=(note(f)) { (fmt::value(f.metric, f.value)) },
                                None => (not_measured),
                            }
                        }
                        @match r.time {
                            Some(f) => td title=(note(f)) { (fmt::time_ns(f.value)) small { (interval_text(f)) } },
                            None => (not_measured),
                        }
                    }
                }
                @if rows.is_empty() {
                    tr { td class="na" colspan="5" { small { (churn_absent(inputs)) } } }
                }
            }
        }
    }
}

/// Why no bundle has a churn figure.
fn churn_absent(inputs: &[Input]) -> String {
    let m = Measure::new(
        scenario::MEMORY_CHURN,
        Metric::TrapTableSlots,
        Per::Total,
        Instrument::Memory,
    );
    inputs
        .iter()
        .map(|i| {
            let r = m.why(&i.bench, None);
            if inputs.len() > 1 {
                format!("{}: {r}", i.label)
            } else {
                r
            }
        })
        .collect::<Vec<_>>()
        .join("; ")
}
