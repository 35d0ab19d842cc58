//! `idfcodec train`: train a model (the family its config names; the IDF by default) from a TOML
//! config with flag overrides.

use clap::Args;
use std::path::PathBuf;

/// Flags of `idfcodec train`. Flags override the config file; the config file overrides defaults.
#[derive(Debug, Args)]
#[command(
    after_help = "Example:\n  idfcodec train --config configs/fashion-mnist.toml --out runs/fmnist --minutes 30\n  \
idfcodec train --out runs/fmnist --resume   # continue where it stopped\n\n\
idfcodec train --config configs/vae-mnist.toml --out runs/vae-mnist   # the family is in the config\n\n\
Writes OUT/checkpoint.safetensors + checkpoint.json (every checkpoint_minutes), OUT/log.csv and its \
plots (IDF: bpd.png; VAE: elbo.png and elbo-parts.png; GAN: losses.png and losses-parts.png)."
)]
pub struct TrainArgs {
    #[arg(
        long,
        help = "TOML config with [model], [data] and [train] tables (see configs/)."
    )]
    pub config: Option<PathBuf>,
    /// Run folder for checkpoints, log.csv and bpd.png.
    #[arg(long, default_value = "runs/idf")]
    pub out: PathBuf,
    /// Continue from the checkpoint in --out (its config is used; only --steps may change).
    #[arg(long)]
    pub resume: bool,
    /// Dataset: mnist, fashion-mnist, or a folder name under the data folder (e.g. photos).
    #[arg(long)]
    pub dataset: Option<String>,
    /// Data folder (default: $IDFCODEC_DATA, else ./data).
    #[arg(long)]
    pub data_dir: Option<PathBuf>,
    #[arg(long)]
    pub steps: Option<usize>,
    #[arg(long)]
    pub batch_size: Option<usize>,
    /// Peak learning rate.
    #[arg(long)]
    pub lr: Option<f64>,
    #[arg(long)]
    pub seed: Option<u64>,
    /// Adam or Adamax.
    #[arg(long, value_enum)]
    pub optimizer: Option<crate_optim::OptimizerArg>,
    /// Stop after this many minutes (with a checkpoint); continue later with --resume.
    #[arg(long)]
    pub minutes: Option<f64>,
    /// Stop (with a checkpoint) after this many steps; continue later with --resume.
    #[arg(long)]
    pub chunk_steps: Option<usize>,
    /// cpu, cuda or cuda:N.
    #[arg(long, default_value = "cpu")]
    pub device: String,
    /// CPU threads for libtorch (default: all cores).
    #[arg(long)]
    pub threads: Option<usize>,
    /// No progress bar.
    #[arg(long)]
    pub quiet: bool,
}

/// The optimiser choice as a flag, mirrored so the flag exists in builds without libtorch too.
pub mod crate_optim {
    #[derive(Clone, Copy, Debug, clap::ValueEnum)]
    pub enum OptimizerArg {
        Adam,
        Adamax,
    }
}

#[cfg(not(feature = "train"))]
pub fn run(_: TrainArgs) -> anyhow::Result<()> {
    Err(super::needs_train_feature("train"))
}

#[cfg(feature = "train")]
pub fn run(a: TrainArgs) -> anyhow::Result<()> {
    use crate::train::{self, checkpoint, config::TrainConfig, optim::OptimizerKind, TrainJob};
    use anyhow::Context;

    if let Some(t) = a.threads {
        tch::set_num_threads(t as i32);
    }
    let mut config = if a.resume && checkpoint::exists(&a.out) {
        anyhow::ensure!(
            a.config.is_none(),
            "--resume uses the config saved in {}; drop --config",
            a.out.display()
        );
        checkpoint::read_state(&a.out)?.config
    } else {
        match &a.config {
            Some(p) => TrainConfig::from_toml_file(p).map_err(anyhow::Error::msg)?,
            None => TrainConfig::default(),
        }
    };
    if !a.resume {
        if let Some(d) = a.dataset {
            config.data.dataset = d;
        }
        if let Some(d) = a.data_dir {
            config.data.dir = d;
        }
        if let Some(v) = a.batch_size {
            config.train.batch_size = v;
        }
        if let Some(v) = a.lr {
            config.train.lr = v;
            config.train.lr_min = config.train.lr_min.min(v);
        }
        if let Some(v) = a.seed {
            config.train.seed = v;
        }
        if let Some(o) = a.optimizer {
            config.train.optimizer = match o {
                crate_optim::OptimizerArg::Adam => OptimizerKind::Adam,
                crate_optim::OptimizerArg::Adamax => OptimizerKind::Adamax,
            };
        }
    }
    if let Some(v) = a.steps {
        config.train.steps = v;
    }
    config.validate().map_err(anyhow::Error::msg)?;
    let device = crate::device::select(&a.device).map_err(anyhow::Error::msg)?;
    eprintln!(
        "training: {} ({} parameters) on {} for {} steps, batch {}, {:?} lr {:.1e}, on {}",
        config.model.name(),
        config.model.parameter_count(),
        config.data.dataset,
        config.train.steps,
        config.train.batch_size,
        config.train.optimizer,
        config.train.lr,
        crate::device::describe(device)
    );
    let data = train::load_data(&config)?;
    let job = TrainJob {
        config,
        out_dir: a.out.clone(),
        resume: a.resume,
        device,
        max_minutes: a.minutes,
        chunk_steps: a.chunk_steps,
        quiet: a.quiet,
    };
    let r =
        train::run(&job, &data).with_context(|| format!("training into {}", a.out.display()))?;

    let columns = job.config.model.log_columns();
    let test = r
        .test_bpd
        .map(|t| format!("{t:.4}"))
        .unwrap_or_else(|| "not yet measured".into());
    // a chunk that ran no step (resuming a finished run) has no train figure or speed to report
    let train = if r.last_train_bpd.is_finite() {
        format!(
            "last train {} {:.4} · {:.0} images/s",
            columns.train, r.last_train_bpd, r.images_per_s
        )
    } else {
        "no training step in this chunk".to_string()
    };
    println!(
        "step {} ({}) · {train} · test {} {} · {:.0} s this chunk",
        r.step,
        if r.finished {
            "finished"
        } else {
            "paused: continue with --resume"
        },
        columns.test,
        test,
        r.chunk_seconds
    );
    println!(
        "log: {}/log.csv, plot: {}/{}.png",
        a.out.display(),
        a.out.display(),
        columns.plot
    );
    Ok(())
}
