//! What the page says when figures are missing, when cells fail, and how
//! several machines share it.

mod common;

use static_call_bundle::{Cell, Conformance, Instrument, Metric, Missing, Mode, Outcome};
use static_call_report::{Input, SECTIONS, disambiguate, render};

fn count(html: &str, needle: &str) -> usize {
    html.matches(needle).count()
}

/// The chart ids with their number of data points (every point is one
/// `<circle>` of the chart's `<svg>`).
fn charts(html: &str) -> Vec<(String, usize)> {
    html.split(r#"<div class="chart" id=""#)
        .skip(1)
        .map(|rest| {
            let id = rest.split('"').next().unwrap().to_owned();
            let body = rest.split("</svg>").next().unwrap();
            assert!(body.contains("<svg"), "chart {id} is an inline SVG");
            (id, count(body, "<circle"))
        })
        .collect()
}

#[test]
fn every_section_and_chart_of_the_fixture() {
    let html = render(&common::fixture_inputs());
    for s in SECTIONS {
        let id = s.id;
        assert!(
            html.contains(&format!(r#"<section id="{id}">"#)),
            "section {id}"
        );
    }
    let c = charts(&html);
    // 15: memory has three charts from version 2 (heap per site and per
    // load, measured; the registry's count per (key, module), a formula);
    // 17 with the thread axis's two (parked threads, busy callers).
    assert_eq!(c.len(), 17, "{c:?}");
    // The thread axis, machine-a only: 3 implementations × 4 parked counts
    // and × 3 busy-caller counts.
    assert_eq!(c.iter().find(|x| x.0 == "update-threads").unwrap().1, 12);
    assert_eq!(
        c.iter().find(|x| x.0 == "update-threads-busy").unwrap().1,
        9
    );
    for (id, n) in &c {
        assert!(*n > 0, "chart {id} has no point");
    }
    // Points: 6 subjects × 2 machines in call/hot-1arg wall time, and
    // machine-a's A/A control (a version 2 bundle; machine-b is version 1).
    assert_eq!(
        c.iter().find(|x| x.0 == "call-hot-1arg-wall").unwrap().1,
        13
    );
    // Instructions only on machine-a (machine-b has no valgrind).
    assert_eq!(
        c.iter()
            .find(|x| x.0 == "call-hot-1arg-instructions")
            .unwrap()
            .1,
        6
    );
    // update/idle: 3 implementations × (5 sizes on a + 3 on b).
    assert_eq!(c.iter().find(|x| x.0 == "update-idle").unwrap().1, 24);
    assert!(html.contains("valgrind not found"));
    assert!(html.contains("unavailable: perf_event_open(cycles)"));
    for bad in ["NaN", "inf ", "Infinity", "undefined"] {
        assert!(!html.contains(bad), "{bad}");
    }
}

#[test]
fn targets_are_marked_honestly() {
    let html = render(&common::fixture_inputs());
    let row = |id: &str| {
        let start = html.find(&format!(r#"<tr id="target-{id}">"#)).unwrap();
        html[start..start + html[start..].find("</tr>").unwrap()].to_owned()
    };
    let wall = row("wall-inline-inline-patch");
    // machine-a (version 2): the per-round ratios' interval [0.995, 1.015]
    // lies under 1.03, but widened by the A/A noise floor (its interval
    // reaches 0.021 from 1) it is [0.974, 1.036]: inconclusive. machine-b
    // (version 1) has only two means, a point estimate, which is not judged.
    assert!(
        wall.contains("badge inconclusive") && wall.contains("no per-round ratio"),
        "{wall}"
    );
    assert!(
        wall.contains("widened by the A/A noise floor ±0.021"),
        "{wall}"
    );
    assert!(!wall.contains("badge missed"), "{wall}");
    let instr = row("instr-inline-inline-patch");
    assert!(
        instr.contains("badge met") && instr.contains("not measured"),
        "{instr}"
    );
    assert!(instr.contains("valgrind not found"), "{instr}");
    let tramp = row("instr-tramp-trampoline");
    assert!(tramp.contains("+1"), "{tramp}");
}

#[test]
fn thread_axis_verdicts_and_churn_table() {
    let html = render(&common::fixture_inputs());
    let row = |id: &str| {
        let start = html.find(&format!(r#"<tr id="target-{id}">"#)).unwrap();
        html[start..start + html[start..].find("</tr>").unwrap()].to_owned()
    };
    // The fixture (machine-a): inline-patch 8.6 µs with 1,000 parked vs
    // 7.8 µs with none (about 1.1×: met), 38 µs with a busy caller (4.9×:
    // missed), a batch of 100 at 29 µs (3.7×: missed); trampoline's batch
    // 13 µs vs 4.9 µs (2.65×: met). machine-b (version 1) has none.
    for (id, badge) in [
        ("threads-parked-inline-patch", "badge met"),
        ("threads-busy-inline-patch", "badge missed"),
        ("batch-100-inline-patch", "badge missed"),
        ("batch-100-trampoline", "badge met"),
        ("threads-idle-inline-patch", "badge met"),
    ] {
        let r = row(id);
        assert!(r.contains(badge), "{id}: {r}");
        assert!(
            r.contains("not measured"),
            "{id}: machine-b has no thread axis: {r}"
        );
    }
    assert!(row("threads-parked-inline-patch").contains("with 1,000 parked vs"));
    // The table: p99 and max of the samples, the batch's ratio.
    let t = &html[html.find(r#"id="threads-table""#).unwrap()..];
    let t = &t[..t.find("</table>").unwrap()];
    assert!(
        t.contains("1,000 parked") && t.contains("4 busy callers"),
        "{t}"
    );
    assert!(
        t.contains("p99 ") && t.contains("÷ one 1-key update"),
        "{t}"
    );
    // Churn: the first and the last tenth, slots and time per module.
    let c = &html[html.find(r#"id="churn""#).unwrap()..];
    let c = &c[..c.find("</table>").unwrap()];
    assert!(
        c.contains("200 <small class=\"what\">(first tenth)")
            && c.contains("2,000 <small class=\"what\">(last tenth)"),
        "{c}"
    );
    assert_eq!(c.matches("1,104 slots").count(), 2, "{c}");
    assert_eq!(c.matches("µs<small> [").count(), 2, "time per module: {c}");
}

fn bare(label: &str) -> Input {
    let mut i = common::fixture_inputs().remove(0);
    i.bench.machine.label = label.to_owned();
    i.label = label.to_owned();
    i.bench.figures.clear();
    i.bench.missing.clear();
    i.bench.sites.clear();
    i.bench.run.mode = Mode::Full;
    i.conformance = static_call_report::Matrix::Absent {
        reason: "no conformance matrix in this bundle".into(),
    };
    i
}

#[test]
fn a_bundle_without_figures_draws_no_empty_chart() {
    let mut i = bare("empty");
    i.bench.missing.push(Missing {
        scenario: "*".into(),
        subject: None,
        metric: Metric::Instructions,
        instrument: Instrument::Callgrind,
        reason: "valgrind not found".into(),
    });
    let html = render(&[i]);
    assert!(charts(&html).is_empty(), "no chart drawn without data");
    assert!(html.contains("No chart: no figure of this kind — not measured in this bundle."));
    assert!(html.contains("No chart: no figure of this kind — valgrind not found."));
    assert!(html.contains("no conformance matrix in this bundle"));
    assert!(html.contains("No decoded site"));
    for s in SECTIONS {
        let id = s.id;
        assert!(
            html.contains(&format!(r#"<section id="{id}">"#)),
            "section {id}"
        );
    }
}

#[test]
fn failing_cells_show_their_reason() {
    let i = bare("fails");
    let spectre_v2 = i.bench.machine.spectre_v2.clone();
    let i = i.with_conformance(
        Conformance {
            wall_seconds: 3.0,
            profile: "release".into(),
            spectre_v2,
            implementations: vec!["inline-patch".into()],
            scenarios: vec!["torture".into(), "query".into()],
            cells: vec![
                Cell {
                    implementation: "inline-patch".into(),
                    scenario: "torture".into(),
                    outcome: Outcome::Fail,
                    detail: "wrong result <42> after 17 updates".into(),
                    seconds: 1.5,
                },
                Cell {
                    implementation: "inline-patch".into(),
                    scenario: "query".into(),
                    outcome: Outcome::Skip,
                    detail: "not applicable".into(),
                    seconds: 0.0,
                },
            ],
        },
        "x/conformance.json",
    );
    let html = render(&[i]);
    assert!(html.contains(r#"<td class="fail""#));
    assert!(
        html.contains("wrong result &lt;42&gt; after 17 updates"),
        "escaped detail"
    );
    assert!(html.contains("0 pass / 1 fail / 1 skip"));
    assert!(html.contains("<h4>Failures</h4>"));
}

#[test]
fn shared_labels_are_told_apart() {
    let mut a = bare("same");
    let mut b = bare("same");
    a.bench.machine.date = "2026-01-02T03:04:05Z".into();
    b.bench.machine.date = "2026-02-03T04:05:06Z".into();
    let c = bare("same");
    let mut v = vec![a, b, c];
    disambiguate(&mut v);
    let labels: Vec<&str> = v.iter().map(|i| i.label.as_str()).collect();
    assert_eq!(labels[0], "same (2026-01-02 03:04 UTC)");
    assert_eq!(labels[1], "same (2026-02-03 04:05 UTC)");
    assert_ne!(labels[2], labels[0]);
    let mut d = vec![bare("same"), bare("same")];
    disambiguate(&mut d);
    assert_ne!(d[0].label, d[1].label, "same label and date: numbered");
}

#[test]
fn text_from_bundles_is_escaped() {
    let mut i = bare("<script>alert(1)</script>");
    i.bench.machine.cpu_model = "a & b".into();
    let html = render(&[i]);
    assert!(!html.contains("<script>"));
    assert!(html.contains("&lt;script&gt;") && html.contains("a &amp; b"));
}

#[test]
fn no_input_no_panic() {
    let html = render(&[]);
    assert!(html.contains("No bundle was given."));
}

/// A wall-time verdict is judged on the interval: met below the target,
/// missed above it, inconclusive across it.
#[test]
fn wall_verdicts_follow_the_interval() {
    let verdict = |low: f64, high: f64| {
        let mut inputs = common::fixture_inputs();
        inputs.truncate(1);
        // The A/A control's interval reaches 0.01 from 1.
        let aa = inputs[0]
            .bench
            .figures
            .iter_mut()
            .find(|f| {
                f.scenario == "call/hot-1arg"
                    && f.subject == "direct-aa"
                    && f.metric == Metric::WallTime
            })
            .unwrap();
        let r = aa.ratio.as_mut().unwrap();
        (r.interval.low, r.interval.high) = (0.995, 1.01);
        let f = inputs[0]
            .bench
            .figures
            .iter_mut()
            .find(|f| {
                f.scenario == "call/hot-1arg"
                    && f.subject == "inline-patch"
                    && f.metric == Metric::WallTime
            })
            .unwrap();
        let r = f.ratio.as_mut().unwrap();
        r.value = (low + high) / 2.0;
        r.interval.low = low;
        r.interval.high = high;
        let html = render(&inputs);
        let start = html
            .find(r#"<tr id="target-wall-inline-inline-patch">"#)
            .unwrap();
        html[start..start + html[start..].find("</tr>").unwrap()].to_owned()
    };
    assert!(verdict(0.98, 1.02).contains("badge met"));
    assert!(verdict(1.045, 1.10).contains("badge missed"));
    let open = verdict(1.00, 1.06);
    assert!(open.contains("badge inconclusive"), "{open}");
    // Under the target on its own, over it once widened by the noise floor.
    let widened = verdict(1.00, 1.025);
    assert!(widened.contains("badge inconclusive"), "{widened}");
    let html = render(&common::fixture_inputs());
    assert!(html.contains("Noise floor"), "the A/A noise floor is shown");
    assert!(
        html.contains(r#"id="commit-warning""#),
        "bundles of different commits are flagged"
    );
}

/// The summary compares each implementation with the indirect call the
/// machine's kernel uses, chosen by its `spectre_v2` line.
#[test]
fn the_indirect_call_this_machine_uses() {
    use static_call_report::summary::kernel_indirect;
    assert_eq!(
        kernel_indirect("Mitigation: Retpolines; IBPB: conditional; STIBP: disabled"),
        "indirect"
    );
    assert_eq!(
        kernel_indirect("Mitigation: LFENCE; IBPB: conditional"),
        "lfence-indirect"
    );
    assert_eq!(
        kernel_indirect(
            "Mitigation: Enhanced / Automatic IBRS; IBPB: conditional; RSB filling; PBRSB-eIBRS: SW sequence"
        ),
        "plain-indirect"
    );
    let html = render(&common::fixture_inputs());
    assert!(
        html.contains("Against the indirect call this machine's kernel uses — <b>indirect</b>"),
        "machine-a (retpolines) is compared with the retpoline"
    );
}

/// The engine's targets (parked threads, a busy caller, a batch of 100)
/// are not asked of an implementation whose bundle says its updates write
/// no code; where the bundle does not say (older bundles), they are judged.
#[test]
fn engine_targets_skip_pointer_stores() {
    use static_call_report::summary::{TARGETS, Verdict, evaluate};
    let mut inputs = common::fixture_inputs();
    let b = &mut inputs[0].bench;
    let batch = TARGETS.iter().find(|t| t.id == "batch-100").unwrap();
    let unsaid = evaluate(batch, b, "indirect");
    assert!(
        !matches!(unsaid, Verdict::NotApplicable(_)),
        "judged when the bundle does not say: {unsaid:?}"
    );
    for s in &mut b.subjects {
        s.writes_code = match s.name.as_str() {
            "indirect" | "plain-indirect" => Some(false),
            "inline-patch" | "trampoline" => Some(true),
            _ => None,
        };
    }
    for t in TARGETS {
        // (The fixture's implementations: no plain-indirect.)
        for imp in ["indirect", "trampoline", "inline-patch"] {
            let v = evaluate(t, b, imp);
            let na = matches!(v, Verdict::NotApplicable(_));
            assert_eq!(
                na,
                t.engine_only && imp == "indirect",
                "{} for {imp}: {v:?}",
                t.id
            );
        }
    }
    let html = render(&inputs);
    assert!(html.contains("not applicable</span> <small>an update of indirect stores a pointer"));
}

/// The callers' table reads its quantiles from each figure's histogram and
/// the throughput against the run with no updates from the notes.
#[test]
fn callers_table_from_histograms() {
    use static_call_bundle::{Bucket, Figure, Histogram, Instrument, Per, Statistic, scenario};
    let mut inputs = common::fixture_inputs();
    let fig = |sc: &str, slow: u64, tput: f64| Figure {
        scenario: sc.into(),
        subject: "inline-patch".into(),
        sites: Some(1),
        metric: Metric::WallTime,
        per: Per::Call,
        instrument: Instrument::Timer,
        value: 10.0,
        interval: None,
        samples: Some(10_000),
        note: Some(format!(
            "…; throughput {tput:.1} M calls/s; 7 calls met a breakpoint (3.50 per update); …"
        )),
        statistic: Some(Statistic::Median),
        raw: vec![],
        first: None,
        ratio: None,
        histogram: Some(Histogram {
            buckets: vec![
                Bucket {
                    low: 9.0,
                    high: 10.0,
                    count: 10_000 - slow,
                },
                Bucket {
                    low: 4000.0,
                    high: 4096.0,
                    count: slow,
                },
            ],
            max: 5000.0,
        }),
    };
    inputs[0]
        .bench
        .figures
        .push(fig(scenario::CALLERS_IDLE, 0, 40.0));
    inputs[0]
        .bench
        .figures
        .push(fig(scenario::CALLERS_FLAT_OUT, 200, 10.0));
    inputs[0]
        .bench
        .figures
        .push(fig(scenario::CALLERS_1KHZ, 2, 39.0));
    let html = render(&inputs);
    // The summary's column: p99.99 at 1 kHz (2 slow calls in 10,000) and
    // p99 flat out (200 in 10,000), both in the slow bucket.
    let summary = html.split(r#"<table class="summary">"#).nth(1).unwrap();
    let summary = summary.split("</table>").next().unwrap();
    assert!(summary.contains("4.10 µs · 4.10 µs"), "{summary}");
    let t = html
        .split(r#"id="callers""#)
        .nth(1)
        .expect("the callers' table");
    let t = t.split("</table>").next().unwrap();
    // 2% of the calls are slow: the p99 is in the slow bucket.
    assert!(
        t.contains("10.0 ns · 4.10 µs · 4.10 µs · 4.10 µs · 5.00 µs"),
        "{t}"
    );
    assert!(t.contains("0.250 of idle"), "{t}");
    assert!(t.contains("3.50 breakpoints/update"), "{t}");
}

/// The summary's cold-call column: the ratio to direct in the largest cold
/// scenario a bundle holds (65,536 sites), else the 16,384-site one (a
/// quick run), the scenario named; a bundle with neither says why.
#[test]
fn cold_call_column() {
    use static_call_bundle::{Figure, Instrument, Interval, Per, Ratio, Statistic, scenario};
    let fig = |sc: &str, subject: &str, value: f64, ratio: Option<f64>| Figure {
        scenario: sc.into(),
        subject: subject.into(),
        sites: None,
        metric: Metric::WallTime,
        per: Per::Call,
        instrument: Instrument::Timer,
        value,
        interval: None,
        samples: Some(12),
        note: None,
        statistic: Some(Statistic::Median),
        raw: vec![value; 12],
        first: None,
        ratio: ratio.map(|r| Ratio {
            reference: "direct".into(),
            value: r,
            interval: Interval {
                low: r - 0.01,
                high: r + 0.01,
                level: 0.95,
            },
            raw: vec![r; 12],
        }),
        histogram: None,
    };
    let summary_of = |html: &str| -> String {
        let s = html.split(r#"<table class="summary">"#).nth(1).unwrap();
        s.split("</table>").next().unwrap().to_owned()
    };
    let mut inputs = common::fixture_inputs();
    let figs = &mut inputs[0].bench.figures;
    figs.push(fig(scenario::CALL_COLD_16K, "direct", 7.0, None));
    figs.push(fig(scenario::CALL_COLD_16K, "inline-patch", 7.7, Some(1.1)));
    let s = summary_of(&render(&inputs));
    assert!(s.contains("cold call"), "no cold-call column: {s}");
    assert!(
        s.contains("1.100×") && s.contains("call/cold-16384-sites;"),
        "the 16,384-site ratio, named, when the bundle has no 65,536: {s}"
    );
    let figs = &mut inputs[0].bench.figures;
    figs.push(fig(scenario::CALL_COLD_64K, "direct", 20.0, None));
    figs.push(fig(
        scenario::CALL_COLD_64K,
        "inline-patch",
        25.0,
        Some(1.25),
    ));
    let s = summary_of(&render(&inputs));
    assert!(
        s.contains("1.250×") && s.contains("call/cold-65536-sites;"),
        "the largest cold scenario's ratio: {s}"
    );
}

/// The callers' throughput and breakpoints per update are read from their
/// own figures when the bundle has them (the notes here give other
/// numbers, which the table must not show); the test above covers the
/// fallback to the notes of older bundles.
#[test]
fn callers_table_from_count_figures() {
    use static_call_bundle::{Bucket, Figure, Histogram, Instrument, Per, Statistic, scenario};
    let mut inputs = common::fixture_inputs();
    let base = |sc: &str| Figure {
        scenario: sc.into(),
        subject: "inline-patch".into(),
        sites: Some(1),
        metric: Metric::WallTime,
        per: Per::Call,
        instrument: Instrument::Timer,
        value: 10.0,
        interval: None,
        samples: Some(10_000),
        note: Some(
            "…; throughput 99.9 M calls/s; 7 calls met a breakpoint (9.99 per update); …".into(),
        ),
        statistic: Some(Statistic::Median),
        raw: vec![],
        first: None,
        ratio: None,
        histogram: Some(Histogram {
            buckets: vec![Bucket {
                low: 9.0,
                high: 10.0,
                count: 10_000,
            }],
            max: 10.0,
        }),
    };
    let count = |sc: &str, metric, per, instrument, value| Figure {
        metric,
        per,
        instrument,
        value,
        histogram: None,
        statistic: Some(Statistic::Mean),
        ..base(sc)
    };
    let figures = &mut inputs[0].bench.figures;
    for (sc, tput, traps) in [
        (scenario::CALLERS_IDLE, 40e6, None),
        (scenario::CALLERS_1KHZ, 38e6, Some(0.5)),
        (scenario::CALLERS_FLAT_OUT, 12e6, Some(1.25)),
    ] {
        figures.push(base(sc));
        figures.push(count(
            sc,
            Metric::Calls,
            Per::Second,
            Instrument::Timer,
            tput,
        ));
        if let Some(t) = traps {
            figures.push(count(
                sc,
                Metric::Breakpoints,
                Per::Update,
                Instrument::Registry,
                t,
            ));
        }
    }
    let html = render(&inputs);
    let t = html
        .split(r#"id="callers""#)
        .nth(1)
        .expect("the callers' table");
    let t = t.split("</table>").next().unwrap();
    assert!(
        t.contains("12.0 M calls/s · 0.300 of idle · 1.25 breakpoints/update"),
        "{t}"
    );
    assert!(
        t.contains("38.0 M calls/s · 0.950 of idle · 0.50 breakpoints/update"),
        "{t}"
    );
    // What the cells show (the notes stay in their titles).
    let shown: Vec<&str> = t
        .split("<small>")
        .skip(1)
        .map(|x| x.split("</small>").next().unwrap())
        .collect();
    assert!(shown.contains(&"40.0 M calls/s"), "{shown:?}");
    for x in &shown {
        assert!(
            !x.contains("99.9") && !x.contains("9.99"),
            "a number from a note: {x}"
        );
    }
}
