//! The VAE's weights: a VAE model file (see [`crate::model::file`]: family `vae`, the
//! [`VaeConfig`] as its architecture JSON, its tensors exactly [`VaeConfig::tensor_specs`])
//! loaded as engine layers (dense; the residual networks' convolutions with `resnet`), with its
//! bucket edges.
//!
//! A VAE's [`Vae::id`] is the 64-bit FNV-1a hash over the canonical arch JSON and, in
//! `tensor_specs` order, every tensor's name and little-endian `f32` bytes (as the IDF's).

use super::arch::{VaeArch, VaeConfig, GRID_MEAN_MAX, GRID_SCALE_RANGE, LOGVAR_RANGE};
use super::coding::Buckets;
use super::resnet::{self, Layer, ResnetDecoder, ResnetEncoder};
use crate::engine::{relu_in_place, Dense, FloatTensor, Shape};
use crate::model::file::{self, invalid, Family, Fnv1a, SplitMix64};
use crate::Result;

/// The first layer's encoder, as [`VaeConfig::arch`] says.
#[derive(Clone, Debug, PartialEq)]
enum Encoder {
    Mlp(Vec<Dense>),
    Resnet(Box<ResnetEncoder>),
}

/// The first layer's decoder, as [`VaeConfig::arch`] says.
#[derive(Clone, Debug, PartialEq)]
enum Decoder {
    Mlp(Vec<Dense>),
    Resnet(Box<ResnetDecoder>),
}

/// A loaded VAE, ready to code on the engine.
#[derive(Clone, Debug, PartialEq)]
pub struct Vae {
    config: VaeConfig,
    card: serde_json::Value,
    encoder: Encoder,
    decoder: Decoder,
    /// For each upper layer `l = 2..=L` (index `l − 2`): `encoder{l}` and `decoder{l}`.
    upper: Vec<(Vec<Dense>, Vec<Dense>)>,
    pub(super) buckets: Buckets,
    /// With fitted grids, for each layer `l < L` (index `l − 1`): its grid; else empty.
    grids: Vec<Grid>,
    id: u64,
}

/// A fitted grid of one latent layer: dimension `j`'s buckets are the standard ones moved to
/// `mean[j]` and scaled by `scale[j]` (see [`crate::model::vae::arch`], "Fitted grids").
#[derive(Clone, Debug, PartialEq)]
pub struct Grid {
    pub mean: Vec<f32>,
    pub scale: Vec<f32>,
}

impl Grid {
    /// Checks the values' ranges (see [`crate::model::vae::arch`]).
    fn validate(&self, l: usize) -> Result<()> {
        let means_ok = (self.mean.iter()).all(|m| m.is_finite() && m.abs() <= GRID_MEAN_MAX);
        let scales_ok = (self.scale.iter())
            .all(|s| s.is_finite() && (GRID_SCALE_RANGE.0..=GRID_SCALE_RANGE.1).contains(s));
        match means_ok && scales_ok {
            true => Ok(()),
            false => Err(invalid(format!(
                "grid{l}: a mean beyond ±{GRID_MEAN_MAX} or a scale outside {GRID_SCALE_RANGE:?}"
            ))),
        }
    }
}

impl Vae {
    /// Parses and validates a VAE model file: the config, the parameter count against
    /// [`MAX_PARAMETERS`](crate::model::MAX_PARAMETERS), every tensor's presence, dtype and
    /// shape, before copying any weights.
    pub fn from_safetensors(bytes: &[u8]) -> Result<Vae> {
        let (config, card) = file::header(bytes, Family::Vae, VaeConfig::validate)?;
        file::check_size(config.parameter_count())?;
        let specs = config.tensor_specs();
        let tensors = file::tensors(bytes, specs.len())?;
        let values = specs
            .iter()
            .map(|spec| file::tensor(&tensors, &spec.name, &spec.shape))
            .collect::<Result<Vec<_>>>()?;
        Vae::from_tensors(config, card, values)
    }

