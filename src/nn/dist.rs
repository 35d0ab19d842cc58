//! Distributions the generative families share: pixel likelihoods of a decoder's raw outputs
//! ([`PixelLikelihood`]: Bernoulli on `pixel/255`, discretized Gaussian, discretized logistic
//! mixture over the 256 pixel values) and the diagonal Gaussians of latent variables.
//!
//! Raw outputs are `N×(P·C)×H×W` for `C` channels and `P` values per sub-pixel
//! ([`PixelLikelihood::params_per_subpixel`]), parameter-major: `raw[:, p·C + c]`.
//! The discretized likelihoods work on pixels scaled to `[-1, 1]` (`x/127.5 − 1`): the bin of a
//! value is `±1/255` around it, and the edge values 0 and 255 take the tails below and above
//! (as in PixelCNN++), so their probabilities over the 256 values sum to 1 and their NLL is an
//! exact discrete NLL. The Bernoulli is not a distribution over the 256 values (it scores the
//! soft target `pixel/255`): its "bits/dim" is the usual binary cross-entropy figure, not
//! comparable with the others.

use serde::{Deserialize, Serialize};
use tch::{Kind, Tensor};

use super::layers::{to_pixels, to_unit};

/// Which pixel likelihood a decoder has.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum LikelihoodKind {
    /// Bernoulli with the target `pixel/255` (binary cross-entropy).
    Bernoulli,
    /// Gaussian of the pixel scaled to `[-1, 1]`, discretized over the 256 values; its log
    /// standard deviation fixed or learned (one scalar).
    Gaussian,
    /// Mixture of logistics, discretized over the 256 values (per sub-pixel, independent).
    Logistic,
}

/// Log scales below this are clamped (PixelCNN++'s floor).
const LOG_SCALE_MIN: f64 = -7.0;
/// Half a bin of the `[-1, 1]` scale.
const HALF_BIN: f64 = 1.0 / 255.0;

/// A pixel likelihood with its shape parameters.
#[derive(Debug)]
pub struct PixelLikelihood {
    pub kind: LikelihoodKind,
    /// Components of the logistic mixture.
    pub mixtures: usize,
    /// The Gaussian's log standard deviation (in units of `[-1, 1]`): a scalar, fixed or a
    /// trained variable.
    pub log_std: Tensor,
}

impl PixelLikelihood {
    /// Raw values per sub-pixel: 1 (Bernoulli logit, Gaussian mean), `3·mixtures` (logistic:
    /// logits, means, log scales).
    pub fn params_per_subpixel(kind: LikelihoodKind, mixtures: usize) -> usize {
        match kind {
            LikelihoodKind::Bernoulli | LikelihoodKind::Gaussian => 1,
            LikelihoodKind::Logistic => 3 * mixtures,
        }
    }

    /// Per-image negative log-likelihood in nats of pixels `x` (`N×C×H×W`, float `0..=255`)
    /// given raw outputs `raw` (`N×(P·C)×H×W`). `raw` may carry extra leading sample axes
    /// folded into `N` as long as `x` is broadcast to match.
    pub fn nll(&self, x: &Tensor, raw: &Tensor) -> Tensor {
        let n = x.size()[0];
        let elements = match self.kind {
            LikelihoodKind::Bernoulli => {
                let t = x / 255.0;
                raw.softplus() - t * raw
            }
            LikelihoodKind::Gaussian => gaussian_nll(x, raw, &self.log_std),
            LikelihoodKind::Logistic => logistic_mixture_nll(x, raw, self.mixtures),
        };
        elements
            .reshape([n, -1])
            .sum_dim_intlist(1, false, Kind::Float)
    }

    /// The likelihood's mean image (`N×C×H×W`, float `0..=255`): differentiable, for showing
    /// and for a critic to judge.
    pub fn mean(&self, raw: &Tensor) -> Tensor {
        match self.kind {
            LikelihoodKind::Bernoulli => raw.sigmoid() * 255.0,
            LikelihoodKind::Gaussian => to_pixels(raw),
            LikelihoodKind::Logistic => {
                let (logits, means, _) = split_mixture(raw, self.mixtures);
                to_pixels(&(logits.softmax(1, Kind::Float) * means).sum_dim_intlist(
                    1,
                    false,
                    Kind::Float,
                ))
            }
        }
    }
}

