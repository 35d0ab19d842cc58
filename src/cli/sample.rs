//! `idfcodec sample`: images drawn from a trained run's model, as a PNG grid.

use clap::Args;

#[derive(Debug, Args)]
#[command(after_help = "Examples:\n  \
idfcodec sample runs/vae-mnist --n 64 --out samples.png\n  \
idfcodec sample runs/gan-mnist --n 100 --columns 10 --seed 3 --out gan.png\n\n\
A VAE decodes latents drawn from its prior N(0, I) to its likelihood's mean image; a GAN's \
generator maps latents from N(0, I) to images. IDF runs cannot be sampled yet.")]
pub struct SampleArgs {
    #[command(flatten)]
    pub grid: super::grid::GridRun,
    /// How many images.
    #[arg(long, default_value_t = 64)]
    pub n: usize,
    /// Images per row (default: about the square root of --n).
    #[arg(long)]
    pub columns: Option<usize>,
    /// Seed of the latents.
    #[arg(long, default_value_t = 0)]
    pub seed: u64,
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
    use crate::nn::generative;

    anyhow::ensure!(a.n >= 1, "--n must be at least 1");
    let (model, state) = a.grid.load()?;
    let images = generative::sample(model.as_ref(), a.n as i64, a.seed);
    a.grid
        .write(&images, a.columns.unwrap_or(default_columns(a.n)))?;
    println!(
        "{}: {} samples of the {} at step {} (seed {}) → {}",
        a.grid.run.display(),
        a.n,
        state.config.model.name(),
        state.step,
        a.seed,
        a.grid.out.display()
    );
    Ok(())
}
