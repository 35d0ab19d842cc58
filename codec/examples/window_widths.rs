//! Mean coding-window width and summed component support per latent group for one 28×28 gray
//! PNG under the default embedded grayscale model: what building the probability tables costs
//! (BENCHMARKS.md, "Where the learned path's time goes").
//!
//! `cargo run --release -p idfcodec-codec --example window_widths -- IMAGE.png`

use idfcodec_codec::engine::{IntTensor, Shape};
use idfcodec_codec::entropy::{LatentModel, LogisticMixture, WINDOW_RADIUS};
use idfcodec_codec::format::PixelFormat;
use idfcodec_codec::model::idf::flow;
use idfcodec_codec::{png, Registry};

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let path = std::env::args()
        .nth(1)
        .ok_or("usage: window_widths IMAGE.png (28×28 gray)")?;
    let entry = Registry::embedded()
        .default_for(PixelFormat::Gray8)
        .ok_or("no embedded grayscale model")?;
    let model = entry
        .model()?
        .idf()
        .ok_or("the default grayscale model is not an IDF")?;
    let image = png::read(&std::fs::read(&path)?)?.to_image()?;
    let (h, w) = (image.height() as usize, image.width() as usize);
    let data = image.samples().iter().map(|&p| i32::from(p)).collect();
    let latents = flow::forward(model, &IntTensor::from_vec(Shape::new(1, h, w), data)?)?;
    println!("model {}, {path}", entry.name());
    for (g, group) in latents.groups.iter().enumerate() {
        let n = group.params.len();
        let (mut window, mut support) = (0usize, 0.0f64);
        for i in 0..n {
            let params = group.params.get(i);
            let (lo, hi) = LatentModel::new(&LogisticMixture::new(&params)?)?.window();
            window += (i64::from(hi) - i64::from(lo) + 1) as usize;
            support += params
                .log_scales
                .iter()
                .map(|&s| 2.0 * WINDOW_RADIUS * f64::from(s).exp())
                .sum::<f64>();
        }
        println!(
            "group {g}: {n} latents, mean window {:.0} values, mean summed component support {:.0}",
            window as f64 / n as f64,
            support / n as f64
        );
    }
    Ok(())
}
