//! The thread axis of update latency (update/threads, update/threads-busy,
//! update/batch-100-keys, update/100-keys-one-by-one) and the module churn
//! table (memory/churn).

use std::fmt::Write as _;

use static_call_bundle::{BenchBundle, Figure, Instrument, Metric, Per, scenario};

use crate::charts::{self, LineChart, Point, Series};
use crate::fmt::{self, esc};
use crate::input::Input;
use crate::model::{Measure, Subject, color};
use crate::page::{absences, interval_text, legend, no_data, section_head};

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

/// The chart of one group: x is the number of threads in the process (the
/// updater and the others), log–log.
fn chart(
    inputs: &[Input],
    subjects: &[Subject],
    sc: &'static str,
    id: &str,
    title: &str,
) -> String {
    let m = measure(sc);
    let expected: Vec<&str> = subjects
        .iter()
        .filter(|s| s.implementation)
        .map(|s| s.name.as_str())
        .collect();
    let mut series = Vec::new();
    let mut present: Vec<&str> = Vec::new();
    for (k, input) in inputs.iter().enumerate() {
        for &n in &expected {
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
                        x: f.sites.unwrap_or(0) as f64 + 1.0,
                        y: f.value,
                        interval: f.interval.map(|iv| (iv.low, iv.high)),
                    })
                    .collect(),
            });
        }
    }
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
    let mut s = format!(
        r#"<figure id="fig-{id}"><figcaption>{}</figcaption>"#,
        esc(title)
    );
    match charts::line_chart(&c) {
        Some(svg) => {
            s.push_str(&svg);
            let mut ks: Vec<usize> = c.series.iter().map(|x| x.style).collect();
            ks.dedup();
            s.push_str(&legend(inputs, &present, &ks));
            s.push_str(&absences(inputs, &expected, m, &|k, n| {
                !m.all(&inputs[k].bench, n).is_empty()
            }));
        }
        None => s.push_str(&no_data(inputs, m)),
    }
    s.push_str("</figure>");
    s
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

fn cell(f: &Figure) -> String {
    let mut s = format!(
        r#"<td title="{}">{}<small>{}</small>"#,
        esc(f.note.as_deref().unwrap_or("")),
        esc(&fmt::time_ns(f.value)),
        esc(&interval_text(f))
    );
    if let (Some(p99), Some(max)) = (quantile(&f.raw, 0.99), quantile(&f.raw, 1.0)) {
        let _ = write!(
            s,
            r#"<br><small class="what">p99 {} · max {}</small>"#,
            esc(&fmt::time_ns(p99)),
            esc(&fmt::time_ns(max))
        );
    }
    if let Some(r) = &f.ratio {
        let _ = write!(
            s,
            r#"<div class="ratio"><b>{}</b> <small>[{} – {}] ÷ one 1-key update</small></div>"#,
            esc(&fmt::ratio(r.value)),
            esc(&fmt::bare_ratio(r.interval.low)),
            esc(&fmt::bare_ratio(r.interval.high))
        );
    }
    s.push_str("</td>");
    s
}

