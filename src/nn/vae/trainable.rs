//! The VAE as a [`Trainable`] family: its `[model]` section (architecture, likelihood, KL weight,
//! the optional WGAN critic in `[model.adversarial]`), its loss (the negative β-ELBO in bits per
//! dimension), its evaluation (ELBO terms in nats and bits/dim, the IWAE bound) and, with the
//! critic, a training step of critic updates then one VAE update.

use idfcodec_codec::model::vae::arch::VaeArch;
use idfcodec_codec::VaeConfig as CodecVaeConfig;
use serde::{Deserialize, Serialize};
use tch::{nn, Device, Tensor};

use super::{mean, Vae};
use crate::metrics::bpd;
use crate::nn::dist::LikelihoodKind;
use crate::nn::gan::{critic_step, generator_loss, GanLoss};
use crate::nn::generative::Generative;
use crate::nn::layers::{count_parameters, Arch, ImageShape};
use crate::train::model::{Evaluation, LogColumns, StepReport, Trainable, Update};
use crate::train::optim::ParamGroup;

/// The VAE's `[model]` section (`family = "vae"`).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct VaeConfig {
    /// `"conv"`, `"mlp"` or `"resnet"`, for encoder and decoder.
    pub arch: Arch,
    /// 1 (grayscale) or 3 (RGB).
    pub in_channels: usize,
    /// Side of the square images (28 for MNIST, 32 for photo patches).
    pub image_size: usize,
    /// Size of the latent `z`.
    pub latent: usize,
    /// Hidden width: the MLP's width, the channels of the first convolution (`conv`: the
    /// second has twice as many), or the residual network's channels (`resnet`).
    pub hidden: usize,
    /// `resnet`: residual blocks at each of its two inner resolutions (must be 0 otherwise).
    pub blocks: usize,
    /// Weight of the KL term in the loss (1: the ELBO; 0: an autoencoder with noise; 100: …).
    /// Evaluations always report the true ELBO (β = 1).
    pub beta: f64,
    /// `"bernoulli"`, `"gaussian"` or `"logistic"` (see [`LikelihoodKind`]).
    pub likelihood: LikelihoodKind,
    /// Gaussian: the log standard deviation (pixels scaled to `[-1, 1]`), fixed, or where a
    /// learned one starts.
    pub log_std: f64,
    /// Gaussian: learn the log standard deviation (one scalar) rather than fix it.
    pub learn_std: bool,
    /// Logistic: mixture components per sub-pixel.
    pub mixtures: usize,
    /// Evaluations also report the IWAE bound with this many samples (0: not computed).
    pub iwae_samples: usize,
    /// A WGAN-GP critic on the decoder (`[model.adversarial]`; off while `weight` is 0).
    pub adversarial: Adversarial,
    /// For the codec: each latent dimension is coded as one of `2^bucket_bits` buckets of equal
    /// prior mass (bits-back coding, `idfcodec_codec::model::vae`); no effect on training.
    pub bucket_bits: u32,
}

/// `[model.adversarial]`: the decoder also trained against a WGAN-GP critic.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Adversarial {
    /// Weight of the generator loss `−critic(decoder mean of z ~ p(z))` added to the VAE's
    /// loss (in bits/dim). 0: no critic.
    pub weight: f64,
    /// The critic's width (as the GAN's `critic_width`).
    pub critic_width: usize,
    /// Critic updates per VAE update.
    pub n_critic: usize,
    /// Weight of the gradient penalty.
    pub gradient_penalty: f64,
    /// Adam's coefficients for the critic.
    pub beta1: f64,
    pub beta2: f64,
}

impl Default for Adversarial {
    fn default() -> Self {
        Adversarial {
            weight: 0.0,
            critic_width: 32,
            n_critic: 5,
            gradient_penalty: 10.0,
            beta1: 0.5,
            beta2: 0.9,
        }
    }
}

impl Default for VaeConfig {
    fn default() -> Self {
        VaeConfig {
            arch: Arch::Conv,
            in_channels: 1,
            image_size: 28,
            latent: 16,
            hidden: 32,
            blocks: 0,
            beta: 1.0,
            likelihood: LikelihoodKind::Bernoulli,
            log_std: -2.0,
            learn_std: false,
            mixtures: 3,
            iwae_samples: 0,
            adversarial: Adversarial::default(),
            bucket_bits: 10,
        }
    }
}

impl VaeConfig {
    pub fn shape(&self) -> ImageShape {
        ImageShape {
            channels: self.in_channels,
            size: self.image_size,
        }
    }

