//! The multi-scale flow every family builds ([`Flow`]) from a description ([`FlowSpec`]): levels
//! of layers, each level optionally squeezing in its middle and factoring out half its channels
//! at its end (all levels but the last), the factored-out halves and the top under a standard
//! normal or a learned (conditional) Gaussian prior, a dequantizer in front.
//!
//! Latents are *standardised*: a factored-out `z` with prior `N(μ, σ²)` is kept as
//! `ε = (z − μ)/σ`, so the latent prior is always `N(0, I)` and sampling at temperature `T`
//! draws `ε ~ N(0, T²I)`.

use tch::{nn, nn::Module, Kind, Tensor};

use super::dequant::{self, Dequantization, Dequantizer};
use super::layers::{
    per_image_sum, ActNorm, Conditioner, Conv1x1, Coupling, CouplingKind, FlowLayer, MaskKind,
    Parity, Permute, Scaling,
};
use crate::nn::layers::{squeeze, unsqueeze};

/// One layer of a level.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum LayerSpec {
    ActNorm,
    /// Glow's invertible 1×1 convolution.
    Conv1x1,
    /// Channel reversal.
    Reverse,
    /// A fixed random channel permutation.
    Shuffle,
    Coupling {
        kind: CouplingKind,
        mask: MaskKind,
        parity: Parity,
        conditioner: Conditioner,
    },
    /// NICE's diagonal scaling.
    Scaling,
}

/// A level: layers, an optional squeeze, more layers; every level but the last then factors
/// out the second half of its channels.
#[derive(Clone, Debug, PartialEq)]
pub struct LevelSpec {
    pub before_squeeze: Vec<LayerSpec>,
    pub squeeze: bool,
    pub after_squeeze: Vec<LayerSpec>,
}

/// The prior of the factored-out halves and the top latent.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum PriorKind {
    /// `N(0, I)`.
    Standard,
    /// Glow's: a factored-out half is `N(μ, σ²)` with `(μ, log σ)` from a zero-initialised 3×3
    /// convolution of the kept half; the top latent's `(μ, log σ)` are learned per sub-pixel.
    Learned,
}

/// A whole flow.
#[derive(Clone, Debug, PartialEq)]
pub struct FlowSpec {
    pub in_channels: usize,
    pub image_size: usize,
    pub levels: Vec<LevelSpec>,
    pub prior: PriorKind,
    pub dequantization: Dequantization,
}

impl FlowSpec {
    /// The side must be a multiple of this (2 per squeeze).
    pub fn size_multiple(&self) -> usize {
        1 << self.levels.iter().filter(|l| l.squeeze).count()
    }

    /// The shapes met along the way (`C, H, W` after each level's squeeze) and the shapes of
    /// the latents (factored-out halves, then the top), or why the spec cannot be built.
    pub fn shapes(&self) -> Result<Vec<[i64; 3]>, String> {
        let s = self.image_size as i64;
        if self.in_channels == 0 || s == 0 {
            return Err("model.in_channels and model.image_size must be at least 1".into());
        }
        if self.levels.is_empty() {
            return Err("a flow needs at least one level".into());
        }
        if self.image_size % self.size_multiple() != 0 {
            return Err(format!(
                "model.image_size {} is not a multiple of {} (2 per squeeze)",
                self.image_size,
                self.size_multiple()
            ));
        }
        let mut shape = [self.in_channels as i64, s, s];
        let mut latents = Vec::new();
        for (i, level) in self.levels.iter().enumerate() {
            check_layers(&level.before_squeeze, shape)?;
            if level.squeeze {
                shape = [shape[0] * 4, shape[1] / 2, shape[2] / 2];
            }
            check_layers(&level.after_squeeze, shape)?;
            if i + 1 < self.levels.len() {
                if shape[0] < 2 {
                    return Err(format!(
                        "level {i} has {} channel(s) and cannot factor out half",
                        shape[0]
                    ));
                }
                let out = shape[0] - shape[0] / 2;
                latents.push([out, shape[1], shape[2]]);
                shape[0] /= 2;
            }
        }
        latents.push(shape);
        Ok(latents)
    }
}

fn check_layers(layers: &[LayerSpec], shape: [i64; 3]) -> Result<(), String> {
    for l in layers {
        if let LayerSpec::Coupling {
            mask: MaskKind::Channel,
            ..
        } = l
        {
            if shape[0] < 2 {
                return Err("a channel-mask coupling needs at least 2 channels".into());
            }
        }
        if let LayerSpec::Coupling {
            mask: MaskKind::Checkerboard,
            ..
        } = l
        {
            if shape[1] * shape[2] < 2 {
                return Err("a checkerboard coupling needs at least 2 pixels".into());
            }
        }
    }
    Ok(())
}

