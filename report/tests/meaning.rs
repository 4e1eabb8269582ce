//! What the page means, checked against the bundles it was built from
//! rather than against counts or bytes: every figure appears once, in its
//! unit, with its value; every chart has the points of every subject with
//! data; no cell is empty or says NaN; and which subjects are
//! implementations comes from the bundles alone.

mod common;

use static_call_bundle::{Figure, SubjectKind, scenario};
use static_call_report::model::{self, Measure};
use static_call_report::{Input, figure_key, render, threads};

/// `s` as the page writes it: escaped by maud.
fn esc(s: &str) -> String {
    maud::html! { (s) }.into_string()
}

/// The text of an HTML fragment, tags dropped and the entities an escaper
/// writes undone.
fn text(html: &str) -> String {
    let mut o = String::new();
    let mut inside = false;
    for c in html.chars() {
        match c {
            '<' => inside = true,
            '>' => inside = false,
            c if !inside => o.push(c),
            _ => {}
        }
    }
    o.replace("&lt;", "<")
        .replace("&gt;", ">")
        .replace("&quot;", "\"")
        .replace("&#39;", "'")
        .replace("&amp;", "&")
}

/// Every `<td …>…</td>` of the page: (attributes, inner HTML).
fn cells(html: &str) -> Vec<(&str, &str)> {
    let mut v = Vec::new();
    let mut rest = html;
    while let Some(start) = rest.find("<td") {
        let after = &rest[start + 3..];
        if !(after.starts_with('>') || after.starts_with(' ')) {
            rest = after;
            continue;
        }
        let open_end = after.find('>').expect("a <td> closes its tag");
        let attrs = &after[..open_end];
        let body = &after[open_end + 1..];
        let end = body.find("</td>").expect("every <td> is closed");
        v.push((attrs, &body[..end]));
        rest = &body[end..];
    }
    v
}

/// The figure's value as the cell shows it, read back into the figure's
/// own unit (nanoseconds for durations): `12.3 µs` → 12300.
fn read_value(cell_text: &str, f: &Figure) -> Result<f64, String> {
    let mut words = cell_text.split_whitespace();
    let (Some(num), Some(unit)) = (words.next(), words.next()) else {
        return Err(format!("no value and unit in {cell_text:?}"));
    };
    let n: f64 = num
        .replace(',', "")
        .parse()
        .map_err(|e| format!("{num:?} in {cell_text:?} is not a number: {e}"))?;
    let unit = unit.trim_end_matches(|c: char| c.is_ascii_digit());
    let scale = match (f.metric.unit(), unit) {
        ("ns", "ns") => 1.0,
        ("ns", "µs") => 1e3,
        ("ns", "ms") => 1e6,
        ("ns", "s") => 1e9,
        (want, got) if want == got => 1.0,
        (want, got) => return Err(format!("unit {got:?} in {cell_text:?}, want {want:?}")),
    };
    Ok(n * scale)
}

