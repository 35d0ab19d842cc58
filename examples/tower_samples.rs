//! Samples of a hierarchical VAE training run (`family = "hvae"`), the deepest stacked model of
//! the project, taken as issue #19's "tower model": ancestral sampling down the chain,
//! `z_L ~ N(0, I)`, `z_{l−1} ~ p(z_{l−1}|z_l)` for `l = L … 2`, then the mean image of the
//! discretized logistic mixture `p(x|z_1)`, written as a PNG grid (`idfcodec sample` does not
//! take hvae runs).
//!
//! ```sh
//! cargo run --example tower_samples -- RUN OUT.png [N] [COLUMNS] [SEED]
//! ```

use std::path::Path;

use anyhow::{Context, Result};
use idfcodec::nn::dist::{LikelihoodKind, PixelLikelihood};
use idfcodec::nn::generative::{grid_png, to_u8};
use idfcodec::nn::hvae::Hvae;
use idfcodec::train::{self, checkpoint};
use tch::{Device, Kind, Tensor};

fn main() -> Result<()> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    anyhow::ensure!(
        args.len() >= 2,
        "usage: tower_samples RUN OUT.png [N] [COLUMNS] [SEED]"
    );
    let arg = |i: usize, default: i64| -> Result<i64> {
        args.get(i)
            .map(|s| {
                s.parse()
                    .with_context(|| format!("argument {}: {s}", i + 1))
            })
            .unwrap_or(Ok(default))
    };
    let (n, columns, seed) = (arg(2, 64)?, arg(3, 8)?, arg(4, 0)?);
    let run = Path::new(&args[0]);
    let state = checkpoint::read_state(run)?;
    let (mut vs, model) = train::build_model::<Hvae>(&state.config, Device::Cpu)?;
    checkpoint::load(run, &mut vs, None)?;
    let c = model.config();
    // the likelihood the model trains with (its mean needs no parameter of its own)
    let likelihood = PixelLikelihood {
        kind: LikelihoodKind::Logistic,
        mixtures: c.mixtures,
        log_std: Tensor::from(0f32),
    };
    tch::manual_seed(seed);
    let images = tch::no_grad(|| {
        let top = *c.latents.last().context("no latent layer")? as i64;
        let mut z = Tensor::randn([n, top], (Kind::Float, Device::Cpu));
        for l in (2..=model.layers()).rev() {
            let (mu, logvar) = model.prior_below(l, &z);
            z = &mu + (logvar * 0.5).exp() * mu.randn_like();
        }
        anyhow::Ok(to_u8(&likelihood.mean(&model.decode_raw(&z))))
    })?;
    std::fs::write(&args[1], grid_png(&images, columns as usize)?)
        .with_context(|| format!("writing {}", args[1]))?;
    println!(
        "{n} samples of {} (latents {:?}, seed {seed}) → {}",
        run.display(),
        c.latents,
        args[1]
    );
    Ok(())
}
