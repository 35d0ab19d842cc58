//! The codable VAE's architecture, described once: [`VaeConfig`] (serde; stored as the model
//! file's architecture JSON and read by the training side, which builds its codable VAE from
//! it), its tensors ([`VaeConfig::tensor_specs`]: the names and shapes the tch model's
//! `VarStore` has), its networks ([`VaeConfig::networks`]) and the exact semantics both sides
//! share (input scaling, log-variance clamp, likelihood layout).
//!
//! # The model
//! - Encoder (an MLP): pixels `x` (`C×S×S`, CHW, scaled to `[-1, 1]` as `x/127.5 − 1`) →
//!   `hidden` → `hidden` → `2·latent` (ReLU after the two hidden layers): the posterior's means
//!   (first `latent` outputs) and log-variances (the rest, clamped to [`LOGVAR_RANGE`]).
//! - Prior: the standard normal on each latent dimension.
//! - Decoder (an MLP): `z` → `hidden` → `hidden` → `3·M·C·S·S` raw outputs, parameter-major
//!   `[3][M][C][S][S]`: mixture logits, means (in `[-1, 1]` units) and log scales (clamped below at
//!   [`LOG_SCALE_MIN`]) of a discretized logistic mixture of `M` components per sub-pixel over the
//!   256 values, with edge bins (value `v`'s bin is `v/127.5 − 1 ± 1/255`; 0 and 255 take the
//!   tails).
//!
//! With `arch = {"resnet": {"blocks": b}}` the encoder and decoder are residual convolutional
//! networks of `hidden` channels instead (the training side's `arch = "resnet"`,
//! `src/nn/layers.rs`), made only of the engine's operations: 3×3 convolutions (stride 1,
//! padding 1, PyTorch's `[out][in][3][3]` weights), ReLU, sums, space-to-depth `squeeze` (output
//! channel `c·4 + dy·2 + dx` holds pixel `(2y+dy, 2x+dx)` of channel `c`) and its inverse
//! `unsqueeze`; `S` a multiple of 4, `w = hidden`, a residual block is
//! `h + conv2(relu(conv1(relu(h))))`, `b` of them at each inner resolution:
//! - encoder: `squeeze(x)` → `stem` (4C → w) → `res0` blocks → ReLU → `squeeze` → `down`
//!   (4w → w) → `res1` blocks → ReLU → flatten (CHW) → `fc` (w·(S/4)² → 2·latent);
//! - decoder: `fc` (latent → w·(S/4)², as `w×S/4×S/4`) → `res0` blocks → ReLU → `up0` (w → 4w)
//!   → `unsqueeze` → `res1` blocks → ReLU → `up1` (w → 4w) → `unsqueeze` → ReLU → `out`
//!   (w → 3·M·C), whose channels are the `[3][M][C]` of the raw layout above.
//!
//! - Coding: each latent dimension discretized into `2^bucket_bits` buckets of equal prior mass
//!   (see [`crate::model::vae::coding`]).
//!
//! # Several stochastic layers (a hierarchical VAE, Bit-Swap's structure)
//! With `upper_latents = [n_2, …, n_L]` (absent or empty: one layer, the model above) the latents
//! `z_1` (`latent` dimensions), `z_2`, …, `z_L` form a Markov chain both ways:
//! `p(x, z) = p(z_L) p(z_{L−1}|z_L) ⋯ p(z_1|z_2) p(x|z_1)` and
//! `q(z|x) = q(z_1|x) q(z_2|z_1) ⋯ q(z_L|z_{L−1})`. For each `l = 2..=L` two more MLPs
//! (`hidden` → `hidden`, ReLU):
//! - `encoder{l}`: `z_{l−1}` → `2·n_l`: the means and log-variances (clamped to
//!   [`LOGVAR_RANGE`]) of `q(z_l|z_{l−1})`;
//! - `decoder{l}`: `z_l` → `2·n_{l−1}`: the means and log-variances (clamped the same way) of the
//!   conditional prior `p(z_{l−1}|z_l)`.
//!
//! The top prior `p(z_L)` is the standard normal; the first layer's networks are `encoder` and
//! `decoder` as above. A one-layer file has no `upper_latents` key, so its architecture JSON, its
//! id and its coding are those of the files written before the hierarchy existed.
//!
//! # Fitted grids
//! Nothing ties a layer below the top to the standard normal's scale: its conditional prior
//! `p(z_{l−1}|z_l)` can put it anywhere. With `latent_grids = "fitted"` (hierarchies only) each
//! dimension `j` of each layer `l < L` is bucketed on the standard grid moved and scaled,
//! `m_j + s_j·e_k` (see [`crate::model::vae::coding`], "Grids"), with `m` and `s` from the
//! tensors `grid{l}.mean` and `grid{l}.scale` (`n_l` values each, after every network's in
//! file order; `s_j` in [`GRID_SCALE_RANGE`], `|m_j|` at most [`GRID_MEAN_MAX`]): the export fits
//! them to the aggregate posterior of the training set (Bit-Swap likewise fits its bins to it).
//! Without the key (`"standard"`) every layer uses the standard grid, as files written before.

