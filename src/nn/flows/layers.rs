//! The invertible layers NICE, RealNVP and Glow are built from, one implementation each:
//! [`Coupling`] (additive or affine, checkerboard or channel mask, convolutional or MLP
//! conditioner), [`ActNorm`] (with its data-dependent start), [`Conv1x1`] (Glow's invertible
//! 1×1 convolution in LU form), [`Permute`] (channel reversal or a fixed shuffle), [`Scaling`]
//! (NICE's diagonal scaling). Every layer maps `N×C×H×W → N×C×H×W` and returns the per-image
//! log-determinant of its Jacobian (`N`, nats).

use rand::{Rng, SeedableRng};
use serde::{Deserialize, Serialize};
use tch::{nn, nn::Module, Device, Kind, Tensor};

/// An invertible layer with a tractable log-determinant.
pub trait FlowLayer {
    /// `y = f(x)` and `log|det ∂y/∂x|` per image (shape `N`).
    fn forward(&self, x: &Tensor) -> (Tensor, Tensor);
    /// `x = f⁻¹(y)`.
    fn inverse(&self, y: &Tensor) -> Tensor;
    /// Data-dependent start from this layer's input `x` on the first batch (ActNorm); the
    /// default does nothing.
    fn data_init(&self, x: &Tensor) {
        let _ = x;
    }
}

/// Per-image sum of `t` (`N×…` → `N`).
pub fn per_image_sum(t: &Tensor) -> Tensor {
    t.flatten(1, -1).sum_dim_intlist(1, false, Kind::Float)
}

/// A per-image log-determinant that does not depend on the image: `value` (a scalar tensor)
/// repeated for the `n` images.
fn constant_logdet(value: &Tensor, n: i64) -> Tensor {
    value.reshape([1]).expand([n], false)
}

/// Which sub-pixels a coupling leaves unchanged (they condition the others).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum MaskKind {
    /// Pixels with `(y + x)` even (every channel).
    Checkerboard,
    /// The first half of the channels.
    Channel,
}

/// A mask or its complement: consecutive couplings alternate so every sub-pixel gets changed.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Parity {
    Even,
    Odd,
}

impl Parity {
    /// `Even` for even `i`, `Odd` for odd.
    pub fn of(i: usize) -> Self {
        if i % 2 == 0 {
            Parity::Even
        } else {
            Parity::Odd
        }
    }
}

/// The `1×C×H×W` mask (1: kept, conditions the rest).
pub fn mask(kind: MaskKind, parity: Parity, shape: [i64; 3], device: Device) -> Tensor {
    let [c, h, w] = shape;
    let mut m = vec![0f32; (c * h * w) as usize];
    for ci in 0..c {
        for y in 0..h {
            for x in 0..w {
                let first = match kind {
                    MaskKind::Checkerboard => (y + x) % 2 == 0,
                    MaskKind::Channel => ci < c / 2,
                };
                m[((ci * h + y) * w + x) as usize] = f32::from(first == (parity == Parity::Even));
            }
        }
    }
    Tensor::from_slice(&m)
        .reshape([1, c, h, w])
        .to_device(device)
}

/// How a coupling changes the unmasked half.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum CouplingKind {
    /// `y = x + t(x_kept)` (NICE): volume preserving.
    Additive,
    /// `y = x·exp(s(x_kept)) + t(x_kept)`, `s = tanh(raw)` (RealNVP, Glow).
    Affine,
}

/// The network that computes a coupling's shift (and log-scale) from the kept half.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case", tag = "kind")]
pub enum Conditioner {
    /// 3×3 conv → ReLU → 1×1 conv → ReLU → 3×3 conv (zero-initialised), `hidden` channels.
    Conv { hidden: usize },
    /// The image flattened through `layers` hidden layers of `hidden` units (ReLU) and a
    /// zero-initialised output layer (NICE's).
    Mlp { hidden: usize, layers: usize },
}

enum Net {
    Conv(Box<[nn::Conv2D; 3]>),
    Mlp(Vec<nn::Linear>),
}

