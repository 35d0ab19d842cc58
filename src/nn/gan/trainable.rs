//! The GAN as a [`Trainable`] family: its `[model]` section, two parameter groups (generator,
//! critic) and a training step of `n_critic` critic updates then one generator update.

use serde::{Deserialize, Serialize};
use tch::{nn, Device, Tensor};

use super::{critic_step, generator_loss, Gan, GanLoss};
use crate::nn::generative::Generative;
use crate::nn::layers::{count_parameters, Arch, ImageShape};
use crate::train::model::{Evaluation, LogColumns, StepReport, Trainable, Update};
use crate::train::optim::ParamGroup;

/// The GAN's `[model]` section (`family = "gan"`).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct GanConfig {
    /// `"dcgan"` (non-saturating BCE) or `"wgan-gp"`.
    pub loss: GanLoss,
    /// `"conv"` or `"mlp"`, for both networks.
    pub arch: Arch,
    /// 1 (grayscale) or 3 (RGB).
    pub in_channels: usize,
    /// Side of the square images (28 for MNIST, 32 for photo patches).
    pub image_size: usize,
    /// Size of the latent `z ~ N(0, I)`.
    pub latent: usize,
    /// Generator width: channels of its last hidden convolution (the one before has twice as
    /// many), or its MLP width.
    pub generator_width: usize,
    /// Critic width, as `generator_width`.
    pub critic_width: usize,
    /// Critic updates per generator update (each on the step's real batch with fresh latents).
    pub n_critic: usize,
    /// Weight of WGAN-GP's gradient penalty (unused by DCGAN).
    pub gradient_penalty: f64,
    /// Adam's first-moment coefficient for both networks (GANs train better with 0.5 than 0.9).
    pub beta1: f64,
    /// Adam's second-moment coefficient for both networks.
    pub beta2: f64,
}

impl Default for GanConfig {
    fn default() -> Self {
        GanConfig {
            loss: GanLoss::WganGp,
            arch: Arch::Conv,
            in_channels: 1,
            image_size: 28,
            latent: 100,
            generator_width: 32,
            critic_width: 32,
            n_critic: 5,
            gradient_penalty: 10.0,
            beta1: 0.5,
            beta2: 0.9,
        }
    }
}

impl GanConfig {
    pub fn shape(&self) -> ImageShape {
        ImageShape {
            channels: self.in_channels,
            size: self.image_size,
        }
    }
}

/// The generator's parameters are group 0 (one step per training step), the critic's group 1.
const GENERATOR: usize = 0;
const CRITIC: usize = 1;

impl Trainable for Gan {
    type Config = GanConfig;
    const FAMILY: &'static str = "gan";
    const NAME: &'static str = "GAN";

    /// The family came with run-config version 2; the same defaults for every version.
    fn default_config(version: u32) -> GanConfig {
        let _ = version;
        GanConfig::default()
    }

    fn validate(c: &GanConfig) -> Result<(), String> {
        crate::nn::layers::validate_image(c.arch, c.in_channels, c.image_size)?;
        if c.arch == Arch::Resnet {
            return Err(
                "model.arch = \"resnet\" is the VAE's; a GAN is \"mlp\" or \"conv\"".into(),
            );
        }
        for (name, v) in [
            ("latent", c.latent),
            ("generator_width", c.generator_width),
            ("critic_width", c.critic_width),
            ("n_critic", c.n_critic),
        ] {
            if v == 0 {
                return Err(format!("model.{name} must be at least 1"));
            }
        }
        if !(c.gradient_penalty >= 0.0 && c.gradient_penalty.is_finite()) {
            return Err("model.gradient_penalty must be a finite number >= 0".into());
        }
        for (name, b) in [("beta1", c.beta1), ("beta2", c.beta2)] {
            if !(0.0..1.0).contains(&b) {
                return Err(format!("model.{name} must be in [0, 1)"));
            }
        }
        Ok(())
    }

    fn parameter_count(c: &GanConfig) -> usize {
        let vs = nn::VarStore::new(Device::Cpu);
        let _ = Gan::new(&vs.root(), c);
        count_parameters(&vs)
    }

    fn in_channels(c: &GanConfig) -> usize {
        c.in_channels
    }

    fn size_multiple(c: &GanConfig) -> usize {
        c.arch.size_multiple()
    }

    fn image_size(c: &GanConfig) -> Option<usize> {
        Some(c.image_size)
    }

    fn new(p: &nn::Path, c: &GanConfig) -> Self {
        Gan::new(p, c)
    }

