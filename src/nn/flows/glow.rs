//! Glow (Kingma & Dhariwal 2018): every level squeezes, then `steps` steps of ActNorm (started
//! from data), a channel permutation (the invertible 1×1 convolution in LU form, or reversal,
//! or a fixed shuffle, for the paper's comparison) and an affine (or additive) channel
//! coupling; every level but the last factors out half its channels under a learned
//! conditional Gaussian prior (a standard normal optionally).

use serde::{Deserialize, Serialize};

use super::dequant::Dequantization;
use super::flow::{FlowSpec, LayerSpec, LevelSpec, PriorKind};
use super::layers::{Conditioner, CouplingKind, MaskKind, Parity};
use super::trainable::{FlowFamily, FlowModel};

/// The permutation of each step.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Permutation {
    /// The learned invertible 1×1 convolution.
    Conv1x1,
    Reverse,
    Shuffle,
}

/// The prior of the factored-out latents.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum GlowPrior {
    /// Conditional Gaussians (mean and scale from the kept half; learned top).
    Learned,
    Standard,
}

/// Glow's `[model]` section (`family = "glow"`).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct GlowConfig {
    pub in_channels: usize,
    pub image_size: usize,
    /// Levels (each squeezes once).
    pub levels: usize,
    /// Steps of flow per level.
    pub steps: usize,
    /// Channels of the couplings' hidden layers.
    pub hidden: usize,
    pub permutation: Permutation,
    pub coupling: CouplingKind,
    pub prior: GlowPrior,
    pub dequantization: Dequantization,
}

impl Default for GlowConfig {
    fn default() -> Self {
        GlowConfig {
            in_channels: 1,
            image_size: 28,
            levels: 2,
            steps: 4,
            hidden: 64,
            permutation: Permutation::Conv1x1,
            coupling: CouplingKind::Affine,
            prior: GlowPrior::Learned,
            dequantization: Dequantization::Uniform,
        }
    }
}

pub struct GlowFamily;

/// The trainable Glow.
pub type Glow = FlowModel<GlowFamily>;

impl FlowFamily for GlowFamily {
    type Config = GlowConfig;
    const FAMILY: &'static str = "glow";
    const NAME: &'static str = "Glow";

    fn default_config() -> GlowConfig {
        GlowConfig::default()
    }

    fn spec(c: &GlowConfig) -> Result<FlowSpec, String> {
        if c.levels == 0 || c.steps == 0 || c.hidden == 0 {
            return Err("model.levels, model.steps and model.hidden must be at least 1".into());
        }
        let permutation = match c.permutation {
            Permutation::Conv1x1 => LayerSpec::Conv1x1,
            Permutation::Reverse => LayerSpec::Reverse,
            Permutation::Shuffle => LayerSpec::Shuffle,
        };
        let step = [
            LayerSpec::ActNorm,
            permutation,
            LayerSpec::Coupling {
                kind: c.coupling,
                mask: MaskKind::Channel,
                parity: Parity::Even,
                conditioner: Conditioner::Conv { hidden: c.hidden },
            },
        ];
        let levels = (0..c.levels)
            .map(|_| LevelSpec {
                before_squeeze: Vec::new(),
                squeeze: true,
                after_squeeze: (0..c.steps).flat_map(|_| step).collect(),
            })
            .collect();
        Ok(FlowSpec {
            in_channels: c.in_channels,
            image_size: c.image_size,
            levels,
            prior: match c.prior {
                GlowPrior::Learned => PriorKind::Learned,
                GlowPrior::Standard => PriorKind::Standard,
            },
            dequantization: c.dequantization,
        })
    }
}
