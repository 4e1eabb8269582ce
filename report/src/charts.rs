//! Charts as inline SVG, drawn by hand.
//!
//! Plotters' SVG backend would do, but its text layout only estimates
//! widths without a font feature, it gives points no class, and its output
//! changes with its version. These few hundred lines give charts whose
//! every data point is an element of class `pt` with a `<title>` (the
//! value on hover), that need no font, and whose output is stable.
//!
//! Colour stands for the subject (implementation or control); the marker
//! shape and line dash for the machine (`style`, its column index).

use std::fmt::Write as _;

use crate::fmt::{esc, px};

/// One data point.
#[derive(Debug, Clone)]
pub struct Point {
    /// x value (site count).
    pub x: f64,
    /// y value.
    pub y: f64,
    /// Confidence interval of `y`.
    pub interval: Option<(f64, f64)>,
    /// Shown on hover.
    pub tip: String,
}

/// One line: a subject on a machine.
#[derive(Debug, Clone)]
pub struct Series {
    /// Subject name.
    pub name: String,
    /// Stroke and fill colour.
    pub color: &'static str,
    /// Marker and dash (machine index).
    pub style: usize,
    /// The points, in any order.
    pub points: Vec<Point>,
}

/// A target drawn as a short dashed level at `x`.
#[derive(Debug, Clone)]
pub struct Target {
    /// Where along x.
    pub x: f64,
    /// The level.
    pub y: f64,
    /// Its label (`target ≤ 10 µs`).
    pub label: String,
}

/// A line chart with a logarithmic x axis.
#[derive(Debug, Clone)]
pub struct LineChart {
    /// Element id.
    pub id: String,
    /// Accessible title.
    pub title: String,
    /// x axis label.
    pub x_label: String,
    /// y axis label.
    pub y_label: String,
    /// x tick labels.
    pub x_tick: fn(f64) -> String,
    /// y tick labels.
    pub y_tick: fn(f64) -> String,
    /// Logarithmic y axis (every value must be positive).
    pub y_log: bool,
    /// The lines.
    pub series: Vec<Series>,
    /// Targets to draw.
    pub targets: Vec<Target>,
}

/// A row of a dot chart: one subject, a point per machine.
#[derive(Debug, Clone)]
pub struct DotRow {
    /// Subject name.
    pub label: String,
    /// Its colour.
    pub color: &'static str,
    /// One point per machine that has the figure.
    pub points: Vec<DotPoint>,
}

/// A point of a dot chart.
#[derive(Debug, Clone)]
pub struct DotPoint {
    /// Machine index.
    pub style: usize,
    /// The value.
    pub value: f64,
    /// Its confidence interval.
    pub interval: Option<(f64, f64)>,
    /// Written next to the point.
    pub text: String,
    /// Shown on hover.
    pub tip: String,
}

/// Horizontal bars with a point and whiskers per machine, from zero.
#[derive(Debug, Clone)]
pub struct DotChart {
    /// Element id.
    pub id: String,
    /// Accessible title.
    pub title: String,
    /// x axis label.
    pub x_label: String,
    /// x tick labels.
    pub x_tick: fn(f64) -> String,
    /// Number of machines (rows leave room for this many points).
    pub styles: usize,
    /// The rows, top to bottom.
    pub rows: Vec<DotRow>,
    /// A vertical reference line (the direct call on the first machine).
    pub reference: Option<(f64, String)>,
}

/// Dash patterns by machine index.
const DASHES: [&str; 4] = ["", "7 4", "2 3", "9 3 2 3"];

struct Axis {
    log: bool,
    lo: f64,
    hi: f64,
    p0: f64,
    p1: f64,
}

impl Axis {
    fn linear(max: f64, p0: f64, p1: f64) -> Axis {
        let max = if max > 0.0 { max } else { 1.0 };
        let step = nice_step(max / 5.0);
        let hi = (max / step).ceil() * step;
        Axis {
            log: false,
            lo: 0.0,
            hi,
            p0,
            p1,
        }
    }

    fn log(min: f64, max: f64, p0: f64, p1: f64) -> Axis {
        let a = min.log10().floor();
        let mut b = max.log10().ceil();
        if b <= a {
            b = a + 1.0;
        }
        Axis {
            log: true,
            lo: 10f64.powf(a),
            hi: 10f64.powf(b),
            p0,
            p1,
        }
    }

