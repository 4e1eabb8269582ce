//! Charts drawn with plotters' SVG backend, inlined into the page.
//!
//! Each chart is rendered into a `String` and wrapped in
//! `<div class="chart" id="…" role="img" aria-label="…">`. Plotters gives
//! its elements no class, so the drawing keeps one rule instead: every
//! data point is exactly one `<circle>` (whiskers, crosses and grid are
//! lines, bars are rects), and a chart's points are the `<circle>`s of its
//! `<svg>`. Without a font feature plotters only estimates text widths,
//! so the label areas are sized here, generously.
//!
//! Colour stands for the subject (implementation or control); the marker
//! (filled or hollow circle, plain or crossed) and the line dash for the
//! machine (`style`, its column index).

use std::ops::Range;

use plotters::coord::Shift;
use plotters::coord::ranged1d::{DefaultFormatting, KeyPointHint, Ranged};
use plotters::coord::types::RangedCoordf64;
use plotters::prelude::*;
use plotters::style::text_anchor::{HPos, Pos, VPos};

use maud::{Markup, PreEscaped, html};

/// One data point.
#[derive(Debug, Clone)]
pub struct Point {
    /// x value (site count).
    pub x: f64,
    /// y value.
    pub y: f64,
    /// Confidence interval of `y`.
    pub interval: Option<(f64, f64)>,
}

/// One line: a subject on a machine.
#[derive(Debug, Clone)]
pub struct Series {
    /// Subject name.
    pub name: String,
    /// Stroke and fill colour, `#rrggbb`.
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
    /// Its colour, `#rrggbb`.
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
    /// A vertical dashed reference line with a short label above it (the
    /// direct call on the first machine).
    pub reference: Option<(f64, String)>,
}

/// Font family of every text: the page's own.
const FONT: &str = "system-ui, -apple-system, Segoe UI, Roboto, Arial, sans-serif";
/// Plotters writes `font-size` as the given size / 1.24.
const FONT_SCALE: f64 = 1.24;
/// Marker radius in pixels; error bars are `2 R + 1` wide so that their
/// centre circle is the marker.
const R: u32 = 4;
/// A line chart's size, and the margins around its plot (top, right,
/// bottom, left: label areas included).
const LINE_SIZE: (u32, u32) = (600, 340);
const LINE_MARGIN: (u32, u32, u32, u32) = (14, 20, 48, 82);
/// The plot's width and height in pixels.
const PLOT: (f64, f64) = (
    (LINE_SIZE.0 - LINE_MARGIN.1 - LINE_MARGIN.3) as f64,
    (LINE_SIZE.1 - LINE_MARGIN.0 - LINE_MARGIN.2) as f64,
);
/// Dash and gap lengths in pixels by machine index (none: solid).
const DASHES: [Option<(i32, i32)>; 4] = [None, Some((7, 4)), Some((2, 3)), Some((12, 4))];

const INK: RGBColor = RGBColor(0x34, 0x3a, 0x40);
const MUTED: RGBColor = RGBColor(0x5f, 0x6b, 0x76);
const GRID: RGBColor = RGBColor(0xe3, 0xe7, 0xeb);
const GRID_LIGHT: RGBColor = RGBColor(0xf1, 0xf3, 0xf5);
const FRAME: RGBColor = RGBColor(0xad, 0xb5, 0xbd);
const BAND: RGBColor = RGBColor(0xf8, 0xf9, 0xfa);
const TARGET: RGBColor = RGBColor(0xc9, 0x2a, 0x2a);

type Fallible = Result<(), Box<dyn std::error::Error>>;

/// A text style of `px` pixels.
fn font(px: f64, color: RGBColor) -> TextStyle<'static> {
    (FONT, px * FONT_SCALE).into_font().color(&color)
}

/// `#rrggbb` (or `#rgb`) to a colour; black when malformed.
fn rgb(hex: &str) -> RGBColor {
    let h = hex.trim_start_matches('#');
    let h: String = if h.len() == 3 {
        h.chars().flat_map(|c| [c, c]).collect()
    } else {
        h.to_owned()
    };
    let byte = |i: usize| {
        h.get(i..i + 2)
            .and_then(|s| u8::from_str_radix(s, 16).ok())
            .unwrap_or(0)
    };
    RGBColor(byte(0), byte(2), byte(4))
}

