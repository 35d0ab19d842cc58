//! The IDF as a [`Trainable`] family: its `[model]` section (the architecture and the IDF's own
//! training fields), its learning-rate multipliers, the data-dependent start of its priors and
//! how a trained IDF grows into a larger one.

use idfcodec_codec::model::idf::arch::{IdfConfig, MixtureParam, MEAN_SCALE};
use serde::{Deserialize, Deserializer, Serialize};
use serde_json::Value;
use tch::{nn, Device, Kind, Tensor};

use super::Idf;
use crate::metrics::bpd;
use crate::train::model::{Evaluation, Trainable};

/// The IDF's `[model]` section: the architecture ([`IdfConfig`], its fields directly in
/// `[model]`) and the IDF's training fields in `[model.train]`.
#[derive(Clone, Debug, Default, PartialEq, Serialize)]
pub struct IdfModelConfig {
    #[serde(flatten)]
    pub arch: IdfConfig,
    pub train: IdfSchedule,
}

impl<'de> Deserialize<'de> for IdfModelConfig {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        use serde::de::Error;
        let mut fields = serde_json::Map::<String, Value>::deserialize(d)?;
        let train = fields
            .remove("train")
            .unwrap_or(Value::Object(Default::default()));
        Ok(IdfModelConfig {
            arch: serde_json::from_value(Value::Object(fields)).map_err(D::Error::custom)?,
            train: serde_json::from_value(train)
                .map_err(|e| D::Error::custom(format!("train: {e}")))?,
        })
    }
}

/// The IDF's own training fields (`[model.train]`; `[train]` in version-1 configs).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct IdfSchedule {
    /// Start every prior as the mixture fitted to the latents of the first training images
    /// ([`Idf::init_priors`]) rather than at random.
    pub data_init: bool,
    /// Learning-rate multiplier for the weights of the prior networks' last layer. Adam moves
    /// each weight by about the learning rate, and a last layer sums `9·hidden` of them into an
    /// output that is multiplied by 128 (means): below 1 keeps one step from moving a prior's
    /// means by many pixels at once.
    pub output_lr_scale: f64,
    /// Learning-rate multiplier for the last layer (weights and bias) of the coupling networks.
    /// Their output, times `translation_scale`, is rounded to a translation whose gradient is only
    /// straight-through; on peaked data (MNIST) full-rate steps flip whole fields of translations
    /// at once and the loss jumps by bits per dimension. Small values let the priors lead.
    pub coupling_lr_scale: f64,
}

impl Default for IdfSchedule {
    fn default() -> Self {
        IdfSchedule {
            data_init: true,
            output_lr_scale: 0.01,
            coupling_lr_scale: 0.001,
        }
    }
}

/// Training images whose latents start the priors (`data_init`).
const DATA_INIT_IMAGES: i64 = 512;

impl Trainable for Idf {
    type Config = IdfModelConfig;
    const FAMILY: &'static str = "idf";
    const NAME: &'static str = "IDF";

    fn default_config(version: u32) -> IdfModelConfig {
        let _ = version; // the same in versions 1 and 2
        IdfModelConfig::default()
    }

    fn validate(config: &IdfModelConfig) -> Result<(), String> {
        config.arch.validate()?;
        let t = &config.train;
        for (name, v) in [
            ("output_lr_scale", t.output_lr_scale),
            ("coupling_lr_scale", t.coupling_lr_scale),
        ] {
            if !(v > 0.0 && v <= 1.0) {
                return Err(format!("{name} must be in (0, 1]"));
            }
        }
        Ok(())
    }

    fn parameter_count(config: &IdfModelConfig) -> usize {
        config.arch.parameter_count()
    }

    fn in_channels(config: &IdfModelConfig) -> usize {
        config.arch.in_channels
    }

    fn size_multiple(config: &IdfModelConfig) -> usize {
        config.arch.size_multiple()
    }

    fn new(p: &nn::Path, config: &IdfModelConfig) -> Self {
        Idf::new(p, &config.arch)
    }

    fn loss(&self, x: &Tensor) -> Tensor {
        bpd::batch_bpd(self, x)
    }

    /// Test bits/dim, with each prior's share named as in [`IdfConfig::prior_names`].
    fn evaluate(&self, images: &Tensor, batch: i64, device: Device) -> Evaluation {
        let shares = bpd::dataset_bpd_by_term(self, images, batch, device);
        Evaluation::of_shares(self.config().prior_names(), shares)
    }

    fn lr_scale(config: &IdfModelConfig, name: &str, param: &Tensor) -> Tensor {
        lr_scale(config, name, param)
    }