    fn map(&self, v: f64) -> f64 {
        let t = if self.log {
            (v.log10() - self.lo.log10()) / (self.hi.log10() - self.lo.log10())
        } else {
            (v - self.lo) / (self.hi - self.lo)
        };
        self.p0 + t * (self.p1 - self.p0)
    }

    /// Ticks: (value, labelled).
    fn ticks(&self) -> Vec<(f64, bool)> {
        let mut t = Vec::new();
        if self.log {
            let a = self.lo.log10().round() as i32;
            let b = self.hi.log10().round() as i32;
            let few = b - a <= 2;
            for e in a..=b {
                let base = 10f64.powi(e);
                t.push((base, true));
                if e < b {
                    for m in 2..10 {
                        t.push((base * f64::from(m), few && (m == 2 || m == 5)));
                    }
                }
            }
        } else {
            let step = nice_step(self.hi / 5.0);
            let n = (self.hi / step).round() as i32;
            for i in 0..=n {
                t.push((f64::from(i) * step, true));
            }
        }
        t
    }
}

fn nice_step(raw: f64) -> f64 {
    let e = raw.log10().floor();
    let base = 10f64.powf(e);
    let f = raw / base;
    let m = if f <= 1.0 {
        1.0
    } else if f <= 2.0 {
        2.0
    } else if f <= 2.5 {
        2.5
    } else if f <= 5.0 {
        5.0
    } else {
        10.0
    };
    m * base
}

