//! The page: sections, charts, tables, and the style sheet.

use std::collections::BTreeMap;
use std::fmt::Write as _;

use static_call_bundle::{
    BenchBundle, Figure, Instrument, Metric, Mode, Outcome, Per, SiteDump, control, scenario,
};

use crate::baseline::{Change, Comparison, Method, Verdict};
use crate::charts::{self, DotChart, DotPoint, DotRow, LineChart, Point, Series};
use crate::fmt::{self, esc};
use crate::input::{Input, Matrix};
use crate::model::{self, Measure, Subject, color, why};
use crate::summary;

const CSS: &str = include_str!("style.css");

/// The whole page.
pub fn render(inputs: &[Input], changes: Option<&Comparison>) -> String {
    let subjects = model::subjects(inputs);
    let mut s = String::new();
    s.push_str("<!DOCTYPE html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n");
    s.push_str("<meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\n");
    let _ = writeln!(
        s,
        "<title>Static calls in userspace: {}</title>",
        esc(&inputs
            .iter()
            .map(|i| i.label.as_str())
            .collect::<Vec<_>>()
            .join(" · "))
    );
    let _ = writeln!(s, "<style>\n{CSS}</style>\n</head>\n<body>");
    header(&mut s, inputs, changes.is_some());
    s.push_str("<main>\n");
    if inputs.is_empty() {
        s.push_str(r#"<p class="nodata">No bundle was given.</p>"#);
    } else {
        if let Some(c) = changes {
            s.push_str(&changes_section(c));
            s.push('\n');
        }
        s.push_str(&summary::section(inputs, &subjects));
        s.push('\n');
        s.push_str(&calls(inputs, &subjects));
        s.push('\n');
        s.push_str(&updates(inputs, &subjects));
        s.push('\n');
        s.push_str(&crate::threads::section(inputs, &subjects));
        s.push('\n');
        s.push_str(&modules(inputs, &subjects));
        s.push('\n');
        s.push_str(&memory(inputs, &subjects));
        s.push('\n');
        s.push_str(&tables(inputs, &subjects));
        s.push('\n');
        s.push_str(&counters(inputs, &subjects));
        s.push('\n');
        s.push_str(&sites(inputs, &subjects));
        s.push('\n');
        s.push_str(&conformance(inputs));
        s.push('\n');
        s.push_str(&machines(inputs));
        s.push('\n');
    }
    s.push_str("</main>\n<footer>Written by <code>static-call-report</code> from the bundles named under <a href=\"#machines\">Machines and method</a>; it holds everything it shows and needs no network or script.</footer>\n</body>\n</html>\n");
    s
}

/// The sections, by id, in page order.
pub const SECTIONS: &[(&str, &str)] = &[
    ("summary", "Summary"),
    ("calls", "Call cost"),
    ("updates", "Updates"),
    ("threads", "Updates and threads"),
    ("modules", "Modules"),
    ("memory", "Memory"),
    ("tables", "All figures"),
    ("counters", "Counters"),
    ("sites", "Sites, decoded"),
    ("conformance", "Conformance"),
    ("machines", "Machines and method"),
];

fn mode(m: Mode) -> &'static str {
    match m {
        Mode::Quick => "quick",
        Mode::Full => "full",
    }
}

fn header(s: &mut String, inputs: &[Input], changes: bool) {
    s.push_str("<header>\n<h1>Static calls in userspace</h1>\n<p class=\"sub\">static-call implementations against direct and indirect calls");
    if !inputs.is_empty() {
        let _ = write!(
            s,
            ", on {} machine{}: ",
            inputs.len(),
            if inputs.len() == 1 { "" } else { "s" }
        );
        let ms: Vec<String> = inputs
            .iter()
            .enumerate()
            .map(|(k, i)| {
                let sw = if inputs.len() > 1 {
                    charts::swatch(k, "#555")
                } else {
                    String::new()
                };
                format!(
                    "{sw}<b>{}</b> ({}, {} run)",
                    esc(&i.label),
                    esc(&fmt::date(&i.bench.machine.date)),
                    mode(i.bench.run.mode)
                )
            })
            .collect();
        s.push_str(&ms.join("; "));
    }
    s.push_str(".</p>\n");
    let mut commits: Vec<&str> = inputs
        .iter()
        .map(|i| i.bench.machine.commit.as_str())
        .collect();
    commits.sort_unstable();
    commits.dedup();
    if commits.len() > 1 {
        let _ = write!(
            s,
            r#"<p class="warn" id="commit-warning"><b>These bundles come from different commits</b> ({}): a difference between columns may be a change of the code, not of the machine.</p>"#,
            esc(&inputs
                .iter()
                .map(|i| format!("{}: {}", i.label, i.bench.machine.commit))
                .collect::<Vec<_>>()
                .join("; "))
        );
    }
    s.push_str("<nav>");
    if changes {
        s.push_str(r##"<a href="#changes">Changes</a>"##);
    }
    for (id, name) in SECTIONS {
        let _ = write!(s, "<a href=\"#{id}\">{name}</a>");
    }
    s.push_str("</nav>\n</header>\n");
}

/// Legend: subjects by colour, and machines by marker when several
/// (those of `machines`, the indices with points in the chart).
pub(crate) fn legend(inputs: &[Input], names: &[&str], machines: &[usize]) -> String {
    let mut s = String::from(r#"<div class="legend">"#);
    for n in names {
        let _ = write!(s, "<span>{}{}</span>", charts::swatch(0, color(n)), esc(n));
    }
    if inputs.len() > 1 {
        for (k, i) in inputs
            .iter()
            .enumerate()
            .filter(|(k, _)| machines.contains(k))
        {
            let _ = write!(
                s,
                r#"<span class="m">{}{}</span>"#,
                charts::swatch(k, "#555"),
                esc(&i.label)
            );
        }
    }
    s.push_str("</div>");
    s
}

/// Notes on what each machine lacks among `expected`.
pub(crate) fn absences(
    inputs: &[Input],
    expected: &[&str],
    m: Measure,
    has: &dyn Fn(usize, &str) -> bool,
) -> String {
    let mut lines = Vec::new();
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
            lines.push(format!(
                "<li><b>{}</b>: {}: {}</li>",
                esc(&input.label),
                esc(&who),
                esc(&r)
            ));
        }
    }
    if lines.is_empty() {
        String::new()
    } else {
        format!(r#"<ul class="absent">{}</ul>"#, lines.concat())
    }
}

pub(crate) fn no_data(inputs: &[Input], m: Measure) -> String {
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
    format!(
        r#"<p class="nodata">No chart: no figure of this kind — {}.</p>"#,
        esc(&reasons.join("; "))
    )
}

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

fn dot_figure(inputs: &[Input], subjects: &[Subject], m: Measure, id: &str, title: &str) -> String {
    let mut expected: Vec<&str> = Vec::new();
    for sub in subjects {
        let any = inputs
            .iter()
            .any(|i| m.get(&i.bench, &sub.name, None).is_some());
        if any || sub.implementation {
            expected.push(&sub.name);
        }
    }
    let rows: Vec<DotRow> = expected
        .iter()
        .map(|&n| DotRow {
            label: n.to_owned(),
            color: color(n),
            points: inputs
                .iter()
                .enumerate()
                .filter_map(|(k, i)| {
                    let f = m.get(&i.bench, n, None)?;
                    Some(DotPoint {
                        style: k,
                        value: f.value,
                        interval: f.interval.map(|iv| (iv.low, iv.high)),
                        text: fmt::bare(f.metric, f.value),
                    })
                })
                .collect(),
        })
        .collect();
    let reference = m.get(&inputs[0].bench, control::DIRECT, None).map(|f| {
        let label = if inputs.len() > 1 {
            format!("direct call on {}", inputs[0].label)
        } else {
            "direct call".to_owned()
        };
        (f.value, label)
    });
    let chart = DotChart {
        id: id.to_owned(),
        title: title.to_owned(),
        x_label: format!(
            "{} per {} ({})",
            m.metric.name(),
            m.per.name(),
            m.metric.unit()
        ),
        x_tick: match m.metric {
            Metric::WallTime | Metric::TaskClock => fmt::time_tick,
            _ => fmt::count_tick,
        },
        styles: inputs.len(),
        rows,
        reference,
    };
    let mut s = format!(
        r#"<figure id="fig-{id}"><figcaption>{}</figcaption>"#,
        esc(title)
    );
    match charts::dot_chart(&chart) {
        Some(svg) => {
            s.push_str(&svg);
            if inputs.len() > 1 {
                let ks: Vec<usize> = (0..inputs.len())
                    .filter(|&k| {
                        expected
                            .iter()
                            .any(|n| m.get(&inputs[k].bench, n, None).is_some())
                    })
                    .collect();
                s.push_str(&legend(inputs, &[], &ks));
            }
            s.push_str(&absences(inputs, &expected, m, &|k, n| {
                m.get(&inputs[k].bench, n, None).is_some()
            }));
        }
        None => s.push_str(&no_data(inputs, m)),
    }
    s.push_str("</figure>");
    s
}

struct Lines<'a> {
    id: &'a str,
    title: &'a str,
    m: Measure,
    targets: Vec<charts::Target>,
    /// Log y whenever every value is positive (latencies); otherwise only
    /// when the values span more than a factor of 20.
    log: bool,
}