/// The section: two charts (parked threads, busy callers) and a table of
/// every configuration (median with its interval, p99, max; the batch rows'
/// ratio to one 1-key update).
pub fn section(inputs: &[Input], subjects: &[Subject]) -> String {
    let mut s = String::new();
    section_head(
        &mut s,
        "threads",
        "The latency of one update of a 1-site key against the other threads in the process (issue 18): parked on a condition variable (0 to 1,000) or calling the key in a loop (1 to 4 busy callers, each pinned to a CPU of its own while there are enough), log–log; the median of single updates timed one by one, whiskers its bootstrap 95% interval. And 100 keys of one site switched in one batch against one update at a time. Before anything is timed each key's site (and trampoline) is decoded. The targets (1,000 parked ≤ 2 × none; 1 busy caller ≤ 2 × none; none ≤ 10 µs; a batch of 100 ≤ 3 × one 1-key update) are judged in the summary.",
    );
    s.push_str(r#"<div class="pair">"#);
    s.push_str(&chart(
        inputs,
        subjects,
        scenario::UPDATE_THREADS,
        "update-threads",
        "update/threads: update latency vs threads in the process (the others parked)",
    ));
    s.push_str(&chart(
        inputs,
        subjects,
        scenario::UPDATE_THREADS_BUSY,
        "update-threads-busy",
        "update/threads-busy: update latency vs threads in the process (busy callers of the key)",
    ));
    s.push_str("</div>");
    let cols = columns(inputs);
    if cols.is_empty() {
        s.push_str(&no_data(inputs, measure(scenario::UPDATE_THREADS)));
        s.push_str(&callers_table(inputs, subjects));
        s.push_str("</section>");
        return s;
    }
    s.push_str(r#"<table class="point" id="threads-table"><caption>One update against the threads in the process; 100 keys in one batch and one by one (median [95% interval], p99 · max of the samples; hover for how each was taken)</caption><thead><tr><th>subject</th>"#);
    machine_head(&mut s, inputs);
    for (_, _, h) in &cols {
        let _ = write!(s, "<th>{}</th>", esc(h));
    }
    s.push_str("</tr></thead><tbody>");
    for sub in subjects.iter().filter(|x| x.implementation) {
        for i in inputs {
            row_head(&mut s, inputs, sub, i);
            for (sc, p, _) in &cols {
                match measure(sc).get(&i.bench, &sub.name, Some(*p)) {
                    Some(f) => s.push_str(&cell(f)),
                    None => {
                        let _ = write!(
                            s,
                            r#"<td class="na"><small>{}</small></td>"#,
                            esc(&measure(sc).why(&i.bench, Some(&sub.name)))
                        );
                    }
                }
            }
            s.push_str("</tr>");
        }
    }
    s.push_str("</tbody></table>");
    s.push_str(&callers_table(inputs, subjects));
    s.push_str("</section>");
    s
}

/// The figures of a callers' scenario (`callers/…`): a caller's per-call
/// wall time, with its histogram.
pub fn callers_measure(sc: &'static str) -> Measure {
    Measure::new(sc, Metric::WallTime, Per::Call, Instrument::Timer)
}

/// The callers' side of an update (`callers/…`): one caller's per-call
/// latency with no update, 1,000 updates a second and updates flat out,
/// as quantiles of the histogram each figure keeps, with the throughput
/// against the loop with no updates and the breakpoints met per update
/// (from the figure's note).
pub fn callers_table(inputs: &[Input], subjects: &[Subject]) -> String {
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
        return r#"<p class="note">Callers during updates (<code>callers/…</code>): not in these bundles.</p>"#.to_owned();
    }
    let mut s = String::from(
        r#"<table class="point" id="callers"><caption>The callers' side of an update: one thread calls the key's one site in a loop and times every call (two <code>rdtsc</code>, whose own cost is in every figure) while another updates the key not at all, 1,000 times a second, or flat out. Per-call latency p50 · p99 · p99.9 · p99.99 · max (from the histogram of every call), then the caller's throughput against the loop with no updates and the breakpoints met per update. No call that started after an update returned reached an older target (the run fails otherwise).</caption><thead><tr><th>subject</th>"#,
    );
    machine_head(&mut s, inputs);
    for (_, h) in modes {
        let _ = write!(s, "<th>{}</th>", esc(h));
    }
    s.push_str("</tr></thead><tbody>");
    for sub in subjects.iter().filter(|x| x.implementation) {
        for i in inputs {
            row_head(&mut s, inputs, sub, i);
            let base = m(scenario::CALLERS_IDLE).get(&i.bench, &sub.name, Some(1));
            for (sc, _) in modes {
                match m(sc).get(&i.bench, &sub.name, Some(1)) {
                    Some(f) => s.push_str(&callers_cell(f, base)),
                    None => {
                        let _ = write!(
                            s,
                            r#"<td class="na"><small>{}</small></td>"#,
                            esc(&m(sc).why(&i.bench, Some(&sub.name)))
                        );
                    }
                }
            }
            s.push_str("</tr>");
        }
    }
    s.push_str("</tbody></table>");
    s
}

/// One cell of the callers' table.
fn callers_cell(f: &Figure, base: Option<&Figure>) -> String {
    let Some(h) = &f.histogram else {
        return format!("<td>{}</td>", esc(&fmt::time_ns(f.value)));
    };
    let tput = match base {
        Some(b) if !std::ptr::eq(b, f) => note_number(f, "throughput ")
            .zip(note_number(b, "throughput "))
            .map(|(a, z)| format!(" · {} of idle", fmt::bare_ratio(a / z)))
            .unwrap_or_default(),
        _ => String::new(),
    };
    let traps = note_number(f, "calls met a breakpoint (")
        .map(|t| format!(" · {t:.2} breakpoints/update"))
        .unwrap_or_default();
    format!(
        r#"<td title="{}">{} · {} · {} · {} · {}<br><small>{}{}{}</small></td>"#,
        esc(f.note.as_deref().unwrap_or("")),
        esc(&fmt::time_ns(h.quantile(0.5))),
        esc(&fmt::time_ns(h.quantile(0.99))),
        esc(&fmt::time_ns(h.quantile(0.999))),
        esc(&fmt::time_ns(h.quantile(0.9999))),
        esc(&fmt::time_ns(h.max)),
        esc(&format!(
            "{:.1} M calls/s",
            note_number(f, "throughput ").unwrap_or(f64::NAN)
        )),
        esc(&tput),
        esc(&traps),
    )
}

/// The number right after `key` in a figure's note (`throughput 42.1 M
/// calls/s` gives 42.1); for the callers' figures, whose counts the note
/// carries.
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
fn row_head(s: &mut String, inputs: &[Input], sub: &Subject, i: &Input) {
    let _ = write!(
        s,
        r#"<tr><th><span class="key" style="background:{}"></span>{}</th>"#,
        color(&sub.name),
        esc(&sub.name)
    );
    if inputs.len() > 1 {
        let _ = write!(s, "<td>{}</td>", esc(&i.label));
    }
}

/// The header cell of [`row_head`]'s machine column, when there is one.
fn machine_head(s: &mut String, inputs: &[Input]) {
    if inputs.len() > 1 {
        s.push_str("<th>machine</th>");
    }
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

/// memory/churn: trap-table slots, resident memory and time per module at
/// the first and the last tenth of the run, per implementation churned.
pub fn churn_table(inputs: &[Input], subjects: &[Subject]) -> String {
    let mut s = String::from(
        r#"<table class="point" id="churn"><caption>memory/churn: modules loaded, updated and unloaded one after another, each at an address no module had before (as a JIT does): the trap handler's table of known slots, the resident memory of the process and the time per module (load + update + unload; median [95% interval]) at the first and the last tenth of the run. Memory is bounded when the last tenth holds no more slots than the first.</caption><thead><tr><th>subject</th>"#,
    );
    machine_head(&mut s, inputs);
    s.push_str("<th>modules</th><th>trap-table slots</th><th>resident memory</th><th>time per module</th></tr></thead><tbody>");
    let mut rows = 0;
    for i in inputs {
        for sub in subjects.iter().filter(|x| x.implementation) {
            let slots = churn_pair(&i.bench, &sub.name, Metric::TrapTableSlots);
            let rss = churn_pair(&i.bench, &sub.name, Metric::ResidentBytes);
            let time = churn_pair(&i.bench, &sub.name, Metric::WallTime);
            if slots.is_empty() && time.is_empty() {
                continue;
            }
            rows += 1;
            for k in 0..slots.len().max(time.len()) {
                row_head(&mut s, inputs, sub, i);
                let n = at(&slots, k)
                    .or(at(&time, k))
                    .and_then(|f| f.sites)
                    .unwrap_or(0);
                let which = if k == 0 { "first tenth" } else { "last tenth" };
                let _ = write!(
                    s,
                    r#"<td>{} <small class="what">({which})</small></td>"#,
                    fmt::thousands(n)
                );
                for f in [at(&slots, k), at(&rss, k)] {
                    match f {
                        Some(f) => {
                            let _ = write!(
                                s,
                                r#"<td title="{}">{}</td>"#,
                                esc(f.note.as_deref().unwrap_or("")),
                                esc(&fmt::value(f.metric, f.value))
                            );
                        }
                        None => s.push_str(r#"<td class="na"><small>not measured</small></td>"#),
                    }
                }
                match at(&time, k) {
                    Some(f) => {
                        let _ = write!(
                            s,
                            r#"<td title="{}">{}<small>{}</small></td>"#,
                            esc(f.note.as_deref().unwrap_or("")),
                            esc(&fmt::time_ns(f.value)),
                            esc(&interval_text(f))
                        );
                    }
                    None => s.push_str(r#"<td class="na"><small>not measured</small></td>"#),
                }
                s.push_str("</tr>");
            }
        }
    }
    if rows == 0 {
        let m = Measure::new(
            scenario::MEMORY_CHURN,
            Metric::TrapTableSlots,
            Per::Total,
            Instrument::Memory,
        );
        let reasons: Vec<String> = inputs
            .iter()
            .map(|i| {
                let r = m.why(&i.bench, None);
                if inputs.len() > 1 {
                    format!("{}: {r}", i.label)
                } else {
                    r
                }
            })
            .collect();
        let _ = write!(
            s,
            r#"<tr><td class="na" colspan="5"><small>{}</small></td></tr>"#,
            esc(&reasons.join("; "))
        );
    }
    s.push_str("</tbody></table>");
    s
}
