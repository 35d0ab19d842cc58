//! Variational autoencoders: an encoder `q(z|x) = N(μ(x), diag σ²(x))`, the prior `N(0, I)` and a
//! decoder `p(x|z)` with a pixel likelihood ([`crate::nn::dist::PixelLikelihood`]: Bernoulli,
//! discretized Gaussian, discretized logistic mixture), MLP, convolutional or residual
//! ([`crate::nn::layers`]). The loss is the negative β-ELBO; evaluations report the ELBO's
//! terms and the IWAE bound ([`Vae::iwae`]).
//!
//! With `[model.adversarial] weight > 0` the decoder is also trained against a WGAN-GP critic
//! ([`crate::nn::gan::Critic`]) that compares real images with the decoder's mean images of
//! prior samples (a "VAE with a WGAN critic"; the likelihood stays, so its ELBO is still a bound).

pub mod trainable;

use tch::{nn, Device, Kind, Tensor};

use super::dist::{kl_standard_normal, log_normal, log_standard_normal, PixelLikelihood};
use super::gan::Critic;
use super::layers::{to_unit, Activation, Hidden, ImageToVector, VectorToImage};
use crate::metrics::bpd::Likelihood;
pub use trainable::{Adversarial, VaeConfig};

/// Log-variances of the encoder are kept in this range (numerical safety).
const LOGVAR_RANGE: (f64, f64) = (-12.0, 8.0);

/// A VAE (and, with the adversarial option, its critic).
pub struct Vae {
    config: VaeConfig,
    encoder: ImageToVector,
    decoder: VectorToImage,
    likelihood: PixelLikelihood,
    critic: Option<Critic>,
    device: Device,
}

/// The ELBO's terms of each image (nats, shape `N`), from one latent sample per image.
pub struct ElboTerms {
    /// `−log p(x|z)` at the sampled `z`.
    pub reconstruction: Tensor,
    /// `KL(q(z|x) ‖ p(z))`, in closed form.
    pub kl: Tensor,
    /// `log q(z|x) − log p(z)` at the sampled `z`: the one-sample estimate of the KL, whose
    /// expectation is `kl` (what the IWAE bound with one sample uses).
    pub kl_sample: Tensor,
}

impl Vae {
    /// A VAE of `config`, with a critic on its decoder when `[model.adversarial] weight > 0`.
    pub fn new(p: &nn::Path, config: &VaeConfig) -> Self {
        let width = config.adversarial.critic_width;
        Self::build(
            p,
            config,
            (config.adversarial.weight > 0.0).then_some(width),
        )
    }

    /// A VAE of `config` with the critic of `config.adversarial` whatever its weight (with
    /// weight 0 the critic is trained but the VAE's objective does not see it): the
    /// energy-based prior's model ([`crate::nn::ebm_prior`]).
    pub fn with_critic(p: &nn::Path, config: &VaeConfig) -> Self {
        Self::build(p, config, Some(config.adversarial.critic_width))
    }

    /// `critic_width`: the critic's width, `None` for no critic.
    fn build(p: &nn::Path, config: &VaeConfig, critic_width: Option<usize>) -> Self {
        let shape = config.shape();
        let params = PixelLikelihood::params_per_subpixel(config.likelihood, config.mixtures);
        let out = super::layers::ImageShape {
            channels: config.in_channels * params,
            size: config.image_size,
        };
        let log_std = if config.learn_std {
            p.var("log_std", &[], nn::Init::Const(config.log_std))
        } else {
            Tensor::from(config.log_std as f32).to_device(p.device())
        };
        let hidden = Hidden {
            width: config.hidden,
            blocks: config.blocks,
        };
        Vae {
            encoder: ImageToVector::new(
                &(p / "encoder"),
                config.arch,
                shape,
                hidden,
                2 * config.latent,
                Activation::Relu,
            ),
            decoder: VectorToImage::new(
                &(p / "decoder"),
                config.arch,
                config.latent,
                out,
                hidden,
                Activation::Relu,
            ),
            likelihood: PixelLikelihood {
                kind: config.likelihood,
                mixtures: config.mixtures,
                log_std,
            },
            critic: critic_width.map(|width| {
                Critic::new(
                    &(p / "critic"),
                    config.arch,
                    shape,
                    Hidden {
                        width,
                        blocks: config.blocks,
                    },
                )
            }),
            config: config.clone(),
            device: p.device(),
        }
    }

    pub fn config(&self) -> &VaeConfig {
        &self.config
    }

    /// The encoder's means and log-variances (`N×latent` each) of pixels `x` (float).
    pub fn encode(&self, x: &Tensor) -> (Tensor, Tensor) {
        let h = self.encoder.forward(&to_unit(x));
        let parts = h.chunk(2, 1);
        let logvar = parts[1].clamp(LOGVAR_RANGE.0, LOGVAR_RANGE.1);
        (parts[0].shallow_clone(), logvar)
    }

    /// The decoder's raw outputs for latents `z` (`N×latent`).
    pub fn decode_raw(&self, z: &Tensor) -> Tensor {
        self.decoder.forward(z)
    }

