//! The model side of OOD detection: what a likelihood model must give ([`LikelihoodModel`]),
//! the codec's models ([`CodecModel`]: IDF with its exact NLL, VAEs with their bound, both with
//! their real code length), and [`open`], which turns `--model NAME|PATH|run:DIR` into one.
//! A family plugs in by implementing the trait (training runs: `super::run`, with libtorch).

use std::path::Path;

use anyhow::{bail, Context, Result};
use idfcodec_codec::engine::{IntTensor, Shape};
use idfcodec_codec::model::idf::flow;
use idfcodec_codec::model::vae::coding::terms_at_mean;
use idfcodec_codec::{compress, Candidate, EffortOptions, Image};

use crate::coding::ChosenModel;
use crate::data::ImageSet;

/// A model with a per-image likelihood (or a bound on it) for OOD scoring.
pub trait LikelihoodModel {
    /// The name the reports use (`--model` as given).
    fn name(&self) -> &str;
    /// What its NLL is: "exact NLL", "negative ELBO at the posterior mean", ...
    fn likelihood(&self) -> String;
    /// An error unless the model takes `channels`×`height`×`width` images.
    fn check_geometry(&self, channels: usize, height: usize, width: usize) -> Result<()>;
    /// The NLL (or bound) of each image of `images` in bits.
    fn nll_bits(&self, images: &ImageSet) -> Result<Vec<f64>>;
    /// Whether [`Self::coded_bytes`] codes images (the family has a coder here).
    fn codes(&self) -> bool;
    /// The size of the single-image file the codec writes for `image` with this model, in
    /// bytes; an error for a model that does not code ([`Self::codes`] false).
    fn coded_bytes(&self, image: &Image) -> Result<u64>;
}

/// How a training run's likelihood is estimated (`super::run`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct RunOptions {
    /// Importance samples per image (K of the IWAE bound).
    pub k: i64,
    /// Prior latents for an ebm-prior run's `log Z`.
    pub logz_samples: u64,
    /// Seed of libtorch's generator for the draws.
    pub seed: u64,
}

/// `--model NAME|PATH|run:DIR`: an embedded model or model file for the codec, or a training run
/// (a folder with `checkpoint.json`; needs libtorch), estimated with `run`.
pub fn open(spec: &str, run: RunOptions) -> Result<Box<dyn LikelihoodModel>> {
    if let Some(dir) = run_dir(spec) {
        return open_run(dir, run);
    }
    Ok(Box::new(CodecModel::new(ChosenModel::from_arg(spec)?)))
}

/// The run folder `spec` names (`run:DIR`, or a folder holding `checkpoint.json`), if any.
fn run_dir(spec: &str) -> Option<&Path> {
    if let Some(dir) = spec.strip_prefix("run:") {
        return Some(Path::new(dir));
    }
    let path = Path::new(spec);
    path.join("checkpoint.json").is_file().then_some(path)
}

#[cfg(feature = "train")]
fn open_run(dir: &Path, run: RunOptions) -> Result<Box<dyn LikelihoodModel>> {
    Ok(Box::new(super::run::RunModel::open(dir, run)?))
}

#[cfg(not(feature = "train"))]
fn open_run(dir: &Path, _run: RunOptions) -> Result<Box<dyn LikelihoodModel>> {
    Err(crate::cli::needs_train_feature(&format!(
        "ood --model {} (a training run)",
        dir.display()
    )))
}

/// A model of the codec (embedded or a file): IDF (exact NLL on the engine) or VAE (the negative
/// ELBO with the latents at their posterior means, on the engine), coded for real by
/// [`idfcodec_codec::compress`] on one thread.
pub struct CodecModel {
    chosen: ChosenModel,
}

impl CodecModel {
    pub fn new(chosen: ChosenModel) -> Self {
        CodecModel { chosen }
    }
}

impl LikelihoodModel for CodecModel {
    fn name(&self) -> &str {
        &self.chosen.name
    }

    fn likelihood(&self) -> String {
        let model = &self.chosen.model;
        match (model.idf(), model.vae()) {
            (Some(_), _) => "IDF, exact NLL (engine)".into(),
            (None, Some(_)) => {
                "VAE, negative ELBO with latents at the posterior mean (engine)".into()
            }
            (None, None) => format!("{:?}, no likelihood here", model.family()),
        }
    }

    fn check_geometry(&self, channels: usize, height: usize, width: usize) -> Result<()> {
        let model = &self.chosen.model;
        if model.planes() != channels {
            bail!(
                "{} models {}-channel images, these have {channels}",
                self.chosen.name,
                model.planes()
            );
        }
        if let Some(vae) = model.vae() {
            let side = vae.config().image_size;
            if (height, width) != (side, side) {
                bail!(
                    "{} models {side}×{side} images, these are {width}×{height}",
                    self.chosen.name
                );
            }
        }
        let m = model.size_multiple();
        if height % m != 0 || width % m != 0 {
            bail!(
                "{} models images whose sides are multiples of {m}, these are {width}×{height}",
                self.chosen.name
            );
        }
        Ok(())
    }

    fn nll_bits(&self, images: &ImageSet) -> Result<Vec<f64>> {
        let shape = Shape::new(images.channels, images.height, images.width);
        (0..images.count)
            .map(|i| {
                let x = images.image(i);
                let bits = match (self.chosen.model.idf(), self.chosen.model.vae()) {
                    (Some(idf), _) => {
                        let t =
                            IntTensor::from_vec(shape, x.iter().map(|&p| i32::from(p)).collect())?;
                        flow::nll_bits(idf, &t)?
                    }
                    (None, Some(vae)) => {
                        let (reconstruction, kl) = terms_at_mean(vae, x)?;
                        reconstruction + kl
                    }
                    (None, None) => bail!("{}: a family without a likelihood", self.chosen.name),
                };
                Ok(bits)
            })
            .collect::<Result<_>>()
            .with_context(|| format!("the NLL of {}", self.chosen.name))
    }

    fn codes(&self) -> bool {
        true
    }

    fn coded_bytes(&self, image: &Image) -> Result<u64> {
        let options = EffortOptions {
            threads: 1,
            ..EffortOptions::default()
        };
        let candidate = Candidate::Learned(self.chosen.learned());
        let file = compress(
            image,
            Some(&*self.chosen.model),
            &options.encode_options(&candidate),
        )
        .with_context(|| format!("coding with {}", self.chosen.name))?;
        Ok(file.len() as u64)
    }
}

/// The size of the single-image file the codec's context coder writes for `image` (no model,
/// one thread): the context coder as a generic complexity measure and background model.
pub fn context_coded_bytes(image: &Image) -> Result<u64> {
    let options = EffortOptions {
        threads: 1,
        ..EffortOptions::default()
    };
    let file = compress(
        image,
        None,
        &options.encode_options(&Candidate::ContextCoding),
    )
    .context("context coding")?;
    Ok(file.len() as u64)
}