impl Net {
    fn new(p: &nn::Path, conditioner: Conditioner, shape: [i64; 3], outputs: i64) -> Self {
        let zero = || nn::Init::Const(0.0);
        match conditioner {
            Conditioner::Conv { hidden } => {
                let h = hidden as i64;
                let pad = nn::ConvConfig {
                    padding: 1,
                    ..Default::default()
                };
                let last = nn::ConvConfig {
                    padding: 1,
                    ws_init: zero(),
                    bs_init: zero(),
                    ..Default::default()
                };
                Net::Conv(Box::new([
                    nn::conv2d(p / "conv0", shape[0], h, 3, pad),
                    nn::conv2d(p / "conv1", h, h, 1, Default::default()),
                    nn::conv2d(p / "out", h, outputs * shape[0], 3, last),
                ]))
            }
            Conditioner::Mlp { hidden, layers } => {
                let d = shape.iter().product::<i64>();
                let h = hidden as i64;
                let mut fcs = Vec::with_capacity(layers + 1);
                let mut input = d;
                for l in 0..layers {
                    fcs.push(nn::linear(
                        p / format!("fc{l}"),
                        input,
                        h,
                        Default::default(),
                    ));
                    input = h;
                }
                let last = nn::LinearConfig {
                    ws_init: zero(),
                    bs_init: Some(zero()),
                    bias: true,
                };
                fcs.push(nn::linear(p / "out", input, outputs * d, last));
                Net::Mlp(fcs)
            }
        }
    }

    fn forward(&self, x: &Tensor) -> Tensor {
        match self {
            Net::Conv(convs) => {
                let [a, b, c] = convs.as_ref();
                c.forward(&b.forward(&a.forward(x).relu()).relu())
            }
            Net::Mlp(fcs) => {
                let size = x.size();
                let mut h = x.flatten(1, -1);
                for (i, fc) in fcs.iter().enumerate() {
                    h = fc.forward(&h);
                    if i + 1 < fcs.len() {
                        h = h.relu();
                    }
                }
                h.reshape([size[0], -1, size[2], size[3]])
            }
        }
    }
}

/// A coupling layer: the masked half passes unchanged and conditions the other's shift (and
/// scale). Masks are multiplicative, so checkerboard and channel splits share one code path.
pub struct Coupling {
    kind: CouplingKind,
    /// 1: kept.
    mask: Tensor,
    net: Net,
}

impl Coupling {
    pub fn new(
        p: &nn::Path,
        kind: CouplingKind,
        mask_kind: MaskKind,
        parity: Parity,
        conditioner: Conditioner,
        shape: [i64; 3],
    ) -> Self {
        let outputs = match kind {
            CouplingKind::Additive => 1,
            CouplingKind::Affine => 2,
        };
        Coupling {
            kind,
            mask: mask(mask_kind, parity, shape, p.device()),
            net: Net::new(p, conditioner, shape, outputs),
        }
    }

    /// The shift and log-scale (zero where kept; log-scale zero for additive couplings) given
    /// the kept half.
    fn shift_log_scale(&self, kept: &Tensor) -> (Tensor, Tensor) {
        let free = -&self.mask + 1.0;
        let h = self.net.forward(kept);
        match self.kind {
            CouplingKind::Additive => (h * &free, Tensor::zeros_like(kept)),
            CouplingKind::Affine => {
                let parts = h.chunk(2, 1);
                (&parts[1] * &free, parts[0].tanh() * &free)
            }
        }
    }
}

impl FlowLayer for Coupling {
    fn forward(&self, x: &Tensor) -> (Tensor, Tensor) {
        let kept = x * &self.mask;
        let (t, log_s) = self.shift_log_scale(&kept);
        let y = &kept + (x * (-&self.mask + 1.0)) * log_s.exp() + t;
        (y, per_image_sum(&log_s))
    }

    fn inverse(&self, y: &Tensor) -> Tensor {
        let kept = y * &self.mask;
        let (t, log_s) = self.shift_log_scale(&kept);
        &kept + ((y * (-&self.mask + 1.0)) - t) * (-log_s).exp()
    }
}

/// Activation normalisation: a per-channel affine map `y = (x + b)·exp(s)`, started from the
/// first batch so that its output has zero mean and unit variance per channel (Glow).
pub struct ActNorm {
    bias: Tensor,
    log_scale: Tensor,
}