use serde::{Deserialize, Serialize};

/// Clamp of the encoder's log-variances (as the training side).
pub const LOGVAR_RANGE: (f32, f32) = (-12.0, 8.0);
/// Floor of the decoder's log scales (PixelCNN++'s, as the training side).
pub const LOG_SCALE_MIN: f32 = -7.0;
/// Largest image side.
pub const MAX_SIZE: usize = 64;
/// Largest latent size.
pub const MAX_LATENT: usize = 1024;
/// Largest hidden width.
pub const MAX_HIDDEN: usize = 8192;
/// Largest channel count of a residual encoder/decoder (`hidden` with `resnet`).
pub const MAX_RESNET_WIDTH: usize = 512;
/// Most residual blocks per resolution.
pub const MAX_BLOCKS: usize = 16;
/// Most mixture components.
pub const MAX_MIXTURES: usize = 16;
/// Most stochastic layers (`1 + upper_latents.len()`).
pub const MAX_LAYERS: usize = 8;
/// Range of a fitted grid's scales (see the module docs, "Fitted grids").
pub const GRID_SCALE_RANGE: (f32, f32) = (1e-4, 1e4);
/// Largest magnitude of a fitted grid's mean.
pub const GRID_MEAN_MAX: f32 = 1e4;
/// Bucket bits allowed: `MIN_BUCKET_BITS..=MAX_BUCKET_BITS`.
pub const MIN_BUCKET_BITS: u32 = 4;
pub const MAX_BUCKET_BITS: u32 = 12;

/// The encoder and decoder shape (the upper layers of a hierarchy are MLPs with either).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum VaeArch {
    /// Two hidden dense layers of `hidden` units, ReLU (JSON `"mlp"`).
    Mlp,
    /// Residual convolutional networks of `hidden` channels with `blocks` residual blocks at
    /// each inner resolution (see the module docs; JSON `{"resnet": {"blocks": b}}`).
    Resnet { blocks: usize },
}

/// Where the buckets of the layers below the top lie (see the module docs, "Fitted grids").
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum LatentGrids {
    /// Every layer on the standard normal's equal-mass grid (not written to the JSON).
    #[default]
    Standard,
    /// The layers below the top on the standard grid moved and scaled per dimension by the
    /// `grid{l}` tensors.
    Fitted,
}

impl LatentGrids {
    fn is_standard(&self) -> bool {
        *self == LatentGrids::Standard
    }
}

/// A codable VAE (see the module docs).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct VaeConfig {
    pub arch: VaeArch,
    /// 1 (gray) or 3 (RGB).
    pub in_channels: usize,
    /// Side of the square images it codes (28 for MNIST); tiles are coded in blocks of this.
    pub image_size: usize,
    /// Latent dimensions.
    pub latent: usize,
    /// Hidden width.
    pub hidden: usize,
    /// Logistic mixture components per sub-pixel.
    pub mixtures: usize,
    /// Each latent dimension is coded as one of `2^bucket_bits` buckets of equal prior mass.
    pub bucket_bits: u32,
    /// Latent sizes of the layers above the first, `z_2` to `z_L` (empty: one layer; see the
    /// module docs). Not written when empty.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub upper_latents: Vec<usize>,
    /// The buckets of the layers below the top (see the module docs). Not written when
    /// standard.
    #[serde(default, skip_serializing_if = "LatentGrids::is_standard")]
    pub latent_grids: LatentGrids,
}