    /// The codec's description of this VAE ([`CodecVaeConfig`], the one both sides build from),
    /// when the codec can code with it: an MLP or residual encoder and decoder with the
    /// logistic mixture likelihood and no critic. Its tensors are exactly this model's
    /// `VarStore` (names and shapes, checked by `tests/vae_engine_agreement.rs`).
    pub fn codable(&self) -> Result<CodecVaeConfig, String> {
        let arch = match (self.arch, self.likelihood) {
            (Arch::Mlp, LikelihoodKind::Logistic) => VaeArch::Mlp,
            (Arch::Resnet, LikelihoodKind::Logistic) => VaeArch::Resnet {
                blocks: self.blocks,
            },
            _ => {
                return Err(format!(
                    "the codec codes MLP and residual VAEs with the logistic likelihood, not {:?} with {:?}",
                    self.arch, self.likelihood
                ))
            }
        };
        if self.adversarial() {
            return Err("the codec does not take a VAE with a critic".into());
        }
        let c = CodecVaeConfig {
            arch,
            in_channels: self.in_channels,
            image_size: self.image_size,
            latent: self.latent,
            hidden: self.hidden,
            mixtures: self.mixtures,
            bucket_bits: self.bucket_bits,
            upper_latents: vec![],
            latent_grids: idfcodec_codec::model::vae::LatentGrids::Standard,
        };
        c.validate()?;
        Ok(c)
    }

    fn adversarial(&self) -> bool {
        self.adversarial.weight > 0.0
    }
}

/// The log columns of a VAE trained by [`Vae::step_with_critic`], with `critic` its critic's
/// settings if it has one.
pub(crate) fn log_columns(critic: Option<&Adversarial>) -> LogColumns {
    let mut extras = vec!["reconstruction_nats".to_string(), "kl_nats".to_string()];
    if critic.is_some() {
        extras.extend(
            [
                "generator_loss",
                "critic_loss",
                "critic_real",
                "critic_fake",
                "gradient_penalty",
            ]
            .map(String::from),
        );
    }
    LogColumns {
        // the train figure carries β; the test figure is the ELBO itself
        train: "neg_beta_elbo_bpd".into(),
        test: "neg_elbo_bpd".into(),
        y_label: "negative ELBO, bits per dimension".into(),
        plot: "elbo".into(),
        extras,
    }
}

/// The parameter groups of a VAE with the critic `critic` (if any): everything (group 0, the
/// VAE: `critic.` variables belong to the longer prefix), then `critic.` with its Adam betas.
pub(crate) fn param_groups(critic: Option<&Adversarial>) -> Vec<ParamGroup> {
    let mut groups = vec![ParamGroup::all()];
    if let Some(a) = critic {
        groups.push(ParamGroup {
            name: "critic".into(),
            prefix: "critic.".into(),
            beta1: a.beta1,
            beta2: a.beta2,
        });
    }
    groups
}

/// The VAE's parameters are group 0 (one step per training step), the critic's group 1.
pub(crate) const VAE: usize = 0;
pub(crate) const CRITIC: usize = 1;

impl Trainable for Vae {
    type Config = VaeConfig;
    const FAMILY: &'static str = "vae";
    const NAME: &'static str = "VAE";

    /// The family came with run-config version 2; the same defaults for every version.
    fn default_config(version: u32) -> VaeConfig {
        let _ = version;
        VaeConfig::default()
    }

    fn validate(c: &VaeConfig) -> Result<(), String> {
        crate::nn::layers::validate_image(c.arch, c.in_channels, c.image_size)?;
        if c.arch != Arch::Resnet && c.blocks != 0 {
            return Err(format!(
                "model.blocks is for arch = \"resnet\" (it must be 0 for {:?}, not {})",
                c.arch, c.blocks
            ));
        }
        for (name, v) in [
            ("latent", c.latent),
            ("hidden", c.hidden),
            ("mixtures", c.mixtures),
        ] {
            if v == 0 {
                return Err(format!("model.{name} must be at least 1"));
            }
        }
        if !(c.beta >= 0.0 && c.beta.is_finite()) {
            return Err(format!(
                "model.beta must be a finite number >= 0, not {}",
                c.beta
            ));
        }
        if !c.log_std.is_finite() {
            return Err("model.log_std must be finite".into());
        }
        let a = &c.adversarial;
        let finite_non_negative = |v: f64| v >= 0.0 && v.is_finite();
        if !(finite_non_negative(a.weight) && finite_non_negative(a.gradient_penalty)) {
            return Err(
                "model.adversarial.weight and gradient_penalty must be finite numbers >= 0".into(),
            );
        }
        if a.critic_width == 0 || a.n_critic == 0 {
            return Err("model.adversarial.critic_width and n_critic must be at least 1".into());
        }
        for b in [a.beta1, a.beta2] {
            if !(0.0..1.0).contains(&b) {
                return Err("model.adversarial.beta1 and beta2 must be in [0, 1)".into());
            }
        }
        Ok(())
    }

    fn parameter_count(c: &VaeConfig) -> usize {
        let vs = nn::VarStore::new(Device::Cpu);
        let _ = Vae::new(&vs.root(), c);
        count_parameters(&vs)
    }

    fn in_channels(c: &VaeConfig) -> usize {
        c.in_channels
    }

    fn size_multiple(c: &VaeConfig) -> usize {
        c.arch.size_multiple()
    }

    fn image_size(c: &VaeConfig) -> Option<usize> {
        Some(c.image_size)
    }

    fn new(p: &nn::Path, c: &VaeConfig) -> Self {
        Vae::new(p, c)
    }