/// A Gaussian prior of one latent.
enum Prior {
    Standard,
    /// `(μ, log σ)` from the kept half.
    Conditional(nn::Conv2D),
    /// `(μ, log σ)` per sub-pixel, `1×2C×H×W`.
    Fixed(Tensor),
}

impl Prior {
    fn new(
        p: &nn::Path,
        kind: PriorKind,
        shape: [i64; 3],
        condition_channels: Option<i64>,
    ) -> Self {
        match (kind, condition_channels) {
            (PriorKind::Standard, _) => Prior::Standard,
            (PriorKind::Learned, Some(c)) => Prior::Conditional(nn::conv2d(
                p,
                c,
                2 * shape[0],
                3,
                nn::ConvConfig {
                    padding: 1,
                    ws_init: nn::Init::Const(0.0),
                    bs_init: nn::Init::Const(0.0),
                    ..Default::default()
                },
            )),
            (PriorKind::Learned, None) => {
                Prior::Fixed(p.zeros("top", &[1, 2 * shape[0], shape[1], shape[2]]))
            }
        }
    }

    /// `(μ, log σ)`, or `None` for the standard normal.
    fn params(&self, condition: &Tensor) -> Option<(Tensor, Tensor)> {
        let h = match self {
            Prior::Standard => return None,
            Prior::Conditional(conv) => conv.forward(condition),
            Prior::Fixed(t) => t.shallow_clone(),
        };
        let parts = h.chunk(2, 1);
        Some((parts[0].shallow_clone(), parts[1].shallow_clone()))
    }

    /// `ε = (z − μ)/σ` and the per-image `log p(z)`.
    fn standardise(&self, z: &Tensor, condition: &Tensor) -> (Tensor, Tensor) {
        let (eps, log_sigma) = match self.params(condition) {
            None => (z.shallow_clone(), None),
            Some((mu, log_sigma)) => ((z - mu) * (-&log_sigma).exp(), Some(log_sigma)),
        };
        let d = eps.size()[1..].iter().product::<i64>() as f64;
        let mut log_p =
            per_image_sum(&eps.square()) * -0.5 - 0.5 * d * (2.0 * std::f64::consts::PI).ln();
        if let Some(ls) = log_sigma {
            log_p -= per_image_sum(&ls.expand_as(&eps));
        }
        (eps, log_p)
    }

    fn unstandardise(&self, eps: &Tensor, condition: &Tensor) -> Tensor {
        match self.params(condition) {
            None => eps.shallow_clone(),
            Some((mu, log_sigma)) => eps * log_sigma.exp() + mu,
        }
    }
}

struct Level {
    before: Vec<Box<dyn FlowLayer>>,
    squeeze: bool,
    after: Vec<Box<dyn FlowLayer>>,
}

/// What the flow makes of `v`: standardised latents, `log|det ∂z/∂v|` and `log p(z)`.
pub struct Encoded {
    /// Factored-out halves first, the top last.
    pub eps: Vec<Tensor>,
    pub log_det: Tensor,
    pub log_prior: Tensor,
}

/// A flow's per-image NLL bound in nats, in its three parts (they sum to it).
pub struct NllParts {
    /// `−log p(z)`.
    pub prior: Tensor,
    /// `−log|det ∂z/∂v|`.
    pub log_det: Tensor,
    /// `D·log 256 + log q(u|x)`.
    pub dequantization: Tensor,
}

/// A normalizing flow on images (NICE, RealNVP, Glow).
pub struct Flow {
    spec: FlowSpec,
    latent_shapes: Vec<[i64; 3]>,
    levels: Vec<Level>,
    /// One per factored-out half, then the top's.
    priors: Vec<Prior>,
    dequantizer: Dequantizer,
}