fn sites_figure(inputs: &[Input], subjects: &[Subject], c: Lines<'_>) -> String {
    let m = c.m;
    let mut expected: Vec<&str> = Vec::new();
    for sub in subjects {
        let any = inputs
            .iter()
            .any(|i| !m.all(&i.bench, &sub.name).is_empty());
        if any || sub.implementation {
            expected.push(&sub.name);
        }
    }
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
                        x: f.sites.unwrap_or(1) as f64,
                        y: f.value,
                        interval: f.interval.map(|iv| (iv.low, iv.high)),
                    })
                    .collect(),
            });
        }
    }
    present.sort_by_key(|n| expected.iter().position(|e| e == n));
    let values: Vec<f64> = series
        .iter()
        .flat_map(|s| s.points.iter().map(|p| p.y))
        .collect();
    let min = values.iter().copied().fold(f64::INFINITY, f64::min);
    let max = values.iter().copied().fold(0.0, f64::max);
    let y_log = min > 0.0 && (c.log || max / min >= 20.0);
    let chart = LineChart {
        id: c.id.to_owned(),
        title: c.title.to_owned(),
        x_label: "sites (log scale)".to_owned(),
        y_label: format!(
            "{} per {}{}",
            m.metric.name(),
            m.per.name(),
            if y_log { " (log scale)" } else { "" }
        ),
        x_tick: fmt::count_tick,
        y_tick: match m.metric {
            Metric::WallTime | Metric::TaskClock => fmt::time_tick,
            _ => fmt::count_tick,
        },
        y_log,
        series,
        targets: c.targets,
    };
    let mut s = format!(
        r#"<figure id="fig-{}"><figcaption>{}</figcaption>"#,
        c.id,
        esc(c.title)
    );
    match charts::line_chart(&chart) {
        Some(svg) => {
            s.push_str(&svg);
            let mut ks: Vec<usize> = chart.series.iter().map(|x| x.style).collect();
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

pub(crate) fn section_head(s: &mut String, id: &str, intro: &str) {
    let name = SECTIONS
        .iter()
        .find(|(i, _)| *i == id)
        .map_or(id, |(_, n)| n);
    let _ = write!(
        s,
        r#"<section id="{id}"><h2>{name}</h2><p class="intro">{intro}</p>"#
    );
}

fn calls(inputs: &[Input], subjects: &[Subject]) -> String {
    let mut s = String::new();
    section_head(
        &mut s,
        "calls",
        "What one call costs, per implementation and control: wall time (point: the median of the per-round values of interleaved rounds; whiskers: its bootstrap 95% interval; a version 1 bundle: criterion's mean and its interval) and exact instruction counts under callgrind. The dashed line is the direct call on the first machine. Figures include the benchmark loop's own increment-compare-branch, the same for every subject. Beside each chart, the ratio to the direct call: the median of the per-round ratios with its bootstrap 95% interval; <code>direct-aa</code>, the reference loop compiled a second time (the direct call's; for cond-none the <code>Option&lt;fn&gt;</code> one), is the noise floor. <code>plain-indirect</code> (the implementation: <code>mov rax, [key]; call rax</code>) and <code>call-mem-indirect</code> (<code>call [rip + slot]</code>) are the indirect calls an Enhanced-IBRS kernel makes, <code>lfence-indirect</code> the AMD-style retpoline, <code>indirect</code> the generic retpoline: which one this machine's kernel uses is its <code>spectre_v2</code> line (under Machines).",
    );
    for sc in [
        scenario::CALL_HOT_1,
        scenario::CALL_HOT_6,
        scenario::CALL_MANY,
        scenario::CALL_COND_NONE,
    ] {
        let slug = sc.replace('/', "-");
        let _ = write!(
            s,
            r#"<h3 id="{slug}">{} <small>— {}</small></h3><div class="pair">"#,
            esc(sc),
            fmt::esc_code(scenario::describe(sc).unwrap_or(""))
        );
        s.push_str(&dot_figure(
            inputs,
            subjects,
            Measure::call_wall(sc),
            &format!("{slug}-wall"),
            &format!("{sc}: wall time per call"),
        ));
        s.push_str(&dot_figure(
            inputs,
            subjects,
            Measure::call_instr(sc),
            &format!("{slug}-instructions"),
            &format!("{sc}: instructions per call (callgrind)"),
        ));
        s.push_str("</div>");
        s.push_str(&ratio_table(inputs, subjects, sc));
    }
    let sc = scenario::CALL_HOT_1_IB_OFF;
    let _ = write!(
        s,
        r#"<h3 id="call-hot-1arg-ib-spec-off">{} <small>— {}</small></h3>"#,
        esc(sc),
        fmt::esc_code(scenario::describe(sc).unwrap_or(""))
    );
    s.push_str(&ratio_table(inputs, subjects, sc));
    s.push_str("</section>");
    s
}

/// Ratios to the direct call, round by round: median and interval, per
/// subject and machine.
fn ratio_table(inputs: &[Input], subjects: &[Subject], sc: &'static str) -> String {
    let m = Measure::call_wall(sc);
    let mut s = format!(
        r#"<table class="point ratios" id="ratios-{}"><caption>{}: wall time per call (median of rounds) and ratio to the reference (median of per-round ratios, bootstrap 95% interval)</caption><thead><tr><th>subject</th>"#,
        sc.replace('/', "-"),
        esc(sc)
    );
    for i in inputs {
        let _ = write!(s, "<th>{}</th>", esc(&i.label));
    }
    s.push_str("</tr></thead><tbody>");
    let mut any_row = false;
    for sub in subjects {
        if !inputs
            .iter()
            .any(|i| m.get(&i.bench, &sub.name, None).is_some())
        {
            continue;
        }
        any_row = true;
        let _ = write!(
            s,
            r#"<tr{}><th><span class="key" style="background:{}"></span>{}</th>"#,
            if sub.name == control::DIRECT_AA {
                r#" class="noise""#
            } else {
                ""
            },
            color(&sub.name),
            esc(&sub.name)
        );
        for i in inputs {
            match m.get(&i.bench, &sub.name, None) {
                Some(f) => {
                    let r = match &f.ratio {
                        Some(r) => format!(
                            "{} [{} – {}] <small>÷ {}</small>",
                            esc(&fmt::ratio(r.value)),
                            esc(&fmt::bare_ratio(r.interval.low)),
                            esc(&fmt::bare_ratio(r.interval.high)),
                            esc(&r.reference)
                        ),
                        None if f.statistic.is_none() => {
                            "<small>no per-round ratio (version 1 bundle)</small>".to_owned()
                        }
                        None => "<small>the reference</small>".to_owned(),
                    };
                    let _ = write!(
                        s,
                        r#"<td>{}<br><small>{}{}</small></td>"#,
                        r,
                        esc(&fmt::value(f.metric, f.value)),
                        esc(&interval_text(f))
                    );
                }
                None => {
                    let _ = write!(
                        s,
                        r#"<td class="na"><small>{}</small></td>"#,
                        esc(&m.why(&i.bench, Some(&sub.name)))
                    );
                }
            }
        }
        s.push_str("</tr>");
    }
    if !any_row {
        s.push_str(r#"<tr><td class="na" colspan="99"><small>"#);
        s.push_str(&esc(&inputs
            .iter()
            .map(|i| format!("{}: {}", i.label, m.why(&i.bench, None)))
            .collect::<Vec<_>>()
            .join("; ")));
        s.push_str("</small></td></tr>");
    }
    s.push_str("</tbody></table>");
    s
}

fn target(x: f64, y: f64, label: &str) -> charts::Target {
    charts::Target {
        x,
        y,
        label: label.to_owned(),
    }
}

/// A small table: implementations down, machines across, one measure at
/// one site count.
fn point_table(
    inputs: &[Input],
    subjects: &[Subject],
    m: Measure,
    sites: Option<u64>,
    caption: &str,
) -> String {
    let mut s = format!(
        r#"<table class="point"><caption>{}</caption><thead><tr><th>subject</th>"#,
        esc(caption)
    );
    for i in inputs {
        let _ = write!(s, "<th>{}</th>", esc(&i.label));
    }
    s.push_str("</tr></thead><tbody>");
    for sub in subjects {
        let any = inputs
            .iter()
            .any(|i| m.get(&i.bench, &sub.name, sites).is_some());
        if !any && !sub.implementation {
            continue;
        }
        let _ = write!(
            s,
            r#"<tr><th><span class="key" style="background:{}"></span>{}</th>"#,
            color(&sub.name),
            esc(&sub.name)
        );
        for i in inputs {
            match m.get(&i.bench, &sub.name, sites) {
                Some(f) => {
                    let _ = write!(
                        s,
                        r#"<td>{}<small>{}</small></td>"#,
                        esc(&fmt::value(f.metric, f.value)),
                        esc(&interval_text(f))
                    );
                }
                None => {
                    let _ = write!(
                        s,
                        r#"<td class="na"><small>{}</small></td>"#,
                        esc(&m.why(&i.bench, Some(&sub.name)))
                    );
                }
            }
        }
        s.push_str("</tr>");
    }
    s.push_str("</tbody></table>");
    s
}

/// update/among-100k-foreign: every figure of each implementation, with
/// the ratio to the update alone.
fn foreign_table(inputs: &[Input], subjects: &[Subject]) -> String {
    let m = Measure::wall(scenario::UPDATE_FOREIGN, Per::Update);
    let mut s = String::from(
        r#"<table class="point" id="foreign"><caption>update/among-100k-foreign: one update of a 1-site key while 100,000 sites exist on other keys (wall time), and its ratio to the update alone (target ≤ 1.2)</caption><thead><tr><th>subject</th>"#,
    );
    for i in inputs {
        let _ = write!(s, "<th>{}</th>", esc(&i.label));
    }
    s.push_str("</tr></thead><tbody>");
    for sub in subjects.iter().filter(|x| x.implementation) {
        let _ = write!(
            s,
            r#"<tr><th><span class="key" style="background:{}"></span>{}</th>"#,
            color(&sub.name),
            esc(&sub.name)
        );
        for i in inputs {
            let figs = m.all(&i.bench, &sub.name);
            if figs.is_empty() {
                let _ = write!(
                    s,
                    r#"<td class="na"><small>{}</small></td>"#,
                    esc(&m.why(&i.bench, Some(&sub.name)))
                );
                continue;
            }
            s.push_str("<td>");
            for f in &figs {
                let what = match f.sites {
                    Some(0) => "no foreign site".to_owned(),
                    Some(n) if n > 1 => format!("{} foreign sites", fmt::thousands(n)),
                    _ => "among 100,000 foreign sites".to_owned(),
                };
                let _ = write!(
                    s,
                    r#"<div title="{}"><small class="what">{}:</small> {}<small>{}</small></div>"#,
                    esc(f.note.as_deref().unwrap_or("")),
                    esc(&what),
                    esc(&fmt::value(f.metric, f.value)),
                    esc(&interval_text(f))
                );
            }
            match summary::foreign_pair(&i.bench, &sub.name) {
                Ok(p) => {
                    let _ = write!(
                        s,
                        r#"<div class="ratio"><b>{}</b> <small>÷ {}</small></div>"#,
                        esc(&fmt::ratio(p.ratio())),
                        esc(p.alone_is)
                    );
                }
                Err(why) => {
                    let _ = write!(
                        s,
                        r#"<div class="ratio"><small>no ratio: {}</small></div>"#,
                        esc(&why)
                    );
                }
            }
            s.push_str("</td>");
        }
        s.push_str("</tr>");
    }
    s.push_str("</tbody></table>");
    s
}

fn updates(inputs: &[Input], subjects: &[Subject]) -> String {
    let mut s = String::new();
    section_head(
        &mut s,
        "updates",
        "The latency of one update against the number of sites of the key, log–log: the median of single updates timed one by one, whiskers its bootstrap 95% interval (p99, max and the first, cold update are in the All figures tables; a version 1 bundle: criterion's mean). inline-patch rewrites every site, so it grows with them; trampoline rewrites one <code>jmp</code>; indirect stores one pointer. Dashed levels mark the targets.",
    );
    s.push_str(r#"<div class="pair">"#);
    for (sc, id, title) in [
        (
            scenario::UPDATE_IDLE,
            "update-idle",
            "update/idle: one update, no other thread running",
        ),
        (
            scenario::UPDATE_BUSY,
            "update-busy",
            "update/busy: one update while two threads call the key",
        ),
    ] {
        s.push_str(&sites_figure(
            inputs,
            subjects,
            Lines {
                id,
                title,
                m: Measure::wall(sc, Per::Update),
                log: true,
                targets: if sc == scenario::UPDATE_IDLE {
                    vec![
                        target(1.0, 10e3, "target ≤ 10 µs"),
                        target(1e4, 2e6, "target ≤ 2 ms"),
                    ]
                } else {
                    vec![]
                },
            },
        ));
    }
    s.push_str("</div>");
    s.push_str(r#"<div class="pair">"#);
    s.push_str(&foreign_table(inputs, subjects));
    s.push_str(&point_table(
        inputs,
        subjects,
        Measure::new(
            scenario::UPDATE_VALGRIND_PATH,
            Metric::Instructions,
            Per::Update,
            Instrument::Callgrind,
        ),
        Some(1),
        "update/valgrind-path, 1 site: instructions per update under callgrind — the engine's valgrind path (one store per slot in an mprotect window; no int3, no membarrier, no thread scan), not the native update",
    ));
    s.push_str("</div></section>");
    s
}

fn modules(inputs: &[Input], subjects: &[Subject]) -> String {
    let mut s = String::new();
    section_head(
        &mut s,
        "modules",
        "Loading and unloading a generated module with N sites (criterion), log–log: registering its sites, checking their bytes and, for inline-patch, patching each to its key's current target.",
    );
    s.push_str(r#"<div class="pair">"#);
    s.push_str(&sites_figure(
        inputs,
        subjects,
        Lines {
            id: "module-load",
            title: "module/load: load a generated module with N sites",
            m: Measure::wall(scenario::MODULE_LOAD, Per::Load),
            targets: vec![target(1e4, 5e6, "target ≤ 5 ms")],
            log: true,
        },
    ));
    s.push_str(&sites_figure(
        inputs,
        subjects,
        Lines {
            id: "module-unload",
            title: "module/unload: unload a generated module with N sites",
            m: Measure::wall(scenario::MODULE_UNLOAD, Per::Unload),
            targets: vec![],
            log: true,
        },
    ));
    s.push_str("</div>");
    s.push_str(r#"<div class="pair">"#);
    s.push_str(&point_table(
        inputs,
        subjects,
        Measure::wall(scenario::SO_OPEN, Per::Load),
        Some(3),
        "shared-object/open: dlopen + registration of the test shared object (3 sites)",
    ));
    s.push_str(&point_table(
        inputs,
        subjects,
        Measure::wall(scenario::SO_CLOSE, Per::Unload),
        Some(3),
        "shared-object/close: unregistration + dlclose (3 sites)",
    ));
    s.push_str("</div></section>");
    s
}

fn memory(inputs: &[Input], subjects: &[Subject]) -> String {
    let mut s = String::new();
    section_head(
        &mut s,
        "memory",
        "Heap bytes, measured by a counting global allocator in the benchmark binary (version 2 bundles): per site and per module while modules of N sites load (the registry's nodes and, where a load patches its sites, the trap handler's table of published slots). The registry's own count per (key, module), capacity × size_of, is a formula and named so; version 1 bundles have only their registry's count. Code bytes and text made private by patching are in the All figures tables (memory/code, memory/private-text).",
    );
    s.push_str(r#"<div class="pair">"#);
    for (per, inst, id, title) in [
        (
            Per::Site,
            Instrument::Memory,
            "memory-site",
            "memory/registry: heap bytes per site (counting allocator)",
        ),
        (
            Per::Load,
            Instrument::Memory,
            "memory-load",
            "memory/registry: heap bytes per module load (counting allocator)",
        ),
        (
            Per::KeyModule,
            Instrument::Registry,
            "memory-key-module",
            "memory/registry: bytes per (key, module), the registry's own count (formula)",
        ),
    ] {
        s.push_str(&sites_figure(
            inputs,
            subjects,
            Lines {
                id,
                title,
                m: Measure::new(scenario::MEMORY, Metric::RegistryBytes, per, inst),
                targets: vec![],
                log: false,
            },
        ));
    }
    s.push_str("</div>");
    s.push_str(&crate::threads::churn_table(inputs, subjects));
    s.push_str("</section>");
    s
}

type RowKey = (Instrument, Metric, Per, usize, String, Option<u64>);

fn row_keys(inputs: &[Input], subjects: &[Subject], sc: &str) -> Vec<RowKey> {
    let mut keys: Vec<RowKey> = Vec::new();
    for i in inputs {
        for f in i.bench.figures.iter().filter(|f| f.scenario == sc) {
            let idx = subjects
                .iter()
                .position(|s| s.name == f.subject)
                .unwrap_or(usize::MAX);
            let k = (
                f.instrument,
                f.metric,
                f.per,
                idx,
                f.subject.clone(),
                f.sites,
            );
            if !keys.contains(&k) {
                keys.push(k);
            }
        }
    }
    keys.sort();
    keys
}

fn find<'a>(b: &'a BenchBundle, sc: &str, k: &RowKey) -> Option<&'a Figure> {
    b.figures.iter().find(|f| {
        f.scenario == sc
            && f.instrument == k.0
            && f.metric == k.1
            && f.per == k.2
            && f.subject == k.4
            && f.sites == k.5
    })
}

/// The `data-figure` attribute of a figure's value cell in the All figures
/// tables: `machine|scenario|instrument|metric|per|subject|sites` (sites
/// `-` where the figure has none), one per figure of every bundle.
pub fn figure_key(machine: &str, f: &Figure) -> String {
    format!(
        "{machine}|{}|{}|{}|{}|{}|{}",
        f.scenario,
        f.instrument.name(),
        f.metric.name(),
        f.per.name(),
        f.subject,
        f.sites.map_or("-".to_owned(), |n| n.to_string())
    )
}

fn tables(inputs: &[Input], subjects: &[Subject]) -> String {
    let mut s = String::new();
    section_head(
        &mut s,
        "tables",
        "Every figure of every bundle, by scenario: value and which statistic it is (median, mean, exact count, single measurement, formula), its confidence interval where there is one, and its ratio to the direct call (same scenario, metric and instrument; for call cost, the median of the per-round ratios). A latency's footnote gives its p99, max and first (cold) update. A machine without a figure says why.",
    );
    for sc in model::scenarios(inputs) {
        let keys = row_keys(inputs, subjects, &sc);
        let slug = format!("table-{}", sc.replace('/', "-"));
        let _ = write!(
            s,
            r#"<h3 id="{}">{}{}</h3>"#,
            esc(&slug),
            esc(&sc),
            scenario::describe(&sc).map_or(String::new(), |d| format!(
                " <small>— {}</small>",
                fmt::esc_code(d)
            ))
        );
        let not_taken = scenario_missing(inputs, &sc);
        if keys.is_empty() {
            let _ = write!(
                s,
                r#"<p class="nodata">No figure in any bundle: {}.</p>"#,
                if not_taken.is_empty() {
                    model::NOT_MEASURED.to_owned()
                } else {
                    "see below".to_owned()
                }
            );
            s.push_str(&not_taken);
            continue;
        }
        let has_sites = keys.iter().any(|k| k.5.is_some());
        let has_ci = inputs.iter().any(|i| {
            i.bench
                .figures
                .iter()
                .any(|f| f.scenario == sc && f.interval.is_some())
        });
        let has_direct = inputs.iter().any(|i| {
            i.bench
                .figures
                .iter()
                .any(|f| f.scenario == sc && f.subject == control::DIRECT)
        });
        let per_machine = 1 + usize::from(has_ci) + usize::from(has_direct);
        s.push_str(r#"<table class="figures"><thead><tr><th rowspan="2">subject</th>"#);
        if has_sites {
            s.push_str(r#"<th rowspan="2">sites</th>"#);
        }
        for i in inputs {
            let _ = write!(
                s,
                r#"<th colspan="{per_machine}" class="machine">{}</th>"#,
                esc(&i.label)
            );
        }
        s.push_str("</tr><tr>");
        for _ in inputs {
            s.push_str("<th>value</th>");
            if has_ci {
                s.push_str("<th>interval</th>");
            }
            if has_direct {
                s.push_str("<th>÷ direct</th>");
            }
        }
        s.push_str("</tr></thead><tbody>");
        let cols = 1 + usize::from(has_sites) + per_machine * inputs.len();
        let mut notes: Vec<String> = Vec::new();
        let mut group = None;
        for k in &keys {
            let g = (k.0, k.1, k.2);
            if group != Some(g) {
                group = Some(g);
                let _ = write!(
                    s,
                    r#"<tr class="group"><th colspan="{cols}">{} per {} <small>· {} · {}</small></th></tr>"#,
                    esc(k.1.name()),
                    esc(k.2.name()),
                    esc(k.0.name()),
                    esc(k.1.unit())
                );
            }
            let _ = write!(
                s,
                r#"<tr><td><span class="key" style="background:{}"></span>{}</td>"#,
                color(&k.4),
                esc(&k.4)
            );
            if has_sites {
                let _ = write!(
                    s,
                    r#"<td class="num">{}</td>"#,
                    k.5.map_or("—".to_owned(), fmt::thousands)
                );
            }
            for i in inputs {
                match find(&i.bench, &sc, k) {
                    Some(f) => {
                        let key = figure_key(&i.label, f);
                        let mut v = esc(&fmt::value(f.metric, f.value));
                        if let Some(n) = &f.note {
                            let idx = notes.iter().position(|x| x == n).unwrap_or_else(|| {
                                notes.push(n.clone());
                                notes.len() - 1
                            });
                            let _ = write!(v, "<sup>{}</sup>", idx + 1);
                        }
                        let _ = write!(
                            s,
                            r#"<td class="num" data-figure="{}">{v} <small class="stat">{}</small></td>"#,
                            esc(&key),
                            esc(statistic_of(f))
                        );
                        if has_ci {
                            let iv = match (f.interval, f.samples) {
                                (Some(iv), n) => format!(
                                    "{} – {}{}",
                                    fmt::bare(f.metric, iv.low),
                                    fmt::bare(f.metric, iv.high),
                                    n.map_or(String::new(), |n| format!(
                                        " <small>({:.0}%, n={n})</small>",
                                        iv.level * 100.0
                                    ))
                                ),
                                (None, _) => "—".to_owned(),
                            };
                            let _ = write!(s, r#"<td class="num ci">{iv}</td>"#);
                        }
                        if has_direct {
                            let r = if f.subject == control::DIRECT {
                                "reference".to_owned()
                            } else {
                                model::ratio_to_direct(&i.bench, f)
                                    .map_or("—".to_owned(), fmt::ratio)
                            };
                            let _ = write!(s, r#"<td class="num">{r}</td>"#);
                        }
                    }
                    None => {
                        let _ = write!(
                            s,
                            r#"<td class="na" colspan="{per_machine}"><small>{}</small></td>"#,
                            esc(&why(&i.bench, &sc, Some(&k.4), k.1, k.0))
                        );
                    }
                }
            }
            s.push_str("</tr>");
        }
        s.push_str("</tbody></table>");
        if !notes.is_empty() {
            s.push_str(r#"<ol class="notes">"#);
            for n in &notes {
                let _ = write!(s, "<li>{}</li>", esc(n));
            }
            s.push_str("</ol>");
        }
        s.push_str(&not_taken);
    }
    s.push_str(r#"<h3 id="not-taken">Figures not taken</h3>"#);
    s.push_str(&all_missing(inputs));
    s.push_str("</section>");
    s
}

/// The missing entries of one scenario, grouped by machine and reason.
fn scenario_missing(inputs: &[Input], sc: &str) -> String {
    let mut lines = Vec::new();
    for i in inputs {
        let mut groups: Vec<(String, Vec<String>)> = Vec::new();
        for m in i.bench.missing.iter().filter(|m| m.scenario == sc) {
            let what = format!(
                "{} ({}){}",
                m.metric.name(),
                m.instrument.name(),
                m.subject
                    .as_ref()
                    .map_or(String::new(), |s| format!(" for {s}"))
            );
            match groups.iter_mut().find(|g| g.0 == m.reason) {
                Some(g) => {
                    if !g.1.contains(&what) {
                        g.1.push(what);
                    }
                }
                None => groups.push((m.reason.clone(), vec![what])),
            }
        }
        for (reason, whats) in groups {
            lines.push(format!(
                "<li><b>{}</b>: {} — {}</li>",
                esc(&i.label),
                esc(&whats.join(", ")),
                esc(&reason)
            ));
        }
    }
    if lines.is_empty() {
        String::new()
    } else {
        format!(
            r#"<p class="nt">Not taken:</p><ul class="absent">{}</ul>"#,
            lines.concat()
        )
    }
}

fn all_missing(inputs: &[Input]) -> String {
    let mut s = String::new();
    for i in inputs {
        let _ = write!(s, "<h4>{}</h4>", esc(&i.label));
        if i.bench.missing.is_empty() {
            s.push_str(r#"<p class="note">Every figure this bundle tried to take was taken.</p>"#);
            continue;
        }
        let mut groups: Vec<(String, Vec<String>)> = Vec::new();
        for m in &i.bench.missing {
            let what = format!(
                "{} {}{}",
                if m.scenario == "*" {
                    "every scenario:"
                } else {
                    &m.scenario
                },
                m.metric.name(),
                m.subject
                    .as_ref()
                    .map_or(String::new(), |s| format!(" ({s})"))
            );
            let head = format!("{}: {}", m.instrument.name(), m.reason);
            match groups.iter_mut().find(|g| g.0 == head) {
                Some(g) => {
                    if !g.1.contains(&what) {
                        g.1.push(what);
                    }
                }
                None => groups.push((head, vec![what])),
            }
        }
        s.push_str(r#"<ul class="missing">"#);
        for (head, whats) in groups {
            let _ = write!(
                s,
                "<li><span class=\"reason\">{}</span><br><small>{}</small></li>",
                esc(&head),
                esc(&whats.join(" · "))
            );
        }
        s.push_str("</ul>");
    }
    s
}

/// Where a counters row goes: scenario rank, sites, counter, per.
type CounterRank = (usize, Option<u64>, Metric, Per);

/// A row of a counters table.
enum CounterRow {
    /// Figures of one scenario, site count and counter.
    Taken(String, Option<u64>, Metric, Per),
    /// A counter that could not be opened: scenario, counter, reason.
    Missing(String, Metric, String),
}

fn counters(inputs: &[Input], subjects: &[Subject]) -> String {
    let mut s = String::new();
    section_head(
        &mut s,
        "counters",
        "perf-event counters: hardware (cycles, instructions, branch misses) around the call loops, software (task clock, context switches, page faults) around updates and loads. A counter the machine does not offer is shown with the error <code>perf_event_open</code> gave; — marks a subject the scenario does not measure.",
    );
    let order = model::scenarios(inputs);
    let rank = |sc: &str| order.iter().position(|x| x == sc).unwrap_or(usize::MAX);
    for i in inputs {
        let b = &i.bench;
        let _ = write!(s, "<h3>{}</h3>", esc(&i.label));
        let figs: Vec<&Figure> = b
            .figures
            .iter()
            .filter(|f| f.instrument == Instrument::PerfEvent)
            .collect();
        let missing: Vec<_> = b
            .missing
            .iter()
            .filter(|m| m.instrument == Instrument::PerfEvent)
            .collect();
        if figs.is_empty() && missing.is_empty() {
            let _ = write!(
                s,
                r#"<p class="nodata">No perf-event counter: {}.</p>"#,
                esc(&why(b, "*", None, Metric::Cycles, Instrument::PerfEvent))
            );
            continue;
        }
        let cols: Vec<&str> = subjects
            .iter()
            .filter(|sub| sub.implementation || figs.iter().any(|f| f.subject == sub.name))
            .map(|sub| sub.name.as_str())
            .collect();
        let mut rows: Vec<(CounterRank, CounterRow)> = Vec::new();
        for f in &figs {
            let k = (rank(&f.scenario), f.sites, f.metric, f.per);
            if !rows.iter().any(|(rk, r)| {
                *rk == k && matches!(r, CounterRow::Taken(sc, ..) if *sc == f.scenario)
            }) {
                rows.push((
                    k,
                    CounterRow::Taken(f.scenario.clone(), f.sites, f.metric, f.per),
                ));
            }
        }
        for m in &missing {
            let covered = figs
                .iter()
                .any(|f| f.scenario == m.scenario && f.metric == m.metric);
            let dup = rows.iter().any(|(_, r)| {
                matches!(r, CounterRow::Missing(sc, mt, re) if *sc == m.scenario && *mt == m.metric && *re == m.reason)
            });
            if !covered && !dup {
                rows.push((
                    (rank(&m.scenario), None, m.metric, Per::Call),
                    CounterRow::Missing(m.scenario.clone(), m.metric, m.reason.clone()),
                ));
            }
        }
        rows.sort_by_key(|r| r.0);
        s.push_str(
            r#"<table class="counters"><thead><tr><th>scenario</th><th>sites</th><th>counter</th>"#,
        );
        for c in &cols {
            let _ = write!(
                s,
                r#"<th><span class="key" style="background:{}"></span>{}</th>"#,
                color(c),
                esc(c)
            );
        }
        s.push_str("</tr></thead><tbody>");
        for (_, row) in &rows {
            match row {
                CounterRow::Taken(sc, sites, metric, per) => {
                    let _ = write!(
                        s,
                        r#"<tr><td>{}</td><td class="num">{}</td><td>{} per {}</td>"#,
                        esc(sc),
                        sites.map_or("—".to_owned(), fmt::thousands),
                        esc(metric.name()),
                        esc(per.name())
                    );
                    for c in &cols {
                        let f = figs.iter().find(|f| {
                            f.scenario == *sc
                                && f.sites == *sites
                                && f.metric == *metric
                                && f.per == *per
                                && f.subject == *c
                        });
                        let measured_here = b
                            .figures
                            .iter()
                            .any(|f| f.scenario == *sc && f.subject == *c);
                        match f {
                            Some(f) => {
                                let _ = write!(
                                    s,
                                    r#"<td class="num">{}</td>"#,
                                    esc(&fmt::value(f.metric, f.value))
                                );
                            }
                            None if !measured_here => s.push_str(r#"<td class="num">—</td>"#),
                            None => {
                                let _ = write!(
                                    s,
                                    r#"<td class="na"><small>{}</small></td>"#,
                                    esc(&why(b, sc, Some(c), *metric, Instrument::PerfEvent))
                                );
                            }
                        }
                    }
                    s.push_str("</tr>");
                }
                CounterRow::Missing(sc, metric, reason) => {
                    let subs: Vec<&str> = missing
                        .iter()
                        .filter(|x| x.scenario == *sc && x.metric == *metric && x.reason == *reason)
                        .filter_map(|x| x.subject.as_deref())
                        .collect();
                    let who = if subs.is_empty() {
                        String::new()
                    } else {
                        format!("{}: ", subs.join(", "))
                    };
                    let _ = write!(
                        s,
                        r#"<tr><td>{}</td><td class="num">—</td><td>{}</td><td class="na" colspan="{}"><small>{}{}</small></td></tr>"#,
                        esc(if sc == "*" { "every scenario" } else { sc }),
                        esc(metric.name()),
                        cols.len(),
                        esc(&who),
                        esc(reason)
                    );
                }
            }
        }
        s.push_str("</tbody></table>");
    }
    s.push_str("</section>");
    s
}

/// One line of disassembly, its `; symbol` comment set apart.
fn asm_line(line: &str) -> String {
    match line.split_once(" ; ") {
        Some((insn, sym)) => format!(
            r#"{} <span class="sym">; {}</span>"#,
            esc(insn.trim_end()),
            esc(sym.trim())
        ),
        None => esc(line),
    }
}

fn dump_cell(d: &SiteDump) -> String {
    format!(
        r#"<td><div class="form">{}</div><div class="addr">{:#x}</div><code class="bytes">{}</code><pre class="asm">{}</pre></td>"#,
        esc(&d.form),
        d.addr,
        esc(&d.bytes),
        d.asm
            .iter()
            .map(|l| asm_line(l))
            .collect::<Vec<_>>()
            .join("\n")
    )
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
fn dump_row(head: &str, d: &SiteDump) -> String {
    format!(
        "<tr>{head}<td>{}</td><td>{}</td>{}</tr>",
        esc(&d.phase),
        esc(&d.place),
        dump_cell(d)
    )
}

fn site_tables(b: &BenchBundle, subjects: &[Subject]) -> String {
    let mut s = String::new();
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
    s.push_str(r#"<div class="dumps">"#);
    let mut controls: Vec<&SiteDump> = Vec::new();
    for n in names {
        let dumps: Vec<&SiteDump> = b.sites.iter().filter(|d| d.subject == n).collect();
        if dumps.is_empty() {
            continue;
        }
        if !is_impl(n) {
            controls.extend(dumps.iter().copied());
            continue;
        }
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
        let key = keys
            .iter()
            .copied()
            .find(|k| updated(k))
            .or_else(|| keys.iter().copied().find(|k| phases_of(k).len() > 1))
            .unwrap_or(keys[0]);
        let all = phases_of(key);
        let phases: Vec<&str> = if updated(key) {
            all.into_iter().filter(|p| p.contains("update")).collect()
        } else {
            all
        };
        let places = first_seen(
            dumps
                .iter()
                .filter(|d| d.key == key)
                .map(|d| d.place.as_str()),
        );
        let _ = write!(
            s,
            r#"<div><h4><span class="key" style="background:{}"></span>{} <small>key <code>{}</code>{}</small></h4><table class="dump"><thead><tr><th></th>"#,
            color(n),
            esc(n),
            esc(key),
            if keys.len() > 1 {
                format!(", one of {} keys decoded", keys.len())
            } else {
                String::new()
            }
        );
        for p in &phases {
            let _ = write!(s, "<th>{}</th>", esc(p));
        }
        s.push_str("</tr></thead><tbody>");
        for pl in &places {
            let _ = write!(s, "<tr><th>{}</th>", esc(pl));
            for ph in &phases {
                match dumps
                    .iter()
                    .find(|d| d.key == key && d.place == *pl && d.phase == *ph)
                {
                    Some(d) => s.push_str(&dump_cell(d)),
                    None => s.push_str(
                        r#"<td class="na"><small>not decoded in this phase</small></td>"#,
                    ),
                }
            }
            s.push_str("</tr>");
        }
        s.push_str("</tbody></table></div>");
    }
    s.push_str("</div>");
    if !controls.is_empty() {
        s.push_str(r#"<h4>Controls <small>the call in each benchmark loop</small></h4><table class="dump controls"><thead><tr><th>control</th><th>read in</th><th>place</th><th>decoded</th></tr></thead><tbody>"#);
        for d in controls {
            let head = format!(
                r#"<th><span class="key" style="background:{}"></span>{}<br><small><code>{}</code></small></th>"#,
                color(&d.subject),
                esc(&d.subject),
                esc(&d.key)
            );
            s.push_str(&dump_row(&head, d));
        }
        s.push_str("</tbody></table>");
    }
    let _ = write!(
        s,
        r#"<details class="alldumps"><summary>Every place decoded in this bundle ({})</summary><table class="dump all"><thead><tr><th>subject</th><th>key</th><th>read in</th><th>place</th><th>decoded</th></tr></thead><tbody>"#,
        b.sites.len()
    );
    for d in &b.sites {
        let head = format!(
            r#"<td><span class="key" style="background:{}"></span>{}</td><td><code>{}</code></td>"#,
            color(&d.subject),
            esc(&d.subject),
            esc(&d.key)
        );
        s.push_str(&dump_row(&head, d));
    }
    s.push_str("</tbody></table></details>");
    s
}

fn sites(inputs: &[Input], subjects: &[Subject]) -> String {
    let mut s = String::new();
    section_head(
        &mut s,
        "sites",
        "The bytes of a call site and of its key's trampoline as the benchmarks read them back, decoded by iced-x86, before and after an update: what the CPU actually executes. One key per implementation; the controls show the call in their loop.",
    );
    for (k, i) in inputs.iter().enumerate() {
        if k > 0 {
            s.push_str("<details>");
            let _ = write!(
                s,
                "<summary>{} ({} decoded places)</summary>",
                esc(&i.label),
                i.bench.sites.len()
            );
        } else if inputs.len() > 1 {
            let _ = write!(s, "<h3>{}</h3>", esc(&i.label));
        }
        if i.bench.sites.is_empty() {
            let _ = write!(
                s,
                r#"<p class="nodata">No decoded site: {}.</p>"#,
                model::NOT_MEASURED
            );
        } else {
            s.push_str(&site_tables(&i.bench, subjects));
        }
        if k > 0 {
            s.push_str("</details>");
        }
    }
    s.push_str("</section>");
    s
}

fn short(t: &str, n: usize) -> String {
    let one = t.lines().next().unwrap_or("");
    if one.chars().count() > n || t.lines().count() > 1 {
        let cut: String = one.chars().take(n).collect();
        format!("{}…", cut.trim_end())
    } else {
        one.to_owned()
    }
}

fn conformance(inputs: &[Input]) -> String {
    let mut s = String::new();
    section_head(
        &mut s,
        "conformance",
        "The conformance suite: one catalogue of scenarios run over every implementation. Each cell says pass, fail or skip; hover a cell for what it printed. Skips and failures show their reason in the cell.",
    );
    for i in inputs {
        let _ = write!(s, "<h3>{}</h3>", esc(&i.label));
        let m = match &i.conformance {
            Matrix::Absent { reason } => {
                let _ = write!(s, r#"<p class="nodata">{}.</p>"#, esc(reason));
                continue;
            }
            Matrix::Present { matrix, source } => {
                let n = |o: Outcome| matrix.cells.iter().filter(|c| c.outcome == o).count();
                let _ = write!(
                    s,
                    r#"<p class="tally"><span class="badge met">{} pass</span> <span class="badge missed">{} fail</span> <span class="badge unknown">{} skip</span> · {} build · {} · spectre_v2: {} · <code>{}</code></p>"#,
                    n(Outcome::Pass),
                    n(Outcome::Fail),
                    n(Outcome::Skip),
                    esc(&matrix.profile),
                    esc(&fmt::seconds(matrix.wall_seconds)),
                    esc(&matrix.spectre_v2),
                    esc(source)
                );
                if matrix.spectre_v2 != i.bench.machine.spectre_v2 {
                    let _ = write!(
                        s,
                        r#"<p class="warn">The matrix names a different spectre_v2 state than the benchmark bundle ({}): it may come from another machine.</p>"#,
                        esc(&i.bench.machine.spectre_v2)
                    );
                }
                matrix
            }
        };
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
        s.push_str(r#"<table class="matrix"><thead><tr><th>scenario</th>"#);
        for c in &cols {
            let _ = write!(
                s,
                r#"<th><span class="key" style="background:{}"></span>{}</th>"#,
                color(c),
                esc(c)
            );
        }
        s.push_str("</tr></thead><tbody>");
        for r in &rows {
            let _ = write!(s, "<tr><th><code>{}</code></th>", esc(r));
            for c in &cols {
                match m
                    .cells
                    .iter()
                    .find(|x| x.implementation == *c && x.scenario == *r)
                {
                    None => s.push_str(r#"<td class="none">—</td>"#),
                    Some(x) => {
                        let (class, word) = match x.outcome {
                            Outcome::Pass => ("pass", "pass"),
                            Outcome::Fail => ("fail", "FAIL"),
                            Outcome::Skip => ("skip", "skip"),
                        };
                        let title = format!("{} · {:.2} s", x.detail, x.seconds);
                        let inline = if x.outcome == Outcome::Pass || x.detail.is_empty() {
                            String::new()
                        } else {
                            format!("<small>{}</small>", esc(&short(&x.detail, 90)))
                        };
                        let _ = write!(
                            s,
                            r#"<td class="{class}" title="{}"><b>{word}</b>{inline}</td>"#,
                            esc(title.trim_start_matches(" · "))
                        );
                    }
                }
            }
            s.push_str("</tr>");
        }
        s.push_str("</tbody></table>");
        let fails: Vec<_> = m
            .cells
            .iter()
            .filter(|c| c.outcome == Outcome::Fail)
            .collect();
        if !fails.is_empty() {
            s.push_str(r#"<h4>Failures</h4>"#);
            for f in fails {
                let _ = write!(
                    s,
                    r#"<p class="failhead"><b>{}/{}</b></p><pre class="fail">{}</pre>"#,
                    esc(&f.implementation),
                    esc(&f.scenario),
                    esc(&f.detail)
                );
            }
        }
    }
    s.push_str("</section>");
    s
}

fn machines(inputs: &[Input]) -> String {
    let mut s = String::new();
    section_head(
        &mut s,
        "machines",
        "Where and how each bundle was measured, column by column.",
    );
    s.push_str(r#"<table class="machines"><thead><tr><th></th>"#);
    for i in inputs {
        let _ = write!(s, "<th>{}</th>", esc(&i.label));
    }
    s.push_str("</tr></thead><tbody>");
    type Field = (&'static str, fn(&Input) -> String);
    let fields: &[Field] = &[
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
    for (name, get) in fields {
        let _ = write!(s, "<tr><th>{name}</th>");
        for i in inputs {
            let _ = write!(s, "<td>{}</td>", esc(&get(i)));
        }
        s.push_str("</tr>");
    }
    type Detail = (
        &'static str,
        fn(&static_call_bundle::MachineDetails) -> String,
    );
    let details: &[Detail] = &[
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
    if inputs.iter().any(|i| i.bench.machine.details.is_some()) {
        for (name, get) in details {
            let _ = write!(s, "<tr><th>{name}</th>");
            for i in inputs {
                match &i.bench.machine.details {
                    Some(d) => {
                        let _ = write!(s, r#"<td class="detail">{}</td>"#, esc(&get(d)));
                    }
                    None => s.push_str(
                        r#"<td class="na"><small>not recorded (version 1 bundle)</small></td>"#,
                    ),
                }
            }
            s.push_str("</tr>");
        }
        s.push_str("<tr><th>rounds: CPUs seen, migrations, steal</th>");
        for i in inputs {
            let _ = write!(s, "<td>{}</td>", esc(&rounds_text(&i.bench)));
        }
        s.push_str("</tr>");
    }
    for inst in [
        Instrument::Timer,
        Instrument::Criterion,
        Instrument::Callgrind,
        Instrument::PerfEvent,
        Instrument::Registry,
        Instrument::Memory,
    ] {
        let _ = write!(s, "<tr><th>time: {}</th>", esc(inst.name()));
        for i in inputs {
            match i.bench.run.parts.iter().find(|p| p.instrument == inst) {
                Some(p) => {
                    let _ = write!(
                        s,
                        "<td>{} <small>(ended {})</small></td>",
                        esc(&fmt::seconds(p.seconds)),
                        esc(&fmt::date(&p.date))
                    );
                }
                None => s.push_str(r#"<td class="na"><small>not run</small></td>"#),
            }
        }
        s.push_str("</tr>");
    }
    s.push_str("</tbody></table>");
    s.push_str(METHOD);
    s.push_str("</section>");
    s
}

/// Which statistic a figure is: as it says (version 2), or what its
/// instrument gave in version 1.
fn statistic_of(f: &Figure) -> &'static str {
    match f.statistic {
        Some(st) => st.name(),
        None => match f.instrument {
            Instrument::Criterion => "mean",
            Instrument::Callgrind => "exact count",
            Instrument::PerfEvent => "mean",
            Instrument::Registry => "registry's count",
            Instrument::Timer | Instrument::Memory => "single measurement",
        },
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

const METHOD: &str = r#"<h3 id="method">How each figure was measured</h3>
<dl class="method">
<dt>timer — call cost in interleaved rounds, single updates</dt>
<dd>Call cost: every round measures every subject of a scenario once (one batch of calls each), in a freshly shuffled order; a subject's figure is the <b>median</b> of its per-round time per call, with a bootstrap 95% interval of that median, and its ratio to the direct call is the <b>median of the per-round ratios</b>, with a bootstrap interval (rounds resampled). The A/A control, <code>direct-aa</code>, is the reference loop compiled a second time (the direct call's; for cond-none the <code>Option&lt;fn&gt;</code> one): its ratio is the run's noise floor. Each round records the CPUs it ran on and the steal time. Updates: single updates timed one by one; the figure is their <b>median</b> with a bootstrap interval, and the bundle keeps every sample, the <b>p99</b>, the <b>max</b> and the <b>first (cold)</b> update apart. The loop's own increment-compare-branch is in every call figure, the same for every subject.</dd>
<dt>criterion — wall time of module loads and shared objects</dt>
<dd>Criterion's <b>mean</b> per load or unload, flat sampling, with its bootstrap 95% interval. A version 1 bundle's wall times are all criterion means.</dd>
<dt>gungraun (formerly iai-callgrind) — instruction counts</dt>
<dd>Exact counts of executed instructions (callgrind's <code>Ir</code>), run under valgrind by gungraun. No noise, so no interval. A per-call figure is the difference between two runs of different loop lengths, divided by the difference in iterations: setup, process start and loop entry cancel out, and what remains is one call plus one turn of the loop. inline-patch equal to direct means the patched site is a plain <code>call</code>; trampoline one more means one <code>jmp</code>.</dd>
<dt>perf-event — counters</dt>
<dd>Counters opened with <code>perf_event_open</code> for the benchmark thread and read around the measured loops: cycles, instructions and branch misses per call; task clock, context switches and page faults per update and per load. Hardware counters need a PMU the kernel exposes; virtual machines often have none, and then the figure is missing with the error the call returned.</dd>
<dt>gungraun — the update count is the valgrind path</dt>
<dd>Under valgrind the engine replaces each slot with one store in a brief mprotect window (valgrind runs one thread at a time): no int3, no membarrier, no scan of the threads' signal masks. The instruction count of an update (<code>update/valgrind-path</code>) is therefore that path's, not the native update's.</dd>
<dt>registry stats — memory</dt>
<dd>The registry's own accounting (<code>stats()</code>, <code>module_stats()</code>): heap bytes held for keys, site groups and modules, divided by the sites of the key or by the (key, module) pairs. Site tables live in the binary's own sections, so nothing is allocated per site.</dd>
<dt>ratios and targets</dt>
<dd>A call-cost ratio is the median of the per-round ratios to the direct call (version 1 bundles: the quotient of two means). A wall-time target is judged on the interval: met when the whole interval meets it, missed when the whole interval misses it, inconclusive when it straddles the target. Instruction counts are exact and compared as they are; a version 1 bundle's latencies are compared as point estimates. A target is "not measured" when its figure is absent, with the bundle's stated reason.</dd>
</dl>
"#;

/// One row of the baseline comparison.
/// "; judged on [lo – hi], widened by the noise floor ±w (from)" when the
/// change's interval was widened by a noise floor, else nothing.
fn widened(r: &Change, lo: f64, hi: f64) -> String {
    r.floor.as_ref().map_or(String::new(), |fl| {
        format!(
            "; judged on [{} – {}], widened by the noise floor ±{} ({})",
            fmt::bare_ratio(lo),
            fmt::bare_ratio(hi),
            fmt::bare_ratio(fl.width),
            fl.from
        )
    })
}

fn change_row(r: &Change) -> String {
    let k = &r.key;
    let mut fig = format!(
        r#"<td>{} · <span class="key" style="background:{}"></span>{}"#,
        esc(&k.scenario),
        color(&k.subject),
        esc(&k.subject)
    );
    if let Some(n) = k.sites {
        let _ = write!(fig, " · {}", esc(&crate::baseline::sites(n)));
    }
    let _ = write!(
        fig,
        "<br><small>{} per {} · {}{}</small></td>",
        esc(k.metric.name()),
        esc(k.per.name()),
        esc(crate::baseline::instrument_short(k.instrument)),
        r.statistic
            .map_or(String::new(), |s| format!(" · {}", esc(s.name())))
    );
    let how = match (&r.method, r.judged_on) {
        (Method::Exact, _) => "exact counts: any difference is a change".to_owned(),
        (Method::Samples { current, baseline }, Some((lo, hi))) => {
            let (a, b) = r.interval.unwrap_or((lo, hi));
            format!(
                "[{} – {}] bootstrap 95% of the ratio of medians ({current} vs {baseline} values){}",
                fmt::bare_ratio(a),
                fmt::bare_ratio(b),
                widened(r, lo, hi)
            )
        }
        (Method::Intervals, Some((lo, hi))) => {
            format!(
                "[{} – {}] quotient of the two figures' intervals{}",
                fmt::bare_ratio(r.interval.map_or(lo, |i| i.0)),
                fmt::bare_ratio(r.interval.map_or(hi, |i| i.1)),
                widened(r, lo, hi)
            )
        }
        _ => String::new(),
    };
    let (class, badge) = match &r.verdict {
        Verdict::Regressed if r.fails() => ("regressed", "regressed past threshold".to_owned()),
        v => (
            match v {
                Verdict::Regressed => "regressed",
                Verdict::Improved => "improved",
                Verdict::Unchanged => "unchanged",
                Verdict::NotJudged(_) => "notjudged",
            },
            v.name().to_owned(),
        ),
    };
    let mut remark = r.remark.clone();
    if let Verdict::NotJudged(why) = &r.verdict {
        remark = why.clone();
    }
    if let Some(t) = r.threshold {
        let th = format!("threshold {}", fmt::trim(format!("{:.3}", t * 100.0)) + "%");
        remark = if remark.is_empty() {
            th
        } else {
            format!("{remark}; {th}")
        };
    }
    format!(
        r#"<tr class="{class}">{fig}<td class="num">{}</td><td class="num">{}</td><td class="num">{}</td><td><small>{}</small></td><td><span class="badge {class}">{}</span>{}</td></tr>"#,
        esc(&fmt::value(k.metric, r.baseline)),
        esc(&fmt::value(k.metric, r.current)),
        esc(&crate::baseline::ratio_text(r)),
        esc(&how),
        esc(&badge),
        if remark.is_empty() {
            String::new()
        } else {
            format!(" <small>{}</small>", esc(&remark))
        }
    )
}

fn change_table(id: &str, rows: &[&Change]) -> String {
    let mut s = format!(
        r#"<table class="changes" id="{id}"><thead><tr><th>figure</th><th>baseline</th><th>current</th><th>current ÷ baseline</th><th>interval</th><th>verdict</th></tr></thead><tbody>"#
    );
    for r in rows {
        s.push_str(&change_row(r));
    }
    s.push_str("</tbody></table>");
    s
}

/// The "Changes against <baseline>" section: the first bundle's figures
/// against the baseline's, as a table sorted by change.
fn changes_section(c: &Comparison) -> String {
    let mut s = String::new();
    let side = |x: &crate::baseline::Side| {
        format!(
            "<b>{}</b> (<code>{}</code>, {}, {} run, commit <code>{}</code>)",
            esc(&x.label),
            esc(&x.source),
            esc(&fmt::date(&x.date)),
            mode(x.mode),
            esc(&x.commit)
        )
    };
    let _ = write!(
        s,
        r#"<section id="changes"><h2>Changes against <code>{}</code></h2><p class="intro">Every figure of {} against the same figure of the baseline {}: the same scenario, subject, sites, metric, per and instrument, on the same machine ({}). The ratio is current ÷ baseline.</p>"#,
        esc(&c.baseline.source),
        side(&c.current),
        side(&c.baseline),
        esc(&c.machine)
    );
    if !c.differences.is_empty() {
        let items: Vec<String> = c
            .differences
            .iter()
            .map(|d| {
                format!(
                    "<li>{}: <code>{}</code> here, <code>{}</code> in the baseline</li>",
                    esc(d.field),
                    esc(&d.current),
                    esc(&d.baseline)
                )
            })
            .collect();
        let _ = write!(
            s,
            r#"<div class="warn" id="baseline-differences"><b>The two runs differ</b> (same machine; a change below may come from these):<ul>{}</ul></div>"#,
            items.concat()
        );
    }
    if !c.unchecked.is_empty() {
        let _ = write!(
            s,
            r#"<p class="note">Machine identity not fully checked: {}.</p>"#,
            esc(&c.unchecked.join("; "))
        );
    }
    let fails = c.failures().count();
    let _ = write!(
        s,
        r#"<p class="tally">Figures: <span class="badge regressed">{} regressed</span> <span class="badge improved">{} improved</span> <span class="badge unchanged">{} unchanged</span> <span class="badge notjudged">{} not judged</span> · {} only in current, {} only in baseline · thresholds: {}</p>"#,
        c.count("regressed"),
        c.count("improved"),
        c.count("unchanged"),
        c.count("not judged"),
        c.only_current.len(),
        c.only_baseline.len(),
        if c.thresholds.is_empty() {
            "none (report-only)".to_owned()
        } else {
            format!(
                "{} — {fails} figure{} past {}",
                esc(&c.thresholds.describe()),
                if fails == 1 { "" } else { "s" },
                if fails == 1 {
                    "its threshold"
                } else {
                    "their thresholds"
                }
            )
        }
    );
    let changed: Vec<&Change> = c
        .rows
        .iter()
        .filter(|r| matches!(r.verdict, Verdict::Regressed | Verdict::Improved))
        .collect();
    if changed.is_empty() {
        s.push_str(r#"<p class="nodata" id="changes-none">No figure regressed or improved.</p>"#);
    } else {
        s.push_str(&change_table("changes-table", &changed));
    }
    let rest = |name: &str| -> Vec<&Change> {
        c.rows.iter().filter(|r| r.verdict.name() == name).collect()
    };
    for (id, name) in [
        ("changes-unchanged", "unchanged"),
        ("changes-not-judged", "not judged"),
    ] {
        let rows = rest(name);
        if !rows.is_empty() {
            let _ = write!(
                s,
                r#"<details><summary>{} {name}</summary>{}</details>"#,
                rows.len(),
                change_table(id, &rows)
            );
        }
    }
    for (id, what, keys) in [
        ("changes-only-current", "only in current", &c.only_current),
        (
            "changes-only-baseline",
            "only in baseline",
            &c.only_baseline,
        ),
    ] {
        if !keys.is_empty() {
            let items: Vec<String> = keys
                .iter()
                .map(|k| format!("<li>{}</li>", esc(&k.describe())))
                .collect();
            let _ = write!(
                s,
                r#"<details id="{id}"><summary>{} {what}</summary><ul class="absent">{}</ul></details>"#,
                keys.len(),
                items.concat()
            );
        }
    }
    s.push_str(r#"<p class="note">How to read it: <b>regressed</b> when the whole 95% interval of current ÷ baseline lies above 1 (above 1 + the metric's threshold when one is given), <b>improved</b> when it lies wholly below 1, <b>unchanged</b> when it includes 1 — no change these two runs can show. A call cost's interval is widened first by the current run's noise floor (how far its A/A control, <code>direct-aa</code>, reaches from 1). Medians are compared with a bootstrap interval resampling both bundles' raw values; criterion's means by the quotient of their intervals. Instruction counts (callgrind) and byte counts are exact: any difference is a change. A figure with neither samples nor an interval, or one reading of resident memory, is shown and not judged. Sorted by change: regressed, improved, unchanged, not judged; within each, the largest change first.</p>"#);
    s.push_str("</section>");
    s
}
