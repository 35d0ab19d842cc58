//! The IDF's weights: an IDF model file (see [`crate::model::file`]: family `idf`, the
//! [`IdfConfig`] as its architecture JSON, its tensors exactly [`IdfConfig::tensor_specs`]: same
//! names, same shapes, nothing else) loaded as networks the engine runs.
//!
//! An IDF's [`Idf::id`] is a 64-bit FNV-1a hash over the canonical arch JSON and, in
//! `tensor_specs` order, every tensor's name and little-endian `f32` bytes. It identifies the
//! weights that produced a bitstream; the card does not take part.

use crate::engine::{Conv3x3, Network, ResidualBlock};
use crate::model::file::{self, invalid, Family, Fnv1a, SplitMix64};
use crate::model::idf::arch::{IdfConfig, NetKind, NetRole, TensorSpec};
use crate::{CodecError, Result};

/// The networks of one level.
#[derive(Clone, Debug, PartialEq)]
struct LevelNets {
    couplings: Vec<Network>,
    /// One prior network per factor-out group.
    priors: Vec<Network>,
}

/// A loaded model, ready to run on the engine.
#[derive(Clone, Debug, PartialEq)]
pub struct Idf {
    config: IdfConfig,
    card: serde_json::Value,
    levels: Vec<LevelNets>,
    top_params: Vec<f32>,
    /// Prior networks of top groups `1..top_groups`.
    top_nets: Vec<Network>,
    /// With `top_phases`: the networks of phases `1..4` of every top group, in
    /// [`IdfConfig::top_phase_nets`] order.
    top_phase_nets: Vec<Network>,
    id: u64,
}

impl Idf {
    /// Parses and validates an exported model (see the module docs).
    ///
    /// Checks the config, the parameter count against [`MAX_PARAMETERS`](crate::model::MAX_PARAMETERS), and every tensor's
    /// presence, dtype and shape before copying any weights.
    pub fn from_safetensors(bytes: &[u8]) -> Result<Idf> {
        let (config, card) = file::header(bytes, Family::Idf, IdfConfig::validate)?;
        check_size(&config)?;
        let specs = config.tensor_specs();
        let tensors = file::tensors(bytes, specs.len())?;
        let values = specs
            .iter()
            .map(|spec| file::tensor(&tensors, &spec.name, &spec.shape))
            .collect::<Result<Vec<_>>>()?;
        Idf::from_tensors(config, card, values)
    }

    /// A model with small deterministic pseudo-random weights, for tests and benchmarks.
    ///
    /// Unlike a freshly initialised training model, `conv_out` is not zero: translations are a
    /// few units and priors vary from pixel to pixel, so the flow is far from the identity.
    pub fn new_random(config: IdfConfig, seed: u64) -> Result<Idf> {
        config.validate().map_err(invalid)?;
        check_size(&config)?;
        let mut rng = SplitMix64(seed);
        let values = config
            .tensor_specs()
            .iter()
            .map(|spec| random_tensor(spec, &mut rng))
            .collect();
        Idf::from_tensors(config, serde_json::json!({ "random_seed": seed }), values)
    }

    /// Serialises the model with the given card (a JSON object) as its `idfcodec.card`.
    pub fn to_safetensors(&self, card: &serde_json::Value) -> Result<Vec<u8>> {
        let tensors: Vec<_> = (self.config.tensor_specs().into_iter())
            .zip(self.tensors())
            .map(|(spec, values)| (spec.name, spec.shape, values))
            .collect();
        file::write(Family::Idf, arch_json(&self.config), card, &tensors)
    }

    /// The 64-bit identity of the weights and architecture (see the module docs).
    pub fn id(&self) -> u64 {
        self.id
    }

    /// The architecture.
    pub fn config(&self) -> &IdfConfig {
        &self.config
    }

    /// The model card (a JSON object).
    pub fn card(&self) -> &serde_json::Value {
        &self.card
    }

    /// Coupling network `k` of level `level`.
    ///
    /// # Panics
    /// If `level` or `k` is out of range for the config.
    pub fn coupling(&self, level: usize, k: usize) -> &Network {
        &self.levels[level].couplings[k]
    }

