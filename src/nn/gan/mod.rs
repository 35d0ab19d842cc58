//! Generative adversarial networks: a generator (latent → image) against a critic (image →
//! score), with the non-saturating DCGAN loss or the WGAN-GP loss ([`GanLoss`]). The critic and
//! its losses are shared with the VAE's adversarial option ([`crate::nn::vae`]).
//!
//! Both networks are [`crate::nn::layers`]' convolutional or MLP networks; the generator ends in
//! `tanh` (pixels scaled to `[-1, 1]`), the critic sees pixels scaled the same way.

pub mod trainable;

use serde::{Deserialize, Serialize};
use tch::{nn, Device, Kind, Tensor};

use super::layers::{
    to_pixels, to_unit, Activation, Arch, Hidden, ImageShape, ImageToVector, VectorToImage,
};
pub use trainable::GanConfig;

/// The adversarial objective.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum GanLoss {
    /// Binary cross-entropy of a discriminator's logits; the generator minimises
    /// `−log D(G(z))` (the non-saturating loss of Goodfellow et al. and DCGAN).
    #[serde(rename = "dcgan")]
    Dcgan,
    /// Wasserstein loss with a gradient penalty on interpolates (Gulrajani et al. 2017).
    #[serde(rename = "wgan-gp")]
    WganGp,
}

/// A critic (a discriminator for DCGAN): image → one score per image.
pub struct Critic {
    net: ImageToVector,
}

impl Critic {
    pub fn new(p: &nn::Path, arch: Arch, shape: ImageShape, hidden: Hidden) -> Self {
        Critic {
            net: ImageToVector::new(p, arch, shape, hidden, 1, Activation::LeakyRelu),
        }
    }

    /// Scores (`N`) of images in pixels (float `0..=255`).
    pub fn score(&self, pixels: &Tensor) -> Tensor {
        self.net.forward(&to_unit(pixels)).reshape([-1])
    }
}

/// What a critic step measured: the loss it minimises (penalty included), and its parts.
pub struct CriticStep {
    /// The critic's objective with the penalty: what is minimised.
    pub objective: Tensor,
    /// The objective without the penalty (logged as the critic loss).
    pub loss: f64,
    /// Mean score on real images (DCGAN: the probability of "real"; WGAN: the raw score).
    pub real: f64,
    /// Mean score on generated images, as `real`.
    pub fake: f64,
    /// The gradient penalty, before its weight (0 for DCGAN).
    pub penalty: f64,
}

/// The critic's loss on `real` and `fake` images (pixels, float `0..=255`; `fake` detached by
/// the caller), with the gradient penalty of weight `gp_weight` for WGAN-GP.
pub fn critic_step(
    critic: &Critic,
    loss: GanLoss,
    real: &Tensor,
    fake: &Tensor,
    gp_weight: f64,
) -> CriticStep {
    let (sr, sf) = (critic.score(real), critic.score(fake));
    match loss {
        GanLoss::Dcgan => {
            let l = (-&sr).softplus().mean(Kind::Float) + sf.softplus().mean(Kind::Float);
            CriticStep {
                loss: l.double_value(&[]),
                objective: l,
                real: mean(&sr.sigmoid()),
                fake: mean(&sf.sigmoid()),
                penalty: 0.0,
            }
        }
        GanLoss::WganGp => {
            let l = sf.mean(Kind::Float) - sr.mean(Kind::Float);
            // no penalty without its weight (evaluations run without gradients)
            let (objective, penalty) = if gp_weight > 0.0 {
                let gp = gradient_penalty(critic, real, fake);
                (&l + &gp * gp_weight, gp.double_value(&[]))
            } else {
                (l.shallow_clone(), 0.0)
            };
            CriticStep {
                loss: l.double_value(&[]),
                objective,
                real: mean(&sr),
                fake: mean(&sf),
                penalty,
            }
        }
    }
}

/// The generator's loss against the critic for generated images `fake` (pixels, with their
/// graph): DCGAN's non-saturating `softplus(−D)`, WGAN's `−D`, averaged.
pub fn generator_loss(critic: &Critic, loss: GanLoss, fake: &Tensor) -> Tensor {
    let s = critic.score(fake);
    match loss {
        GanLoss::Dcgan => (-s).softplus().mean(Kind::Float),
        GanLoss::WganGp => -s.mean(Kind::Float),
    }
}

/// `E[(‖∇ critic(x̂)‖ − 1)²]` at random interpolates `x̂` of `real` and `fake` (in the critic's
/// input scale), differentiable (the gradient's graph is kept).
pub fn gradient_penalty(critic: &Critic, real: &Tensor, fake: &Tensor) -> Tensor {
    let n = real.size()[0];
    let eps = Tensor::rand([n, 1, 1, 1], (Kind::Float, real.device()));
    let mixed = (&eps * real + (-&eps + 1.0) * fake)
        .detach()
        .set_requires_grad(true);
    let scores = critic.score(&mixed).sum(Kind::Float);
    let grad = &Tensor::run_backward(&[scores], &[&mixed], true, true)[0];
    // the critic sees pixels / 127.5: the penalty is on the gradient in its own input scale
    let norm = (grad * 127.5)
        .flatten(1, -1)
        .square()
        .sum_dim_intlist(1, false, Kind::Float)
        .clamp_min(1e-12)
        .sqrt();
    (norm - 1.0).square().mean(Kind::Float)
}

fn mean(t: &Tensor) -> f64 {
    t.mean(Kind::Float).double_value(&[])
}

/// A GAN: generator and critic.
pub struct Gan {
    config: GanConfig,
    generator: VectorToImage,
    critic: Critic,
    device: Device,
}

impl Gan {
    pub fn new(p: &nn::Path, config: &GanConfig) -> Self {
        let shape = config.shape();
        Gan {
            generator: VectorToImage::new(
                &(p / "generator"),
                config.arch,
                config.latent,
                shape,
                Hidden::width(config.generator_width),
                Activation::Relu,
            ),
            critic: Critic::new(
                &(p / "critic"),
                config.arch,
                shape,
                Hidden::width(config.critic_width),
            ),
            config: config.clone(),
            device: p.device(),
        }
    }

    pub fn config(&self) -> &GanConfig {
        &self.config
    }

    /// Images (pixels, float `0..=255`) of latents `z` (`N×latent`).
    pub fn generate(&self, z: &Tensor) -> Tensor {
        to_pixels(&self.generator.forward(z).tanh())
    }

    /// `n` latents from the standard normal prior.
    pub fn prior(&self, n: i64) -> Tensor {
        Tensor::randn([n, self.config.latent as i64], (Kind::Float, self.device))
    }

    pub fn critic(&self) -> &Critic {
        &self.critic
    }
}