/// A data marker (`class` is `pt` for data, `mk` for legends).
pub fn marker(style: usize, x: f64, y: f64, color: &str, class: &str, tip: Option<&str>) -> String {
    let title = tip.map_or(String::new(), |t| format!("<title>{}</title>", esc(t)));
    let paint = format!(r##"fill="{color}" stroke="#fff" stroke-width="1""##);
    match style % 4 {
        0 => format!(
            r#"<circle class="{class}" cx="{}" cy="{}" r="4.2" {paint}>{title}</circle>"#,
            px(x),
            px(y)
        ),
        1 => format!(
            r#"<rect class="{class}" x="{}" y="{}" width="8" height="8" {paint}>{title}</rect>"#,
            px(x - 4.0),
            px(y - 4.0)
        ),
        2 => format!(
            r#"<path class="{class}" d="M{},{}L{},{}L{},{}Z" {paint}>{title}</path>"#,
            px(x),
            px(y - 5.2),
            px(x + 4.8),
            px(y + 3.6),
            px(x - 4.8),
            px(y + 3.6)
        ),
        _ => format!(
            r#"<path class="{class}" d="M{},{}L{},{}L{},{}L{},{}Z" {paint}>{title}</path>"#,
            px(x),
            px(y - 5.0),
            px(x + 5.0),
            px(y),
            px(x),
            px(y + 5.0),
            px(x - 5.0),
            px(y)
        ),
    }
}

/// A small legend swatch: a line in the dash of `style` with its marker.
pub fn swatch(style: usize, color: &str) -> String {
    let dash = DASHES[style % 4];
    let dash = if dash.is_empty() {
        String::new()
    } else {
        format!(r#" stroke-dasharray="{dash}""#)
    };
    format!(
        r#"<svg class="sw" width="30" height="12" viewBox="0 0 30 12" aria-hidden="true"><line x1="1" y1="6" x2="29" y2="6" stroke="{color}" stroke-width="2"{dash}/>{}</svg>"#,
        marker(style, 15.0, 6.0, color, "mk", None)
    )
}

fn open_svg(s: &mut String, id: &str, title: &str, w: f64, h: f64) {
    let _ = write!(
        s,
        r#"<svg class="chart" id="{}" xmlns="http://www.w3.org/2000/svg" width="{w}" height="{h}" viewBox="0 0 {w} {h}" role="img" aria-label="{}"><title>{}</title>"#,
        esc(id),
        esc(title),
        esc(title)
    );
}

/// Draws a line chart; `None` when it has no point to draw.
pub fn line_chart(c: &LineChart) -> Option<String> {
    let pts: Vec<&Point> = c
        .series
        .iter()
        .flat_map(|s| s.points.iter())
        .filter(|p| p.x > 0.0 && (!c.y_log || p.y > 0.0) && p.y.is_finite())
        .collect();
    if pts.is_empty() {
        return None;
    }
    let (w, h) = (600.0, 340.0);
    let (l, r, t, b) = (74.0, w - 18.0, 16.0, h - 46.0);
    let xmin = pts.iter().map(|p| p.x).fold(f64::INFINITY, f64::min);
    let xmax = pts.iter().map(|p| p.x).fold(0.0, f64::max);
    let mut ys: Vec<f64> = Vec::new();
    for p in &pts {
        ys.push(p.y);
        if let Some((lo, hi)) = p.interval {
            ys.push(lo);
            ys.push(hi);
        }
    }
    ys.extend(c.targets.iter().map(|t| t.y));
    let ys: Vec<f64> = ys
        .into_iter()
        .filter(|v| v.is_finite() && (!c.y_log || *v > 0.0))
        .collect();
    let ymin = ys.iter().copied().fold(f64::INFINITY, f64::min);
    let ymax = ys.iter().copied().fold(0.0, f64::max);
    let xa = Axis::log(xmin, xmax, l + 8.0, r - 8.0);
    let ya = if c.y_log {
        Axis::log(ymin, ymax, b, t)
    } else {
        Axis::linear(ymax * 1.05, b, t)
    };
    let mut s = String::new();
    open_svg(&mut s, &c.id, &c.title, w, h);
    // Grid and ticks.
    s.push_str(r#"<g class="grid">"#);
    for (v, label) in ya.ticks() {
        let y = ya.map(v);
        let _ = write!(
            s,
            r#"<line class="{}" x1="{}" y1="{}" x2="{}" y2="{}"/>"#,
            if label { "major" } else { "minor" },
            px(l),
            px(y),
            px(r),
            px(y)
        );
        if label {
            let _ = write!(
                s,
                r#"<text class="tick" x="{}" y="{}" text-anchor="end">{}</text>"#,
                px(l - 6.0),
                px(y + 3.5),
                esc(&(c.y_tick)(v))
            );
        }
    }
    for (v, label) in xa.ticks() {
        let x = xa.map(v);
        let _ = write!(
            s,
            r#"<line class="{}" x1="{}" y1="{}" x2="{}" y2="{}"/>"#,
            if label { "major" } else { "minor" },
            px(x),
            px(t),
            px(x),
            px(b)
        );
        if label {
            let _ = write!(
                s,
                r#"<text class="tick" x="{}" y="{}" text-anchor="middle">{}</text>"#,
                px(x),
                px(b + 16.0),
                esc(&(c.x_tick)(v))
            );
        }
    }
    s.push_str("</g>");
    let _ = write!(
        s,
        r#"<rect class="frame" x="{}" y="{}" width="{}" height="{}"/>"#,
        px(l),
        px(t),
        px(r - l),
        px(b - t)
    );
    let _ = write!(
        s,
        r#"<text class="axis" x="{}" y="{}" text-anchor="middle">{}</text>"#,
        px((l + r) / 2.0),
        px(h - 8.0),
        esc(&c.x_label)
    );
    let _ = write!(
        s,
        r#"<text class="axis" transform="translate(14 {}) rotate(-90)" text-anchor="middle">{}</text>"#,
        px((t + b) / 2.0),
        esc(&c.y_label)
    );
    // Targets.
    for tg in &c.targets {
        if c.y_log && tg.y <= 0.0 {
            continue;
        }
        let (x, y) = (xa.map(tg.x), ya.map(tg.y));
        let (x0, x1) = ((x - 34.0).max(l), (x + 34.0).min(r));
        let anchor = if x1 >= r - 1.0 {
            "end"
        } else if x0 <= l + 1.0 {
            "start"
        } else {
            "middle"
        };
        let tx = match anchor {
            "end" => x1,
            "start" => x0,
            _ => x,
        };
        let _ = write!(
            s,
            r#"<g class="target"><line x1="{}" y1="{}" x2="{}" y2="{}"/><text x="{}" y="{}" text-anchor="{anchor}">{}</text></g>"#,
            px(x0),
            px(y),
            px(x1),
            px(y),
            px(tx),
            px(y - 5.0),
            esc(&tg.label)
        );
    }
    // Lines, whiskers, then markers on top.
    for se in &c.series {
        let mut p: Vec<&Point> = se
            .points
            .iter()
            .filter(|p| p.x > 0.0 && (!c.y_log || p.y > 0.0) && p.y.is_finite())
            .collect();
        p.sort_by(|a, b| a.x.total_cmp(&b.x));
        if p.len() > 1 {
            let d: Vec<String> = p
                .iter()
                .map(|q| format!("{},{}", px(xa.map(q.x)), px(ya.map(q.y))))
                .collect();
            let dash = DASHES[se.style % 4];
            let dash = if dash.is_empty() {
                String::new()
            } else {
                format!(r#" stroke-dasharray="{dash}""#)
            };
            let _ = write!(
                s,
                r#"<polyline class="line" points="{}" stroke="{}"{dash}/>"#,
                d.join(" "),
                se.color
            );
        }
        for q in &p {
            if let Some((lo, hi)) = q.interval
                && (!c.y_log || lo > 0.0)
            {
                let x = xa.map(q.x);
                let (y0, y1) = (ya.map(lo), ya.map(hi));
                if (y0 - y1).abs() >= 2.0 {
                    let _ = write!(
                        s,
                        r#"<path class="ci" d="M{},{}V{}M{},{}H{}M{},{}H{}" stroke="{}"/>"#,
                        px(x),
                        px(y0),
                        px(y1),
                        px(x - 3.0),
                        px(y0),
                        px(x + 3.0),
                        px(x - 3.0),
                        px(y1),
                        px(x + 3.0),
                        se.color
                    );
                }
            }
        }
    }
    for se in &c.series {
        for q in se
            .points
            .iter()
            .filter(|p| p.x > 0.0 && (!c.y_log || p.y > 0.0) && p.y.is_finite())
        {
            s.push_str(&marker(
                se.style,
                xa.map(q.x),
                ya.map(q.y),
                se.color,
                "pt",
                Some(&q.tip),
            ));
        }
    }
    s.push_str("</svg>");
    Some(s)
}

/// Draws a dot chart; `None` when it has no point to draw.
pub fn dot_chart(c: &DotChart) -> Option<String> {
    let rows: Vec<&DotRow> = c.rows.iter().filter(|r| !r.points.is_empty()).collect();
    if rows.is_empty() {
        return None;
    }
    let styles = c.styles.max(1) as f64;
    let band = (12.0 + 13.0 * styles).max(26.0);
    let w = 600.0;
    let (l, r, t) = (112.0, w - 86.0, 10.0);
    let b = t + band * rows.len() as f64;
    let h = b + 40.0;
    let mut max: f64 = 0.0;
    for p in rows.iter().flat_map(|r| r.points.iter()) {
        max = max.max(p.value);
        if let Some((_, hi)) = p.interval {
            max = max.max(hi);
        }
    }
    if let Some((v, _)) = &c.reference {
        max = max.max(*v);
    }
    let xa = Axis::linear(max, l, r);
    let mut s = String::new();
    open_svg(&mut s, &c.id, &c.title, w, h);
    for i in (1..rows.len()).step_by(2) {
        let _ = write!(
            s,
            r#"<rect class="band" x="0" y="{}" width="{}" height="{}"/>"#,
            px(t + band * i as f64),
            px(r),
            px(band)
        );
    }
    s.push_str(r#"<g class="grid">"#);
    for (v, _) in xa.ticks() {
        let x = xa.map(v);
        let _ = write!(
            s,
            r#"<line class="major" x1="{}" y1="{}" x2="{}" y2="{}"/><text class="tick" x="{}" y="{}" text-anchor="middle">{}</text>"#,
            px(x),
            px(t),
            px(x),
            px(b),
            px(x),
            px(b + 15.0),
            esc(&(c.x_tick)(v))
        );
    }
    s.push_str("</g>");
    let _ = write!(
        s,
        r#"<text class="axis" x="{}" y="{}" text-anchor="middle">{}</text>"#,
        px((l + r) / 2.0),
        px(h - 8.0),
        esc(&c.x_label)
    );
    if let Some((v, label)) = &c.reference {
        let x = xa.map(*v);
        let _ = write!(
            s,
            r#"<g class="ref"><line x1="{}" y1="{}" x2="{}" y2="{}"/><title>{}</title></g>"#,
            px(x),
            px(t - 4.0),
            px(x),
            px(b),
            esc(label)
        );
    }
    for (i, row) in rows.iter().enumerate() {
        let y0 = t + band * i as f64;
        let _ = write!(
            s,
            r#"<text class="row" x="{}" y="{}" text-anchor="end">{}</text>"#,
            px(l - 8.0),
            px(y0 + band / 2.0 + 4.0),
            esc(&row.label)
        );
        let mut pts: Vec<&DotPoint> = row.points.iter().collect();
        pts.sort_by_key(|p| p.style);
        for p in pts {
            let y = y0 + 6.0 + 13.0 * (p.style as f64 + 0.5) + (band - 12.0 - 13.0 * styles) / 2.0;
            let x = xa.map(p.value);
            let _ = write!(
                s,
                r#"<rect class="bar" x="{}" y="{}" width="{}" height="9" fill="{}"/>"#,
                px(l),
                px(y - 4.5),
                px((x - l).max(0.0)),
                row.color
            );
            let mut end = x;
            if let Some((lo, hi)) = p.interval {
                let (x0, x1) = (xa.map(lo), xa.map(hi));
                end = end.max(x1);
                let _ = write!(
                    s,
                    r#"<path class="ci" d="M{},{}H{}M{},{}V{}M{},{}V{}" stroke="{}"/>"#,
                    px(x0),
                    px(y),
                    px(x1),
                    px(x0),
                    px(y - 3.5),
                    px(y + 3.5),
                    px(x1),
                    px(y - 3.5),
                    px(y + 3.5),
                    row.color
                );
            }
            s.push_str(&marker(p.style, x, y, row.color, "pt", Some(&p.tip)));
            let _ = write!(
                s,
                r#"<text class="val" x="{}" y="{}">{}</text>"#,
                px(end + 7.0),
                px(y + 3.5),
                esc(&p.text)
            );
        }
    }
    let _ = write!(
        s,
        r#"<line class="baseline" x1="{}" y1="{}" x2="{}" y2="{}"/>"#,
        px(l),
        px(t),
        px(l),
        px(b)
    );
    s.push_str("</svg>");
    Some(s)
}

#[cfg(test)]
mod tests {
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
                    tip: format!("{x} {y}"),
                })
                .collect(),
        }
    }

    #[test]
    fn log_axis_ticks_cover_decades() {
        let a = Axis::log(1.0, 10_000.0, 0.0, 400.0);
        let major: Vec<f64> = a.ticks().iter().filter(|t| t.1).map(|t| t.0).collect();
        assert_eq!(major, vec![1.0, 10.0, 100.0, 1000.0, 10_000.0]);
        assert_eq!(a.map(1.0), 0.0);
        assert_eq!(a.map(10_000.0), 400.0);
        let b = Axis::log(3.0, 3.0, 0.0, 1.0);
        assert!(b.lo <= 3.0 && b.hi >= 3.0);
    }

    #[test]
    fn linear_axis_is_nice() {
        let a = Axis::linear(7.3, 0.0, 100.0);
        assert_eq!(a.hi, 8.0);
        assert_eq!(a.ticks().len(), 5);
    }

    #[test]
    fn every_point_is_an_element() {
        let c = LineChart {
            id: "x".into(),
            title: "t".into(),
            x_label: "sites".into(),
            y_label: "ns".into(),
            x_tick: crate::fmt::count_tick,
            y_tick: crate::fmt::time_tick,
            y_log: true,
            series: vec![series(&[(1.0, 5.0), (10.0, 50.0), (100.0, 500.0)])],
            targets: vec![],
        };
        let svg = line_chart(&c).unwrap();
        assert_eq!(svg.matches(r#"class="pt""#).count(), 3);
        assert!(!svg.contains("NaN") && !svg.contains("inf"));
        let empty = LineChart {
            series: vec![series(&[])],
            ..c
        };
        assert!(line_chart(&empty).is_none());
    }
}
