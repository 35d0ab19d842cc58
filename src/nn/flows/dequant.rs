//! Dequantization: integer pixels `x` → continuous `v = (x + u)/256 − ½` in `[−½, ½)`, with the
//! noise `u ∈ [0, 1)` uniform or drawn from a small conditional flow `q(u|x)` (variational
//! dequantization, Flow++). `−log P(x) ≤ E_q[−log p(v) + D·log 256 + log q(u|x)]`: the term
//! besides the flow's density is [`Dequantizer::dequantize`]'s per-image `D·log 256 + log q`.

use serde::{Deserialize, Serialize};
use tch::{nn, nn::Module, Kind, Tensor};

use super::layers::per_image_sum;

/// `[model] dequantization = …`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case", tag = "kind")]
pub enum Dequantization {
    /// `u ~ U[0, 1)`: `log q = 0`.
    Uniform,
    /// `u = sigmoid(μ(x) + exp(σ(x))·ε)`, `ε ~ N(0, I)`: an elementwise affine flow conditioned
    /// on the image by a two-layer conv net of `hidden` channels, then a sigmoid.
    Variational { hidden: usize },
}

pub enum Dequantizer {
    Uniform,
    Variational(Box<(nn::Conv2D, nn::Conv2D)>),
}

impl Dequantizer {
    pub fn new(p: &nn::Path, kind: Dequantization, channels: i64) -> Self {
        match kind {
            Dequantization::Uniform => Dequantizer::Uniform,
            Dequantization::Variational { hidden } => {
                let pad = nn::ConvConfig {
                    padding: 1,
                    ..Default::default()
                };
                let last = nn::ConvConfig {
                    padding: 1,
                    ws_init: nn::Init::Const(0.0),
                    bs_init: nn::Init::Const(0.0),
                    ..Default::default()
                };
                Dequantizer::Variational(Box::new((
                    nn::conv2d(p / "conv0", channels, hidden as i64, 3, pad),
                    nn::conv2d(p / "out", hidden as i64, 2 * channels, 3, last),
                )))
            }
        }
    }

    /// `v` (the flow's input, `x`'s shape) and the per-image dequantization term in nats,
    /// `D·log 256 + log q(u|x)`, for pixels `x` (float, `0..=255`). Draws from libtorch's
    /// generator.
    pub fn dequantize(&self, x: &Tensor) -> (Tensor, Tensor) {
        let d = x.size()[1..].iter().product::<i64>() as f64;
        let bins = d * 256f64.ln();
        let (u, log_q) = match self {
            Dequantizer::Uniform => {
                let n = x.size()[0];
                (x.rand_like(), Tensor::zeros([n], (Kind::Float, x.device())))
            }
            Dequantizer::Variational(nets) => {
                let (a, b) = nets.as_ref();
                let h = b.forward(&a.forward(&(x / 255.0 - 0.5)).relu());
                let parts = h.chunk(2, 1);
                let (mu, log_sigma) = (&parts[0], &parts[1]);
                let eps = x.randn_like();
                let pre = mu + log_sigma.exp() * &eps;
                // log N(ε) − log σ − log sigmoid'(pre)
                let log_q = eps.square() * -0.5
                    - 0.5 * (2.0 * std::f64::consts::PI).ln()
                    - log_sigma
                    - pre.log_sigmoid()
                    - (-&pre).log_sigmoid();
                (pre.sigmoid(), per_image_sum(&log_q))
            }
        };
        ((x + u) / 256.0 - 0.5, log_q + bins)
    }
}

/// The flow's input at the middle of each pixel's bin (no noise): what `encode` maps.
pub fn centre(x: &Tensor) -> Tensor {
    (x + 0.5) / 256.0 - 0.5
}

/// A flow's output `v` back to pixels (float; rounding gives the bin `v` falls in).
pub fn to_pixels(v: &Tensor) -> Tensor {
    (v + 0.5) * 256.0 - 0.5
}
