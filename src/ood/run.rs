//! Training runs as OOD models (libtorch): a `vae` run scored by its importance-weighted bound
//! on `log p(x)` ([`crate::nn::vae::Vae::iwae`]), an `ebm-prior` run by the same estimate under
//! its energy-tilted prior minus its Monte Carlo `log Z`
//! ([`crate::nn::ebm_prior::EbmPrior::log_likelihood`], [`math::log_partition`]). `log Z` is one
//! constant for every image, so it moves no AUROC; it only places the bpd. An `hvae` run is scored
//! like a `vae` run, by its IWAE bound ([`Hvae::iwae`]; K = 1 is the negative ELBO of its test
//! figure, whose single draws are heavy-tailed: one draw of the chain in a few hundred can cost
//! 10⁴× the typical image). The continuous flows (`nice`, `realnvp`, `glow`) are scored by the
//! per-image bound their test bpd averages ([`bpd::Likelihood::nll`]: the dequantization bound on
//! the 8-bit pixels, one draw of the noise). Runs are not coded here (export one and pass the file
//! for its real code length).

use std::path::{Path, PathBuf};

use anyhow::{bail, ensure, Context, Result};
use idfcodec_codec::Image;
use tch::{Device, Kind, Tensor};

use super::model::{LikelihoodModel, RunOptions};
use crate::data::ImageSet;
use crate::metrics::bpd;
use crate::nn::ebm_prior::{self, math, EbmPrior};
use crate::nn::flows::{Glow, Nice, RealNvp};
use crate::nn::hvae::Hvae;
use crate::nn::vae::Vae;
use crate::train;
use crate::train::checkpoint::{self, RunState};
use crate::train::model::Trainable;

/// How a run's model gives each image's `log p(x)` (or a bound on it).
enum Estimate {
    /// A VAE family's importance-weighted bound on `log p(x)` per image with `k` samples.
    Iwae {
        iwae: IwaeFn,
        /// The family's name ([`Trainable::NAME`]).
        family: &'static str,
    },
    /// The IWAE estimate under the tilted prior minus `log Z`.
    EbmPrior { model: Box<EbmPrior>, log_z: f64 },
    /// A flow's per-image bound of its test figure ([`FLOW_BOUND`]).
    Flow {
        model: Box<dyn bpd::Likelihood>,
        /// The family's name ([`Trainable::NAME`]).
        family: &'static str,
    },
}

/// `(x, k)` → the IWAE bound on `log p(x)` per image (nats, shape `N`) with `k` samples.
type IwaeFn = Box<dyn Fn(&Tensor, i64) -> Tensor>;

/// A `vae`, `ebm-prior`, `hvae`, `nice`, `realnvp` or `glow` training run, on the CPU.
pub struct RunModel {
    name: String,
    dir: PathBuf,
    model: Estimate,
    options: RunOptions,
    /// (channels, side) of the images it takes.
    geometry: (usize, Option<usize>),
}

/// Images per batch through the model (each with `k` samples for the IWAE estimates).
const BATCH: i64 = 2000;

impl RunModel {
    pub fn open(dir: &Path, options: RunOptions) -> Result<RunModel> {
        ensure!(options.k >= 1, "K (importance samples) must be at least 1");
        let device = Device::Cpu;
        let state = checkpoint::read_state(dir)
            .with_context(|| format!("reading the training run {}", dir.display()))?;
        let family = state.config.model.family();
        let geometry = (
            state.config.model.in_channels(),
            state.config.model.image_size(),
        );
        let model = match family {
            Vae::FAMILY => {
                let vae = load::<Vae>(dir, &state)?;
                Estimate::Iwae {
                    iwae: Box::new(move |x, k| vae.iwae(x, k)),
                    family: Vae::NAME,
                }
            }
            Hvae::FAMILY => {
                let hvae = load::<Hvae>(dir, &state)?;
                Estimate::Iwae {
                    iwae: Box::new(move |x, k| hvae.iwae(x, k)),
                    family: Hvae::NAME,
                }
            }
            Nice::FAMILY => flow::<Nice>(dir, &state)?,
            RealNvp::FAMILY => flow::<RealNvp>(dir, &state)?,
            Glow::FAMILY => flow::<Glow>(dir, &state)?,
            EbmPrior::FAMILY => {
                ensure!(
                    options.logz_samples > 0,
                    "log Z needs at least one latent sample"
                );
                let (model, _) = ebm_prior::load_run(dir, None, device)?;
                tch::manual_seed(options.seed as i64);
                let est = math::log_partition(
                    &|z| model.log_tilt(z),
                    math::LogZOptions {
                        latent: model.config().vae.latent as i64,
                        samples: options.logz_samples,
                        repeats: 1,
                        batch: 10_000,
                    },
                    device,
                    &mut |_| {},
                );
                let log_z = est.mean();
                ensure!(log_z.is_finite(), "{}: log Z is not finite", dir.display());
                Estimate::EbmPrior {
                    model: Box::new(model),
                    log_z,
                }
            }
            other => bail!(
                "{} is a {other} run: OOD scores from a run need a likelihood (vae, ebm-prior, \
                 hvae, nice, realnvp or glow runs; an IDF or VAE exported for the codec is \
                 passed as its model file)",
                dir.display()
            ),
        };
        Ok(RunModel {
            name: format!("run:{}", dir.display()),
            dir: dir.to_path_buf(),
            model,
            options,
            geometry,
        })
    }
}

