//! `idfcodec interpolate`: images decoded along straight lines between latents, as a PNG grid.

use clap::Args;

#[derive(Debug, Args)]
#[command(after_help = "Examples:\n  \
idfcodec interpolate runs/vae-mnist --pairs 4 --steps 10 --out interp.png\n  \
idfcodec interpolate runs/gan-mnist --pairs 4 --steps 10 --seed 1 --out interp.png\n\n\
One row per pair, --steps images from one end to the other (both included). A VAE interpolates \
between the encoder means of two real images (images 2i and 2i+1 of --data for row i). A GAN \
has no encoder: it interpolates between two random latents drawn from N(0, I) with --seed, \
and --data is not used.")]
pub struct InterpolateArgs {
    #[command(flatten)]
    pub grid: super::grid::GridRun,
    /// Which images (models with an encoder): `test` or `train` (the run's own data, in order),
    /// or a folder of PNG/JPEG images (random patches of the model's size, seeded by --seed).
    #[arg(long, default_value = "test")]
    pub data: String,
    /// Images per row, both ends included.
    #[arg(long, default_value_t = 10)]
    pub steps: usize,
    /// Rows (pairs of ends).
    #[arg(long, default_value_t = 4)]
    pub pairs: usize,
    /// Seed of the random latents (GAN) or of the patches cut from a folder.
    #[arg(long, default_value_t = 0)]
    pub seed: u64,
}

#[cfg(not(feature = "train"))]
pub fn run(_: InterpolateArgs) -> anyhow::Result<()> {
    Err(super::needs_train_feature("interpolate"))
}

#[cfg(feature = "train")]
pub fn run(a: InterpolateArgs) -> anyhow::Result<()> {
    use crate::nn::generative::{self, Ends};

    anyhow::ensure!(a.pairs >= 1, "--pairs must be at least 1");
    anyhow::ensure!(a.steps >= 2, "--steps must be at least 2 (the two ends)");
    let (model, state) = a.grid.load()?;
    let rows = a.pairs as i64;
    let (grid, between) = if model.has_encoder() {
        let images = generative::images_for(&state, &a.data, 2 * rows, a.seed)?;
        let grid = generative::interpolate(model.as_ref(), Ends::Images(&images), a.steps as i64);
        (grid, format!("pairs of {} images", a.data))
    } else {
        let ends = Ends::Prior { rows, seed: a.seed };
        let grid = generative::interpolate(model.as_ref(), ends, a.steps as i64);
        (grid, format!("random latents (seed {})", a.seed))
    };
    let grid = grid.map_err(anyhow::Error::msg)?;
    a.grid.write(&grid, a.steps)?;
    println!(
        "{}: {} rows of {} steps between {between} → {}",
        a.grid.run.display(),
        a.pairs,
        a.steps,
        a.grid.out.display()
    );
    Ok(())
}