impl ActNorm {
    pub fn new(p: &nn::Path, channels: i64) -> Self {
        ActNorm {
            bias: p.zeros("bias", &[1, channels, 1, 1]),
            log_scale: p.zeros("log_scale", &[1, channels, 1, 1]),
        }
    }
}

impl FlowLayer for ActNorm {
    fn forward(&self, x: &Tensor) -> (Tensor, Tensor) {
        let (n, _, h, w) = x.size4().expect("actnorm needs N×C×H×W");
        let y = (x + &self.bias) * self.log_scale.exp();
        let logdet = self.log_scale.sum(Kind::Float) * (h * w) as f64;
        (y, constant_logdet(&logdet, n))
    }

    fn inverse(&self, y: &Tensor) -> Tensor {
        y * (-&self.log_scale).exp() - &self.bias
    }

    /// `b = −mean`, `s = −log(std)` of `x` per channel (over images and pixels).
    fn data_init(&self, x: &Tensor) {
        tch::no_grad(|| {
            let dims: &[i64] = &[0, 2, 3];
            let mean = x.mean_dim(dims, true, Kind::Float);
            let var = (x - &mean).square().mean_dim(dims, true, Kind::Float);
            self.bias.shallow_clone().copy_(&-mean);
            self.log_scale
                .shallow_clone()
                .copy_(&((var + 1e-12).log() * -0.5));
        });
    }
}

/// A `C×C` random rotation (orthogonal, from a QR factorisation of a Gaussian matrix drawn
/// with `seed`), double precision on the CPU.
fn random_rotation(c: i64, seed: u64) -> Tensor {
    let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(seed);
    let values: Vec<f64> = (0..c * c)
        .map(|_| {
            // Box–Muller
            let u1: f64 = 1.0 - rng.gen::<f64>();
            let u2: f64 = rng.gen();
            (-2.0 * u1.ln()).sqrt() * (2.0 * std::f64::consts::PI * u2).cos()
        })
        .collect();
    let (q, _) = Tensor::linalg_qr(&Tensor::from_slice(&values).reshape([c, c]), "reduced");
    q
}

/// Glow's invertible 1×1 convolution with `W = P·L·(U + diag(sign·exp(log_s)))`: `P` a fixed
/// permutation, `L` unit lower-triangular, `U` strictly upper-triangular, the signs of the
/// diagonal fixed; `W` starts as a random rotation. `log|det| = H·W·Σ log_s`.
pub struct Conv1x1 {
    permutation: Tensor,
    sign: Tensor,
    lower: Tensor,
    upper: Tensor,
    log_s: Tensor,
    lower_mask: Tensor,
    eye: Tensor,
}

impl Conv1x1 {
    /// The start (rotation, `P`, signs) is drawn from `seed`, not libtorch's generator: a
    /// loaded model rebuilds the same fixed `P` and signs.
    pub fn new(p: &nn::Path, channels: i64, seed: u64) -> Self {
        let dev = p.device();
        let (perm, l, u) = Tensor::linalg_lu(&random_rotation(channels, seed), true);
        let diag = u.diagonal(0, 0, 1);
        let f = |t: Tensor| t.to_kind(Kind::Float).to_device(dev);
        let lower_mask =
            f(Tensor::ones([channels, channels], (Kind::Double, Device::Cpu)).tril(-1));
        Conv1x1 {
            permutation: f(perm),
            sign: f(diag.sign()),
            lower: p.var_copy("lower", &f(l.tril(-1))),
            upper: p.var_copy("upper", &f(u.triu(1))),
            log_s: p.var_copy("log_s", &f(diag.abs().log())),
            eye: f(Tensor::eye(channels, (Kind::Double, Device::Cpu))),
            lower_mask,
        }
    }

    /// The `C×C` matrix `W`.
    pub fn weight(&self) -> Tensor {
        let l = &self.lower * &self.lower_mask + &self.eye;
        let u = &self.upper * self.lower_mask.transpose(0, 1)
            + (&self.sign * self.log_s.exp()).diag_embed(0, -2, -1);
        self.permutation.matmul(&l).matmul(&u)
    }