    /// With `data_init`: the priors not copied from an `init_from` run start as the mixtures
    /// fitted to the latents of the first training images ([`Idf::init_priors`]).
    fn data_init(
        &self,
        config: &IdfModelConfig,
        train: &Tensor,
        device: Device,
        fresh: Option<&[String]>,
    ) {
        if !config.train.data_init {
            return;
        }
        let n = DATA_INIT_IMAGES.min(train.size()[0]);
        let x = train.narrow(0, 0, n).to_device(device).to_kind(Kind::Float);
        self.init_priors(&x, |prior| {
            fresh.map_or(true, |fresh| {
                fresh
                    .iter()
                    .any(|v| v == prior || v.starts_with(&format!("{prior}.conv_out.")))
            })
        });
    }

    fn copy_matching(
        saved_config: &IdfModelConfig,
        saved: &[(String, Tensor)],
        config: &IdfModelConfig,
        vs: &mut nn::VarStore,
    ) -> Vec<String> {
        copy_matching(&saved_config.arch, saved, &config.arch, vs)
    }
}

/// The learning-rate multiplier of the parameter `name` (tensor names of
/// [`idfcodec_codec::model::idf::arch`]), per element where it matters.
///
/// Adam moves every parameter by about the learning rate per step whatever its gradient, so a
/// parameter's rate must match how far its effect travels: a raw mixture mean is multiplied by
/// `MEAN_SCALE` (128) pixels, and a prior with a scale of a twentieth of a pixel (MNIST's
/// background) cannot stand means that jitter by 0.1 pixel a step. Rows of the priors' last
/// layer and of the top parameters that produce means get `1/MEAN_SCALE`, so a mean moves by
/// about the learning rate in pixels. On top, [`IdfSchedule::output_lr_scale`] and
/// [`IdfSchedule::coupling_lr_scale`] slow the last layers' weights. A prior's linear path
/// (`conv_skip`, input to output) learns at the full rate: a mean following its neighbours needs
/// weights near 1/4, which 1/MEAN_SCALE would take hundreds of thousands of steps to reach.
fn lr_scale(config: &IdfModelConfig, name: &str, param: &Tensor) -> Tensor {
    let schedule = &config.train;
    let last_layer = name.contains(".conv_out.");
    let base = if last_layer && name.contains(".coupling") {
        schedule.coupling_lr_scale
    } else if last_layer && name.ends_with("weight") {
        schedule.output_lr_scale
    } else {
        1.0
    };
    let layout = config.arch.mixture_layout();
    let raw_rows = |count: i64| {
        let rates: Vec<f32> = (0..count as usize)
            .map(|r| {
                let mean = layout.param_of(r) == MixtureParam::Mean;
                (base
                    * if mean {
                        1.0 / f64::from(MEAN_SCALE)
                    } else {
                        1.0
                    }) as f32
            })
            .collect();
        Tensor::from_slice(&rates).to_device(param.device())
    };
    let size = param.size();
    if name == IdfConfig::TOP_PARAMS {
        // [C, 3M]: the raw row of every channel along the last axis
        raw_rows(size[1]).reshape([1, size[1]])
    } else if last_layer && (name.contains(".prior") || name.starts_with("top.")) {
        // weight [3M·F, hidden, 3, 3] or bias [3M·F]: one raw channel per output row
        let mut shape = vec![1i64; size.len()];
        shape[0] = size[0];
        raw_rows(size[0]).reshape(shape)
    } else {
        Tensor::from(base as f32).to_device(param.device())
    }
}

