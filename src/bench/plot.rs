//! The bench figure, one PNG with two panels: bits per sub-pixel per codec (bars), and rate
//! against encoding speed (bpd over encode MB/s, log axis), idfcodec's entries in red.

use anyhow::{bail, Result};
use plotters::prelude::*;

use super::report::Summary;
use super::Family;
use crate::plot::{two_panel_png, Area, DrawResult, FONT};

const WIDTH: u32 = 1400;
const HEIGHT: u32 = 600;

fn colour(family: Family) -> RGBColor {
    match family {
        Family::Idfcodec => RGBColor(200, 30, 30),
        Family::Baseline => RGBColor(40, 90, 170),
    }
}

/// Draws the figure for the codecs that coded anything; returns PNG bytes.
pub fn figure(summaries: &[Summary], title: &str) -> Result<Vec<u8>> {
    let rows: Vec<&Summary> = summaries.iter().filter(|s| s.bpd().is_some()).collect();
    if rows.is_empty() {
        bail!("no codec coded any image: nothing to plot");
    }
    two_panel_png((WIDTH, HEIGHT), (title, 24), |left, right| {
        bars(left, &rows)?;
        scatter(right, &rows)
    })
}

/// Horizontal bars (names fit on the left), the first row on top.
fn bars(area: &Area, rows: &[&Summary]) -> DrawResult {
    let bpd: Vec<f64> = rows.iter().map(|s| s.bpd().unwrap_or(0.0)).collect();
    let top = bpd.iter().cloned().fold(0.0, f64::max) * 1.18;
    // segment i (from the bottom) shows rows[slots - 1 - i]; two slots at least (a discrete
    // range of one value has no extent)
    let slots = rows.len().max(2);
    let row_at = |i: usize| rows.get(slots - 1 - i);
    let mut chart = ChartBuilder::on(area)
        .caption("bits per sub-pixel (lower is better)", (FONT, 18))
        .margin(14)
        .x_label_area_size(36)
        .y_label_area_size(170)
        .build_cartesian_2d(0f64..top, (0..slots - 1).into_segmented())?;
    chart
        .configure_mesh()
        .disable_y_mesh()
        .y_labels(slots)
        .y_label_formatter(&|v| match v {
            SegmentValue::CenterOf(i) => row_at(*i).map_or_else(String::new, |s| s.name.clone()),
            _ => String::new(),
        })
        .x_desc("bpd")
        .label_style((FONT, 14))
        .draw()?;
    chart.draw_series(rows.iter().enumerate().map(|(k, s)| {
        let i = slots - 1 - k;
        let mut bar = Rectangle::new(
            [
                (0.0, SegmentValue::Exact(i)),
                (bpd[k], SegmentValue::Exact(i + 1)),
            ],
            colour(s.family).filled(),
        );
        bar.set_margin(4, 4, 0, 0);
        bar
    }))?;
    chart.draw_series(rows.iter().enumerate().map(|(k, _)| {
        Text::new(
            format!(" {:.3}", bpd[k]),
            (bpd[k], SegmentValue::CenterOf(slots - 1 - k)),
            (FONT, 14).into_font().color(&BLACK),
        )
    }))?;
    Ok(())
}

/// bpd against encode MB/s on a log axis, one labelled point per codec.
fn scatter(area: &Area, rows: &[&Summary]) -> DrawResult {
    let points: Vec<(f64, f64, &Summary)> = rows
        .iter()
        .filter_map(|s| Some((s.encode_mb_s()?, s.bpd()?, *s)))
        .collect();
    if points.is_empty() {
        return Ok(());
    }
    let (mut x_lo, mut x_hi) = points.iter().fold((f64::MAX, f64::MIN), |(lo, hi), p| {
        (lo.min(p.0), hi.max(p.0))
    });
    x_lo /= 3.0;
    x_hi *= 3.0;
    let (y_lo, y_hi) = points.iter().fold((f64::MAX, f64::MIN), |(lo, hi), p| {
        (lo.min(p.1), hi.max(p.1))
    });
    let pad = ((y_hi - y_lo) * 0.15).max(0.1);
    let mut chart = ChartBuilder::on(area)
        .caption("rate against encoding speed", (FONT, 18))
        .margin(14)
        .x_label_area_size(36)
        .y_label_area_size(50)
        .build_cartesian_2d((x_lo..x_hi).log_scale(), (y_lo - pad)..(y_hi + pad))?;
    chart
        .configure_mesh()
        .x_desc("encode MB/s of raw pixels (log scale)")
        .y_desc("bpd")
        .label_style((FONT, 14))
        .draw()?;
    // labels alternately above and below their points, so that neighbours overlap less
    chart.draw_series(points.iter().enumerate().map(|(k, &(x, y, s))| {
        let dy = if k % 2 == 0 { -17 } else { 5 };
        EmptyElement::at((x, y))
            + Circle::new((0, 0), 5, colour(s.family).filled())
            + Text::new(s.name.clone(), (7, dy), (FONT, 13).into_font())
    }))?;
    Ok(())
}
