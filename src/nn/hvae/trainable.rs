//! The hierarchical VAE as a [`Trainable`] family (`family = "hvae"`): its `[model]` section
//! (image shape, the latent sizes per layer, hidden width, mixtures; always the codec's MLP with
//! the logistic mixture likelihood), its loss (the negative ELBO in bits per dimension), its
//! evaluation (the negative ELBO with its terms per layer, the IWAE bound).

use idfcodec_codec::model::vae::arch::VaeArch;
use idfcodec_codec::VaeConfig as CodecVaeConfig;
use serde::{Deserialize, Serialize};
use tch::{nn, Device, Kind, Tensor};

use super::Hvae;
use crate::metrics::bpd;
use crate::nn::layers::{count_parameters, Arch};
use crate::train::model::{Evaluation, LogColumns, StepReport, Trainable, Update};

/// The hierarchical VAE's `[model]` section (`family = "hvae"`).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct HvaeConfig {
    /// 1 (grayscale) or 3 (RGB).
    pub in_channels: usize,
    /// Side of the square images (28 for MNIST).
    pub image_size: usize,
    /// The latent sizes, `z_1` (next to the pixels) first; one entry: the one-layer VAE.
    pub latents: Vec<usize>,
    /// Hidden width of every MLP.
    pub hidden: usize,
    /// Logistic mixture components per sub-pixel.
    pub mixtures: usize,
    /// Evaluations also report the IWAE bound with this many samples (0: not computed).
    pub iwae_samples: usize,
    /// For the codec: each latent dimension is coded as one of `2^bucket_bits` buckets of equal
    /// standard-normal mass; no effect on training.
    pub bucket_bits: u32,
}

impl Default for HvaeConfig {
    fn default() -> Self {
        HvaeConfig {
            in_channels: 1,
            image_size: 28,
            latents: vec![16, 8],
            hidden: 64,
            mixtures: 1,
            iwae_samples: 0,
            bucket_bits: 10,
        }
    }
}

impl HvaeConfig {
    /// The codec's description of this model (the one both sides build from): the `vae`
    /// family with `upper_latents`. Its tensors are exactly this model's `VarStore`.
    pub fn codable(&self) -> Result<CodecVaeConfig, String> {
        let (&first, upper) = self
            .latents
            .split_first()
            .ok_or("model.latents must name at least one layer")?;
        let c = CodecVaeConfig {
            arch: VaeArch::Mlp,
            in_channels: self.in_channels,
            image_size: self.image_size,
            latent: first,
            hidden: self.hidden,
            mixtures: self.mixtures,
            bucket_bits: self.bucket_bits,
            upper_latents: upper.to_vec(),
            latent_grids: idfcodec_codec::model::vae::LatentGrids::Standard,
        };
        c.validate()?;
        Ok(c)
    }
}

impl Trainable for Hvae {
    type Config = HvaeConfig;
    const FAMILY: &'static str = "hvae";
    const NAME: &'static str = "hierarchical VAE";

    /// The family came with run-config version 2; the same defaults for every version.
    fn default_config(version: u32) -> HvaeConfig {
        let _ = version;
        HvaeConfig::default()
    }

    /// Exactly what the codec can code (its limits included), so every run exports.
    fn validate(c: &HvaeConfig) -> Result<(), String> {
        crate::nn::layers::validate_image(Arch::Mlp, c.in_channels, c.image_size)?;
        c.codable().map(|_| ()).map_err(|e| format!("model: {e}"))
    }

    fn parameter_count(c: &HvaeConfig) -> usize {
        let vs = nn::VarStore::new(Device::Cpu);
        let _ = Hvae::new(&vs.root(), c);
        count_parameters(&vs)
    }

    fn in_channels(c: &HvaeConfig) -> usize {
        c.in_channels
    }

    fn size_multiple(_: &HvaeConfig) -> usize {
        1
    }

    fn image_size(c: &HvaeConfig) -> Option<usize> {
        Some(c.image_size)
    }

    fn new(p: &nn::Path, c: &HvaeConfig) -> Self {
        Hvae::new(p, c)
    }

    /// The negative ELBO of the batch in bits per dimension (one draw of the chain per image).
    fn loss(&self, x: &Tensor) -> Tensor {
        bpd::batch_bpd(self, x)
    }

    /// The per-layer terms in nats, beside the loss.
    fn train_step(&self, x: &Tensor, update: &mut Update) -> StepReport {
        let terms = self.elbo_terms(x);
        let total = terms[1..]
            .iter()
            .fold(terms[0].shallow_clone(), |acc, t| acc + t);
        let loss = bpd::batch_bpd_of(&total, x);
        update.minimise(&loss, 0);
        StepReport {
            loss: loss.double_value(&[]),
            extras: terms
                .iter()
                .map(|t| t.mean(Kind::Float).double_value(&[]))
                .collect(),
        }
    }

    /// The negative ELBO in bits/dim (the test figure), its terms (reconstruction, the KL of
    /// each layer) in bits/dim and nats per image, and with `iwae_samples` the negative IWAE
    /// bound.
    fn evaluate(&self, images: &Tensor, batch: i64, device: Device) -> Evaluation {
        let shares = bpd::dataset_bpd_by_term(self, images, batch, device);
        let dims: i64 = images.size()[1..].iter().product();
        let nats = |bpd: f64| bpd::bpd_to_nats(bpd, dims);
        let total: f64 = shares.iter().sum();
        let names = term_names(self.layers());
        let mut parts: Vec<(String, f64)> = names
            .iter()
            .zip(&shares)
            .map(|(n, &v)| (format!("{n}_bpd"), v))
            .collect();
        parts.push(("neg_elbo_nats".into(), nats(total)));
        parts.extend(
            names
                .iter()
                .zip(&shares)
                .map(|(n, &v)| (format!("{n}_nats"), nats(v))),
        );
        let k = self.config.iwae_samples as i64;
        if k > 0 {
            let bound = bpd::dataset_iwae(images, k, batch, device, |x, k| self.iwae(x, k));
            parts.push((format!("neg_iwae{k}_nats"), bound));
            parts.push((format!("neg_iwae{k}_bpd"), bpd::nats_to_bpd(bound, dims)));
        }
        Evaluation { total, parts }
    }

    fn lr_scale(_: &HvaeConfig, _: &str, param: &Tensor) -> Tensor {
        Tensor::from(1f32).to_device(param.device())
    }

    fn log_columns(c: &HvaeConfig) -> LogColumns {
        LogColumns {
            train: "neg_elbo_bpd".into(),
            test: "neg_elbo_bpd".into(),
            y_label: "negative ELBO, bits per dimension".into(),
            plot: "elbo".into(),
            extras: term_names(c.latents.len())
                .into_iter()
                .map(|n| format!("{n}_nats"))
                .collect(),
        }
    }
}

/// The negative ELBO's terms: `reconstruction`, then `kl1` … `kl{L}`.
fn term_names(layers: usize) -> Vec<String> {
    std::iter::once("reconstruction".to_string())
        .chain((1..=layers).map(|l| format!("kl{l}")))
        .collect()
}
