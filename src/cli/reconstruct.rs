//! `idfcodec reconstruct`: images and their reconstructions by a trained VAE, as a PNG grid.

use clap::Args;

#[derive(Debug, Args)]
#[command(after_help = "Examples:\n  \
idfcodec reconstruct runs/vae-mnist --n 16 --out recon.png\n  \
idfcodec reconstruct runs/vae-photos --data data/photos/test --n 8 --out recon.png\n\n\
The grid has two rows: the originals above, their reconstructions below (each image encoded to \
its latent mean and decoded to the likelihood's mean). Needs a model with an encoder (VAE).")]
pub struct ReconstructArgs {
    #[command(flatten)]
    pub grid: super::grid::GridRun,
    /// Which images: `test` or `train` (the first --n of the run's own data), or a folder of
    /// PNG/JPEG images (random patches of the model's size, seeded by --seed).
    #[arg(long, default_value = "test")]
    pub data: String,
    /// How many images.
    #[arg(long, default_value_t = 8)]
    pub n: usize,
    /// Seed of the patches cut from a folder.
    #[arg(long, default_value_t = 0)]
    pub seed: u64,
}

#[cfg(not(feature = "train"))]
pub fn run(_: ReconstructArgs) -> anyhow::Result<()> {
    Err(super::needs_train_feature("reconstruct"))
}

#[cfg(feature = "train")]
pub fn run(a: ReconstructArgs) -> anyhow::Result<()> {
    use crate::nn::generative;

    anyhow::ensure!(a.n >= 1, "--n must be at least 1");
    let (model, state) = a.grid.load()?;
    let images = generative::images_for(&state, &a.data, a.n as i64, a.seed)?;
    let both = generative::reconstruct(model.as_ref(), &images).map_err(anyhow::Error::msg)?;
    a.grid.write(&both, a.n)?;
    println!(
        "{}: {} {} images (top) and their reconstructions (bottom) → {}",
        a.grid.run.display(),
        a.n,
        a.data,
        a.grid.out.display()
    );
    Ok(())
}