    /// The prior network of level `level`'s factor-out group `k` (see [`crate::model::idf::arch`]).
    ///
    /// # Panics
    /// If `level` or `k` is out of range for the config.
    pub fn prior(&self, level: usize, k: usize) -> &Network {
        &self.levels[level].priors[k]
    }

    /// The first top group's raw prior parameters, `[top_group_channels, 3·mixtures]` row-major.
    pub fn top_params(&self) -> &[f32] {
        &self.top_params
    }

    /// The prior network of top group `k` (see [`crate::model::idf::arch`]).
    ///
    /// # Panics
    /// If `k` is 0 or not below `top_groups`.
    pub fn top_group(&self, k: usize) -> &Network {
        &self.top_nets[k - 1]
    }

    /// The prior network of top group `k`'s pixel phase `j` (`top_phases`, see [`crate::model::idf::arch`]).
    ///
    /// # Panics
    /// If the model has no such network (`j` is 0 or not below 4, `k` not below `top_groups`, or
    /// no `top_phases`).
    pub fn top_phase(&self, k: usize, j: usize) -> &Network {
        assert!((1..self.config.top_phase_count()).contains(&j));
        &self.top_phase_nets[k * (self.config.top_phase_count() - 1) + j - 1]
    }

    /// Builds a model from weights given in [`IdfConfig::tensor_specs`] order (e.g. exported from
    /// training), checking the config and every tensor's length first.
    pub fn from_parts(
        config: IdfConfig,
        card: serde_json::Value,
        values: Vec<Vec<f32>>,
    ) -> Result<Idf> {
        config.validate().map_err(invalid)?;
        check_size(&config)?;
        let specs = config.tensor_specs();
        if values.len() != specs.len() {
            return Err(invalid(format!(
                "expected {} tensors, got {}",
                specs.len(),
                values.len()
            )));
        }
        for (spec, v) in specs.iter().zip(&values) {
            let want: usize = spec.shape.iter().product();
            if v.len() != want {
                return Err(invalid(format!(
                    "{} has {} values, its shape {:?} needs {want}",
                    spec.name,
                    v.len(),
                    spec.shape
                )));
            }
        }
        Idf::from_tensors(config, card, values)
    }

    /// Builds the networks from tensors already checked against `tensor_specs` (same order).
    fn from_tensors(
        config: IdfConfig,
        card: serde_json::Value,
        values: Vec<Vec<f32>>,
    ) -> Result<Idf> {
        let id = model_id(&config, &values);
        let mut queue = TensorQueue {
            config: &config,
            values: values.into_iter(),
        };
        let mut levels: Vec<LevelNets> = (0..config.levels)
            .map(|_| LevelNets {
                couplings: Vec::new(),
                priors: Vec::new(),
            })
            .collect();
        let mut top_params = Vec::new();
        let mut top_nets = Vec::new();
        let mut top_phase_nets = Vec::new();
        for net in config.networks() {
            let Some(kind) = net.role.kind() else {
                top_params = queue.next()?;
                continue;
            };
            let network = queue.network(net.inputs, net.outputs, kind)?;
            match net.role {
                NetRole::Coupling { level, .. } => levels[level].couplings.push(network),
                NetRole::Prior { level, .. } => levels[level].priors.push(network),
                NetRole::TopGroup { .. } => top_nets.push(network),
                NetRole::TopPhase { .. } => top_phase_nets.push(network),
                NetRole::TopParams => unreachable!("top.params is not a network"),
            }
        }
        Ok(Idf {
            config,
            card,
            levels,
            top_params,
            top_nets,
            top_phase_nets,
            id,
        })
    }

    /// Every tensor in `tensor_specs` order.
    fn tensors(&self) -> Vec<&[f32]> {
        let mut out = Vec::new();
        for level in &self.levels {
            for net in &level.couplings {
                out.extend(net.tensors());
            }
            for net in &level.priors {
                out.extend(net.tensors());
            }
        }
        out.push(&self.top_params);
        for net in self.top_nets.iter().chain(&self.top_phase_nets) {
            out.extend(net.tensors());
        }
        out
    }
}

/// Hands out tensors in `tensor_specs` order while the networks are assembled.
struct TensorQueue<'a> {
    config: &'a IdfConfig,
    values: std::vec::IntoIter<Vec<f32>>,
}