/// The NLL (nats) of each sub-pixel given the log-probabilities of its bin: the lower tail for
/// 0, the upper tail for 255, the bin's mass in between (its density times the bin width where
/// the mass is too small to subtract accurately).
fn discretized(
    x: &Tensor,
    log_cdf_plus: Tensor,
    log_sf_min: Tensor,
    mass: Tensor,
    log_density_mid: Tensor,
) -> Tensor {
    let inner = mass
        .clamp_min(1e-12)
        .log()
        .where_self(&mass.gt(1e-5), &(log_density_mid + (2.0 * HALF_BIN).ln()));
    let upper = log_sf_min.where_self(&x.ge(255.0), &inner);
    let log_p = log_cdf_plus.where_self(&x.le(0.0), &upper);
    -log_p
}

/// NLL per sub-pixel of the discretized Gaussian with means `raw` (in `[-1, 1]` units) and log
/// standard deviation `log_std` (a scalar).
fn gaussian_nll(x: &Tensor, raw: &Tensor, log_std: &Tensor) -> Tensor {
    let log_std = log_std.clamp_min(LOG_SCALE_MIN);
    let inv = (-&log_std).exp();
    let centered = to_unit(x) - raw;
    let plus = (&centered + HALF_BIN) * &inv;
    let min = (&centered - HALF_BIN) * &inv;
    // Φ(plus) − Φ(min), taken in the lower tail of the two (accurate there)
    let mass = ((-&min).special_ndtr() - (-&plus).special_ndtr()).where_self(
        &centered.gt(0.0),
        &(plus.special_ndtr() - min.special_ndtr()),
    );
    let mid = &centered * &inv;
    let log_density_mid = -0.5 * mid.square() - 0.5 * (2.0 * std::f64::consts::PI).ln() - &log_std;
    discretized(
        x,
        plus.special_log_ndtr(),
        (-min).special_log_ndtr(),
        mass,
        log_density_mid,
    )
}

/// The logistic mixture's raw outputs `N×(3M·C)×H×W` as logits, means and log scales, each
/// `N×M×C×H×W`.
fn split_mixture(raw: &Tensor, mixtures: usize) -> (Tensor, Tensor, Tensor) {
    let (n, pc, h, w) = raw.size4().expect("raw outputs are 4-d");
    let m = mixtures as i64;
    let c = pc / (3 * m);
    let p = raw.reshape([n, 3, m, c, h, w]);
    (
        p.select(1, 0),
        p.select(1, 1),
        p.select(1, 2).clamp_min(LOG_SCALE_MIN),
    )
}

/// NLL per sub-pixel of the discretized logistic mixture.
fn logistic_mixture_nll(x: &Tensor, raw: &Tensor, mixtures: usize) -> Tensor {
    let (logits, means, log_scales) = split_mixture(raw, mixtures);
    let x = x.unsqueeze(1); // N×1×C×H×W against the components
    let inv = (-&log_scales).exp();
    let centered = to_unit(&x) - means;
    let plus = (&centered + HALF_BIN) * &inv;
    let min = (&centered - HALF_BIN) * &inv;
    let cdf_plus = plus.sigmoid();
    let cdf_min = min.sigmoid();
    let log_cdf_plus = &plus - plus.softplus();
    let log_sf_min = -min.softplus();
    let mid = &centered * &inv;
    let log_density_mid = &mid - &log_scales - 2.0 * mid.softplus();
    let nll = discretized(
        &x.expand_as(&centered),
        log_cdf_plus,
        log_sf_min,
        cdf_plus - cdf_min,
        log_density_mid,
    );
    let log_p = (logits.log_softmax(1, Kind::Float) - nll).logsumexp([1], false);
    -log_p
}

/// KL divergence of `N(mu, exp(logvar))` from the standard normal, summed per row (nats).
pub fn kl_standard_normal(mu: &Tensor, logvar: &Tensor) -> Tensor {
    ((mu.square() + logvar.exp() - 1.0 - logvar) * 0.5).sum_dim_intlist(-1, false, Kind::Float)
}

