//! `idfcodec sample`: images drawn from a trained run's model, as a PNG grid (and optionally
//! one PNG file per image, for `idfcodec metrics fid`).

use clap::Args;
use std::path::PathBuf;

#[derive(Debug, Args)]
#[command(after_help = "Examples:\n  \
idfcodec sample runs/vae-mnist --n 64 --out samples.png\n  \
idfcodec sample runs/gan-mnist --n 100 --columns 10 --seed 3 --out gan.png\n  \
idfcodec sample runs/ebm-mnist --sampler mala --step-size 0.01 --steps 100 --out mala.png\n  \
idfcodec sample runs/ebm-mnist --sampler mala --n 1000 --out mala.png --images mala/\n  \
idfcodec sample runs/glow-mnist --temperature 0.7 --out glow-t07.png\n\n\
A VAE decodes latents drawn from its prior N(0, I) to its likelihood's mean image; a GAN's \
generator maps latents from N(0, I) to images. An ebm-prior run's prior is \
N(z; 0, I)·exp(−λ·E(G(z))) / Z: `--sampler origin` ignores the energy (z ~ N(0, I)), `--sampler \
mala` starts chains there and moves them by Metropolis-adjusted Langevin steps on the tilted \
prior (for a VAE or GAN, MALA targets N(0, I) itself), and prints its acceptance rate. A flow \
(nice, realnvp, glow) inverts latents drawn from N(0, T²I) (--temperature T). IDF runs \
cannot be sampled yet.")]
pub struct SampleArgs {
    #[command(flatten)]
    pub grid: super::grid::GridRun,
    /// How many images.
    #[arg(long, default_value_t = 64)]
    pub n: usize,
    /// Images per row (default: about the square root of --n).
    #[arg(long)]
    pub columns: Option<usize>,
    /// Seed of the latents (and of MALA's noise).
    #[arg(long, default_value_t = 0)]
    pub seed: u64,
    /// How latents are drawn: `origin` (z ~ N(0, I)) or `mala` (Langevin chains on the model's
    /// prior, started at origin samples).
    #[arg(long, value_enum, default_value = "origin")]
    pub sampler: SamplerArg,
    /// MALA's step size ε (proposal z + ε·∇log p(z) + √(2ε)·ξ).
    #[arg(long, default_value_t = 0.01)]
    pub step_size: f64,
    /// MALA's number of steps.
    #[arg(long, default_value_t = 100)]
    pub steps: usize,
    /// Temperature of the origin sampler: latents z ~ N(0, T²I) (T < 1: the flows' reduced-
    /// temperature samples).
    #[arg(long, default_value_t = 1.0)]
    pub temperature: f64,
    /// Also write every image as its own PNG file into this folder (created; existing files are
    /// never overwritten): an image set for `idfcodec metrics fid`.
    #[arg(long, value_name = "DIR")]
    pub images: Option<PathBuf>,
}

/// `--sampler`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum SamplerArg {
    Origin,
    Mala,
}

/// Images per row of an `n`-image grid when none is given: about √n.
pub fn default_columns(n: usize) -> usize {
    ((n as f64).sqrt().ceil() as usize).max(1)
}

#[cfg(not(feature = "train"))]
pub fn run(_: SampleArgs) -> anyhow::Result<()> {
    Err(super::needs_train_feature("sample"))
}

#[cfg(feature = "train")]
pub fn run(a: SampleArgs) -> anyhow::Result<()> {
    use crate::nn::ebm_prior::math::MalaOptions;
    use crate::nn::generative::{self, Sampler};

    anyhow::ensure!(a.n >= 1, "--n must be at least 1");
    let sampler = match a.sampler {
        SamplerArg::Origin => Sampler::Origin,
        SamplerArg::Mala => {
            anyhow::ensure!(
                a.step_size > 0.0 && a.step_size.is_finite(),
                "--step-size must be a finite number > 0"
            );
            Sampler::Mala(MalaOptions {
                step_size: a.step_size,
                steps: a.steps,
            })
        }
    };
    if let Some(dir) = &a.images {
        anyhow::ensure!(
            !dir.exists() || std::fs::read_dir(dir)?.next().is_none(),
            "--images {}: choose an empty or new folder",
            dir.display()
        );
    }
    anyhow::ensure!(
        a.temperature > 0.0 && a.temperature.is_finite(),
        "--temperature must be a finite number > 0"
    );
    anyhow::ensure!(
        a.temperature == 1.0 || sampler == Sampler::Origin,
        "--temperature applies to --sampler origin only"
    );
    let (model, state) = a.grid.load()?;
    let drawn = if a.temperature != 1.0 {
        generative::Samples {
            images: generative::sample_at_temperature(
                model.as_ref(),
                a.n as i64,
                a.seed,
                a.temperature,
            ),
            acceptance: None,
        }
    } else {
        let bar = super::progress::bar(a.steps as u64, "MALA steps");
        let drawn =
            generative::sample_with(model.as_ref(), a.n as i64, a.seed, sampler, &mut |s| {
                if sampler != Sampler::Origin {
                    bar.set_position(s as u64)
                }
            });
        bar.finish_and_clear();
        drawn
    };
    a.grid
        .write(&drawn.images, a.columns.unwrap_or(default_columns(a.n)))?;
    if let Some(dir) = &a.images {
        write_images(&drawn.images, dir)?;
    }
    let how = match (sampler, drawn.acceptance) {
        (Sampler::Mala(o), Some(rate)) => format!(
            "MALA, {} steps of size {}, acceptance rate {:.3}",
            o.steps, o.step_size, rate
        ),
        _ if a.temperature != 1.0 => format!("origin: z ~ N(0, {}²I)", a.temperature),
        _ => "origin: z ~ N(0, I)".to_string(),
    };
    println!(
        "{}: {} samples of the {} at step {} (seed {}; {how}) → {}{}",
        a.grid.run.display(),
        a.n,
        state.config.model.name(),
        state.step,
        a.seed,
        a.grid.out.display(),
        a.images
            .as_ref()
            .map(|d| format!(" and {}/", d.display()))
            .unwrap_or_default()
    );
    Ok(())
}

/// Each image of `images` (`u8`, `N×C×H×W`, 1 or 3 channels) as `sample-00000.png`, … in `dir`.
#[cfg(feature = "train")]
fn write_images(images: &tch::Tensor, dir: &std::path::Path) -> anyhow::Result<()> {
    use anyhow::Context;
    std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
    let size = images.size();
    let (c, h, w) = (size[1], size[2] as u32, size[3] as u32);
    for i in 0..size[0] {
        // HWC bytes
        let hwc = images.get(i).permute([1, 2, 0]).contiguous().flatten(0, -1);
        let bytes = Vec::<u8>::try_from(hwc)?;
        let path = dir.join(format!("sample-{i:05}.png"));
        let saved = match c {
            1 => image::GrayImage::from_raw(w, h, bytes).map(|img| img.save(&path)),
            3 => image::RgbImage::from_raw(w, h, bytes).map(|img| img.save(&path)),
            _ => anyhow::bail!("{c}-channel images cannot be written as PNG files"),
        };
        saved
            .context("image size matches its bytes")?
            .with_context(|| format!("writing {}", path.display()))?;
    }
    Ok(())
}
