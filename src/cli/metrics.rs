//! `idfcodec metrics fid|kid|is|train-features`: sample-quality metrics on feature vectors, and
//! the training of the feature classifiers they use by default. The work is in `metrics/`.

use clap::{Args, Subcommand};
use std::path::PathBuf;

const SOURCES_HELP: &str = "\
Image sets (A, B):
  mnist:test                 a dataset split: mnist or fashion-mnist, train or test
  mnist:test[0..1000]        images 0 to 999 of the split ([A..B], [A..] or [..B]; quote it
                             where the shell expands brackets, as zsh does)
  path/to/folder             the PNG/JPEG files of a folder, all one size, in file-name order
                             (./mnist:test for a folder with that name)
  run:path/to/run            images sampled from a trained VAE or GAN run (a folder holding
                             checkpoint.json counts too): --n of them, default 1000, seed 0

Features (--features):
  mnist, fashion-mnist       the classifier shipped for that dataset (default: the dataset the
                             sources name; images must be 1-channel 28×28)
  file.safetensors           a classifier written by `idfcodec metrics train-features`
  file.pt                    a TorchScript module: given float32 N×C×H×W (C = --ts-channels,
                             gray replicated to RGB), scaled by --ts-range, resized to
                             --ts-size² if given; returns N×D features (or a tuple: features,
                             logits). For pytorch-fid's Inception-v3 traced to TorchScript the
                             defaults should fit (RGB in [0, 1]; it resizes to 299×299
                             itself) — not tried here, its weights cannot be fetched offline.
Every score is printed with its features and image counts. --n N keeps the first N images of each set.

Example:
  idfcodec metrics fid 'mnist:test[0..1000]' 'mnist:test[1000..2000]'";

#[derive(Debug, Args)]
pub struct MetricsArgs {
    #[command(subcommand)]
    pub command: MetricsCommand,
}

#[derive(Debug, Subcommand)]
pub enum MetricsCommand {
    /// Fréchet distance between the feature statistics of A and B (FID with Inception features).
    #[command(after_help = SOURCES_HELP)]
    Fid(PairArgs),
    /// Kernel distance: unbiased polynomial-kernel MMD² between A and B, mean ± std over subsets.
    #[command(after_help = SOURCES_HELP)]
    Kid(KidArgs),
    /// Inception score of A from the feature net's class logits, mean ± std over splits.
    #[command(after_help = SOURCES_HELP)]
    Is(IsArgs),
    /// Train the feature classifier of a dataset (the shipped ones: models/features/).
    TrainFeatures(TrainFeaturesArgs),
    /// Negative log-likelihood of images under an ebm-prior run's tilted prior: importance
    /// sampling with the posterior as proposal, minus a Monte Carlo log Z.
    #[command(after_help = NLL_HELP)]
    Nll(NllArgs),
    /// The log partition function log Z = log E_{N(z;0,I)}[exp(−λ·E(G(z)))] of an ebm-prior
    /// run, by Monte Carlo: mean, standard deviation and range over repeats.
    #[command(after_help = LOGZ_HELP)]
    Logz(LogzArgs),
}

const NLL_HELP: &str = "\
The model: p(x) = ∫ p(x|z) p(z) dz with p(z) = N(z; 0, I)·exp(−λ·E(G(z))) / Z, E(x) = −D(x) the
run's WGAN critic, G(z) the decoder's mean image, λ = pull_back_energy_weight (--lambda replaces
it; training does not depend on it). Per image,
  log p(x) ≈ log (1/K) Σ_k p(x|z_k)·N(z_k)·exp(−λ·E(G(z_k))) / q(z_k|x) − log Z,  z_k ~ q(z|x),
a lower bound in expectation for a known Z (the IWAE bound), with log Z estimated from
--logz-samples latents ( --logz-repeats estimates, their mean used). With λ = 0 it is the plain
VAE's IWAE bound. Reported in nats per image and bits per dimension.

Then (unless --kl-samples 0) the ELBO under the tilted prior, −ELBO_λ = reconstruction +
KL(q(z|x) ‖ p_λ(z)), with
  KL(q ‖ p_λ) = E_q[log q(z|x) − log N(z) + λ·E(G(z)) + log Z] = KL(q ‖ N(0,I)) + λ·E_q[E(G(z))] + log Z,