/// An axis (linear or `log_scale`) with the ticks chosen here: `major`
/// labelled on bold grid lines, `minor` on light ones.
struct Ticked<R> {
    inner: R,
    major: Vec<f64>,
    minor: Vec<f64>,
}

impl<R: Ranged<ValueType = f64>> Ticked<R> {
    fn new(inner: impl Into<R>, major: Vec<f64>, minor: Vec<f64>) -> Self {
        Ticked {
            inner: inner.into(),
            major,
            minor,
        }
    }
}

impl<R: Ranged<ValueType = f64>> Ranged for Ticked<R> {
    type FormatOption = DefaultFormatting;
    type ValueType = f64;

    fn map(&self, value: &f64, limit: (i32, i32)) -> i32 {
        self.inner.map(value, limit)
    }

    fn key_points<H: KeyPointHint>(&self, hint: H) -> Vec<f64> {
        if hint.weight().allow_light_points() {
            self.minor.clone()
        } else {
            self.major.clone()
        }
    }

    fn range(&self) -> Range<f64> {
        self.inner.range()
    }
}

/// Ticks of a logarithmic axis over whole decades `lo..=hi`, `pixels`
/// long: (labelled, unlabelled). Over two decades or fewer, 2× and 5× are
/// labelled too; the unlabelled 2×…9× only where a decade has room.
fn log_ticks(lo: f64, hi: f64, pixels: f64) -> (Vec<f64>, Vec<f64>) {
    let a = lo.log10().round() as i32;
    let b = hi.log10().round() as i32;
    let few = b - a <= 2;
    let roomy = pixels / f64::from((b - a).max(1)) >= 50.0;
    let (mut major, mut minor) = (Vec::new(), Vec::new());
    for e in a..=b {
        let base = 10f64.powi(e);
        major.push(base);
        if e < b {
            for m in 2..10 {
                let v = base * f64::from(m);
                if few && (m == 2 || m == 5) {
                    major.push(v);
                } else if roomy {
                    minor.push(v);
                }
            }
        }
    }
    (major, minor)
}