/// What a flow's per-image NLL is (its test bpd's average).
const FLOW_BOUND: &str = "dequantization bound on the 8-bit pixels (one draw of the noise)";

/// The model of family `M` of the run in `dir` (its state `state`), with the checkpoint's
/// weights.
fn load<M: Trainable>(dir: &Path, state: &RunState) -> Result<M> {
    let (mut vs, model) = train::build_model::<M>(&state.config, Device::Cpu)?;
    checkpoint::load(dir, &mut vs, None).with_context(|| {
        format!(
            "loading the weights of the {} run {}",
            M::FAMILY,
            dir.display()
        )
    })?;
    Ok(model)
}

/// [`Estimate::Flow`] of the run in `dir`, of flow family `M` (its test figure averages
/// [`bpd::Likelihood::nll`]).
fn flow<M: Trainable + bpd::Likelihood + 'static>(
    dir: &Path,
    state: &RunState,
) -> Result<Estimate> {
    Ok(Estimate::Flow {
        model: Box::new(load::<M>(dir, state)?),
        family: M::NAME,
    })
}

impl LikelihoodModel for RunModel {
    fn name(&self) -> &str {
        &self.name
    }

    fn likelihood(&self) -> String {
        let k = self.options.k;
        match &self.model {
            Estimate::Iwae { family, .. } => format!("{family} run, IWAE bound with K = {k}"),
            Estimate::Flow { family, .. } => format!("{family} run, {FLOW_BOUND}"),
            Estimate::EbmPrior { model, log_z } => format!(
                "EBM-prior run (λ = {}), IWAE estimate under the tilted prior with K = {k}, \
                 log Z = {log_z:.4} from {} latents",
                model.lambda(),
                self.options.logz_samples
            ),
        }
    }

    fn check_geometry(&self, channels: usize, height: usize, width: usize) -> Result<()> {
        let (c, side) = self.geometry;
        ensure!(
            c == channels,
            "{} models {c}-channel images, these have {channels}",
            self.dir.display()
        );
        if let Some(s) = side {
            ensure!(
                (height, width) == (s, s),
                "{} models {s}×{s} images, these are {width}×{height}",
                self.dir.display()
            );
        }
        Ok(())
    }

    fn nll_bits(&self, images: &ImageSet) -> Result<Vec<f64>> {
        let shape = [
            images.count as i64,
            images.channels as i64,
            images.height as i64,
            images.width as i64,
        ];
        let all = Tensor::from_slice(&images.pixels).reshape(shape);
        let k = self.options.k;
        let samples = match self.model {
            Estimate::Iwae { .. } | Estimate::EbmPrior { .. } => k,
            Estimate::Flow { .. } => 1,
        };
        tch::manual_seed(self.options.seed as i64);
        let mut bits = Vec::with_capacity(images.count);
        bpd::for_each_batch(&all, (BATCH / samples).max(1), Device::Cpu, |x| {
            let log_p = match &self.model {
                Estimate::Iwae { iwae, .. } => iwae(x, k),
                Estimate::EbmPrior { model, log_z } => model.log_likelihood(x, k, *log_z),
                Estimate::Flow { model, .. } => -model.nll(x),
            };
            let nats = Vec::<f64>::try_from(log_p.to_kind(Kind::Double)).expect("a 1-D tensor");
            bits.extend(nats.iter().map(|n| -n / std::f64::consts::LN_2));
        });
        Ok(bits)
    }

    fn codes(&self) -> bool {
        false
    }

    fn coded_bytes(&self, _image: &Image) -> Result<u64> {
        bail!(
            "{} is a training run: export it (idfcodec export) to code with it",
            self.dir.display()
        )
    }
}