impl Flow {
    /// Panics on a spec [`FlowSpec::shapes`] rejects (families validate first).
    pub fn new(p: &nn::Path, spec: &FlowSpec) -> Self {
        let latent_shapes = spec.shapes().expect("a valid flow spec");
        let mut shape = [
            spec.in_channels as i64,
            spec.image_size as i64,
            spec.image_size as i64,
        ];
        let mut levels = Vec::new();
        let mut priors = Vec::new();
        let mut seed = 0u64;
        for (i, l) in spec.levels.iter().enumerate() {
            let lp = p / format!("level{i}");
            let before = build_layers(&(&lp / "a"), &l.before_squeeze, shape, &mut seed);
            if l.squeeze {
                shape = [shape[0] * 4, shape[1] / 2, shape[2] / 2];
            }
            let after = build_layers(&(&lp / "b"), &l.after_squeeze, shape, &mut seed);
            levels.push(Level {
                before,
                squeeze: l.squeeze,
                after,
            });
            if i + 1 < spec.levels.len() {
                let out = latent_shapes[i];
                let kept = shape[0] - out[0];
                priors.push(Prior::new(&(&lp / "prior"), spec.prior, out, Some(kept)));
                shape[0] = kept;
            }
        }
        priors.push(Prior::new(&(p / "top_prior"), spec.prior, shape, None));
        Flow {
            spec: spec.clone(),
            latent_shapes,
            levels,
            priors,
            dequantizer: Dequantizer::new(
                &(p / "dequantizer"),
                spec.dequantization,
                spec.in_channels as i64,
            ),
        }
    }

    pub fn spec(&self) -> &FlowSpec {
        &self.spec
    }

    /// `C, H, W` of each latent (factored-out halves, then the top).
    pub fn latent_shapes(&self) -> &[[i64; 3]] {
        &self.latent_shapes
    }

    /// Sub-pixels per image (= latent dimensions).
    pub fn dims(&self) -> i64 {
        let s = self.spec.image_size as i64;
        self.spec.in_channels as i64 * s * s
    }

    /// `v` (`N×C×H×W`, the dequantized image) → latents, log-det, log prior.
    pub fn encode(&self, v: &Tensor) -> Encoded {
        self.run_forward(v, false)
    }

    /// The data-dependent start (ActNorm) from a batch `v`: each layer starts from its input.
    pub fn data_init(&self, v: &Tensor) {
        tch::no_grad(|| {
            self.run_forward(v, true);
        });
    }

    fn run_forward(&self, v: &Tensor, init: bool) -> Encoded {
        let n = v.size()[0];
        let mut h = v.shallow_clone();
        let mut log_det = Tensor::zeros([n], (Kind::Float, v.device()));
        let mut eps = Vec::new();
        let mut log_prior = Tensor::zeros([n], (Kind::Float, v.device()));
        let step = |layers: &[Box<dyn FlowLayer>], h: &mut Tensor, log_det: &mut Tensor| {
            for layer in layers {
                if init {
                    layer.data_init(h);
                }
                let (y, ld) = layer.forward(h);
                *h = y;
                *log_det = &*log_det + ld;
            }
        };
        for (i, level) in self.levels.iter().enumerate() {
            step(&level.before, &mut h, &mut log_det);
            if level.squeeze {
                h = squeeze(&h);
            }
            step(&level.after, &mut h, &mut log_det);
            if i + 1 < self.levels.len() {
                let kept = h.size()[1] - self.latent_shapes[i][0];
                let z = h.narrow(1, kept, self.latent_shapes[i][0]);
                h = h.narrow(1, 0, kept);
                let (e, lp) = self.priors[i].standardise(&z, &h);
                eps.push(e);
                log_prior += lp;
            }
        }
        let (e, lp) = self.priors[self.levels.len() - 1].standardise(&h, &h);
        eps.push(e);
        Encoded {
            eps,
            log_det,
            log_prior: log_prior + lp,
        }
    }

    /// Standardised latents (as [`Flow::encode`] gives them) → `v`.
    pub fn decode(&self, eps: &[Tensor]) -> Tensor {
        let top = self.levels.len() - 1;
        let dummy = &eps[top];
        let mut h = self.priors[top].unstandardise(&eps[top], dummy);
        for (i, level) in self.levels.iter().enumerate().rev() {
            if i < top {
                let z = self.priors[i].unstandardise(&eps[i], &h);
                h = Tensor::cat(&[h, z], 1);
            }
            for layer in level.after.iter().rev() {
                h = layer.inverse(&h);
            }
            if level.squeeze {
                h = unsqueeze(&h);
            }
            for layer in level.before.iter().rev() {
                h = layer.inverse(&h);
            }
        }
        h
    }

    /// The dequantizer's `v` and its per-image term ([`Dequantizer::dequantize`]).
    pub fn dequantize(&self, x: &Tensor) -> (Tensor, Tensor) {
        self.dequantizer.dequantize(x)
    }

