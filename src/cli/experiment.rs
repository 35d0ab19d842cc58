//! `idfcodec experiment run SWEEP`: train, measure and draw every run of a sweep file (the work
//! is in `experiments/`).

use clap::{Args, Subcommand};
use std::path::PathBuf;

#[derive(Debug, Args)]
pub struct ExperimentArgs {
    #[command(subcommand)]
    pub command: ExperimentCommand,
}

#[derive(Debug, Subcommand)]
pub enum ExperimentCommand {
    /// Run (or resume) a sweep: each variant trained, evaluated on the test split, its FID/KID
    /// measured and its figures drawn; table.md, table.csv and figures/ in --out.
    #[command(after_help = "Example:\n  \
idfcodec experiment run experiments/vae-latent.toml --steps 600\n\n\
A sweep file names a base config, [[variant]]s overriding its keys, the datasets, the steps and \
what to report (see experiments/README.md). Re-running skips finished runs and resumes \
unfinished ones from their checkpoints.")]
    Run(RunArgs),
}

#[derive(Debug, Args)]
pub struct RunArgs {
    /// The sweep file (TOML).
    pub sweep: PathBuf,
    /// Output folder (default: runs/experiments/NAME, NAME the sweep file's stem).
    #[arg(long)]
    pub out: Option<PathBuf>,
    /// Train every run for this many steps instead of the sweep's budget.
    #[arg(long, conflicts_with = "budget_scale")]
    pub steps: Option<usize>,
    /// Multiply every run's written budget by this factor (keeps the sweep's ratios between
    /// runs, e.g. a VAE's steps to a GAN's); give the longer runs their own --out.
    #[arg(long, value_name = "FACTOR")]
    pub budget_scale: Option<f64>,
    /// cpu, cuda or cuda:N.
    #[arg(long, default_value = "cpu")]
    pub device: String,
    /// CPU threads for libtorch (default: all cores).
    #[arg(long)]
    pub threads: Option<usize>,
    /// No training progress bars.
    #[arg(long)]
    pub quiet: bool,
}

#[cfg(not(feature = "train"))]
pub fn run(_: ExperimentArgs) -> anyhow::Result<()> {
    Err(super::needs_train_feature("experiment"))
}

#[cfg(feature = "train")]
pub fn run(a: ExperimentArgs) -> anyhow::Result<()> {
    use crate::experiments::{self, Budget, Options, Sweep};

    let ExperimentCommand::Run(a) = a.command;
    let budget = match (a.steps, a.budget_scale) {
        (Some(s), _) => Budget::Steps(s),
        (None, Some(k)) => Budget::Scaled(k),
        (None, None) => Budget::AsWritten,
    };
    let sweep = Sweep::from_file(&a.sweep, budget).map_err(anyhow::Error::msg)?;
    if let Some(t) = a.threads {
        anyhow::ensure!(t > 0, "--threads must be at least 1");
        tch::set_num_threads(t as i32);
    }
    let out = a
        .out
        .unwrap_or_else(|| PathBuf::from("runs/experiments").join(&sweep.name));
    let options = Options {
        out: out.clone(),
        device: crate::device::select(&a.device).map_err(anyhow::Error::msg)?,
        quiet: a.quiet,
    };
    eprintln!(
        "{}: {} runs into {}",
        sweep.title,
        sweep.runs.len(),
        out.display()
    );
    experiments::run(&sweep, &options, |line| eprintln!("{line}"))?;
    println!(
        "table: {}, {}; figures: {}",
        out.join("table.md").display(),
        out.join("table.csv").display(),
        out.join("figures").display()
    );
    Ok(())
}