    /// A model with small deterministic pseudo-random weights, for tests and benchmarks.
    pub fn new_random(config: VaeConfig, seed: u64) -> Result<Vae> {
        config.validate().map_err(invalid)?;
        file::check_size(config.parameter_count())?;
        let mut rng = SplitMix64(seed);
        let values = config
            .tensor_specs()
            .iter()
            .map(|spec| {
                let n: usize = spec.shape.iter().product();
                if spec.name.ends_with(".scale") {
                    // a fitted grid's scales: positive, 1/2 to 2
                    return (0..n).map(|_| libm::exp2f(rng.symmetric())).collect();
                }
                let bound = match spec.shape.as_slice() {
                    [_, fan_in] => (3.0 / *fan_in as f32).sqrt(),
                    [_, fan_in, kh, kw] => (3.0 / (fan_in * kh * kw) as f32).sqrt(),
                    _ => 0.1,
                };
                (0..n).map(|_| bound * rng.symmetric()).collect()
            })
            .collect();
        Vae::from_tensors(config, serde_json::json!({ "random_seed": seed }), values)
    }

    /// From validated config and tensors in [`VaeConfig::tensor_specs`] order.
    pub fn from_tensors(
        config: VaeConfig,
        card: serde_json::Value,
        values: Vec<Vec<f32>>,
    ) -> Result<Vae> {
        config.validate().map_err(invalid)?;
        let id = model_id(&config, &values);
        let mut values = values.into_iter();
        let mut layers = config
            .layers_in_file_order()
            .iter()
            .map(|spec| {
                let w = values.next().ok_or_else(|| invalid("too few tensors"))?;
                let b = values.next().ok_or_else(|| invalid("too few tensors"))?;
                Layer::new(spec, w, b)
            })
            .collect::<Result<Vec<_>>>()?
            .into_iter();
        let resnet = match config.arch {
            VaeArch::Mlp => None,
            VaeArch::Resnet { blocks } => Some(resnet::build(&config, blocks, &mut layers)?),
        };
        let mut nets = config
            .networks()
            .iter()
            .map(|net| {
                (1..net.widths.len())
                    .map(|_| match layers.next() {
                        Some(Layer::Dense(d)) => Ok(d),
                        _ => Err(invalid("too few dense layers")),
                    })
                    .collect::<Result<Vec<_>>>()
            })
            .collect::<Result<Vec<_>>>()?
            .into_iter();
        let mut pair = || nets.next().zip(nets.next());
        let (encoder, decoder) = match resnet {
            Some((e, d)) => (Encoder::Resnet(Box::new(e)), Decoder::Resnet(Box::new(d))),
            None => {
                let (e, d) = pair().ok_or_else(|| invalid("too few networks"))?;
                (Encoder::Mlp(e), Decoder::Mlp(d))
            }
        };
        let upper = (1..config.layers())
            .map(|_| pair().ok_or_else(|| invalid("too few networks")))
            .collect::<Result<Vec<_>>>()?;
        let grids = (config.fitted_layers().into_iter())
            .map(|(l, _)| {
                let mean = values.next().ok_or_else(|| invalid("too few tensors"))?;
                let scale = values.next().ok_or_else(|| invalid("too few tensors"))?;
                let grid = Grid { mean, scale };
                grid.validate(l)?;
                Ok(grid)
            })
            .collect::<Result<Vec<_>>>()?;
        Ok(Vae {
            buckets: Buckets::new(config.bucket_bits),
            config,
            card,
            encoder,
            decoder,
            upper,
            grids,
            id,
        })
    }

    /// The fitted grid of layer `l` (`1..L`), `None` on the standard grid (the top layer
    /// always).
    pub fn grid(&self, l: usize) -> Option<&Grid> {
        l.checked_sub(1).and_then(|i| self.grids.get(i))
    }

    /// Serialises the model with `card` (a JSON object) as its card.
    pub fn to_safetensors(&self, card: &serde_json::Value) -> Result<Vec<u8>> {
        let mut values: Vec<&[f32]> = match (&self.encoder, &self.decoder) {
            (Encoder::Mlp(e), Decoder::Mlp(d)) => {
                e.iter().chain(d).flat_map(Dense::tensors).collect()
            }
            (Encoder::Resnet(e), Decoder::Resnet(d)) => {
                e.tensors().into_iter().chain(d.tensors()).collect()
            }
            _ => unreachable!("the encoder and decoder are built from one arch"),
        };
        values.extend(
            (self.upper.iter())
                .flat_map(|(e, d)| e.iter().chain(d))
                .flat_map(Dense::tensors),
        );
        values.extend((self.grids.iter()).flat_map(|g| [g.mean.as_slice(), g.scale.as_slice()]));
        let tensors: Vec<_> = (self.config.tensor_specs().into_iter())
            .zip(values)
            .map(|(spec, v)| (spec.name, spec.shape, v))
            .collect();
        file::write(Family::Vae, arch_json(&self.config), card, &tensors)
    }