the first term in closed form, E_q by --kl-samples posterior draws per image, the same log Z;
the reconstruction from one draw per image. −ELBO_λ bounds the NLL from above (for the exact Z).

Example:
  idfcodec metrics nll runs/ebm-mnist --n 1000 --k 100 --logz-samples 1000000";

const LOGZ_HELP: &str = "\
Each repeat is log (1/S) Σ_s exp(−λ·E(G(z_s))), z_s ~ N(0, I), S = --samples, computed in batches
with a stable log-mean-exp (f64); the repeats draw independent latents (seeded by --seed). The
standard deviation over repeats is the estimator's error at S samples; it shrinks as 1/√S while
the weights' variance is finite.

Example:
  idfcodec metrics logz runs/ebm-mnist --samples 1000000 --repeats 10";

/// What `metrics nll` and `metrics logz` share: the run, λ, the device.
#[derive(Debug, Args)]
pub struct EbmRunArgs {
    /// An ebm-prior run folder.
    pub run: PathBuf,
    /// λ (pull_back_energy_weight) to evaluate at (default: the run's).
    #[arg(long)]
    pub lambda: Option<f64>,
    /// Latents per batch through decoder and critic.
    #[arg(long, default_value_t = 10_000)]
    pub batch: usize,
    /// Seed of the latents.
    #[arg(long, default_value_t = 0)]
    pub seed: u64,
    /// cpu, cuda or cuda:N.
    #[arg(long, default_value = "cpu")]
    pub device: String,
    /// CPU threads for libtorch (default: all cores).
    #[arg(long)]
    pub threads: Option<usize>,
}

#[derive(Debug, Args)]
pub struct NllArgs {
    #[command(flatten)]
    pub run: EbmRunArgs,
    /// Images: `test`, `train` (the run's dataset split) or a folder of images.
    #[arg(long, default_value = "test")]
    pub data: String,
    /// How many images (the first ones of the split).
    #[arg(long, default_value_t = 1000)]
    pub n: usize,
    /// Importance samples per image.
    #[arg(long, default_value_t = 100)]
    pub k: usize,
    /// Latents per log Z estimate.
    #[arg(long, default_value_t = 1_000_000)]
    pub logz_samples: u64,
    /// log Z estimates (their mean is used; their spread is printed).
    #[arg(long, default_value_t = 1)]
    pub logz_repeats: usize,
    /// Posterior draws per image for E_q[E(G(z))] in KL(q(z|x) ‖ p_λ(z)) (0: no ELBO line).
    #[arg(long, default_value_t = 10)]
    pub kl_samples: usize,
}

#[derive(Debug, Args)]
pub struct LogzArgs {
    #[command(flatten)]
    pub run: EbmRunArgs,
    /// Latents per estimate.
    #[arg(long, default_value_t = 1_000_000)]
    pub samples: u64,
    /// Independent estimates.
    #[arg(long, default_value_t = 10)]
    pub repeats: usize,
}

/// What every metric takes besides its image sets.
#[derive(Debug, Args)]
pub struct FeatureArgs {
    /// Feature net: mnist, fashion-mnist, a classifier .safetensors or a TorchScript .pt
    /// (default: the classifier of the dataset the sources name).
    #[arg(long)]
    pub features: Option<String>,
    /// Use only the first N images of each set.
    #[arg(long)]
    pub n: Option<usize>,
    /// Images per batch through the feature net.
    #[arg(long, default_value_t = 500)]
    pub batch: usize,
    /// TorchScript input channels: 3 (gray replicated) or 1 (colour turned to luma).
    #[arg(long, default_value_t = 3)]
    pub ts_channels: usize,
    /// TorchScript input: resize the images to S×S (bilinear) first.
    #[arg(long, value_name = "S")]
    pub ts_size: Option<usize>,
    /// TorchScript input pixel range.
    #[arg(long, value_enum, default_value = "unit")]
    pub ts_range: RangeArg,
    /// Data folder (default: $IDFCODEC_DATA, else ./data).
    #[arg(long)]
    pub data_dir: Option<PathBuf>,
    #[arg(long, default_value = "cpu")]
    pub device: String,
}

/// `--ts-range`: `unit` [0, 1], `signed` [-1, 1], `byte` [0, 255].
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum RangeArg {
    Unit,
    Signed,
    Byte,
}