    /// The critic's loss (without penalty) on `x` against fresh generated images: the figure
    /// the log's train column shows. Training goes through [`Trainable::train_step`].
    fn loss(&self, x: &Tensor) -> Tensor {
        let fake = self.generate(&self.prior(x.size()[0])).detach();
        critic_step(&self.critic, self.config.loss, x, &fake, 0.0).objective
    }

    /// On test images against as many generated ones (latents from the run's seed): the
    /// critic's loss without penalty (the test figure), the generator's loss and the critic's
    /// mean scores; for WGAN also the Wasserstein estimate (real − generated scores). A GAN has
    /// no likelihood: these say how far apart the critic finds the two sets, nothing more.
    fn evaluate(&self, images: &Tensor, batch: i64, device: Device) -> Evaluation {
        let n = images.size()[0];
        let (mut critic, mut generator, mut real, mut fake) = (0.0, 0.0, 0.0, 0.0);
        crate::metrics::bpd::for_each_batch(images, batch, device, |x| {
            let len = x.size()[0];
            let g = self.generate(&self.prior(len));
            let s = critic_step(&self.critic, self.config.loss, x, &g, 0.0);
            let w = len as f64;
            critic += s.loss * w;
            real += s.real * w;
            fake += s.fake * w;
            generator += generator_loss(&self.critic, self.config.loss, &g).double_value(&[]) * w;
        });
        let n = n.max(1) as f64;
        let (names, _) = score_names(self.config.loss);
        let mut parts = vec![
            ("generator_loss".to_string(), generator / n),
            (names.0.to_string(), real / n),
            (names.1.to_string(), fake / n),
        ];
        if self.config.loss == GanLoss::WganGp {
            parts.push(("wasserstein_estimate".into(), (real - fake) / n));
        }
        Evaluation {
            total: critic / n,
            parts,
        }
    }

    fn lr_scale(_: &GanConfig, _: &str, param: &Tensor) -> Tensor {
        Tensor::from(1f32).to_device(param.device())
    }

    fn param_groups(c: &GanConfig) -> Vec<ParamGroup> {
        let group = |name: &str| ParamGroup {
            name: name.into(),
            prefix: format!("{name}."),
            beta1: c.beta1,
            beta2: c.beta2,
        };
        vec![group("generator"), group("critic")]
    }

    /// `n_critic` critic updates on the batch `x` with fresh latents each, then one generator
    /// update; the log gets their means.
    fn train_step(&self, x: &Tensor, update: &mut Update) -> StepReport {
        let c = &self.config;
        let n = x.size()[0];
        let (mut loss, mut real, mut fake, mut penalty) = (0.0, 0.0, 0.0, 0.0);
        for _ in 0..c.n_critic {
            let g = tch::no_grad(|| self.generate(&self.prior(n)));
            let s = critic_step(&self.critic, c.loss, x, &g, c.gradient_penalty);
            update.minimise(&s.objective, CRITIC);
            loss += s.loss;
            real += s.real;
            fake += s.fake;
            penalty += s.penalty;
        }
        let g_loss = generator_loss(&self.critic, c.loss, &self.generate(&self.prior(n)));
        update.minimise(&g_loss, GENERATOR);
        let k = c.n_critic as f64;
        let mut extras = vec![g_loss.double_value(&[]), real / k, fake / k];
        if c.loss == GanLoss::WganGp {
            extras.push(penalty / k);
        }
        StepReport {
            loss: loss / k,
            extras,
        }
    }

    fn log_columns(c: &GanConfig) -> LogColumns {
        let (names, penalty) = score_names(c.loss);
        let mut extras = vec![
            "generator_loss".to_string(),
            names.0.to_string(),
            names.1.to_string(),
        ];
        extras.extend(penalty.map(String::from));
        LogColumns {
            train: "critic_loss".into(),
            test: "critic_loss".into(),
            y_label: "critic loss (no likelihood: not bits/dim)".into(),
            plot: "losses".into(),
            extras,
        }
    }

    fn into_generative(self) -> Result<Box<dyn Generative>, String> {
        Ok(Box::new(self))
    }
}

/// The names of the critic's mean scores on real and generated images, and of the penalty
/// column: DCGAN's are probabilities of "real".
fn score_names(loss: GanLoss) -> ((&'static str, &'static str), Option<&'static str>) {
    match loss {
        GanLoss::Dcgan => (("d_real_prob", "d_fake_prob"), None),
        GanLoss::WganGp => (("critic_real", "critic_fake"), Some("gradient_penalty")),
    }
}

impl Generative for Gan {
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
        self.generate(z)
    }
}
