//! The OOD figure: overlaid histograms, one outline per set (share of the set's images per bin),
//! of the model's NLL in bits per sub-pixel (left) and of the complexity-corrected score,
//! NLL − PNG (right).

use anyhow::{bail, Result};
use plotters::prelude::*;

use super::{MeasuredSet, Score};
use crate::plot::{two_panel_png, Area, DrawResult, FONT};

const WIDTH: u32 = 1400;
const HEIGHT: u32 = 560;
/// Bins across the range of all sets' values.
const BINS: usize = 40;

/// The figure of `sets` (the in-distribution set first) as PNG bytes.
pub fn figure(sets: &[&MeasuredSet], title: &str) -> Result<Vec<u8>> {
    if sets.iter().any(|s| s.rows.is_empty()) {
        bail!("a set without images: nothing to plot");
    }
    let values = |score: Score| -> Result<Vec<(String, Vec<f64>)>> {
        sets.iter()
            .map(|s| Ok((s.name.clone(), score.of_set(s)?)))
            .collect()
    };
    let (nll, minus_png) = (values(Score::Nll)?, values(Score::MinusPng)?);
    two_panel_png((WIDTH, HEIGHT), (title, 22), |left, right| {
        histograms(left, "model NLL (bits per sub-pixel)", &nll)?;
        histograms(
            right,
            "NLL − PNG code length (bits per sub-pixel)",
            &minus_png,
        )
    })
}

/// Step outlines of each set's histogram over common bins.
fn histograms(area: &Area, caption: &str, sets: &[(String, Vec<f64>)]) -> DrawResult {
    let all = || sets.iter().flat_map(|(_, v)| v.iter().copied());
    let lo = all().fold(f64::INFINITY, f64::min);
    let hi = all().fold(f64::NEG_INFINITY, f64::max);
    let width = ((hi - lo) / BINS as f64).max(1e-6);
    let shares: Vec<Vec<f64>> = sets
        .iter()
        .map(|(_, values)| {
            let mut counts = vec![0.0; BINS];
            for v in values {
                let bin = (((v - lo) / width) as usize).min(BINS - 1);
                counts[bin] += 1.0;
            }
            counts.iter().map(|c| c / values.len() as f64).collect()
        })
        .collect();
    let top = shares.iter().flatten().copied().fold(0.0, f64::max) * 1.1;
    let mut chart = ChartBuilder::on(area)
        .caption(caption, (FONT, 18))
        .margin(14)
        .x_label_area_size(36)
        .y_label_area_size(56)
        .build_cartesian_2d(
            lo - width..lo + width * (BINS + 1) as f64,
            0.0..top.max(1e-3),
        )?;
    chart
        .configure_mesh()
        .y_desc("share of the set's images")
        // no minor grid: the figures stay small
        .light_line_style(TRANSPARENT)
        .label_style((FONT, 14))
        .draw()?;
    for (k, ((name, _), share)) in sets.iter().zip(&shares).enumerate() {
        let colour = Palette99::pick(k).to_rgba();
        // the outline: up and down at every bin edge
        let mut points = vec![(lo, 0.0)];
        for (b, &s) in share.iter().enumerate() {
            let x = lo + width * b as f64;
            points.extend([(x, s), (x + width, s)]);
        }
        points.push((lo + width * BINS as f64, 0.0));
        chart
            .draw_series(LineSeries::new(points, colour.stroke_width(2)))?
            .label(name.as_str())
            .legend(move |(x, y)| {
                PathElement::new(vec![(x, y), (x + 20, y)], colour.stroke_width(2))
            });
    }
    chart
        .configure_series_labels()
        .background_style(WHITE.mix(0.8))
        .border_style(BLACK)
        .label_font((FONT, 14))
        .draw()?;
    Ok(())
}
