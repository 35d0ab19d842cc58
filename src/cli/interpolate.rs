//! `idfcodec interpolate`: images decoded along straight lines between latents, as a PNG grid.

use clap::Args;

#[derive(Debug, Args)]
#[command(after_help = "Examples:\n  \
idfcodec interpolate runs/vae-mnist --pairs 4 --steps 10 --out interp.png\n  \
idfcodec interpolate runs/gan-mnist --pairs 4 --steps 10 --seed 1 --out interp.png\n  \
idfcodec interpolate runs/glow-mnist --walk 0,100,783 --walk-range 2 --steps 9 --out walk.png\n\n\
One row per pair, --steps images from one end to the other (both included). A VAE interpolates \
between the encoder means of two real images (images 2i and 2i+1 of --data for row i). A GAN \
has no encoder: it interpolates between two random latents drawn from N(0, I) with --seed, \
and --data is not used. A flow (nice, realnvp, glow) interpolates between the latents of two \
real images (its standardised latents: factored-out halves first, the top level last). \
--walk DIMS draws a latent walk instead: one row per latent dimension, the latent of the first \
image of --data (a prior latent without an encoder) with that dimension set to --steps values \
from −R to R (--walk-range R).")]
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
    /// A latent walk over these latent dimensions (comma-separated) instead of interpolations.
    #[arg(long, value_delimiter = ',', value_name = "DIMS")]
    pub walk: Vec<i64>,
    /// The walk's values run from −R to R.
    #[arg(long, default_value_t = 2.0, value_name = "R")]
    pub walk_range: f64,
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
    if !a.walk.is_empty() {
        return walk(&a, model.as_ref(), &state);
    }
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

/// `--walk`: the latent walk of [`crate::nn::generative::latent_walk`].
#[cfg(feature = "train")]
fn walk(
    a: &InterpolateArgs,
    model: &dyn crate::nn::generative::Generative,
    state: &crate::train::checkpoint::RunState,
) -> anyhow::Result<()> {
    use crate::nn::generative;

    anyhow::ensure!(
        a.walk_range > 0.0 && a.walk_range.is_finite(),
        "--walk-range must be a finite number > 0"
    );
    let (start, from) = if model.has_encoder() {
        let image = generative::images_for(state, &a.data, 1, a.seed)?;
        let x = image.to_device(model.device()).to_kind(tch::Kind::Float);
        let z = tch::no_grad(|| model.encode(&x)).expect("a model with an encoder");
        (z, format!("the first {} image", a.data))
    } else {
        tch::manual_seed(a.seed as i64);
        (model.prior(1), format!("a random latent (seed {})", a.seed))
    };
    let n = a.steps;
    let values: Vec<f64> = (0..n)
        .map(|i| -a.walk_range + 2.0 * a.walk_range * i as f64 / (n - 1) as f64)
        .collect();
    let grid =
        generative::latent_walk(model, &start, &a.walk, &values).map_err(anyhow::Error::msg)?;
    a.grid.write(&grid, n)?;
    println!(
        "{}: latent walk of dimensions {:?} from {from}, {n} values in [−{r}, {r}] → {}",
        a.grid.run.display(),
        a.walk,
        a.grid.out.display(),
        r = a.walk_range
    );
    Ok(())
}