#[derive(Debug, Args)]
pub struct PairArgs {
    /// First image set.
    pub a: String,
    /// Second image set.
    pub b: String,
    #[command(flatten)]
    pub f: FeatureArgs,
}

#[derive(Debug, Args)]
pub struct KidArgs {
    #[command(flatten)]
    pub pair: PairArgs,
    /// Number of subset pairs.
    #[arg(long, default_value_t = 100)]
    pub subsets: usize,
    /// Images per subset (capped at the smaller set's size).
    #[arg(long, default_value_t = 1000)]
    pub subset_size: usize,
    /// Seed of the subset draws.
    #[arg(long, default_value_t = 0)]
    pub seed: u64,
}

#[derive(Debug, Args)]
pub struct IsArgs {
    /// Image set.
    pub a: String,
    #[command(flatten)]
    pub f: FeatureArgs,
    /// Number of splits (capped at the image count).
    #[arg(long, default_value_t = 10)]
    pub splits: usize,
}

#[derive(Debug, Args)]
#[command(after_help = "Example:\n  idfcodec metrics train-features --dataset mnist")]
pub struct TrainFeaturesArgs {
    /// mnist or fashion-mnist.
    #[arg(long)]
    pub dataset: String,
    #[arg(long, default_value_t = 3)]
    pub epochs: usize,
    #[arg(long, default_value_t = 128)]
    pub batch: usize,
    #[arg(long, default_value_t = 1e-3)]
    pub lr: f64,
    #[arg(long, default_value_t = 0)]
    pub seed: u64,
    /// Output file (default: models/features/DATASET.safetensors, card beside it as .md).
    #[arg(long)]
    pub out: Option<PathBuf>,
    /// Name printed beside scores (default: DATASET-classifier-v1).
    #[arg(long)]
    pub name: Option<String>,
    /// Data folder (default: $IDFCODEC_DATA, else ./data).
    #[arg(long)]
    pub data_dir: Option<PathBuf>,
    #[arg(long, default_value = "cpu")]
    pub device: String,
}

#[cfg(not(feature = "train"))]
pub fn run(_: MetricsArgs) -> anyhow::Result<()> {
    Err(super::needs_train_feature("metrics"))
}

#[cfg(feature = "train")]
pub use with_tch::run;

#[cfg(feature = "train")]
mod with_tch {
    use super::*;
    use crate::data;
    use crate::metrics::features::torchscript::{InputRange, TorchScriptOptions};
    use crate::metrics::features::{self, classifier, FeatureChoice, FeatureNet, Features};
    use crate::metrics::source::ImageSource;
    use crate::metrics::{fid, inception_score, kid};
    use crate::nn::ebm_prior::math::{self, LogZEstimate, LogZOptions};
    use crate::nn::ebm_prior::{self, EbmPrior};
    use anyhow::{Context, Result};

    pub fn run(a: MetricsArgs) -> Result<()> {
        match a.command {
            MetricsCommand::Fid(p) => {
                let (fa, fb, what) = pair_features(&p)?;
                let d = fid::fid(&fa.features, &fb.features).map_err(anyhow::Error::msg)?;
                println!("FID {d:.4}  ({what})");
            }
            MetricsCommand::Kid(k) => {
                let (fa, fb, what) = pair_features(&k.pair)?;
                let options = kid::KidOptions {
                    subsets: k.subsets,
                    subset_size: k.subset_size,
                    seed: k.seed,
                };
                let r =
                    kid::kid(&fa.features, &fb.features, options).map_err(anyhow::Error::msg)?;
                let spread = if r.subsets == 1 {
                    format!(
                        "the whole sets, no spread (a --subset-size below {} gives one)",
                        r.subset_size
                    )
                } else {
                    format!("{} subsets of {}", r.subsets, r.subset_size)
                };
                println!("KID {:.6} ± {:.6}  ({what}; {spread})", r.mean, r.std);
            }
            MetricsCommand::Is(i) => {
                let source: ImageSource = i.a.parse()?;
                let (net, _) = open_net(&i.f, &[&source])?;
                let f = features_of(&*net, &source, &i.f)?;
                let logits = f
                    .logits
                    .with_context(|| format!("{} gives no class logits", net.name()))?;
                let s = inception_score::inception_score(&logits, i.splits)
                    .map_err(anyhow::Error::msg)?;
                println!(
                    "IS {:.4} ± {:.4}  (features: {}, {} images of {source}, {} splits)",
                    s.mean,
                    s.std,
                    net.name(),
                    logits.nrows(),
                    s.splits
                );
            }
            MetricsCommand::TrainFeatures(t) => train_features(t)?,
            MetricsCommand::Nll(n) => nll(n)?,
            MetricsCommand::Logz(l) => {
                let (model, device) = open_ebm(&l.run)?;
                let est = log_z(&model, &l.run, l.samples, l.repeats, device)?;
                println!(
                    "log Z {:.6} ± {:.6} (std over {} repeats of {} samples; min {:.6}, max {:.6}; \
                     λ = {}; {})",
                    est.mean(),
                    est.std(),
                    est.repeats.len(),
                    est.samples,
                    est.min(),
                    est.max(),
                    model.lambda(),
                    l.run.run.display()
                );
                let each: Vec<String> = est.repeats.iter().map(|v| format!("{v:.6}")).collect();
                println!("repeats: {}", each.join(" "));
            }
        }
        Ok(())
    }