/// Copies into `vs` every parameter of a saved run (`saved`: its parameters by name, its
/// architecture `saved_config`) that has the same name and shape, and grows a model whose priors
/// were split into groups (`prior_groups`, `top_groups`) so that it starts out computing what
/// the saved one did:
/// - a prior's output rows (`….prior.conv_out.*`, `top.params`) are laid out channel by channel,
///   so the first group keeps the saved leading rows;
/// - a new factor-out group network `level{l}.prior{k}` starts as a copy of the saved
///   `level{l}.prior`: its output rows are those of group `k`'s channels, and its first layer's
///   extra inputs (the groups before `k`) start at zero weight;
/// - a residual block the saved run lacks (`blocks` raised) starts with its second convolution at
///   zero, so it adds nothing until trained.
///
/// A level whose factor-out changes between coded whole and coded by pixel phase
/// (`phase_levels`) takes none of its prior networks: their inputs and outputs mean other things;
/// nor does any parameter when the squeeze changes (`phase_squeeze`).
///
/// Returns the names of the variables not copied (the zeroed block outputs among them).
pub fn copy_matching(
    saved_config: &IdfConfig,
    saved: &[(String, Tensor)],
    config: &IdfConfig,
    vs: &mut nn::VarStore,
) -> Vec<String> {
    let rephased = |name: &str| {
        saved_config.phase_squeeze != config.phase_squeeze
            || (0..config.levels).any(|l| {
                saved_config.phased(l) != config.phased(l)
                    && name.starts_with(&IdfConfig::prior_name(l))
            })
    };
    let find = |name: &str| saved.iter().find(|(n, _)| n == name).map(|(_, t)| t);
    let mut untouched = Vec::new();
    tch::no_grad(|| {
        for (name, mut var) in vs.variables() {
            if rephased(&name) {
                untouched.push(name);
                continue;
            }
            let (source, group) = match (find(&name), split_prior_group(&name)) {
                (Some(t), _) => (Some(t), 0),
                (None, Some((ungrouped, k))) => (find(&ungrouped), k),
                (None, None) => (None, 0),
            };
            let (want, have) = match source {
                Some(t) => (var.size(), t.size()),
                None => {
                    if is_new_block_output(&name) {
                        let _ = var.zero_();
                    }
                    untouched.push(name);
                    continue;
                }
            };
            let t = source.expect("checked above");
            let output_rows = name.contains(".conv_out.") && name.contains(".prior")
                || name == IdfConfig::TOP_PARAMS;
            if want == have {
                var.copy_(t);
            } else if output_rows && want[1..] == have[1..] && have[0] >= want[0] * (group + 1) {
                var.copy_(&t.narrow(0, want[0] * group, want[0]));
            } else if name.ends_with(".conv_in.weight")
                && want.len() == 4
                && want[0] == have[0]
                && want[2..] == have[2..]
                && want[1] > have[1]
            {
                let _ = var.zero_();
                var.narrow(1, 0, have[1]).copy_(t);
            } else {
                untouched.push(name);
            }
        }
    });
    untouched.sort();
    untouched
}

/// The second convolution of a residual block (`….block{b}.conv2.*`): when the source run has no
/// such block it starts at zero, so the block adds nothing and the grown network computes what
/// the one it grew from did (`blocks` raised).
fn is_new_block_output(name: &str) -> bool {
    name.split('.')
        .collect::<Vec<_>>()
        .windows(2)
        .any(|w| w[0].starts_with("block") && w[1] == "conv2")
}

/// `level{l}.prior{k}.REST` (`k ≥ 1`) → (`level{l}.prior.REST`, `k`).
fn split_prior_group(name: &str) -> Option<(String, i64)> {
    let mut parts = name.splitn(3, '.');
    let (level, net, rest) = (parts.next()?, parts.next()?, parts.next()?);
    let k: i64 = net.strip_prefix("prior")?.parse().ok()?;
    (level.starts_with("level") && k >= 1).then(|| (format!("{level}.prior.{rest}"), k))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn learning_rate_multipliers_follow_what_a_parameter_moves() {
        let config = IdfModelConfig {
            arch: IdfConfig {
                mixtures: 2, // raw rows per latent: logit, logit, mean, mean, log-scale, log-scale
                ..IdfConfig::default()
            },
            train: IdfSchedule {
                output_lr_scale: 0.5,
                coupling_lr_scale: 0.25,
                ..Default::default()
            },
        };
        let rate = |name: &str, shape: &[i64]| {
            let p = Tensor::zeros(shape, (Kind::Float, tch::Device::Cpu));
            let r = lr_scale(&config, name, &p).expand_as(&p).flatten(0, -1);
            Vec::<f32>::try_from(r).unwrap()
        };
        assert!(rate("level0.coupling3.conv_out.weight", &[2, 4, 3, 3])
            .iter()
            .all(|&v| v == 0.25));
        assert_eq!(rate("level1.coupling0.conv_out.bias", &[2]), [0.25, 0.25]);
        assert_eq!(
            rate("level0.coupling0.conv_in.weight", &[1, 1, 1, 1]),
            [1.0]
        );
        let mean = 1.0 / MEAN_SCALE;
        assert_eq!(
            rate("level0.prior.conv_out.bias", &[12]),
            [1.0, 1.0, mean, mean, 1.0, 1.0, 1.0, 1.0, mean, mean, 1.0, 1.0]
        );
        let w = rate("level0.prior.conv_out.weight", &[6, 1, 1, 2]);
        assert_eq!(
            w,
            [
                0.5,
                0.5,
                0.5,
                0.5,
                0.5 * mean,
                0.5 * mean,
                0.5 * mean,
                0.5 * mean,
                0.5,
                0.5,
                0.5,
                0.5
            ]
        );
        assert_eq!(
            rate("top.params", &[1, 6]),
            [1.0, 1.0, mean, mean, 1.0, 1.0]
        );
        assert_eq!(
            rate("top.group2.conv_out.bias", &[6]),
            [1.0, 1.0, mean, mean, 1.0, 1.0]
        );
        assert_eq!(rate("top.group2.conv_in.bias", &[2]), [1.0, 1.0]);
    }
}