    /// The per-image NLL bound of pixels `x` (float, `0..=255`) in its three parts, one draw of
    /// the dequantization noise.
    pub fn nll_parts(&self, x: &Tensor) -> NllParts {
        let (v, dequantization) = self.dequantize(x);
        let e = self.encode(&v);
        NllParts {
            prior: -e.log_prior,
            log_det: -e.log_det,
            dequantization,
        }
    }

    /// Latents as one `N×D` matrix (factored-out halves first).
    pub fn flatten(eps: &[Tensor]) -> Tensor {
        Tensor::cat(&eps.iter().map(|e| e.flatten(1, -1)).collect::<Vec<_>>(), 1)
    }

    /// `N×D` → the latents' shapes.
    pub fn unflatten(&self, z: &Tensor) -> Vec<Tensor> {
        let n = z.size()[0];
        let mut at = 0;
        self.latent_shapes
            .iter()
            .map(|s| {
                let len = s.iter().product::<i64>();
                let e = z.narrow(1, at, len).reshape([n, s[0], s[1], s[2]]);
                at += len;
                e
            })
            .collect()
    }

    /// Images (float pixels) → flat latents at the bins' centres.
    pub fn encode_pixels(&self, x: &Tensor) -> Tensor {
        Self::flatten(&self.encode(&dequant::centre(x)).eps)
    }

    /// Flat latents → images (float pixels; rounding gives the bins).
    pub fn decode_pixels(&self, z: &Tensor) -> Tensor {
        dequant::to_pixels(&self.decode(&self.unflatten(z)))
    }
}

fn build_layers(
    p: &nn::Path,
    specs: &[LayerSpec],
    shape: [i64; 3],
    seed: &mut u64,
) -> Vec<Box<dyn FlowLayer>> {
    specs
        .iter()
        .enumerate()
        .map(|(i, s)| -> Box<dyn FlowLayer> {
            let lp = p / format!("{i}");
            *seed += 1;
            match *s {
                LayerSpec::ActNorm => Box::new(ActNorm::new(&(lp / "actnorm"), shape[0])),
                LayerSpec::Conv1x1 => Box::new(Conv1x1::new(&(lp / "conv1x1"), shape[0], *seed)),
                LayerSpec::Reverse => Box::new(Permute::reverse(shape[0], p.device())),
                LayerSpec::Shuffle => Box::new(Permute::shuffle(shape[0], *seed, p.device())),
                LayerSpec::Coupling {
                    kind,
                    mask,
                    parity,
                    conditioner,
                } => Box::new(Coupling::new(
                    &(lp / "coupling"),
                    kind,
                    mask,
                    parity,
                    conditioner,
                    shape,
                )),
                LayerSpec::Scaling => Box::new(Scaling::new(&(lp / "scaling"), shape)),
            }
        })
        .collect()
}

impl crate::metrics::bpd::Likelihood for Flow {
    /// Prior, log-det and dequantization, in that order.
    fn nll_terms(&self, x: &Tensor) -> Vec<Tensor> {
        let p = self.nll_parts(x);
        vec![p.prior, p.log_det, p.dequantization]
    }
}

/// The names of [`Flow`]'s NLL terms, in order.
pub const TERM_NAMES: [&str; 3] = ["prior", "log_det", "dequantization"];

#[cfg(test)]
mod tests {
    use crate::nn::flows::glow::{GlowConfig, GlowFamily};
    use crate::nn::flows::FlowFamily;

    /// The latents partition the image's sub-pixels: a factor-out keeps half, the top the rest.
    #[test]
    fn latent_shapes_cover_every_sub_pixel_once() {
        for (channels, size, levels) in [(1, 28, 2), (3, 32, 3), (3, 32, 1)] {
            let spec = GlowFamily::spec(&GlowConfig {
                in_channels: channels,
                image_size: size,
                levels,
                ..GlowConfig::default()
            })
            .unwrap();
            let shapes = spec.shapes().unwrap();
            assert_eq!(shapes.len(), levels);
            let total: i64 = shapes.iter().map(|s| s.iter().product::<i64>()).sum();
            assert_eq!(total, (channels * size * size) as i64);
            assert_eq!(spec.size_multiple(), 1 << levels);
        }
        let odd = GlowFamily::spec(&GlowConfig {
            image_size: 28,
            levels: 3,
            ..GlowConfig::default()
        })
        .unwrap();
        assert!(odd.shapes().unwrap_err().contains("multiple of 8"));
    }
}
