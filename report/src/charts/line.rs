//! Line charts: one measure against a count, log x.

use super::*;

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
