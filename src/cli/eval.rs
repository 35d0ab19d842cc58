//! `idfcodec eval`: the test bits/dim of a training checkpoint (float tch model).

use clap::Args;
use std::path::PathBuf;

#[derive(Debug, Args)]
#[command(after_help = "Examples:\n  \
idfcodec eval runs/fmnist --by-group      # IDF: test bits/dim and each latent group's share\n  \
idfcodec eval runs/vae-mnist --iwae 64    # VAE: negative ELBO (bpd), its terms in bpd and nats, IWAE\n  \
idfcodec eval runs/gan-mnist              # GAN: critic and generator losses on test images (no likelihood)")]
pub struct EvalArgs {
    /// Run folder holding checkpoint.safetensors and checkpoint.json.
    pub run: PathBuf,
    /// Evaluate only the first N test images.
    #[arg(long)]
    pub limit: Option<usize>,
    #[arg(long, default_value = "cpu")]
    pub device: String,
    /// Also print each latent group's share of the bpd (factor-outs and top).
    #[arg(long)]
    pub by_group: bool,
    /// VAE and hierarchical VAE runs: also report the IWAE bound with K importance samples per image (instead of the
    /// run's `iwae_samples`).
    #[arg(long, value_name = "K")]
    pub iwae: Option<usize>,
}

#[cfg(not(feature = "train"))]
pub fn run(_: EvalArgs) -> anyhow::Result<()> {
    Err(super::needs_train_feature("eval"))
}

#[cfg(feature = "train")]
pub fn run(a: EvalArgs) -> anyhow::Result<()> {
    use crate::train::{self, checkpoint};

    let device = crate::device::select(&a.device).map_err(anyhow::Error::msg)?;
    let mut state = checkpoint::read_state(&a.run)?;
    if let Some(k) = a.iwae {
        anyhow::ensure!(k >= 1, "--iwae needs at least 1 sample");
        let family = state.config.model.family();
        let model = &mut state.config.model;
        if let Some(vae) = model.of_mut::<crate::nn::vae::Vae>() {
            vae.iwae_samples = k;
        } else if let Some(hvae) = model.of_mut::<crate::nn::hvae::Hvae>() {
            hvae.iwae_samples = k;
        } else {
            anyhow::bail!(
                "--iwae needs a VAE or hierarchical VAE run; {} holds a {family} run",
                a.run.display()
            );
        }
    }
    let t = std::time::Instant::now();
    let (evaluation, n) = train::evaluate_run(&a.run, &state.config, a.limit, device)?;
    let idf = state.config.model.idf().is_some();
    if a.by_group || !idf {
        // the IDF: its shares of the figure, one per prior, named by its tensors
        // (`level0.prior`, `level0.prior1`, `top.params`, `top.group1`, …: each level's
        // factor-out groups, then the top's); other families: their further figures
        for (what, value) in &evaluation.parts {
            if idf {
                println!("  {what}: {value:.4} of the bpd");
            } else {
                println!("  {what}: {value:.4}");
            }
        }
    }
    println!(
        "{}: test {} {:.4} on {n} {} test images (step {}, {:.1} s)",
        a.run.display(),
        state.config.model.log_columns().test,
        evaluation.total,
        state.config.data.dataset,
        state.step,
        t.elapsed().as_secs_f64()
    );
    Ok(())
}