    fn open_ebm(a: &EbmRunArgs) -> Result<(EbmPrior, tch::Device)> {
        anyhow::ensure!(a.batch > 0, "--batch must be at least 1");
        if let Some(t) = a.threads {
            anyhow::ensure!(t > 0, "--threads must be at least 1");
            tch::set_num_threads(t as i32);
        }
        let device = crate::device::select(&a.device).map_err(anyhow::Error::msg)?;
        let (model, _) = ebm_prior::load_run(&a.run, a.lambda, device)?;
        Ok((model, device))
    }

    /// `repeats` estimates of the model's log Z from `samples` latents each, with a bar.
    fn log_z(
        model: &EbmPrior,
        a: &EbmRunArgs,
        samples: u64,
        repeats: usize,
        device: tch::Device,
    ) -> Result<LogZEstimate> {
        anyhow::ensure!(
            samples > 0 && repeats > 0,
            "log Z needs at least one sample and one repeat"
        );
        let options = LogZOptions {
            latent: model.config().vae.latent as i64,
            samples,
            repeats,
            batch: a.batch as i64,
        };
        tch::manual_seed(a.seed as i64);
        let bar = crate::cli::progress::bar(samples * repeats as u64, "latents (log Z)");
        let est = math::log_partition(&|z| model.log_tilt(z), options, device, &mut |done| {
            bar.set_position(done)
        });
        bar.finish_and_clear();
        anyhow::ensure!(
            est.repeats.iter().all(|v| v.is_finite()),
            "log Z is not finite ({:?}): the energies overflow or are NaN",
            est.repeats
        );
        Ok(est)
    }

    fn nll(a: NllArgs) -> Result<()> {
        anyhow::ensure!(a.n > 0 && a.k > 0, "--n and --k must be at least 1");
        let (model, device) = open_ebm(&a.run)?;
        let state = crate::train::checkpoint::read_state(&a.run.run)?;
        let images = crate::nn::generative::images_for(&state, &a.data, a.n as i64, a.run.seed)?;
        let est = log_z(&model, &a.run, a.logz_samples, a.logz_repeats, device)?;
        let log_z = est.mean();
        tch::manual_seed(a.run.seed as i64);
        let nats = crate::cli::progress::with_bar(a.n as u64, "images (NLL)", |progress| {
            model.dataset_nll(
                &images,
                a.k as i64,
                log_z,
                a.run.batch as i64,
                device,
                progress,
            )
        });
        let dims: i64 = images.size()[1..].iter().product();
        println!(
            "NLL {nats:.4} nats/image, {:.5} bits/dim  ({} images of {}, K = {}, λ = {}, \
             log Z {:.6} ± {:.6} over {} × {} latents; {})",
            crate::metrics::bpd::nats_to_bpd(nats, dims),
            a.n,
            a.data,
            a.k,
            model.lambda(),
            log_z,
            est.std(),
            est.repeats.len(),
            est.samples,
            a.run.run.display()
        );
        if a.kl_samples > 0 {
            let what = "images (ELBO under p_λ)";
            let t = crate::cli::progress::with_bar(a.n as u64, what, |progress| {
                model.dataset_tilted_elbo(
                    &images,
                    a.kl_samples as i64,
                    log_z,
                    a.run.batch as i64,
                    device,
                    progress,
                )
            });
            println!(
                "−ELBO_λ {:.4} nats/image = reconstruction {:.4} + KL(q ‖ p_λ) {:.4}; \
                 KL(q ‖ N(0,I)) {:.4}, λ·E_q[E(G(z))] {:.4}, log Z {:.6}  ({} draws of q per image \
                 for the energy)",
                t.neg_elbo(),
                t.reconstruction,
                t.kl,
                t.kl_standard,
                t.energy,
                log_z,
                a.kl_samples
            );
        }
        Ok(())
    }