/// A tensor's name (as in the tch `VarStore`) and shape.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TensorSpec {
    pub name: String,
    pub shape: Vec<usize>,
}

/// One dense network: its name prefix and layer widths (input first); ReLU between layers.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct NetSpec {
    pub name: String,
    pub widths: Vec<usize>,
}

/// One layer with a weight and a bias.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum LayerKind {
    /// Fully connected: weight `outputs × inputs`.
    Dense,
    /// 3×3 convolution: weight `outputs × inputs × 3 × 3`.
    Conv3x3,
}

/// A layer of the file: its name (the tensors are `{name}.weight` and `{name}.bias`), kind and
/// channel or unit counts.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct LayerSpec {
    pub name: String,
    pub kind: LayerKind,
    pub inputs: usize,
    pub outputs: usize,
}

impl LayerSpec {
    fn weight_shape(&self) -> Vec<usize> {
        match self.kind {
            LayerKind::Dense => vec![self.outputs, self.inputs],
            LayerKind::Conv3x3 => vec![self.outputs, self.inputs, 3, 3],
        }
    }

    /// Weights and biases (saturating).
    fn parameters(&self) -> usize {
        let taps = match self.kind {
            LayerKind::Dense => 1,
            LayerKind::Conv3x3 => 9,
        };
        (self.inputs.saturating_mul(self.outputs))
            .saturating_mul(taps)
            .saturating_add(self.outputs)
    }
}

impl VaeConfig {
    /// Values per image: `C·S·S`.
    pub fn dims(&self) -> usize {
        self.in_channels * self.image_size * self.image_size
    }

    /// Raw decoder outputs per image: `3·M·C·S·S`.
    pub fn decoder_outputs(&self) -> usize {
        3 * self.mixtures * self.dims()
    }

    /// Stochastic layers `L` (1 + `upper_latents.len()`).
    pub fn layers(&self) -> usize {
        1 + self.upper_latents.len()
    }

    /// The latent sizes of all layers, `z_1` first.
    pub fn latents(&self) -> Vec<usize> {
        std::iter::once(self.latent)
            .chain(self.upper_latents.iter().copied())
            .collect()
    }

    /// Buckets per latent dimension.
    pub fn buckets(&self) -> usize {
        1 << self.bucket_bits
    }