    /// `log|det W|` from the LU form: `Σ log_s`.
    pub fn log_abs_det(&self) -> Tensor {
        self.log_s.sum(Kind::Float)
    }

    fn apply(x: &Tensor, w: &Tensor) -> Tensor {
        let c = w.size()[0];
        x.conv2d(
            &w.reshape([c, c, 1, 1]),
            None::<Tensor>,
            [1, 1],
            [0, 0],
            [1, 1],
            1,
        )
    }
}

impl FlowLayer for Conv1x1 {
    fn forward(&self, x: &Tensor) -> (Tensor, Tensor) {
        let (n, _, h, w) = x.size4().expect("1×1 convolution needs N×C×H×W");
        let logdet = self.log_abs_det() * (h * w) as f64;
        (Self::apply(x, &self.weight()), constant_logdet(&logdet, n))
    }

    fn inverse(&self, y: &Tensor) -> Tensor {
        Self::apply(y, &self.weight().inverse())
    }
}

/// A fixed channel permutation: reversal (RealNVP's alternation, Glow's "reverse") or a
/// random shuffle drawn from a seed (Glow's "shuffle").
pub struct Permute {
    forward: Tensor,
    backward: Tensor,
}

impl Permute {
    pub fn reverse(channels: i64, device: Device) -> Self {
        let order: Vec<i64> = (0..channels).rev().collect();
        Self::from_order(order, device)
    }

    pub fn shuffle(channels: i64, seed: u64, device: Device) -> Self {
        use rand::seq::SliceRandom;
        let mut order: Vec<i64> = (0..channels).collect();
        order.shuffle(&mut rand_chacha::ChaCha8Rng::seed_from_u64(seed));
        Self::from_order(order, device)
    }

    fn from_order(order: Vec<i64>, device: Device) -> Self {
        let mut inverse = vec![0i64; order.len()];
        for (i, &o) in order.iter().enumerate() {
            inverse[o as usize] = i as i64;
        }
        Permute {
            forward: Tensor::from_slice(&order).to_device(device),
            backward: Tensor::from_slice(&inverse).to_device(device),
        }
    }
}

impl FlowLayer for Permute {
    fn forward(&self, x: &Tensor) -> (Tensor, Tensor) {
        let n = x.size()[0];
        let zero = Tensor::zeros([n], (Kind::Float, x.device()));
        (x.index_select(1, &self.forward), zero)
    }

    fn inverse(&self, y: &Tensor) -> Tensor {
        y.index_select(1, &self.backward)
    }
}

/// NICE's diagonal scaling: `y = x·exp(s)`, one learned `s` per sub-pixel.
pub struct Scaling {
    log_scale: Tensor,
}

impl Scaling {
    pub fn new(p: &nn::Path, shape: [i64; 3]) -> Self {
        Scaling {
            log_scale: p.zeros("log_scale", &[1, shape[0], shape[1], shape[2]]),
        }
    }
}

impl FlowLayer for Scaling {
    fn forward(&self, x: &Tensor) -> (Tensor, Tensor) {
        let n = x.size()[0];
        (
            x * self.log_scale.exp(),
            constant_logdet(&self.log_scale.sum(Kind::Float), n),
        )
    }

    fn inverse(&self, y: &Tensor) -> Tensor {
        y * (-&self.log_scale).exp()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The two parities of a mask are complements, and each keeps half the sub-pixels.
    #[test]
    fn masks_of_both_parities_split_the_sub_pixels_in_halves() {
        for kind in [MaskKind::Checkerboard, MaskKind::Channel] {
            let shape = [4, 6, 6];
            let even = mask(kind, Parity::Even, shape, Device::Cpu);
            let odd = mask(kind, Parity::Odd, shape, Device::Cpu);
            assert!((&even + &odd).equal(&Tensor::ones_like(&even)));
            assert_eq!(even.sum(Kind::Float).double_value(&[]), 72.0);
        }
        let c = mask(MaskKind::Checkerboard, Parity::Even, [1, 2, 2], Device::Cpu);
        assert_eq!(
            Vec::<f32>::try_from(c.flatten(0, -1)).unwrap(),
            [1.0, 0.0, 0.0, 1.0]
        );
    }
}
