//! A VAE with an energy-based latent prior pulled back from a WGAN critic (`family =
//! "ebm-prior"`; discriminator-driven latent sampling, Che et al. 2020).
//!
//! The model is a [`Vae`] (decoder `G`, encoder `q(z|x)`, any pixel likelihood; the plan's is
//! the Gaussian with fixed `log_std`) with a WGAN-GP critic `D` trained on data against the
//! decoder's mean images `G(z)`, `z ~ N(0, I)`. The critic's energy is `E(x) = −D(x)`, and the
//! prior is tilted by it:
//!
//! `p(z) = N(z; 0, I) · exp(−λ E(G(z))) / Z`, `Z = E_{N(z;0,I)}[exp(−λ E(G(z)))]`,
//!
//! with `λ = pull_back_energy_weight`. Its log-likelihood is estimated by importance sampling
//! with the posterior as proposal, `log p(x) ≈ log (1/k) Σ p(x|z_i) N(z_i) exp(−λE(G(z_i))) /
//! q(z_i|x) − log Z` ([`EbmPrior::log_likelihood`]), with `log Z` by Monte Carlo
//! ([`math::log_partition`]); it is sampled by MALA on `log p(z)` ([`math::mala`], through
//! [`crate::nn::generative::Sampler`]).

pub mod math;
pub mod trainable;

use tch::{nn, Device, Kind, Tensor};

use super::dist::log_standard_normal;
use super::gan::Critic;
use super::generative::Generative;
use super::vae::Vae;
pub use trainable::EbmPriorConfig;

/// The VAE, its critic and the prior's tilt.
pub struct EbmPrior {
    config: EbmPriorConfig,
    vae: Vae,
}

impl EbmPrior {
    pub fn new(p: &nn::Path, config: &EbmPriorConfig) -> Self {
        EbmPrior {
            vae: Vae::with_critic(p, &config.vae_with_critic()),
            config: config.clone(),
        }
    }

    pub fn config(&self) -> &EbmPriorConfig {
        &self.config
    }

    /// The VAE (encoder, decoder, likelihood) under the standard normal prior.
    pub fn vae(&self) -> &Vae {
        &self.vae
    }

    pub fn critic(&self) -> &Critic {
        self.vae.critic().expect("built with a critic")
    }

    /// `λ`.
    pub fn lambda(&self) -> f64 {
        self.config.pull_back_energy_weight
    }

    /// The critic's energy `E(x) = −D(x)` of images (pixels, float `0..=255`), shape `N`: low
    /// where the critic finds images real.
    pub fn energy(&self, pixels: &Tensor) -> Tensor {
        -self.critic().score(pixels)
    }

    /// The prior's log tilt `−λ E(G(z))` of latents `z` (`N×latent`), shape `N`: the log
    /// weight whose mean under `N(0, I)` is `Z`.
    pub fn log_tilt(&self, z: &Tensor) -> Tensor {
        self.energy(&self.vae.decode_mean(z)) * (-self.lambda())
    }

    /// `log N(z; 0, I) − λ E(G(z))`: the prior's log density without `−log Z`.
    pub fn unnormalised_log_prior(&self, z: &Tensor) -> Tensor {
        log_standard_normal(z) + self.log_tilt(z)
    }

    /// The importance-sampled estimate of `log p(x)` (nats, shape `N`) of pixels `x` under the
    /// tilted prior, with `k` posterior samples per image and the given `log Z`. With `λ = 0`
    /// (and `log Z = 0`) it is exactly [`Vae::iwae`] of the same draws.
    pub fn log_likelihood(&self, x: &Tensor, k: i64, log_z: f64) -> Tensor {
        let tilt = |z: &Tensor| self.log_tilt(z);
        self.vae.iwae_with_prior(x, k, Some(&tilt)) - log_z
    }

    /// The mean negative log-likelihood (nats per image) of `images` (`u8`) with `k` samples
    /// each and the given `log Z`, in batches of about `batch / k` images; `progress(done)` after
    /// each batch with the images done.
    pub fn dataset_nll(
        &self,
        images: &Tensor,
        k: i64,
        log_z: f64,
        batch: i64,
        device: Device,
        progress: &mut dyn FnMut(i64),
    ) -> f64 {
        let n = images.size()[0];
        let per = (batch / k).max(1);
        let mut total = 0.0;
        let mut done = 0;
        crate::metrics::bpd::for_each_batch(images, per, device, |x| {
            total -= self
                .log_likelihood(x, k, log_z)
                .sum(Kind::Double)
                .double_value(&[]);
            done += x.size()[0];
            progress(done);
        });
        total / n.max(1) as f64
    }