impl TensorQueue<'_> {
    fn next(&mut self) -> Result<Vec<f32>> {
        self.values
            .next()
            .ok_or_else(|| CodecError::Internal("too few tensors".into()))
    }

    fn conv(&mut self, cin: usize, cout: usize) -> Result<Conv3x3> {
        let weight = self.next()?;
        let bias = self.next()?;
        Conv3x3::new(cin, cout, weight, bias)
    }

    /// The next network's tensors (a skip as [`IdfConfig::has_skip`] says).
    fn network(&mut self, cin: usize, cout: usize, kind: NetKind) -> Result<Network> {
        let hidden = self.config.hidden;
        let conv_in = self.conv(cin, hidden)?;
        let blocks = (0..self.config.blocks)
            .map(|_| {
                Ok(ResidualBlock {
                    conv1: self.conv(hidden, hidden)?,
                    conv2: self.conv(hidden, hidden)?,
                })
            })
            .collect::<Result<Vec<_>>>()?;
        let conv_out = self.conv(hidden, cout)?;
        let skip = match self.config.has_skip(kind) {
            true => Some(self.conv(cin, cout)?),
            false => None,
        };
        Network::new(conv_in, blocks, conv_out, skip)
    }
}

fn check_size(config: &IdfConfig) -> Result<()> {
    file::check_size(config.parameter_count())
}

/// The canonical arch JSON (serde's field order, shortest round-trip floats).
fn arch_json(config: &IdfConfig) -> String {
    serde_json::to_string(config).expect("IdfConfig always serialises")
}

/// FNV-1a (64-bit) over the arch JSON and each tensor's name and bytes, in spec order.
fn model_id(config: &IdfConfig, values: &[Vec<f32>]) -> u64 {
    let mut h = Fnv1a::new();
    h.write(arch_json(config).as_bytes());
    for (spec, v) in config.tensor_specs().iter().zip(values) {
        h.write(&[0]);
        h.write(spec.name.as_bytes());
        h.write(&[0]);
        for x in v {
            h.write(&x.to_le_bytes());
        }
    }
    h.finish()
}

/// Gain of the random output layers relative to a unit-variance initialisation: keeps
/// translations at a few units (`translation_scale` 128) and mixture means near 128.
const RANDOM_OUT_GAIN: f32 = 0.03;

/// Weights uniform with variance `gain²/fan_in`; biases and top parameters small.
fn random_tensor(spec: &TensorSpec, rng: &mut SplitMix64) -> Vec<f32> {
    let n: usize = spec.shape.iter().product();
    let output = spec.name.contains(".conv_out.") || spec.name.contains(".conv_skip.");
    let bound = if spec.name.ends_with(".weight") {
        let fan_in = (spec.shape[1] * 9) as f32;
        let gain = if output { RANDOM_OUT_GAIN } else { 1.0 };
        gain * (3.0 / fan_in).sqrt()
    } else if output {
        RANDOM_OUT_GAIN
    } else {
        0.1
    };
    (0..n).map(|_| bound * rng.symmetric()).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tiny() -> IdfConfig {
        IdfConfig {
            levels: 1,
            couplings: 2,
            hidden: 4,
            mixtures: 2,
            ..IdfConfig::default()
        }
    }

    #[test]
    fn safetensors_round_trip_keeps_weights_and_id() {
        let m = Idf::new_random(tiny(), 7).unwrap();
        let card = serde_json::json!({ "steps": 3 });
        let bytes = m.to_safetensors(&card).unwrap();
        let back = Idf::from_safetensors(&bytes).unwrap();
        assert_eq!(back.config(), m.config());
        assert_eq!(back.card(), &card);
        assert_eq!(back.id(), m.id());
        assert_eq!(back.tensors(), m.tensors());
    }

    #[test]
    fn id_depends_on_weights() {
        let a = Idf::new_random(tiny(), 1).unwrap();
        let b = Idf::new_random(tiny(), 2).unwrap();
        assert_ne!(a.id(), b.id());
        assert_eq!(a.id(), Idf::new_random(tiny(), 1).unwrap().id());
    }

    #[test]
    fn random_output_layers_are_nonzero() {
        let m = Idf::new_random(tiny(), 3).unwrap();
        let w = m.coupling(0, 0).tensors();
        assert!(w[w.len() - 2].iter().any(|&v| v != 0.0));
    }
}
