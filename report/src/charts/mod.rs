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
//!
//! This file holds the charts' data, scales, ticks and markers;
//! `line.rs` draws line charts, `dot.rs` dot charts.

use std::ops::Range;

use plotters::coord::Shift;
use plotters::coord::ranged1d::{DefaultFormatting, KeyPointHint, Ranged};
use plotters::coord::types::RangedCoordf64;
use plotters::prelude::*;
use plotters::style::text_anchor::{HPos, Pos, VPos};

use maud::{Markup, PreEscaped, html};

mod dot;
mod line;
#[cfg(test)]
mod tests;

pub use dot::dot_chart;
pub use line::line_chart;

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