/// The whole decades around `min..=max` (at least one).
fn decades(min: f64, max: f64) -> (f64, f64) {
    let a = min.log10().floor();
    let mut b = max.log10().ceil();
    if b <= a {
        b = a + 1.0;
    }
    (10f64.powf(a), 10f64.powf(b))
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

/// A linear axis from zero: its top and its ticks.
fn linear_ticks(max: f64) -> (f64, Vec<f64>) {
    let max = if max > 0.0 { max } else { 1.0 };
    let step = nice_step(max / 5.0);
    let n = (max / step).ceil() as i32;
    let ticks = (0..=n).map(|i| f64::from(i) * step).collect();
    (f64::from(n) * step, ticks)
}

/// The marker of machine `style`: filled (even) or hollow (odd) circle.
fn marker_style(style: usize, color: RGBColor) -> ShapeStyle {
    if style.is_multiple_of(2) {
        color.filled().stroke_width(1)
    } else {
        color.stroke_width(2)
    }
}

/// Whiskers of a point, in data units.
enum Whisker {
    /// From `.0` to `.1` along y.
    Vertical(f64, f64),
    /// From `.0` to `.1` along x.
    Horizontal(f64, f64),
}

/// Draws one data point: its whiskers (an [`ErrorBar`], whose centre
/// circle is the marker) or a lone [`Circle`]; machines 2 and 3 get a
/// cross over it. Exactly one `<circle>` either way.
fn mark<DB: DrawingBackend, X, Y>(
    ch: &mut ChartContext<'_, DB, Cartesian2d<X, Y>>,
    (x, y): (f64, f64),
    style: usize,
    color: RGBColor,
    whisker: Option<Whisker>,
) -> Result<(), DrawingAreaErrorKind<DB::ErrorType>>
where
    X: Ranged<ValueType = f64>,
    Y: Ranged<ValueType = f64>,
{
    let st = marker_style(style, color);
    match whisker {
        Some(Whisker::Vertical(lo, hi)) => {
            ch.draw_series([ErrorBar::new_vertical(x, lo, y, hi, st, 2 * R + 1)])?;
        }
        Some(Whisker::Horizontal(lo, hi)) => {
            ch.draw_series([ErrorBar::new_horizontal(y, lo, x, hi, st, 2 * R + 1)])?;
        }
        None => {
            ch.draw_series([Circle::new((x, y), R, st)])?;
        }
    }
    if style % 4 >= 2 {
        // White inside a filled marker, coloured through a hollow one.
        let (ink, size) = if style.is_multiple_of(2) {
            (WHITE, 2)
        } else {
            (color, 3)
        };
        ch.draw_series([Cross::new((x, y), size, ink.stroke_width(1))])?;
    }
    Ok(())
}

/// Draws a line through `pts`, in the dash of machine `style`.
fn line<DB: DrawingBackend, X, Y>(
    ch: &mut ChartContext<'_, DB, Cartesian2d<X, Y>>,
    pts: Vec<(f64, f64)>,
    style: usize,
    st: ShapeStyle,
) -> Result<(), DrawingAreaErrorKind<DB::ErrorType>>
where
    X: Ranged<ValueType = f64>,
    Y: Ranged<ValueType = f64>,
{
    match DASHES[style % 4] {
        None => {
            ch.draw_series(LineSeries::new(pts, st))?;
        }
        Some((dash, gap)) => {
            ch.draw_series(DashedLineSeries::new(pts, dash, gap, st))?;
        }
    }
    Ok(())
}

/// A small legend swatch: a line in the dash of `style` with its marker,
/// as an inline SVG in a `<span class="sw">`.
pub fn swatch(style: usize, color: &str) -> Markup {
    let mut svg = String::new();
    let drawn = (|| -> Fallible {
        let root = SVGBackend::with_string(&mut svg, (30, 12)).into_drawing_area();
        let mut ch = ChartBuilder::on(&root).build_cartesian_2d(0f64..30.0, 0f64..12.0)?;
        let c = rgb(color);
        line(
            &mut ch,
            vec![(1.0, 6.0), (29.0, 6.0)],
            style,
            c.stroke_width(2),
        )?;
        mark(&mut ch, (15.0, 6.0), style, c, None)?;
        root.present()?;
        Ok(())
    })();
    if drawn.is_err() {
        return html! {};
    }
    // plotters escapes every text and attribute value it writes into the
    // SVG (`&`, `<`, `>`, `"`, `'`), and the rest is its own markup.
    html! { span class="sw" aria-hidden="true" { (PreEscaped(svg.trim_end())) } }
}

/// Draws into a `w`×`h` SVG with `f`, wrapped for the page; a drawing
/// error (none is expected into a `String`) is stated instead.
fn render(
    id: &str,
    title: &str,
    (w, h): (u32, u32),
    f: impl FnOnce(&DrawingArea<SVGBackend<'_>, Shift>) -> Fallible,
) -> Markup {
    let mut svg = String::new();
    let drawn = (|| -> Fallible {
        let root = SVGBackend::with_string(&mut svg, (w, h)).into_drawing_area();
        f(&root)?;
        root.present()?;
        Ok(())
    })();
    match drawn {
        // plotters escapes every text and attribute value it writes into
        // the SVG (`&`, `<`, `>`, `"`, `'`: plotters-svg's
        // `escape_and_push`), and the rest is its own markup.
        Ok(()) => html! {
            div class="chart" id=(id) role="img" aria-label=(title) { (PreEscaped(svg.trim_end())) }
        },
        Err(e) => html! {
            p class="nodata" { "No chart: it could not be drawn (" (e.to_string()) ")." }
        },
    }
}

/// Draws a line chart; `None` when it has no point to draw.
pub fn line_chart(c: &LineChart) -> Option<Markup> {
    let shown = |p: &&Point| p.x > 0.0 && p.y.is_finite() && (!c.y_log || p.y > 0.0);
    let pts: Vec<&Point> = c
        .series
        .iter()
        .flat_map(|s| s.points.iter())
        .filter(shown)
        .collect();
    if pts.is_empty() {
        return None;
    }
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
    ys.retain(|v| v.is_finite() && (!c.y_log || *v > 0.0));
    let ymin = ys.iter().copied().fold(f64::INFINITY, f64::min);
    let ymax = ys.iter().copied().fold(0.0, f64::max);

    let (x0, x1) = decades(xmin, xmax);
    let (xmajor, xminor) = log_ticks(x0, x1, PLOT.0);
    // A little room left and right, so that no point sits on the axis.
    let pad = 10f64.powf((x1 / x0).log10() * 0.025);
    let x = Ticked::<LogCoord<f64>>::new((x0 / pad..x1 * pad).log_scale(), xmajor, xminor);
    let svg = if c.y_log {
        let (y0, y1) = decades(ymin, ymax);
        let (major, minor) = log_ticks(y0, y1, PLOT.1);
        let y = Ticked::<LogCoord<f64>>::new((y0..y1).log_scale(), major, minor);
        render(&c.id, &c.title, LINE_SIZE, |root| draw_lines(root, c, x, y))
    } else {
        let (top, ticks) = linear_ticks(ymax * 1.05);
        let y = Ticked::<RangedCoordf64>::new(0f64..top, ticks, Vec::new());
        render(&c.id, &c.title, LINE_SIZE, |root| draw_lines(root, c, x, y))
    };
    Some(svg)
}

fn draw_lines<Y: Ranged<ValueType = f64>>(
    root: &DrawingArea<SVGBackend<'_>, Shift>,
    c: &LineChart,
    x: Ticked<LogCoord<f64>>,
    y: Ticked<Y>,
) -> Fallible {
    root.fill(&WHITE)?;
    let mut ch = ChartBuilder::on(root)
        .margin_top(LINE_MARGIN.0)
        .margin_right(LINE_MARGIN.1)
        .margin_bottom(4)
        .margin_left(6)
        .x_label_area_size(LINE_MARGIN.2 - 4)
        .y_label_area_size(LINE_MARGIN.3 - 6)
        .build_cartesian_2d(x, y)?;
    let x_fmt = |v: &f64| (c.x_tick)(*v);
    let y_fmt = |v: &f64| (c.y_tick)(*v);
    ch.configure_mesh()
        .bold_line_style(GRID.stroke_width(1))
        .light_line_style(GRID_LIGHT.stroke_width(1))
        .axis_style(FRAME.stroke_width(1))
        .set_all_tick_mark_size(4)
        .x_label_formatter(&x_fmt)
        .y_label_formatter(&y_fmt)
        .label_style(font(11.0, INK))
        .axis_desc_style(font(11.5, MUTED))
        .x_desc(c.x_label.as_str())
        .y_desc(c.y_label.as_str())
        .draw()?;

    let (xr, yr) = (ch.x_range(), ch.y_range());
    let shown = |p: &&Point| p.x > 0.0 && p.y.is_finite() && (!c.y_log || p.y > 0.0);

    // Targets: a dashed level about 70 px wide with its label above.
    let width = f64::from(ch.plotting_area().dim_in_pixel().0.max(1));
    let reach = 10f64.powf((xr.end / xr.start).log10() * 34.0 / width);
    for t in &c.targets {
        if !t.y.is_finite() || (c.y_log && t.y <= 0.0) || t.x <= 0.0 {
            continue;
        }
        let (a, b) = ((t.x / reach).max(xr.start), (t.x * reach).min(xr.end));
        let (tx, h) = if b >= xr.end {
            (b, HPos::Right)
        } else if a <= xr.start {
            (a, HPos::Left)
        } else {
            (t.x, HPos::Center)
        };
        line(&mut ch, vec![(a, t.y), (b, t.y)], 1, TARGET.stroke_width(1))?;
        ch.draw_series([EmptyElement::at((tx, t.y))
            + Text::new(
                t.label.clone(),
                (0, -4),
                font(10.5, TARGET).pos(Pos::new(h, VPos::Bottom)),
            )])?;
    }
    // Lines, then points with their whiskers on top.
    for se in &c.series {
        let mut p: Vec<&Point> = se.points.iter().filter(shown).collect();
        p.sort_by(|a, b| a.x.total_cmp(&b.x));
        if p.len() > 1 {
            let st = rgb(se.color).stroke_width(2);
            line(
                &mut ch,
                p.iter().map(|q| (q.x, q.y)).collect(),
                se.style,
                st,
            )?;
        }
    }
    for se in &c.series {
        for q in se.points.iter().filter(shown) {
            let whisker = q
                .interval
                .filter(|&(lo, hi)| lo.is_finite() && hi.is_finite() && (!c.y_log || lo > 0.0))
                .map(|(lo, hi)| Whisker::Vertical(lo.max(yr.start), hi.min(yr.end)));
            mark(&mut ch, (q.x, q.y), se.style, rgb(se.color), whisker)?;
        }
    }
    Ok(())
}

/// Draws a dot chart; `None` when it has no point to draw.
pub fn dot_chart(c: &DotChart) -> Option<Markup> {
    let rows: Vec<&DotRow> = c.rows.iter().filter(|r| !r.points.is_empty()).collect();
    if rows.is_empty() {
        return None;
    }
    let styles = c.styles.max(1) as f64;
    let band = (12.0 + 13.0 * styles).max(26.0);
    let (top, bottom) = (22.0, 40.0);
    let h = top + band * rows.len() as f64 + bottom;
    let size = (600, h.round() as u32);
    Some(render(&c.id, &c.title, size, |root| {
        draw_dots(root, c, &rows, band, (top as u32, bottom as u32))
    }))
}

fn draw_dots(
    root: &DrawingArea<SVGBackend<'_>, Shift>,
    c: &DotChart,
    rows: &[&DotRow],
    band: f64,
    (top, bottom): (u32, u32),
) -> Fallible {
    let n = rows.len() as f64;
    let styles = c.styles.max(1) as f64;
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
    let (hi, ticks) = linear_ticks(max);
    // Row i (from the top) spans y = n - i - 1 .. n - i; labels at centres.
    let centres: Vec<f64> = (0..rows.len()).map(|i| i as f64 + 0.5).collect();
    let x = Ticked::<RangedCoordf64>::new(0f64..hi, ticks, Vec::new());
    let y = Ticked::<RangedCoordf64>::new(0f64..n, centres, Vec::new());
    root.fill(&WHITE)?;
    let mut ch = ChartBuilder::on(root)
        .margin_top(top)
        .margin_right(86)
        .margin_left(4)
        .x_label_area_size(bottom)
        .y_label_area_size(108)
        .build_cartesian_2d(x, y)?;
    let row_of = |v: f64| rows.len().checked_sub(1 + v.floor().max(0.0) as usize);
    let y_fmt = |v: &f64| row_of(*v).map_or(String::new(), |i| rows[i].label.clone());
    let x_fmt = |v: &f64| (c.x_tick)(*v);

    // Alternate rows shaded, under the grid.
    for i in (1..rows.len()).step_by(2) {
        let y1 = n - i as f64;
        ch.draw_series([Rectangle::new([(0.0, y1 - 1.0), (hi, y1)], BAND.filled())])?;
    }
    ch.configure_mesh()
        .disable_y_mesh()
        .bold_line_style(GRID.stroke_width(1))
        .axis_style(FRAME.stroke_width(1))
        .set_all_tick_mark_size(4)
        .x_label_formatter(&x_fmt)
        .y_label_formatter(&y_fmt)
        .label_style(font(11.0, INK))
        .y_label_style(font(12.0, INK))
        .axis_desc_style(font(11.5, MUTED))
        .x_desc(c.x_label.as_str())
        .draw()?;

    if let Some((v, label)) = &c.reference {
        let st = INK.stroke_width(1);
        ch.draw_series(DashedLineSeries::new([(*v, 0.0), (*v, n)], 4, 3, st))?;
        // The label runs away from the nearer edge.
        let (h, dx) = if *v < hi / 2.0 {
            (HPos::Left, -3)
        } else {
            (HPos::Right, 3)
        };
        ch.draw_series([EmptyElement::at((*v, n))
            + Text::new(
                label.clone(),
                (dx, -5),
                font(10.0, MUTED).pos(Pos::new(h, VPos::Bottom)),
            )])?;
    }
    let unit = 1.0 / band;
    for (i, row) in rows.iter().enumerate() {
        let color = rgb(row.color);
        let band_top = n - i as f64;
        let mut pts: Vec<&DotPoint> = row.points.iter().collect();
        pts.sort_by_key(|p| p.style);
        for p in pts {
            let off = 6.0 + 13.0 * (p.style as f64 + 0.5) + (band - 12.0 - 13.0 * styles) / 2.0;
            let y = band_top - off * unit;
            let bar = [(0.0, y + 4.5 * unit), (p.value.max(0.0), y - 4.5 * unit)];
            ch.draw_series([Rectangle::new(bar, color.mix(0.22).filled())])?;
            let mut end = p.value;
            let whisker = p.interval.map(|(lo, hi)| {
                end = end.max(hi);
                Whisker::Horizontal(lo, hi)
            });
            mark(&mut ch, (p.value, y), p.style, color, whisker)?;
            ch.draw_series([EmptyElement::at((end, y))
                + Text::new(
                    p.text.clone(),
                    (8, 0),
                    font(10.5, MUTED).pos(Pos::new(HPos::Left, VPos::Center)),
                )])?;
        }
    }
    Ok(())
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
}
