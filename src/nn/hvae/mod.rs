//! The hierarchical VAE (Bit-Swap's structure, Kingma, Abbeel & Ho 2019): latents
//! `z_1 … z_L` forming a Markov chain both ways, the generative model
//! `p(z_L) p(z_{L−1}|z_L) ⋯ p(z_1|z_2) p(x|z_1)` and the inference model
//! `q(z_1|x) q(z_2|z_1) ⋯ q(z_L|z_{L−1})`, every conditional a diagonal Gaussian given by an MLP,
//! `p(z_L)` the standard normal, `p(x|z_1)` the discretized logistic mixture over the 256 values.
//! It is the codec's `vae` family with `upper_latents` (`idfcodec_codec::model::vae::arch`): its
//! `VarStore` holds exactly the codec's tensors (`encoder`, `decoder`, then `encoder{l}` and
//! `decoder{l}` for `l = 2..=L`), and the codec codes it by bits-back ANS in Bit-Swap's order.
//!
//! The negative ELBO per image: `−log p(x|z_1) + Σ_{l<L} [log q(z_l|z_{l−1}) − log p(z_l|z_{l+1})]
//! + KL(q(z_L|z_{L−1}) ‖ N(0, I))`, one reparameterised sample per image (the top KL in closed
//! form given the sampled `z_{L−1}`); evaluations add the IWAE bound ([`Hvae::iwae`]).

pub mod trainable;

use tch::{nn, Device, Tensor};

use super::dist::{kl_standard_normal, log_normal, log_standard_normal, PixelLikelihood};
use super::layers::{to_unit, Activation, Hidden, ImageShape, ImageToVector, Mlp, VectorToImage};
use crate::metrics::bpd::Likelihood;
use idfcodec_codec::model::vae::arch::LOGVAR_RANGE;
pub use trainable::HvaeConfig;

/// A hierarchical VAE (see the module docs).
pub struct Hvae {
    config: HvaeConfig,
    encoder: ImageToVector,
    decoder: VectorToImage,
    /// For `l = 2..=L` (index `l − 2`): `q(z_l|z_{l−1})` and `p(z_{l−1}|z_l)`.
    upper: Vec<(Mlp, Mlp)>,
    likelihood: PixelLikelihood,
    device: Device,
}

/// One reparameterised draw of every layer with its log densities (nats per image, shape `N`).
struct Draw {
    /// `z_1 … z_L`.
    z: Vec<Tensor>,
    /// `log q(z_l|·)` at the draw, per layer.
    log_q: Vec<Tensor>,
    /// The top posterior's means and log-variances.
    top: (Tensor, Tensor),
}

/// A network's `2n` outputs as means and clamped log-variances (the codec's clamp).
fn mean_logvar(h: &Tensor) -> (Tensor, Tensor) {
    let parts = h.chunk(2, 1);
    let lv = parts[1].clamp(f64::from(LOGVAR_RANGE.0), f64::from(LOGVAR_RANGE.1));
    (parts[0].shallow_clone(), lv)
}

fn sample(mu: &Tensor, logvar: &Tensor) -> Tensor {
    mu + (logvar * 0.5).exp() * mu.randn_like()
}

impl Hvae {
    pub fn new(p: &nn::Path, config: &HvaeConfig) -> Self {
        let latents = &config.latents;
        let shape = ImageShape {
            channels: config.in_channels,
            size: config.image_size,
        };
        let out = ImageShape {
            channels: config.in_channels * 3 * config.mixtures,
            size: config.image_size,
        };
        let arch = super::layers::Arch::Mlp;
        let h = config.hidden;
        let upper = latents
            .windows(2)
            .enumerate()
            .map(|(k, pair)| {
                let l = k + 2;
                (
                    Mlp::new(
                        &(p / format!("encoder{l}")),
                        pair[0],
                        h,
                        2 * pair[1],
                        Activation::Relu,
                    ),
                    Mlp::new(
                        &(p / format!("decoder{l}")),
                        pair[1],
                        h,
                        2 * pair[0],
                        Activation::Relu,
                    ),
                )
            })
            .collect();
        Hvae {
            encoder: ImageToVector::new(
                &(p / "encoder"),
                arch,
                shape,
                Hidden::width(h),
                2 * latents[0],
                Activation::Relu,
            ),
            decoder: VectorToImage::new(
                &(p / "decoder"),
                arch,
                latents[0],
                out,
                Hidden::width(h),
                Activation::Relu,
            ),
            upper,
            likelihood: PixelLikelihood {
                kind: super::dist::LikelihoodKind::Logistic,
                mixtures: config.mixtures,
                log_std: Tensor::from(0f32),
            },
            config: config.clone(),
            device: p.device(),
        }
    }

    pub fn config(&self) -> &HvaeConfig {
        &self.config
    }

    /// Stochastic layers `L`.
    pub fn layers(&self) -> usize {
        self.config.latents.len()
    }

    /// `q(z_1|x)`: means and log-variances of pixels `x` (float).
    pub fn encode(&self, x: &Tensor) -> (Tensor, Tensor) {
        mean_logvar(&self.encoder.forward(&to_unit(x)))
    }

