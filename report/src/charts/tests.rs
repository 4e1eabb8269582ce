use super::*;

fn series(points: &[(f64, f64)]) -> Series {
    Series {
        name: "a".into(),
        color: "#000",
        style: 0,
        points: points
            .iter()
            .map(|&(x, y)| Point {
                x,
                y,
                interval: Some((y * 0.9, y * 1.1)),
            })
            .collect(),
    }
}

#[test]
fn log_ticks_cover_decades() {
    let (major, minor) = log_ticks(1.0, 10_000.0, 400.0);
    assert_eq!(major, vec![1.0, 10.0, 100.0, 1000.0, 10_000.0]);
    assert_eq!(minor.len(), 4 * 8);
    assert!(log_ticks(1.0, 1e9, 300.0).1.is_empty(), "crowded");
    let (major, _) = log_ticks(1.0, 100.0, 100.0);
    assert_eq!(major, vec![1.0, 2.0, 5.0, 10.0, 20.0, 50.0, 100.0]);
    let (lo, hi) = decades(3.0, 3.0);
    assert!(lo <= 3.0 && hi >= 3.0);
}

#[test]
fn linear_axis_is_nice() {
    let (top, ticks) = linear_ticks(7.3);
    assert_eq!(top, 8.0);
    assert_eq!(ticks.len(), 5);
}

#[test]
fn colours_parse() {
    assert_eq!(rgb("#d9480f"), RGBColor(0xd9, 0x48, 0x0f));
    assert_eq!(rgb("#fff"), RGBColor(255, 255, 255));
    assert_eq!(rgb("nonsense"), RGBColor(0, 0, 0));
}

#[test]
fn every_point_is_one_circle() {
    let c = LineChart {
        id: "x".into(),
        title: "t".into(),
        x_label: "sites".into(),
        y_label: "ns".into(),
        x_tick: crate::fmt::count_tick,
        y_tick: crate::fmt::time_tick,
        y_log: true,
        series: vec![series(&[(1.0, 5.0), (10.0, 50.0), (100.0, 500.0)])],
        targets: vec![Target {
            x: 10.0,
            y: 80.0,
            label: "target".into(),
        }],
    };
    let html = line_chart(&c).unwrap().into_string();
    assert!(
        html.starts_with(r#"<div class="chart" id="x""#),
        "{html:.80}"
    );
    assert_eq!(html.matches("<circle").count(), 3);
    assert!(html.contains(">\ntarget\n</text>"));
    assert!(!html.contains("NaN") && !html.contains("inf"));
    let empty = LineChart {
        series: vec![series(&[])],
        ..c
    };
    assert!(line_chart(&empty).is_none());
}

#[test]
fn dot_chart_points_and_rows() {
    let row = |label: &str, styles: &[usize]| DotRow {
        label: label.into(),
        color: "#1c7ed6",
        points: styles
            .iter()
            .map(|&style| DotPoint {
                style,
                value: 2.0 + style as f64,
                interval: (style == 0).then_some((1.8, 2.2)),
                text: format!("{style} ns"),
            })
            .collect(),
    };
    let c = DotChart {
        id: "d".into(),
        title: "t".into(),
        x_label: "ns".into(),
        x_tick: crate::fmt::time_tick,
        styles: 4,
        rows: vec![
            row("first", &[0, 1, 2, 3]),
            row("second", &[1]),
            row("none", &[]),
        ],
        reference: Some((1.5, "direct".into())),
    };
    let html = dot_chart(&c).unwrap().into_string();
    assert_eq!(html.matches("<circle").count(), 5);
    assert!(html.contains(">\nfirst\n</text>") && html.contains(">\nsecond\n</text>"));
    assert!(!html.contains(">\nnone\n</text>"));
    let none = DotChart {
        rows: vec![row("none", &[])],
        ..c
    };
    assert!(dot_chart(&none).is_none());
}

#[test]
fn swatches_are_small_svgs() {
    for style in 0..4 {
        let s = swatch(style, "#343a40").into_string();
        assert!(s.starts_with(r#"<span class="sw" aria-hidden="true"><svg width="30""#));
        assert_eq!(s.matches("<circle").count(), 1);
    }
}

/// The SVG goes into the page as it is (`PreEscaped`): that is safe only
/// because plotters escapes the text it draws. A subject, label or id from
/// a bundle with markup in it stays text.
#[test]
fn text_from_bundles_is_escaped_in_the_svg() {
    let hostile = r#"<script>x("&")</script>"#;
    let c = DotChart {
        id: hostile.into(),
        title: hostile.into(),
        x_label: hostile.into(),
        x_tick: crate::fmt::time_tick,
        styles: 1,
        rows: vec![DotRow {
            label: hostile.into(),
            color: "#1c7ed6",
            points: vec![DotPoint {
                style: 0,
                value: 2.0,
                interval: None,
                text: hostile.into(),
            }],
        }],
        reference: Some((1.5, hostile.into())),
    };
    let html = dot_chart(&c).unwrap().into_string();
    assert!(!html.contains("<script"), "{html}");
    assert!(html.contains("&lt;script&gt;x(&quot;&amp;&quot;)&lt;/script&gt;"));
}