/// Every figure of every bundle appears in exactly one value cell of the
/// All figures tables, and that cell shows its value in its unit.
fn check_every_figure_once(inputs: &[Input], html: &str) -> Vec<String> {
    let all = cells(html);
    let mut bad = Vec::new();
    for i in inputs {
        for f in &i.bench.figures {
            let key = figure_key(&i.label, f);
            let attr = format!(r#"data-figure="{}""#, esc(&key));
            let hits: Vec<&(&str, &str)> = all.iter().filter(|c| c.0.contains(&attr)).collect();
            if hits.len() != 1 {
                bad.push(format!("{key}: {} cells, want 1", hits.len()));
                continue;
            }
            let t = text(hits[0].1);
            match read_value(&t, f) {
                Ok(shown) => {
                    let tol = (f.value.abs() * 0.006).max(0.0051);
                    // A NaN on either side is not within tolerance.
                    let diff = (shown - f.value).abs();
                    if diff.is_nan() || diff > tol {
                        bad.push(format!("{key}: shows {t:?}, the figure is {}", f.value));
                    }
                }
                Err(e) => bad.push(format!("{key}: {e}")),
            }
        }
    }
    bad
}

/// What each chart of the page draws: its measure, whether its figures
/// are those with a site count (lines) or without (dots), and whether only
/// implementations are drawn.
fn chart_measure(id: &str) -> Option<(Measure, bool, bool)> {
    use static_call_bundle::{Instrument, Metric, Per};
    for sc in [
        scenario::CALL_HOT_1,
        scenario::CALL_HOT_6,
        scenario::CALL_MANY,
        scenario::CALL_COND_NONE,
    ] {
        let slug = sc.replace('/', "-");
        if id == format!("{slug}-wall") {
            return Some((Measure::call_wall(sc), false, false));
        }
        if id == format!("{slug}-instructions") {
            return Some((Measure::call_instr(sc), false, false));
        }
    }
    let mem = |per, inst| Measure::new(scenario::MEMORY, Metric::RegistryBytes, per, inst);
    Some(match id {
        "update-idle" => (
            Measure::wall(scenario::UPDATE_IDLE, Per::Update),
            true,
            false,
        ),
        "update-busy" => (
            Measure::wall(scenario::UPDATE_BUSY, Per::Update),
            true,
            false,
        ),
        "update-threads" => (threads::measure(scenario::UPDATE_THREADS), true, true),
        "update-threads-busy" => (threads::measure(scenario::UPDATE_THREADS_BUSY), true, true),
        "module-load" => (Measure::wall(scenario::MODULE_LOAD, Per::Load), true, false),
        "module-unload" => (
            Measure::wall(scenario::MODULE_UNLOAD, Per::Unload),
            true,
            false,
        ),
        "memory-site" => (mem(Per::Site, Instrument::Memory), true, false),
        "memory-load" => (mem(Per::Load, Instrument::Memory), true, false),
        "memory-key-module" => (mem(Per::KeyModule, Instrument::Registry), true, false),
        _ => return None,
    })
}

/// The charts of the page: (id, the SVG's `<circle>` tags).
fn charts(html: &str) -> Vec<(String, Vec<&str>)> {
    html.split(r#"<div class="chart" id=""#)
        .skip(1)
        .map(|rest| {
            let id = rest.split('"').next().unwrap_or_default().to_owned();
            let body = rest.split("</svg>").next().unwrap_or_default();
            let circles = body
                .split("<circle")
                .skip(1)
                .map(|c| c.split('>').next().unwrap_or_default())
                .collect();
            (id, circles)
        })
        .collect()
}

/// Every chart draws one point per figure of its measure for every
/// subject with data, on every machine, in the subject's colour and the
/// machine's marker (filled for even columns, hollow for odd), and no
/// other point.
fn check_every_chart(inputs: &[Input], html: &str) -> Vec<String> {
    let subjects = model::subjects(inputs);
    let mut bad = Vec::new();
    let found = charts(html);
    if found.is_empty() {
        bad.push("the page has no chart".to_owned());
    }
    for (id, circles) in &found {
        let Some((m, with_sites, only_impls)) = chart_measure(id) else {
            bad.push(format!("chart {id}: this test does not know its measure"));
            continue;
        };
        let mut expected_total = 0;
        for (k, i) in inputs.iter().enumerate() {
            for sub in &subjects {
                if only_impls && !sub.implementation {
                    continue;
                }
                let n = m
                    .all(&i.bench, &sub.name)
                    .iter()
                    .filter(|f| f.sites.is_some() == with_sites)
                    .count();
                if n == 0 {
                    continue;
                }
                expected_total += n;
                let c = model::color(&sub.name).to_ascii_uppercase();
                let marker = if k % 2 == 0 {
                    format!(r#"fill="{c}" stroke="none""#)
                } else {
                    format!(r#"fill="none" stroke="{c}""#)
                };
                // Subjects sharing a colour share their points.
                let same_colour: usize = subjects
                    .iter()
                    .filter(|o| !only_impls || o.implementation)
                    .filter(|o| model::color(&o.name) == model::color(&sub.name))
                    .map(|o| {
                        m.all(&i.bench, &o.name)
                            .iter()
                            .filter(|f| f.sites.is_some() == with_sites)
                            .count()
                    })
                    .sum();
                let drawn = circles.iter().filter(|t| t.contains(&marker)).count();
                if drawn != same_colour {
                    bad.push(format!(
                        "chart {id}: {} on {}: {drawn} points drawn, {n} figures",
                        sub.name, i.label
                    ));
                }
            }
        }
        if circles.len() != expected_total {
            bad.push(format!(
                "chart {id}: {} points drawn, {expected_total} figures in all",
                circles.len()
            ));
        }
    }
    bad
}

/// No table cell is empty, and nothing on the page reads NaN or infinity.
fn check_no_nan_or_empty_cell(html: &str) -> Vec<String> {
    let mut bad = Vec::new();
    for (attrs, body) in cells(html) {
        if text(body).trim().is_empty() {
            bad.push(format!("empty cell <td{attrs}>{body}</td>"));
        }
    }
    for word in ["NaN", "inf ", "inf<", "Infinity", "undefined"] {
        if let Some(at) = html.find(word) {
            let from = html[..at].char_indices().rev().nth(80).map_or(0, |x| x.0);
            let to = (at + 40).min(html.len());
            let to = (to..html.len())
                .find(|&x| html.is_char_boundary(x))
                .unwrap_or(html.len());
            bad.push(format!("{word:?} on the page: …{}…", &html[from..to]));
        }
    }
    bad
}

fn assert_none(what: &str, bad: &[String]) {
    assert!(
        bad.is_empty(),
        "{what}: {} problems:\n  {}",
        bad.len(),
        bad.iter()
            .take(20)
            .cloned()
            .collect::<Vec<_>>()
            .join("\n  ")
    );
}

#[test]
fn every_figure_appears_once_with_its_unit() {
    let inputs = common::fixture_inputs();
    let html = render(&inputs);
    let n: usize = inputs.iter().map(|i| i.bench.figures.len()).sum();
    assert!(n > 0, "the fixtures have figures");
    assert_none(
        "figures in the All figures tables",
        &check_every_figure_once(&inputs, &html),
    );
}

#[test]
fn every_chart_has_a_point_per_subject_with_data() {
    let inputs = common::fixture_inputs();
    assert_none(
        "chart points",
        &check_every_chart(&inputs, &render(&inputs)),
    );
}

#[test]
fn no_nan_and_no_empty_cell() {
    assert_none(
        "cells",
        &check_no_nan_or_empty_cell(&render(&common::fixture_inputs())),
    );
}

/// machine-a with `name` added: its figures are a copy of trampoline's,
/// and its subject entry (with `kind`) is added unless `kind` is `None`.
fn with_extra_subject(name: &str, kind: Option<SubjectKind>) -> Vec<Input> {
    let mut inputs = common::fixture_inputs();
    inputs.truncate(1);
    let b = &mut inputs[0].bench;
    let copies: Vec<Figure> = b
        .figures
        .iter()
        .filter(|f| f.subject == "trampoline")
        .cloned()
        .map(|mut f| {
            f.subject = name.to_owned();
            f
        })
        .collect();
    assert!(!copies.is_empty(), "machine-a has trampoline figures");
    b.figures.extend(copies);
    if let Some(kind) = kind {
        let mut s = b
            .subjects
            .iter()
            .find(|s| s.name == "trampoline")
            .expect("machine-a lists trampoline")
            .clone();
        s.name = name.to_owned();
        s.kind = kind;
        s.description = format!("{name}, a design the report has never heard of");
        b.subjects.push(s);
    }
    inputs
}

/// The summary table's row of `name` on the first machine, if any.
fn summary_row(html: &str, name: &str) -> Option<String> {
    let start = html.find(r#"<section id="summary">"#)?;
    let section = &html[start..start + html[start..].find("</section>")?];
    let head = format!(r#"</span>{}<div class="desc">"#, esc(name));
    let at = section.find(&head)?;
    let row_start = section[..at].rfind("<tr>")?;
    let row_end = at + section[at..].find("</tr>")?;
    Some(section[row_start..row_end].to_owned())
}

#[test]
fn a_fifth_design_is_an_implementation_by_its_bundle() {
    let inputs = with_extra_subject("fifth-design", Some(SubjectKind::Implementation));
    let subjects = model::subjects(&inputs);
    let s = subjects
        .iter()
        .find(|s| s.name == "fifth-design")
        .expect("fifth-design is a subject");
    assert!(s.implementation, "{s:?}");
    let html = render(&inputs);
    let row = summary_row(&html, "fifth-design")
        .expect("the summary has a row for fifth-design, as an implementation");
    let colour = model::color("fifth-design");
    assert!(colour.starts_with('#') && colour.len() == 7, "{colour}");
    // A colour of its own: no other subject of the page shares it.
    for o in subjects.iter().filter(|o| o.name != "fifth-design") {
        assert_ne!(
            model::color(&o.name),
            colour,
            "fifth-design has the colour of {}",
            o.name
        );
    }
    assert!(
        row.contains(&format!(
            r#"<span class="key" style="background:{colour}">"#
        )),
        "fifth-design's summary row has its colour: {row}"
    );
    // Its call figure is there, not "not measured".
    assert!(row.contains('×'), "fifth-design's ratio to direct: {row}");
    // And the rest of the page holds it like any other subject.
    assert_none("figures", &check_every_figure_once(&inputs, &html));
    assert_none("chart points", &check_every_chart(&inputs, &html));
    assert_none("cells", &check_no_nan_or_empty_cell(&html));
}

#[test]
fn a_subject_named_only_by_figures_is_not_known_to_be_an_implementation() {
    let inputs = with_extra_subject("mystery", None);
    let s = model::subjects(&inputs)
        .into_iter()
        .find(|s| s.name == "mystery")
        .expect("a subject named by figures is a subject");
    assert!(!s.implementation, "{s:?}");
    // A listed control is not one either, whatever its name.
    let inputs_c = with_extra_subject("plain-indirect-2", Some(SubjectKind::Control));
    assert!(
        !model::subjects(&inputs_c)
            .iter()
            .find(|s| s.name == "plain-indirect-2")
            .expect("listed")
            .implementation
    );
    let html = render(&inputs);
    assert_eq!(summary_row(&html, "mystery"), None, "no summary row");
    assert!(
        summary_row(&html, "trampoline").is_some(),
        "the summary lookup finds a listed implementation"
    );
    // Its figures are still on the page, once each, and charted.
    assert_none("figures", &check_every_figure_once(&inputs, &html));
    assert_none("chart points", &check_every_chart(&inputs, &html));
}