    /// Checks every field's range (before anything is allocated from it).
    pub fn validate(&self) -> Result<(), String> {
        let check = |ok: bool, what: String| if ok { Ok(()) } else { Err(what) };
        check(
            self.in_channels == 1 || self.in_channels == 3,
            format!("in_channels must be 1 or 3, not {}", self.in_channels),
        )?;
        check(
            (1..=MAX_SIZE).contains(&self.image_size),
            format!(
                "image_size must be in 1..={MAX_SIZE}, not {}",
                self.image_size
            ),
        )?;
        check(
            (1..=MAX_LATENT).contains(&self.latent),
            format!("latent must be in 1..={MAX_LATENT}, not {}", self.latent),
        )?;
        check(
            self.layers() <= MAX_LAYERS,
            format!(
                "at most {MAX_LAYERS} stochastic layers, not {}",
                self.layers()
            ),
        )?;
        for &n in &self.upper_latents {
            check(
                (1..=MAX_LATENT).contains(&n),
                format!("upper_latents must each be in 1..={MAX_LATENT}, not {n}"),
            )?;
        }
        check(
            (1..=MAX_HIDDEN).contains(&self.hidden),
            format!("hidden must be in 1..={MAX_HIDDEN}, not {}", self.hidden),
        )?;
        if let VaeArch::Resnet { blocks } = self.arch {
            check(
                self.hidden <= MAX_RESNET_WIDTH,
                format!(
                    "a resnet's hidden (channels) must be in 1..={MAX_RESNET_WIDTH}, not {}",
                    self.hidden
                ),
            )?;
            check(
                blocks <= MAX_BLOCKS,
                format!("a resnet has at most {MAX_BLOCKS} blocks, not {blocks}"),
            )?;
            check(
                self.image_size % 4 == 0,
                format!(
                    "a resnet's image_size must be a multiple of 4, not {}",
                    self.image_size
                ),
            )?;
        }
        check(
            (1..=MAX_MIXTURES).contains(&self.mixtures),
            format!(
                "mixtures must be in 1..={MAX_MIXTURES}, not {}",
                self.mixtures
            ),
        )?;
        check(
            self.latent_grids.is_standard() || self.layers() > 1,
            "fitted latent grids need a hierarchy (upper_latents)".into(),
        )?;
        check(
            (MIN_BUCKET_BITS..=MAX_BUCKET_BITS).contains(&self.bucket_bits),
            format!(
                "bucket_bits must be in {MIN_BUCKET_BITS}..={MAX_BUCKET_BITS}, not {}",
                self.bucket_bits
            ),
        )
    }

    /// The layers `l` (`1..L`) whose grid is fitted, with their sizes: none unless
    /// [`LatentGrids::Fitted`].
    pub fn fitted_layers(&self) -> Vec<(usize, usize)> {
        match self.latent_grids {
            LatentGrids::Standard => vec![],
            LatentGrids::Fitted => {
                let latents = self.latents();
                (1..latents.len()).map(|l| (l, latents[l - 1])).collect()
            }
        }
    }

    /// The dense networks as layer widths, in file order: with `mlp` the encoder and the
    /// decoder (with `resnet` they are [`VaeConfig::resnet_layers`]), then for each upper layer
    /// `l = 2..=L` its `encoder{l}` and `decoder{l}` (see the module docs).
    pub fn networks(&self) -> Vec<NetSpec> {
        let h = self.hidden;
        let mut nets = match self.arch {
            VaeArch::Mlp => vec![
                NetSpec {
                    name: "encoder".into(),
                    widths: vec![self.dims(), h, h, 2 * self.latent],
                },
                NetSpec {
                    name: "decoder".into(),
                    widths: vec![self.latent, h, h, self.decoder_outputs()],
                },
            ],
            VaeArch::Resnet { .. } => vec![],
        };
        let latents = self.latents();
        for (k, pair) in latents.windows(2).enumerate() {
            let (below, above) = (pair[0], pair[1]);
            nets.push(NetSpec {
                name: format!("encoder{}", k + 2),
                widths: vec![below, h, h, 2 * above],
            });
            nets.push(NetSpec {
                name: format!("decoder{}", k + 2),
                widths: vec![above, h, h, 2 * below],
            });
        }
        nets
    }