    /// `KL(q(z|x) ‖ p_λ(z))` per image of pixels `x` (nats, shape `N`, with its parts), the
    /// posterior's expectation of the energy from `samples` draws per image, the given `log Z`.
    pub fn tilted_kl(&self, x: &Tensor, samples: i64, log_z: f64) -> math::TiltedKl {
        let (mu, logvar) = self.vae.encode(x);
        math::tilted_kl(&mu, &logvar, &|z| self.log_tilt(z), samples, log_z)
    }

    /// The means of the ELBO's terms under the tilted prior over `images` (`u8`): the
    /// reconstruction (one posterior draw per image), `KL(q ‖ N(0, I))`, `λ E_q[E(G(z))]` and
    /// `KL(q ‖ p_λ)` (`samples` draws per image), in batches of about `batch / samples` images;
    /// `progress(done)` after each batch.
    pub fn dataset_tilted_elbo(
        &self,
        images: &Tensor,
        samples: i64,
        log_z: f64,
        batch: i64,
        device: Device,
        progress: &mut dyn FnMut(i64),
    ) -> TiltedElbo {
        let sum = |t: &Tensor| t.sum(Kind::Double).double_value(&[]);
        let n = images.size()[0];
        let mut total = [0.0; 4];
        let mut done = 0;
        crate::metrics::bpd::for_each_batch(images, (batch / samples).max(1), device, |x| {
            let reconstruction = self.vae.elbo(x).reconstruction;
            let kl = self.tilted_kl(x, samples, log_z);
            for (t, v) in
                total
                    .iter_mut()
                    .zip([&reconstruction, &kl.standard, &-&kl.mean_tilt, &kl.kl])
            {
                *t += sum(v);
            }
            done += x.size()[0];
            progress(done);
        });
        let m = |v: f64| v / n.max(1) as f64;
        TiltedElbo {
            reconstruction: m(total[0]),
            kl_standard: m(total[1]),
            energy: m(total[2]),
            kl: m(total[3]),
        }
    }
}

/// The means over a data set of the ELBO's terms under the tilted prior (nats per image), from
/// [`EbmPrior::dataset_tilted_elbo`]: `−ELBO_λ = reconstruction + kl`.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct TiltedElbo {
    /// `E_q[−log p(x|z)]`, one draw of `q(z|x)` per image (the VAE's own term).
    pub reconstruction: f64,
    /// `KL(q(z|x) ‖ N(0, I))`, closed form.
    pub kl_standard: f64,
    /// `λ · E_q[E(G(z))]`, from the KL's draws.
    pub energy: f64,
    /// `KL(q(z|x) ‖ p_λ(z)) = kl_standard + energy + log Z` ([`math::tilted_kl`]).
    pub kl: f64,
}

impl TiltedElbo {
    /// `−ELBO_λ = reconstruction + KL(q ‖ p_λ)`, an upper bound on the NLL under the tilted prior
    /// (for the exact `log Z`).
    pub fn neg_elbo(&self) -> f64 {
        self.reconstruction + self.kl
    }
}

/// The ebm-prior model of the run in `run` (its checkpoint's weights) and the run's state;
/// `lambda`, if given, replaces the run's `pull_back_energy_weight` (it changes no weight: one
/// run serves a `λ` grid). An error for a run of another family.
pub fn load_run(
    run: &std::path::Path,
    lambda: Option<f64>,
    device: Device,
) -> Result<(EbmPrior, crate::train::checkpoint::RunState), crate::train::TrainError> {
    use crate::train::{checkpoint, TrainError};
    let mut state = checkpoint::read_state(run)?;
    let family = state.config.model.family();
    let config = state.config.model.of_mut::<EbmPrior>().ok_or_else(|| {
        TrainError::Config(format!(
            "{} is a {} run; NLL under the tilted prior and log Z need an ebm-prior run",
            run.display(),
            family
        ))
    })?;
    if let Some(l) = lambda {
        if !l.is_finite() {
            return Err(TrainError::Config("λ must be finite".into()));
        }
        config.pull_back_energy_weight = l;
    }
    let (mut vs, model) = crate::train::build_model::<EbmPrior>(&state.config, device)?;
    checkpoint::load(run, &mut vs, None)?;
    Ok((model, state))
}

impl Generative for EbmPrior {
    fn image_shape(&self) -> [i64; 3] {
        self.vae.image_shape()
    }

    fn latent_size(&self) -> i64 {
        self.vae.latent_size()
    }

    fn device(&self) -> Device {
        Generative::device(&self.vae)
    }

    fn decode(&self, z: &Tensor) -> Tensor {
        self.vae.decode_mean(z)
    }

    fn has_encoder(&self) -> bool {
        true
    }

    fn encode(&self, x: &Tensor) -> Option<Tensor> {
        Some(self.vae.encode(x).0)
    }

    fn log_prior(&self, z: &Tensor) -> Tensor {
        self.unnormalised_log_prior(z)
    }
}