/// Log density of `z` under `N(mu, exp(logvar))`, summed over the last axis (nats).
pub fn log_normal(z: &Tensor, mu: &Tensor, logvar: &Tensor) -> Tensor {
    let d = z.size().last().copied().unwrap_or(1) as f64;
    ((z - mu).square() * (-logvar).exp() + logvar).sum_dim_intlist(-1, false, Kind::Float) * -0.5
        - 0.5 * d * (2.0 * std::f64::consts::PI).ln()
}

/// Log density of `z` under the standard normal, summed over the last axis (nats).
pub fn log_standard_normal(z: &Tensor) -> Tensor {
    let d = z.size().last().copied().unwrap_or(1) as f64;
    z.square().sum_dim_intlist(-1, false, Kind::Float) * -0.5
        - 0.5 * d * (2.0 * std::f64::consts::PI).ln()
}

#[cfg(test)]
mod tests {
    use super::*;
    use tch::Device;

    /// Every pixel value 0..=255 once, as an `1×1×1×256` image.
    fn all_values() -> Tensor {
        Tensor::arange(256, (Kind::Float, Device::Cpu)).reshape([1, 1, 1, 256])
    }

    #[test]
    fn discretized_likelihoods_sum_to_one_over_the_256_values() {
        let x = all_values();
        for (kind, mixtures, raw) in [
            (
                LikelihoodKind::Gaussian,
                1,
                Tensor::full([1, 1, 1, 256], 0.3, (Kind::Float, Device::Cpu)),
            ),
            (LikelihoodKind::Logistic, 2, {
                // logits, means, log scales of two components, the same at every position
                let per: Vec<f32> = vec![0.2, -0.4, -0.5, 0.6, -3.0, -1.5];
                Tensor::from_slice(&per)
                    .reshape([1, 6, 1, 1])
                    .expand([1, 6, 1, 256], false)
                    .contiguous()
            }),
        ] {
            for log_std in [-4.0, -1.0] {
                let lik = PixelLikelihood {
                    kind,
                    mixtures,
                    log_std: Tensor::from(log_std as f32),
                };
                let nll = match kind {
                    LikelihoodKind::Gaussian => gaussian_nll(&x, &raw, &lik.log_std),
                    _ => logistic_mixture_nll(&x, &raw, mixtures),
                };
                let total = (-&nll).exp().sum(Kind::Double).double_value(&[]);
                assert!((total - 1.0).abs() < 2e-3, "{kind:?} {log_std}: {total}");
                // and the per-image NLL is the sum of the sub-pixels'
                let per_image = lik.nll(&x, &raw).double_value(&[0]);
                let sum = nll.sum(Kind::Double).double_value(&[]);
                assert!((per_image - sum).abs() < 1e-2 * sum.abs().max(1.0));
            }
        }
    }

    #[test]
    fn bernoulli_is_binary_cross_entropy_and_means_are_pixels() {
        let lik = PixelLikelihood {
            kind: LikelihoodKind::Bernoulli,
            mixtures: 1,
            log_std: Tensor::from(0f32),
        };
        let x = Tensor::from_slice(&[0f32, 255.0]).reshape([1, 1, 1, 2]);
        let raw = Tensor::from_slice(&[0f32, 0.0]).reshape([1, 1, 1, 2]);
        let nll = lik.nll(&x, &raw).double_value(&[0]);
        assert!((nll - 2.0 * std::f64::consts::LN_2).abs() < 1e-6);
        let mean = lik.mean(&raw);
        assert!((mean.double_value(&[0, 0, 0, 0]) - 127.5).abs() < 1e-4);
    }

    #[test]
    fn latent_gaussians() {
        let mu = Tensor::from_slice(&[0.5f32, -1.0]).reshape([1, 2]);
        let logvar = Tensor::from_slice(&[0.2f32, -0.3]).reshape([1, 2]);
        let kl = kl_standard_normal(&mu, &logvar).double_value(&[0]);
        // KL = E_q[log q − log p], by Monte Carlo
        tch::manual_seed(3);
        let eps = Tensor::randn([200_000, 2], (Kind::Float, Device::Cpu));
        let z = &mu + (&logvar * 0.5).exp() * eps;
        let mc = (log_normal(&z, &mu, &logvar) - log_standard_normal(&z))
            .mean(Kind::Double)
            .double_value(&[]);
        assert!((kl - mc).abs() < 0.01, "{kl} vs {mc}");
    }
}
