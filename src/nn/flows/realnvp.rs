//! RealNVP (Dinh et al. 2016): affine couplings with convolutional conditioners; each level but
//! the last is `couplings` checkerboard couplings, a squeeze, `couplings` channel couplings and
//! a factor-out of half the channels; the last level is `couplings + 1` checkerboard couplings.
//! Optionally an ActNorm before every coupling (the paper's batch normalization is not
//! implemented: ActNorm is its batch-independent replacement). Standard normal prior.

use serde::{Deserialize, Serialize};

use super::dequant::Dequantization;
use super::flow::{FlowSpec, LayerSpec, LevelSpec, PriorKind};
use super::layers::{Conditioner, CouplingKind, MaskKind, Parity};
use super::trainable::{FlowFamily, FlowModel};

/// Normalisation before each coupling.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Norm {
    None,
    Actnorm,
}

/// RealNVP's `[model]` section (`family = "realnvp"`).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct RealNvpConfig {
    pub in_channels: usize,
    pub image_size: usize,
    /// Scales (each but the last squeezes once and factors out half).
    pub levels: usize,
    /// Couplings per mask kind per level.
    pub couplings: usize,
    /// Channels of the conditioners' hidden layers.
    pub hidden: usize,
    pub norm: Norm,
    pub dequantization: Dequantization,
}

impl Default for RealNvpConfig {
    fn default() -> Self {
        RealNvpConfig {
            in_channels: 1,
            image_size: 28,
            levels: 2,
            couplings: 3,
            hidden: 64,
            norm: Norm::Actnorm,
            dequantization: Dequantization::Uniform,
        }
    }
}

pub struct RealNvpFamily;

/// The trainable RealNVP.
pub type RealNvp = FlowModel<RealNvpFamily>;

impl FlowFamily for RealNvpFamily {
    type Config = RealNvpConfig;
    const FAMILY: &'static str = "realnvp";
    const NAME: &'static str = "RealNVP";

    fn default_config() -> RealNvpConfig {
        RealNvpConfig::default()
    }

    fn spec(c: &RealNvpConfig) -> Result<FlowSpec, String> {
        if c.levels == 0 || c.couplings == 0 || c.hidden == 0 {
            return Err("model.levels, model.couplings and model.hidden must be at least 1".into());
        }
        let couplings = |mask: MaskKind, count: usize| -> Vec<LayerSpec> {
            (0..count)
                .flat_map(|i| {
                    let coupling = LayerSpec::Coupling {
                        kind: CouplingKind::Affine,
                        mask,
                        parity: Parity::of(i),
                        conditioner: Conditioner::Conv { hidden: c.hidden },
                    };
                    match c.norm {
                        Norm::None => vec![coupling],
                        Norm::Actnorm => vec![LayerSpec::ActNorm, coupling],
                    }
                })
                .collect()
        };
        let mut levels: Vec<LevelSpec> = (1..c.levels)
            .map(|_| LevelSpec {
                before_squeeze: couplings(MaskKind::Checkerboard, c.couplings),
                squeeze: true,
                after_squeeze: couplings(MaskKind::Channel, c.couplings),
            })
            .collect();
        levels.push(LevelSpec {
            before_squeeze: couplings(MaskKind::Checkerboard, c.couplings + 1),
            squeeze: false,
            after_squeeze: Vec::new(),
        });
        Ok(FlowSpec {
            in_channels: c.in_channels,
            image_size: c.image_size,
            levels,
            prior: PriorKind::Standard,
            dequantization: c.dequantization,
        })
    }
}