    /// The feature net the arguments choose (or the sources' default), with its device.
    fn open_net(
        f: &FeatureArgs,
        sources: &[&ImageSource],
    ) -> Result<(Box<dyn FeatureNet>, tch::Device)> {
        let choice = match &f.features {
            Some(s) => FeatureChoice::parse(s)?,
            None => features::default_choice(sources)?,
        };
        let device = crate::device::select(&f.device).map_err(anyhow::Error::msg)?;
        let ts = TorchScriptOptions {
            channels: f.ts_channels,
            size: f.ts_size,
            range: match f.ts_range {
                RangeArg::Unit => InputRange::Unit,
                RangeArg::Signed => InputRange::Signed,
                RangeArg::Byte => InputRange::Byte,
            },
        };
        Ok((features::open(&choice, &ts, device)?, device))
    }

    fn features_of(
        net: &dyn FeatureNet,
        source: &ImageSource,
        f: &FeatureArgs,
    ) -> Result<Features> {
        anyhow::ensure!(f.n != Some(0), "--n must be at least 1");
        anyhow::ensure!(f.batch > 0, "--batch must be at least 1");
        let dir = f.data_dir.clone().unwrap_or_else(data::data_dir);
        features::features_of(net, source, &dir, f.n, f.batch)
    }

    /// Both sets' features and the description printed beside the score.
    fn pair_features(p: &PairArgs) -> Result<(Features, Features, String)> {
        let a: ImageSource = p.a.parse()?;
        let b: ImageSource = p.b.parse()?;
        let (net, _) = open_net(&p.f, &[&a, &b])?;
        let fa = features_of(&*net, &a, &p.f)?;
        let fb = features_of(&*net, &b, &p.f)?;
        let what = format!(
            "features: {}, {} vs {} images: {a} vs {b}",
            net.name(),
            fa.features.nrows(),
            fb.features.nrows()
        );
        Ok((fa, fb, what))
    }

    fn train_features(t: TrainFeaturesArgs) -> Result<()> {
        let dataset: data::Dataset = t.dataset.parse()?;
        anyhow::ensure!(
            t.epochs > 0 && t.batch > 0,
            "--epochs and --batch must be at least 1"
        );
        let out = t
            .out
            .clone()
            .unwrap_or_else(|| PathBuf::from(format!("models/features/{dataset}.safetensors")));
        let opts = classifier::TrainOptions {
            dataset,
            data_dir: t.data_dir.clone().unwrap_or_else(data::data_dir),
            epochs: t.epochs,
            batch: t.batch,
            learning_rate: t.lr,
            seed: t.seed,
            device: crate::device::select(&t.device).map_err(anyhow::Error::msg)?,
            name: t
                .name
                .clone()
                .unwrap_or_else(|| format!("{dataset}-classifier-v1")),
        };
        let (vs, card) = classifier::train(&opts, |line| eprintln!("{line}"))?;
        if let Some(parent) = out.parent().filter(|p| !p.as_os_str().is_empty()) {
            std::fs::create_dir_all(parent)
                .with_context(|| format!("creating {}", parent.display()))?;
        }
        classifier::save(&out, &vs, &card)?;
        let command = format!(
            "idfcodec metrics train-features --dataset {dataset} --epochs {} --batch {} --lr {} --seed {}",
            t.epochs, t.batch, t.lr, t.seed
        );
        let md = out.with_extension("md");
        std::fs::write(&md, classifier::card_markdown(&card, &command))
            .with_context(|| format!("writing {}", md.display()))?;
        println!(
            "{}: test accuracy {:.2} % ({} s); wrote {} and {}",
            card.name,
            100.0 * card.test_accuracy,
            card.training.seconds.round(),
            out.display(),
            md.display()
        );
        Ok(())
    }
}