    /// `q(z_l|z_{l−1})` for `l ≥ 2`.
    pub fn encode_latent(&self, l: usize, below: &Tensor) -> (Tensor, Tensor) {
        mean_logvar(&self.upper[l - 2].0.forward(below))
    }

    /// `p(z_{l−1}|z_l)` for `l ≥ 2`.
    pub fn prior_below(&self, l: usize, above: &Tensor) -> (Tensor, Tensor) {
        mean_logvar(&self.upper[l - 2].1.forward(above))
    }

    /// The decoder's raw outputs for `z_1`.
    pub fn decode_raw(&self, z1: &Tensor) -> Tensor {
        self.decoder.forward(z1)
    }

    fn draw(&self, x: &Tensor) -> Draw {
        let (mut mu, mut lv) = self.encode(x);
        let mut z = Vec::new();
        let mut log_q = Vec::new();
        for l in 1..=self.layers() {
            if l > 1 {
                (mu, lv) = self.encode_latent(l, &z[l - 2]);
            }
            let zl = sample(&mu, &lv);
            log_q.push(log_normal(&zl, &mu, &lv));
            z.push(zl);
        }
        Draw {
            z,
            log_q,
            top: (mu, lv),
        }
    }

    /// The negative ELBO's terms per image (nats, shape `N`), one draw: the reconstruction
    /// `−log p(x|z_1)`, then for each layer `l < L` the one-sample
    /// `log q(z_l|·) − log p(z_l|z_{l+1})`, then the top's closed-form
    /// `KL(q(z_L|z_{L−1}) ‖ N(0, I))`. They sum to the negative ELBO.
    pub fn elbo_terms(&self, x: &Tensor) -> Vec<Tensor> {
        let d = self.draw(x);
        let mut terms = vec![self.likelihood.nll(x, &self.decode_raw(&d.z[0]))];
        let layers = self.layers();
        for l in 1..layers {
            let (pm, plv) = self.prior_below(l + 1, &d.z[l]);
            terms.push(&d.log_q[l - 1] - log_normal(&d.z[l - 1], &pm, &plv));
        }
        terms.push(kl_standard_normal(&d.top.0, &d.top.1));
        terms
    }

    /// `log p(x, z) − log q(z|x)` per image at one draw (nats, shape `N`).
    fn log_weight(&self, x: &Tensor) -> Tensor {
        let d = self.draw(x);
        let layers = self.layers();
        let mut w = -self.likelihood.nll(x, &self.decode_raw(&d.z[0]));
        for l in 1..layers {
            let (pm, plv) = self.prior_below(l + 1, &d.z[l]);
            w += log_normal(&d.z[l - 1], &pm, &plv);
        }
        w += log_standard_normal(&d.z[layers - 1]);
        for lq in &d.log_q {
            w -= lq;
        }
        w
    }

    /// The importance-weighted bound on `log p(x)` (nats, shape `N`) with `k` samples per image
    /// (Burda et al. 2016), each a draw of the whole chain.
    pub fn iwae(&self, x: &Tensor, k: i64) -> Tensor {
        assert!(k >= 1, "the IWAE bound needs at least one sample");
        let size = x.size();
        let n = size[0];
        let xk = x
            .unsqueeze(0)
            .expand([k, size[0], size[1], size[2], size[3]], false)
            .reshape([k * n, size[1], size[2], size[3]]);
        let log_w = self.log_weight(&xk).reshape([k, n]);
        log_w.logsumexp([0], false) - (k as f64).ln()
    }

    /// The negative ELBO's terms with every latent at its posterior mean (nats per image, shape
    /// `N` each), as the codec's `terms_at_mean`: `−log p(x|z_1 = μ_1)` and the sum of the
    /// closed-form KLs `KL(q(z_l|μ_{l−1}) ‖ p(z_l|μ_{l+1}))`, the top's to `N(0, I)` —
    /// deterministic, for comparing with the codec's engine.
    pub fn terms_at_mean(&self, x: &Tensor) -> (Tensor, Tensor) {
        let mut post = vec![self.encode(x)];
        for l in 2..=self.layers() {
            let below = post[l - 2].0.shallow_clone();
            post.push(self.encode_latent(l, &below));
        }
        let rec = self.likelihood.nll(x, &self.decode_raw(&post[0].0));
        let mut kl = Tensor::zeros_like(&rec);
        for l in 1..=self.layers() {
            let (mu, lv) = &post[l - 1];
            kl += if l < self.layers() {
                let (pm, plv) = self.prior_below(l + 1, &post[l].0);
                ((&plv - lv + (lv.exp() + (mu - &pm).square()) / plv.exp() - 1.0) * 0.5)
                    .sum_dim_intlist(-1, false, tch::Kind::Float)
            } else {
                kl_standard_normal(mu, lv)
            };
        }
        (rec, kl)
    }

    pub fn device(&self) -> Device {
        self.device
    }
}

/// The negative ELBO as a likelihood bound for [`crate::metrics::bpd`]: the reconstruction and
/// one KL term per layer ([`Hvae::elbo_terms`]).
impl Likelihood for Hvae {
    fn nll_terms(&self, x: &Tensor) -> Vec<Tensor> {
        self.elbo_terms(x)
    }
}
