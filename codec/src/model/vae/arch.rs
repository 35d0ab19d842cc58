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
//! - Coding: each latent dimension discretized into `2^bucket_bits` buckets of equal prior mass
//!   (see [`crate::model::vae::coding`]).

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
/// Most mixture components.
pub const MAX_MIXTURES: usize = 16;
/// Bucket bits allowed: `MIN_BUCKET_BITS..=MAX_BUCKET_BITS`.
pub const MIN_BUCKET_BITS: u32 = 4;
pub const MAX_BUCKET_BITS: u32 = 12;

/// The encoder and decoder shape (only `mlp` is codable so far).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum VaeArch {
    /// Two hidden dense layers of `hidden` units, ReLU.
    Mlp,
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
    pub name: &'static str,
    pub widths: Vec<usize>,
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
            (1..=MAX_HIDDEN).contains(&self.hidden),
            format!("hidden must be in 1..={MAX_HIDDEN}, not {}", self.hidden),
        )?;
        check(
            (1..=MAX_MIXTURES).contains(&self.mixtures),
            format!(
                "mixtures must be in 1..={MAX_MIXTURES}, not {}",
                self.mixtures
            ),
        )?;
        check(
            (MIN_BUCKET_BITS..=MAX_BUCKET_BITS).contains(&self.bucket_bits),
            format!(
                "bucket_bits must be in {MIN_BUCKET_BITS}..={MAX_BUCKET_BITS}, not {}",
                self.bucket_bits
            ),
        )
    }

    /// The encoder and the decoder (in this order), as dense layer widths.
    pub fn networks(&self) -> [NetSpec; 2] {
        let h = self.hidden;
        [
            NetSpec {
                name: "encoder",
                widths: vec![self.dims(), h, h, 2 * self.latent],
            },
            NetSpec {
                name: "decoder",
                widths: vec![self.latent, h, h, self.decoder_outputs()],
            },
        ]
    }

    /// Every tensor, in file and id order: per network, per layer `k`, `{net}.fc{k}.weight`
    /// (`out × in`) then `{net}.fc{k}.bias` (`out`).
    pub fn tensor_specs(&self) -> Vec<TensorSpec> {
        let mut v = Vec::new();
        for net in self.networks() {
            for (k, pair) in net.widths.windows(2).enumerate() {
                let (i, o) = (pair[0], pair[1]);
                v.push(TensorSpec {
                    name: format!("{}.fc{k}.weight", net.name),
                    shape: vec![o, i],
                });
                v.push(TensorSpec {
                    name: format!("{}.fc{k}.bias", net.name),
                    shape: vec![o],
                });
            }
        }
        v
    }

    /// Parameters in all tensors (saturating, for the size check of a hostile config).
    pub fn parameter_count(&self) -> usize {
        self.networks()
            .iter()
            .flat_map(|n| {
                n.widths
                    .windows(2)
                    .map(|p| (p[0], p[1]))
                    .collect::<Vec<_>>()
            })
            .fold(0usize, |acc, (i, o)| {
                acc.saturating_add(i.saturating_mul(o).saturating_add(o))
            })
    }

    /// A one-line description, for listings.
    pub fn summary(&self) -> String {
        format!(
            "VAE (mlp {}→{}→{}, latent {} × 2^{} buckets, {}-component logistic likelihood) on {}×{}×{}",
            self.dims(),
            self.hidden,
            self.hidden,
            self.latent,
            self.bucket_bits,
            self.mixtures,
            self.in_channels,
            self.image_size,
            self.image_size
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
            ..c
        }
        .validate()
        .is_err());
    }
}
