//! NICE (Dinh et al. 2014): additive couplings with MLP conditioners on the flattened image,
//! alternating checkerboard halves, then a diagonal scaling; one level, no squeeze, a standard
//! normal prior (the paper's logistic prior is not used: every flow here shares one prior).

use serde::{Deserialize, Serialize};

use super::dequant::Dequantization;
use super::flow::{FlowSpec, LayerSpec, LevelSpec, PriorKind};
use super::layers::{Conditioner, CouplingKind, MaskKind, Parity};
use super::trainable::{FlowFamily, FlowModel};

/// NICE's `[model]` section (`family = "nice"`).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct NiceConfig {
    pub in_channels: usize,
    pub image_size: usize,
    /// Additive coupling layers (the halves alternate).
    pub couplings: usize,
    /// Units of each conditioner's hidden layers.
    pub hidden: usize,
    /// Hidden layers per conditioner.
    pub hidden_layers: usize,
    pub dequantization: Dequantization,
}

impl Default for NiceConfig {
    fn default() -> Self {
        NiceConfig {
            in_channels: 1,
            image_size: 28,
            couplings: 4,
            hidden: 256,
            hidden_layers: 2,
            dequantization: Dequantization::Uniform,
        }
    }
}

pub struct NiceFamily;

/// The trainable NICE.
pub type Nice = FlowModel<NiceFamily>;

impl FlowFamily for NiceFamily {
    type Config = NiceConfig;
    const FAMILY: &'static str = "nice";
    const NAME: &'static str = "NICE";

    fn default_config() -> NiceConfig {
        NiceConfig::default()
    }

    fn spec(c: &NiceConfig) -> Result<FlowSpec, String> {
        if c.couplings == 0 || c.hidden == 0 {
            return Err("model.couplings and model.hidden must be at least 1".into());
        }
        let conditioner = Conditioner::Mlp {
            hidden: c.hidden,
            layers: c.hidden_layers,
        };
        let mut layers: Vec<LayerSpec> = (0..c.couplings)
            .map(|i| LayerSpec::Coupling {
                kind: CouplingKind::Additive,
                mask: MaskKind::Checkerboard,
                parity: Parity::of(i),
                conditioner,
            })
            .collect();
        layers.push(LayerSpec::Scaling);
        Ok(FlowSpec {
            in_channels: c.in_channels,
            image_size: c.image_size,
            levels: vec![LevelSpec {
                before_squeeze: layers,
                squeeze: false,
                after_squeeze: Vec::new(),
            }],
            prior: PriorKind::Standard,
            dequantization: c.dequantization,
        })
    }
}