    /// The residual encoder's layers then the decoder's, in file order (empty with `mlp`; see
    /// the module docs): `encoder.stem`, `encoder.res0.{k}.conv1`/`conv2`, `encoder.down`,
    /// `encoder.res1.{k}.…`, `encoder.fc`, then `decoder.fc`, `decoder.res0.{k}.…`,
    /// `decoder.up0`, `decoder.res1.{k}.…`, `decoder.up1`, `decoder.out`.
    pub fn resnet_layers(&self) -> Vec<LayerSpec> {
        let VaeArch::Resnet { blocks } = self.arch else {
            return vec![];
        };
        let (w, c) = (self.hidden, self.in_channels);
        let s4 = self.image_size / 4;
        let layer = |name: String, kind, inputs, outputs| LayerSpec {
            name,
            kind,
            inputs,
            outputs,
        };
        let conv = |name: String, inputs, outputs| layer(name, LayerKind::Conv3x3, inputs, outputs);
        let res = |net: &str, stage: usize| -> Vec<LayerSpec> {
            (0..blocks)
                .flat_map(|k| {
                    ["conv1", "conv2"].map(|c| conv(format!("{net}.res{stage}.{k}.{c}"), w, w))
                })
                .collect()
        };
        let mut v = vec![conv("encoder.stem".into(), 4 * c, w)];
        v.extend(res("encoder", 0));
        v.push(conv("encoder.down".into(), 4 * w, w));
        v.extend(res("encoder", 1));
        v.push(layer(
            "encoder.fc".into(),
            LayerKind::Dense,
            w * s4 * s4,
            2 * self.latent,
        ));
        v.push(layer(
            "decoder.fc".into(),
            LayerKind::Dense,
            self.latent,
            w * s4 * s4,
        ));
        v.extend(res("decoder", 0));
        v.push(conv("decoder.up0".into(), w, 4 * w));
        v.extend(res("decoder", 1));
        v.push(conv("decoder.up1".into(), w, 4 * w));
        v.push(conv("decoder.out".into(), w, 3 * self.mixtures * c));
        v
    }

    /// Every layer, in file and id order: [`VaeConfig::resnet_layers`], then per dense network
    /// of [`VaeConfig::networks`], per layer `k`, `{net}.fc{k}`.
    pub fn layers_in_file_order(&self) -> Vec<LayerSpec> {
        let mut v = self.resnet_layers();
        for net in self.networks() {
            for (k, pair) in net.widths.windows(2).enumerate() {
                v.push(LayerSpec {
                    name: format!("{}.fc{k}", net.name),
                    kind: LayerKind::Dense,
                    inputs: pair[0],
                    outputs: pair[1],
                });
            }
        }
        v
    }

    /// Every tensor, in file and id order: per layer of [`VaeConfig::layers_in_file_order`],
    /// `{layer}.weight` (`out × in`, or `out × in × 3 × 3`) then `{layer}.bias` (`out`); then,
    /// with fitted grids, per layer `l < L`, `grid{l}.mean` and `grid{l}.scale` (`n_l`).
    pub fn tensor_specs(&self) -> Vec<TensorSpec> {
        let mut v = Vec::new();
        for layer in self.layers_in_file_order() {
            v.push(TensorSpec {
                name: format!("{}.weight", layer.name),
                shape: layer.weight_shape(),
            });
            v.push(TensorSpec {
                name: format!("{}.bias", layer.name),
                shape: vec![layer.outputs],
            });
        }
        for (l, n) in self.fitted_layers() {
            for part in ["mean", "scale"] {
                v.push(TensorSpec {
                    name: format!("grid{l}.{part}"),
                    shape: vec![n],
                });
            }
        }
        v
    }

    /// Parameters in all tensors (saturating, for the size check of a hostile config).
    pub fn parameter_count(&self) -> usize {
        let grids: usize = self.fitted_layers().iter().map(|&(_, n)| 2 * n).sum();
        self.layers_in_file_order()
            .iter()
            .fold(grids, |acc, l| acc.saturating_add(l.parameters()))
    }