    /// The 64-bit identity of the weights and architecture (see the module docs).
    pub fn id(&self) -> u64 {
        self.id
    }

    /// The architecture.
    pub fn config(&self) -> &VaeConfig {
        &self.config
    }

    /// The model card.
    pub fn card(&self) -> &serde_json::Value {
        &self.card
    }

    /// The posterior of one image's pixels (`C×S×S`, CHW): means and log-variances (clamped).
    pub fn encode(&self, pixels: &[u8]) -> Result<(Vec<f32>, Vec<f32>)> {
        let x: Vec<f32> = pixels.iter().map(|&p| f32::from(p) / 127.5 - 1.0).collect();
        let h = match &self.encoder {
            Encoder::Mlp(layers) => run(layers, x)?,
            Encoder::Resnet(net) => {
                let (c, s) = (self.config.in_channels, self.config.image_size);
                net.forward(FloatTensor::from_vec(Shape::new(c, s, s), x)?)?
            }
        };
        Ok(mean_logvar(h))
    }

    /// The posterior `q(z_l|z_{l−1})` of an upper layer `l` (`2..=L`) given `z_{l−1}` (the
    /// bucket centres): means and log-variances (clamped).
    pub fn encode_latent(&self, l: usize, below: &[f32]) -> Result<(Vec<f32>, Vec<f32>)> {
        let (encoder, _) = self.upper_layer(l)?;
        Ok(mean_logvar(run(encoder, below.to_vec())?))
    }

    /// The conditional prior `p(z_{l−1}|z_l)` of the layer below an upper layer `l` (`2..=L`)
    /// given `z_l` (the bucket centres): means and log-variances (clamped).
    pub fn prior_below(&self, l: usize, above: &[f32]) -> Result<(Vec<f32>, Vec<f32>)> {
        let (_, decoder) = self.upper_layer(l)?;
        Ok(mean_logvar(run(decoder, above.to_vec())?))
    }

    fn upper_layer(&self, l: usize) -> Result<&(Vec<Dense>, Vec<Dense>)> {
        l.checked_sub(2)
            .and_then(|i| self.upper.get(i))
            .ok_or_else(|| crate::CodecError::Internal(format!("no upper VAE layer {l}")))
    }

    /// The decoder's raw outputs (`[3][M][C][S][S]`, see [`crate::model::vae::arch`]) for latents `z`.
    pub fn decode_raw(&self, z: &[f32]) -> Result<Vec<f32>> {
        match &self.decoder {
            Decoder::Mlp(layers) => run(layers, z.to_vec()),
            Decoder::Resnet(net) => net.forward(z),
        }
    }
}

/// A network's `2·n` outputs as `n` means and `n` log-variances (clamped to [`LOGVAR_RANGE`]).
fn mean_logvar(mut h: Vec<f32>) -> (Vec<f32>, Vec<f32>) {
    let logvar = h
        .split_off(h.len() / 2)
        .into_iter()
        .map(|v| v.clamp(LOGVAR_RANGE.0, LOGVAR_RANGE.1))
        .collect();
    (h, logvar)
}

/// Dense layers with ReLU between them.
fn run(layers: &[Dense], mut x: Vec<f32>) -> Result<Vec<f32>> {
    for (k, layer) in layers.iter().enumerate() {
        x = layer.forward(&x)?;
        if k + 1 < layers.len() {
            relu_in_place(&mut x);
        }
    }
    Ok(x)
}

/// The canonical arch JSON.
fn arch_json(config: &VaeConfig) -> String {
    serde_json::to_string(config).expect("VaeConfig always serialises")
}

/// FNV-1a over the arch JSON and each tensor's name and bytes, in spec order.
fn model_id(config: &VaeConfig, values: &[Vec<f32>]) -> u64 {
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
