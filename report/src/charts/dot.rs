//! Dot charts: one value per subject and machine, whiskers for the
//! interval, the reference dashed.

use super::*;

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
