//! The energy-based prior as a [`Trainable`] family: its `[model]` section (the VAE in
//! `[model.vae]`, the critic in `[model.critic]`, `λ`), trained jointly: each step
//! `critic.n_critic` WGAN-GP critic updates (the real batch against the decoder's mean images of
//! `z ~ N(0, I)`), then one VAE update of the negative ELBO, plus `critic.weight` × the mean
//! energy `E(G(z))` of prior samples when that weight is positive ("the VAE trained with the
//! critic's energy in its objective"). The step is the VAE's own (`Vae::step_with_critic`).
//! `λ` changes no training: it tilts the prior afterwards, so one run serves a whole `λ` grid.

use serde::{Deserialize, Serialize};
use tch::{nn, Device, Tensor};

use super::EbmPrior;
use crate::nn::gan::{critic_step, GanLoss};
use crate::nn::generative::Generative;
use crate::nn::layers::count_parameters;
use crate::nn::vae::trainable::{log_columns, param_groups};
use crate::nn::vae::{Adversarial, Vae, VaeConfig};
use crate::train::model::{Evaluation, LogColumns, StepReport, Trainable, Update};
use crate::train::optim::ParamGroup;

/// The `[model]` section of `family = "ebm-prior"`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct EbmPriorConfig {
    /// `λ`: the prior is `N(z; 0, I) · exp(−λ E(G(z))) / Z`. 0: the VAE's own prior.
    pub pull_back_energy_weight: f64,
    /// The VAE (`[model.vae]`, the fields of `family = "vae"`; its `adversarial` section must
    /// stay off: the critic is `[model.critic]`).
    pub vae: VaeConfig,
    /// The WGAN-GP critic (`[model.critic]`, the fields of the VAE's `[model.adversarial]`):
    /// `weight` is the weight of the energy `E(G(z)) = −D(G(z))` of prior samples in the VAE's
    /// objective (0: the VAE's objective is its plain ELBO, the critic is trained beside it).
    pub critic: Adversarial,
}

impl Default for EbmPriorConfig {
    fn default() -> Self {
        EbmPriorConfig {
            pull_back_energy_weight: 1.0,
            vae: VaeConfig {
                likelihood: crate::nn::dist::LikelihoodKind::Gaussian,
                log_std: -2.0,
                ..VaeConfig::default()
            },
            critic: Adversarial::default(),
        }
    }
}

impl EbmPriorConfig {
    /// The VAE's config with the critic in its `adversarial` section (how [`Vae::with_critic`]
    /// builds and trains it).
    pub fn vae_with_critic(&self) -> VaeConfig {
        VaeConfig {
            adversarial: self.critic.clone(),
            ..self.vae.clone()
        }
    }
}

impl Trainable for EbmPrior {
    type Config = EbmPriorConfig;
    const FAMILY: &'static str = "ebm-prior";
    const NAME: &'static str = "EBM-prior VAE";

    /// The family came with run-config version 2; the same defaults for every version.
    fn default_config(version: u32) -> EbmPriorConfig {
        let _ = version;
        EbmPriorConfig::default()
    }

    fn validate(c: &EbmPriorConfig) -> Result<(), String> {
        if c.vae.adversarial != Adversarial::default() {
            return Err(
                "model.vae.adversarial must stay unset: the ebm-prior family's critic is \
                 [model.critic]"
                    .into(),
            );
        }
        if !c.pull_back_energy_weight.is_finite() {
            return Err("model.pull_back_energy_weight must be finite".into());
        }
        <Vae as Trainable>::validate(&c.vae_with_critic())
            .map_err(|e| e.replace("model.adversarial.", "model.critic."))
    }

    fn parameter_count(c: &EbmPriorConfig) -> usize {
        let vs = nn::VarStore::new(Device::Cpu);
        let _ = EbmPrior::new(&vs.root(), c);
        count_parameters(&vs)
    }

    fn in_channels(c: &EbmPriorConfig) -> usize {
        c.vae.in_channels
    }

    fn size_multiple(c: &EbmPriorConfig) -> usize {
        c.vae.arch.size_multiple()
    }

    fn image_size(c: &EbmPriorConfig) -> Option<usize> {
        Some(c.vae.image_size)
    }

    fn new(p: &nn::Path, c: &EbmPriorConfig) -> Self {
        EbmPrior::new(p, c)
    }

    /// The VAE's loss (negative β-ELBO under `N(0, I)`, bits/dim); training goes through
    /// [`Trainable::train_step`].
    fn loss(&self, x: &Tensor) -> Tensor {
        self.vae.loss(x)
    }

    /// The VAE's evaluation (negative ELBO under `N(0, I)` in bits/dim as the test figure, its
    /// terms, the IWAE bound with `vae.iwae_samples`), then the critic on the test images
    /// against as many decoded prior samples: mean energies `energy_data`, `energy_origin`
    /// (samples from `N(0, I)`) and their gap. The tilted prior's NLL needs `log Z`:
    /// `idfcodec metrics nll`.
    fn evaluate(&self, images: &Tensor, batch: i64, device: Device) -> Evaluation {
        let mut e = self.vae.evaluate(images, batch, device);
        let (mut real, mut fake) = (0.0, 0.0);
        crate::metrics::bpd::for_each_batch(images, batch, device, |x| {
            let len = x.size()[0];
            let g = self.vae.decode_mean(&self.vae.prior(len));
            let s = critic_step(self.critic(), GanLoss::WganGp, x, &g, 0.0);
            real += s.real * len as f64;
            fake += s.fake * len as f64;
        });
        let n = images.size()[0].max(1) as f64;
        // energies are minus the critic's scores
        let (data, origin) = (-real / n, -fake / n);
        e.parts.extend([
            ("energy_data".to_string(), data),
            ("energy_origin".to_string(), origin),
            ("energy_gap".to_string(), origin - data),
        ]);
        e
    }

    fn lr_scale(_: &EbmPriorConfig, _: &str, param: &Tensor) -> Tensor {
        Tensor::from(1f32).to_device(param.device())
    }

    fn param_groups(c: &EbmPriorConfig) -> Vec<ParamGroup> {
        param_groups(Some(&c.critic))
    }

    fn train_step(&self, x: &Tensor, update: &mut Update) -> StepReport {
        self.vae.step_with_critic(x, update)
    }

    fn log_columns(c: &EbmPriorConfig) -> LogColumns {
        log_columns(Some(&c.critic))
    }

    fn into_generative(self) -> Result<Box<dyn Generative>, String> {
        Ok(Box::new(self))
    }
}
