//! How much per-image calibration of a learned RGB model's scales could save: codes every `N`th
//! full 128×128 tile of each photo's RGB pixels and reports, in bits per value (the exact
//! discretized-mixture NLL, not a coded file),
//! - `model`: the embedded `photos` model as it is;
//! - `oracle`: each latent group of each tile with all its log-scales shifted by the best of 13
//!   offsets in −0.48..0.48 (chosen knowing the values; side information not counted);
//! - `online`: an adaptive correction the decoder could follow: per group, latents binned by their
//!   predicted spread, each bin's running ratio of actual to predicted error widens or narrows
//!   the scales and its running mean error shifts the means.
//!
//! (BENCHMARKS.md, "Where the learned RGB model's gap is".)
//!
//! `cargo run --release -p idfcodec-codec --example scale_calibration -- N PHOTO.png...`

use idfcodec_codec::engine::{IntTensor, Shape};
use idfcodec_codec::entropy::LogisticMixture;
use idfcodec_codec::model::idf::flow::{self, GroupParams, MixtureParams};
use idfcodec_codec::{png, Registry};

const TILE: usize = 128;
const OFFSETS: usize = 13;
const SPREAD_BINS: usize = 24;
/// Pseudo-count of the online correction's bins (how fast they move away from the model).
const PRIOR_COUNT: f64 = 20.0;

/// Summed bits of one group: `[model, oracle, online]`.
fn group_bits(
    values: &[i32],
    params: &GroupParams,
) -> Result<[f64; 3], Box<dyn std::error::Error>> {
    let offset = |d: usize| (d as f32 - (OFFSETS / 2) as f32) * 0.08;
    let bits = |p: &MixtureParams, means: &[f32], log_scales: &[f32], z: i32| {
        let q = MixtureParams {
            logits: p.logits,
            means,
            log_scales,
        };
        LogisticMixture::new(&q).map(|m| m.nll_bits(z))
    };
    let mut shifted = [0.0f64; OFFSETS];
    let (mut err_ratio, mut err_sum, mut count) =
        ([0.0; SPREAD_BINS], [0.0; SPREAD_BINS], [0.0; SPREAD_BINS]);
    let mut online = 0.0;
    for (i, &z) in values.iter().enumerate() {
        let p = params.get(i);
        for (d, total) in shifted.iter_mut().enumerate() {
            let ls: Vec<f32> = p.log_scales.iter().map(|&v| v + offset(d)).collect();
            *total += bits(&p, p.means, &ls, z)?;
        }
        // the mixture's mean and mean scale, and the bin of that scale
        let max = p.logits.iter().copied().fold(f32::MIN, f32::max);
        let w: Vec<f64> = p.logits.iter().map(|&l| f64::from(l - max).exp()).collect();
        let norm: f64 = w.iter().sum();
        let mean: f64 = w
            .iter()
            .zip(p.means)
            .map(|(w, &m)| w / norm * f64::from(m))
            .sum();
        let spread: f64 = w
            .iter()
            .zip(p.log_scales)
            .map(|(w, &s)| w / norm * f64::from(s).exp())
            .sum();
        let bin = ((spread.log2() * 2.0 + 6.0).max(0.0) as usize).min(SPREAD_BINS - 1);
        let ratio = (err_ratio[bin] + PRIOR_COUNT) / (count[bin] + PRIOR_COUNT);
        let bias = err_sum[bin] / (count[bin] + PRIOR_COUNT);
        let ls: Vec<f32> = p
            .log_scales
            .iter()
            .map(|&v| v + f64::ln(ratio) as f32)
            .collect();
        let ms: Vec<f32> = p.means.iter().map(|&v| v + bias as f32).collect();
        online += bits(&p, &ms, &ls, z)?;
        let e = f64::from(z) - mean;
        // a logistic's mean absolute error is 2·ln 2·s
        err_ratio[bin] += e.abs() / (2.0 * std::f64::consts::LN_2 * spread + 0.3);
        err_sum[bin] += e;
        count[bin] += 1.0;
    }
    let oracle = shifted.iter().copied().fold(f64::INFINITY, f64::min);
    Ok([shifted[OFFSETS / 2], oracle, online])
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let mut args = std::env::args().skip(1);
    let every: usize = args
        .next()
        .and_then(|n| n.parse().ok())
        .ok_or("usage: scale_calibration N PHOTO.png... (every Nth tile)")?;
    let model = Registry::embedded()
        .by_name("photos")
        .ok_or("no embedded photos model")?
        .model()?
        .idf()
        .ok_or("the photos model is not an IDF")?;
    let (mut all, mut all_values) = ([0.0f64; 3], 0usize);
    for path in args {
        let image = png::read(&std::fs::read(&path)?)?.to_image()?;
        let (h, w) = (image.height() as usize, image.width() as usize);
        if image.samples().len() != 3 * h * w {
            return Err(format!("{path}: not an 8-bit RGB image").into());
        }
        let (mut sums, mut values, mut k) = ([0.0f64; 3], 0usize, 0usize);
        for ty in (0..h / TILE).map(|i| i * TILE) {
            for tx in (0..w / TILE).map(|i| i * TILE) {
                k += 1;
                if k % every != 0 {
                    continue;
                }
                let mut data = vec![0i32; 3 * TILE * TILE];
                for (i, v) in data.iter_mut().enumerate() {
                    let (c, y, x) = (i / (TILE * TILE), i / TILE % TILE, i % TILE);
                    *v = i32::from(image.samples()[((ty + y) * w + tx + x) * 3 + c]);
                }
                let tile = IntTensor::from_vec(Shape::new(3, TILE, TILE), data)?;
                for group in flow::forward(model, &tile)?.groups {
                    let b = group_bits(group.values.data(), &group.params)?;
                    sums.iter_mut().zip(b).for_each(|(s, b)| *s += b);
                }
                values += 3 * TILE * TILE;
            }
        }
        if values > 0 {
            let [m, o, a] = sums.map(|s| s / values as f64);
            println!("{path}: model {m:.4}, oracle {o:.4}, online {a:.4} bits per value");
        }
        all.iter_mut().zip(sums).for_each(|(s, b)| *s += b);
        all_values += values;
    }
    let [m, o, a] = all.map(|s| s / all_values.max(1) as f64);
    println!(
        "all: model {m:.4}, oracle {o:.4} ({:+.2} %), online {a:.4} ({:+.2} %)",
        100.0 * (o / m - 1.0),
        100.0 * (a / m - 1.0)
    );
    Ok(())
}