    /// The decoder's mean images (pixels, float `0..=255`) of latents `z`.
    pub fn decode_mean(&self, z: &Tensor) -> Tensor {
        self.likelihood.mean(&self.decode_raw(z))
    }

    /// The ELBO's terms of pixels `x` (`N×C×H×W`, float), one reparameterised sample `z` per
    /// image drawn from libtorch's generator.
    pub fn elbo(&self, x: &Tensor) -> ElboTerms {
        let (mu, logvar) = self.encode(x);
        let eps = mu.randn_like();
        let z = &mu + (&logvar * 0.5).exp() * eps;
        let raw = self.decode_raw(&z);
        ElboTerms {
            reconstruction: self.likelihood.nll(x, &raw),
            kl: kl_standard_normal(&mu, &logvar),
            kl_sample: log_normal(&z, &mu, &logvar) - log_standard_normal(&z),
        }
    }

    /// The negative ELBO's terms with the reconstruction taken at the posterior mean (nats per
    /// image, shape `N` each): `−log p(x|z=μ)` and the closed-form KL — deterministic, for
    /// comparing with the codec's engine.
    pub fn terms_at_mean(&self, x: &Tensor) -> (Tensor, Tensor) {
        let (mu, logvar) = self.encode(x);
        let raw = self.decode_raw(&mu);
        (
            self.likelihood.nll(x, &raw),
            kl_standard_normal(&mu, &logvar),
        )
    }

    /// The importance-weighted bound on `log p(x)` (nats, shape `N`) with `k` samples per image
    /// (Burda et al. 2016): `log (1/k) Σ p(x, z_i) / q(z_i|x)`. With `k = 1` it is the
    /// one-sample ELBO, `−reconstruction − kl_sample` of [`Vae::elbo`] drawn from the same
    /// generator state; it rises towards `log p(x)` as `k` grows.
    pub fn iwae(&self, x: &Tensor, k: i64) -> Tensor {
        self.iwae_with_prior(x, k, None)
    }

    /// [`Vae::iwae`] under the prior `N(z; 0, I) · exp(log_tilt(z))` (unnormalised: the
    /// caller subtracts its log normaliser): `log_tilt` maps latents (`M×latent`) to the extra
    /// log density (`M`). `None`: the standard normal prior, exactly [`Vae::iwae`] (the same
    /// draws from the same generator state).
    pub fn iwae_with_prior(
        &self,
        x: &Tensor,
        k: i64,
        log_tilt: Option<&dyn Fn(&Tensor) -> Tensor>,
    ) -> Tensor {
        assert!(k >= 1, "the IWAE bound needs at least one sample");
        let (mu, logvar) = self.encode(x);
        let (n, l) = (mu.size()[0], mu.size()[1]);
        // the same draws as `elbo` for k = 1: sample-major, one latent per image per sample
        let eps = Tensor::randn([k, n, l], (mu.kind(), mu.device()));
        let z = &mu.unsqueeze(0) + (&logvar * 0.5).exp().unsqueeze(0) * eps;
        let flat = z.reshape([k * n, l]);
        let raw = self.decode_raw(&flat);
        let size = x.size();
        let xk = x
            .unsqueeze(0)
            .expand([k, size[0], size[1], size[2], size[3]], false)
            .reshape([k * n, size[1], size[2], size[3]]);
        let log_px_z = -self.likelihood.nll(&xk, &raw).reshape([k, n]);
        let mut log_w = log_px_z + log_standard_normal(&z)
            - log_normal(&z, &mu.unsqueeze(0), &logvar.unsqueeze(0));
        if let Some(tilt) = log_tilt {
            log_w += tilt(&flat).reshape([k, n]);
        }
        log_w.logsumexp([0], false) - (k as f64).ln()
    }

    /// The per-image negative β-ELBO (nats): reconstruction + β·KL, one sample.
    pub fn neg_beta_elbo(&self, terms: &ElboTerms) -> Tensor {
        &terms.reconstruction + &terms.kl * self.config.beta
    }

    pub fn critic(&self) -> Option<&Critic> {
        self.critic.as_ref()
    }
}

/// The ELBO as a likelihood bound for [`crate::metrics::bpd`]: the terms reconstruction and KL
/// (closed form), one latent sample per image; they sum to the negative ELBO.
impl Likelihood for Vae {
    fn nll_terms(&self, x: &Tensor) -> Vec<Tensor> {
        let t = self.elbo(x);
        vec![t.reconstruction, t.kl]
    }
}

impl super::generative::Generative for Vae {
    fn image_shape(&self) -> [i64; 3] {
        let s = self.config.image_size as i64;
        [self.config.in_channels as i64, s, s]
    }

    fn latent_size(&self) -> i64 {
        self.config.latent as i64
    }

    fn device(&self) -> Device {
        self.device
    }

    fn decode(&self, z: &Tensor) -> Tensor {
        self.decode_mean(z)
    }

    fn has_encoder(&self) -> bool {
        true
    }

    fn encode(&self, x: &Tensor) -> Option<Tensor> {
        Some(Vae::encode(self, x).0)
    }
}

/// Mean of a tensor as a number.
fn mean(t: &Tensor) -> f64 {
    t.mean(Kind::Float).double_value(&[])
}