    /// A one-line description, for listings.
    pub fn summary(&self) -> String {
        let latents = self.latents();
        let latent = if latents.len() == 1 {
            format!("latent {}", self.latent)
        } else {
            let sizes: Vec<String> = latents.iter().map(usize::to_string).collect();
            let grids = match self.latent_grids {
                LatentGrids::Standard => "",
                LatentGrids::Fitted => " (fitted grids below the top)",
            };
            format!("{} latent layers {}{grids}", latents.len(), sizes.join("/"))
        };
        let nets = match self.arch {
            VaeArch::Mlp => format!("mlp {}→{}→{}", self.dims(), self.hidden, self.hidden),
            VaeArch::Resnet { blocks } => {
                format!(
                    "resnet {} channels, {blocks} blocks per resolution",
                    self.hidden
                )
            }
        };
        format!(
            "VAE ({nets}, {latent} × 2^{} buckets, {}-component logistic likelihood) on {}×{}×{}",
            self.bucket_bits, self.mixtures, self.in_channels, self.image_size, self.image_size
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn specs_follow_the_networks() {
        let c = VaeConfig {
            arch: VaeArch::Mlp,
            in_channels: 1,
            image_size: 28,
            latent: 8,
            hidden: 16,
            mixtures: 2,
            bucket_bits: 8,
            upper_latents: vec![],
            latent_grids: LatentGrids::Standard,
        };
        c.validate().unwrap();
        let specs = c.tensor_specs();
        assert_eq!(specs.len(), 12);
        assert_eq!(specs[0].name, "encoder.fc0.weight");
        assert_eq!(specs[0].shape, vec![16, 784]);
        assert_eq!(specs[11].shape, vec![3 * 2 * 784]);
        let total: usize = specs
            .iter()
            .map(|s| s.shape.iter().product::<usize>())
            .sum();
        assert_eq!(total, c.parameter_count());
        assert!(VaeConfig {
            bucket_bits: 13,
            ..c.clone()
        }
        .validate()
        .is_err());
        assert!(VaeConfig {
            in_channels: 2,
            ..c.clone()
        }
        .validate()
        .is_err());
        // one layer: no `upper_latents` key, so older files keep their JSON and id
        assert!(!serde_json::to_string(&c).unwrap().contains("upper"));
        assert!(!serde_json::to_string(&c).unwrap().contains("grids"));
        // fitted grids only for a hierarchy
        assert!(VaeConfig {
            latent_grids: LatentGrids::Fitted,
            ..c.clone()
        }
        .validate()
        .is_err());
    }

    #[test]
    fn upper_layers_add_their_networks() {
        let c = VaeConfig {
            arch: VaeArch::Mlp,
            in_channels: 1,
            image_size: 28,
            latent: 8,
            hidden: 16,
            mixtures: 1,
            bucket_bits: 8,
            upper_latents: vec![5, 3],
            latent_grids: LatentGrids::Standard,
        };
        c.validate().unwrap();
        assert_eq!(c.layers(), 3);
        let nets = c.networks();
        let names: Vec<&str> = nets.iter().map(|n| n.name.as_str()).collect();
        assert_eq!(
            names,
            ["encoder", "decoder", "encoder2", "decoder2", "encoder3", "decoder3"]
        );
        assert_eq!(nets[2].widths, vec![8, 16, 16, 10]);
        assert_eq!(nets[3].widths, vec![5, 16, 16, 16]);
        assert_eq!(nets[5].widths, vec![3, 16, 16, 10]);
        let total: usize = (c.tensor_specs().iter())
            .map(|s| s.shape.iter().product::<usize>())
            .sum();
        assert_eq!(total, c.parameter_count());
        let json = serde_json::to_string(&c).unwrap();
        assert_eq!(serde_json::from_str::<VaeConfig>(&json).unwrap(), c);
        // fitted grids: a mean and a scale per dimension of z_1 and z_2, after the networks
        let fitted = VaeConfig {
            latent_grids: LatentGrids::Fitted,
            ..c.clone()
        };
        fitted.validate().unwrap();
        let specs = fitted.tensor_specs();
        let tail: Vec<(&str, usize)> = (specs[specs.len() - 4..].iter())
            .map(|s| (s.name.as_str(), s.shape[0]))
            .collect();
        assert_eq!(
            tail,
            [
                ("grid1.mean", 8),
                ("grid1.scale", 8),
                ("grid2.mean", 5),
                ("grid2.scale", 5)
            ]
        );
        assert_eq!(fitted.parameter_count(), c.parameter_count() + 26);
        let json = serde_json::to_string(&fitted).unwrap();
        assert!(json.contains(r#""latent_grids":"fitted""#), "{json}");
        assert_eq!(serde_json::from_str::<VaeConfig>(&json).unwrap(), fitted);
        for bad in [vec![0], vec![1; MAX_LAYERS], vec![MAX_LATENT + 1]] {
            assert!(VaeConfig {
                upper_latents: bad,
                ..c.clone()
            }
            .validate()
            .is_err());
        }
    }
}