    /// The negative β-ELBO of the batch in bits per dimension (one latent sample per image).
    fn loss(&self, x: &Tensor) -> Tensor {
        let terms = self.elbo(x);
        bpd::batch_bpd_of(&self.neg_beta_elbo(&terms), x)
    }

    /// The negative ELBO (β = 1) in bits/dim (the test figure), its terms in bits/dim and in
    /// nats per image, and with `iwae_samples` the negative IWAE bound.
    fn evaluate(&self, images: &Tensor, batch: i64, device: Device) -> Evaluation {
        let shares = bpd::dataset_bpd_by_term(self, images, batch, device);
        let dims: i64 = images.size()[1..].iter().product();
        let nats = |bpd: f64| bpd::bpd_to_nats(bpd, dims);
        let (recon, kl) = (shares[0], shares[1]);
        let mut parts = vec![
            ("reconstruction_bpd".to_string(), recon),
            ("kl_bpd".to_string(), kl),
            ("neg_elbo_nats".to_string(), nats(recon + kl)),
            ("reconstruction_nats".to_string(), nats(recon)),
            ("kl_nats".to_string(), nats(kl)),
        ];
        let k = self.config.iwae_samples as i64;
        if k > 0 {
            let bound = self.dataset_iwae(images, k, batch, device);
            parts.push((format!("neg_iwae{k}_nats"), bound));
            parts.push((format!("neg_iwae{k}_bpd"), bpd::nats_to_bpd(bound, dims)));
        }
        Evaluation {
            total: recon + kl,
            parts,
        }
    }

    fn lr_scale(_: &VaeConfig, _: &str, param: &Tensor) -> Tensor {
        Tensor::from(1f32).to_device(param.device())
    }

    fn param_groups(c: &VaeConfig) -> Vec<ParamGroup> {
        param_groups(c.adversarial().then_some(&c.adversarial))
    }

    /// Without the critic: one update of the negative β-ELBO. With it: `n_critic` critic updates
    /// (real batch against the decoder's mean images of prior samples), then one update of the
    /// negative β-ELBO plus `weight` × the generator loss.
    fn train_step(&self, x: &Tensor, update: &mut Update) -> StepReport {
        self.step_with_critic(x, update)
    }

    fn log_columns(c: &VaeConfig) -> LogColumns {
        log_columns(c.adversarial().then_some(&c.adversarial))
    }

    fn into_generative(self) -> Result<Box<dyn Generative>, String> {
        Ok(Box::new(self))
    }
}

impl Vae {
    /// The VAE's training step, shared with the energy-based prior's family: one update of
    /// the negative β-ELBO (group 0); with a critic, first `adversarial.n_critic` critic
    /// updates (group 1: the real batch against the decoder's mean images of prior samples),
    /// and the VAE's update adds `adversarial.weight` × the generator loss (`−critic`, the
    /// critic's energy) when that weight is positive. Log extras as [`log_columns`].
    pub(crate) fn step_with_critic(&self, x: &Tensor, update: &mut Update) -> StepReport {
        let terms = self.elbo(x);
        let neg = self.neg_beta_elbo(&terms);
        let loss = bpd::batch_bpd_of(&neg, x);
        let mut extras = vec![mean(&terms.reconstruction), mean(&terms.kl)];
        let Some(critic) = self.critic() else {
            update.minimise(&loss, VAE);
            return StepReport {
                loss: loss.double_value(&[]),
                extras,
            };
        };
        let a = &self.config.adversarial;
        let n = x.size()[0];
        let (mut c_loss, mut real, mut fake, mut penalty) = (0.0, 0.0, 0.0, 0.0);
        for _ in 0..a.n_critic {
            let g = tch::no_grad(|| self.decode_mean(&self.prior(n)));
            let s = critic_step(critic, GanLoss::WganGp, x, &g, a.gradient_penalty);
            update.minimise(&s.objective, CRITIC);
            c_loss += s.loss;
            real += s.real;
            fake += s.fake;
            penalty += s.penalty;
        }
        let g_loss = if a.weight > 0.0 {
            let g_loss = generator_loss(critic, GanLoss::WganGp, &self.decode_mean(&self.prior(n)));
            update.minimise(&(&loss + &g_loss * a.weight), VAE);
            g_loss.double_value(&[])
        } else {
            update.minimise(&loss, VAE);
            tch::no_grad(|| {
                generator_loss(critic, GanLoss::WganGp, &self.decode_mean(&self.prior(n)))
                    .double_value(&[])
            })
        };
        let k = a.n_critic as f64;
        extras.extend([g_loss, c_loss / k, real / k, fake / k, penalty / k]);
        StepReport {
            loss: loss.double_value(&[]),
            extras,
        }
    }

    /// The mean negative IWAE bound with `k` samples (nats per image) over `images` (`u8`),
    /// in batches of about `batch / k` images.
    pub fn dataset_iwae(&self, images: &Tensor, k: i64, batch: i64, device: Device) -> f64 {
        bpd::dataset_iwae(images, k, batch, device, |x, k| self.iwae(x, k))
    }
}
