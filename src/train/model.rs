//! What the training loop needs of a model family ([`Trainable`]), and the run config's
//! `[model]` section tagged by family ([`ModelConfig`]): the one place the families are listed.
//!
//! A family is a tch model with `new(&nn::Path, &Config)` (the tch-example style), a loss of a
//! batch, an evaluation on test images, per-parameter learning-rate multipliers and, where it
//! has them, data-dependent initialisation and a way to grow from another run's weights.
//!
//! A family with more than one objective (a GAN: critic and generator) names its parameter
//! groups ([`Trainable::param_groups`], each its own optimiser state) and overrides
//! [`Trainable::train_step`], which minimises its losses through [`Update::minimise`]; the
//! default step is one loss, one update of every parameter. The loop, schedule, checkpoints,
//! log and plots stay shared.

use serde::de::DeserializeOwned;
use serde::{Deserialize, Deserializer, Serialize, Serializer};
use serde_json::Value;
use std::fmt;
use tch::{nn, Device, Tensor};

use super::optim::{Optimizer, ParamGroup};
use crate::nn::ebm_prior::{EbmPrior, EbmPriorConfig};
use crate::nn::flows::glow::GlowConfig;
use crate::nn::flows::nice::NiceConfig;
use crate::nn::flows::realnvp::RealNvpConfig;
use crate::nn::flows::{Glow, Nice, RealNvp};
use crate::nn::gan::{Gan, GanConfig};
use crate::nn::generative::Generative;
use crate::nn::hvae::{Hvae, HvaeConfig};
use crate::nn::idf::IdfModelConfig;
use crate::nn::vae::{Vae, VaeConfig};
use crate::nn::Idf;

/// A model family the generic training loop ([`crate::train::run`]) can train.
pub trait Trainable: Sized {
    /// The family's `[model]` section (without its `family` tag).
    type Config: Clone + fmt::Debug + PartialEq + Serialize + DeserializeOwned + 'static;
    /// The tag of `[model] family = "…"`.
    const FAMILY: &'static str;
    /// A short name for logs and plot titles ("IDF").
    const NAME: &'static str;

    /// The defaults of a config of run-config version `version` (see
    /// [`crate::train::config::CONFIG_VERSION`]): a default that changes gets a new version,
    /// and older versions keep theirs.
    fn default_config(version: u32) -> Self::Config;
    /// Checks that the config describes a buildable model.
    fn validate(config: &Self::Config) -> Result<(), String>;
    fn parameter_count(config: &Self::Config) -> usize;
    /// Channels of the images it models.
    fn in_channels(config: &Self::Config) -> usize;
    /// Image height and width must be multiples of this.
    fn size_multiple(config: &Self::Config) -> usize;
    /// The one image side the model takes (square images), if it is built for one size
    /// (`None`: any multiple of [`Trainable::size_multiple`]).
    fn image_size(config: &Self::Config) -> Option<usize> {
        let _ = config;
        None
    }

    /// Builds the model's variables under `p` (seeded by the caller).
    fn new(p: &nn::Path, config: &Self::Config) -> Self;
    /// The loss of a batch `x` (`N×C×H×W`, float kind holding integer pixels), a scalar to
    /// minimise; it is what the log shows as the training figure (bits/dim for the IDF).
    fn loss(&self, x: &Tensor) -> Tensor;
    /// The evaluation figure of `images` (`N×C×H×W`, `u8`), run in batches of `batch` on
    /// `device`; logged as the test figure.
    fn evaluate(&self, images: &Tensor, batch: i64, device: Device) -> Evaluation;

    /// The learning-rate multiplier of the parameter `name` (a scalar, or a tensor broadcast
    /// against the parameter: per-element rates). Frozen parameters never get here.
    fn lr_scale(config: &Self::Config, name: &str, param: &Tensor) -> Tensor;

    /// The parameter groups, each with its own optimiser state (a parameter belongs to the
    /// group with the longest prefix of its name). The first group must take exactly one step
    /// per training step (resume checks it). The default: one group of every parameter.
    fn param_groups(config: &Self::Config) -> Vec<ParamGroup> {
        let _ = config;
        vec![ParamGroup::all()]
    }

    /// One training step on the batch `x` (`N×C×H×W`, float kind holding integer pixels): the
    /// losses minimised through `update`, and what the log records. The default: [`Trainable::loss`],
    /// one update of every parameter (group 0), the loss as the train figure.
    fn train_step(&self, x: &Tensor, update: &mut Update) -> StepReport {
        let loss = self.loss(x);
        update.minimise(&loss, 0);
        StepReport {
            loss: loss.double_value(&[]),
            extras: Vec::new(),
        }
    }

    /// The names of the log's columns (and plots) for this family. The default: bits/dim.
    fn log_columns(config: &Self::Config) -> LogColumns {
        let _ = config;
        LogColumns::bpd()
    }

    /// The trained model as an image generator (`idfcodec sample`, `reconstruct`,
    /// `interpolate`), or why it is not one.
    fn into_generative(self) -> Result<Box<dyn Generative>, String> {
        Err(format!(
            "drawing images from a trained {} is not supported yet",
            Self::NAME
        ))
    }

    /// Data-dependent initialisation before the first step of a new run, from the training
    /// images `train` (`u8`, on the CPU). `fresh` names the variables an `init_from` run did not
    /// provide (`None`: no `init_from`); copied ones should keep their values.
    fn data_init(
        &self,
        config: &Self::Config,
        train: &Tensor,
        device: Device,
        fresh: Option<&[String]>,
    ) {
        let _ = (config, train, device, fresh);
    }

    /// Growing from another run (`init_from`): copies what fits of the saved run's parameters
    /// `saved` (`(name, tensor)`, its config `saved_config`) into `vs`, and returns the names of
    /// the variables not copied. The default copies every tensor of the same name and shape.
    fn copy_matching(
        saved_config: &Self::Config,
        saved: &[(String, Tensor)],
        config: &Self::Config,
        vs: &mut nn::VarStore,
    ) -> Vec<String> {
        let _ = (saved_config, config);
        let mut fresh = Vec::new();
        tch::no_grad(|| {
            for (name, mut var) in vs.variables() {
                match saved.iter().find(|(n, _)| *n == name) {
                    Some((_, t)) if t.size() == var.size() => {
                        var.copy_(t);
                    }
                    _ => fresh.push(name),
                }
            }
        });
        fresh.sort();
        fresh
    }
}

/// An evaluation: the figure (bits/dim for a likelihood model, the test column of the log) and
/// further named figures: the IDF's are its latent groups' shares, which sum to it; the VAE's
/// the ELBO's terms in nats and bits/dim and the IWAE bound; the GAN's its losses and scores.
#[derive(Clone, Debug, PartialEq)]
pub struct Evaluation {
    pub total: f64,
    pub parts: Vec<(String, f64)>,
}

impl Evaluation {
    /// A figure that is the sum of its named shares (`names` and `shares` in the same order).
    pub fn of_shares(names: impl IntoIterator<Item = String>, shares: Vec<f64>) -> Self {
        Evaluation {
            total: shares.iter().sum(),
            parts: names.into_iter().zip(shares).collect(),
        }
    }
}

/// What one training step reports: the train figure and the values of the family's extra log
/// columns ([`LogColumns::extras`], in that order).
#[derive(Clone, Debug, PartialEq)]
pub struct StepReport {
    pub loss: f64,
    pub extras: Vec<f64>,
}

/// How a family's log names things: `log.csv` has the columns `train_{train}`, `test_{test}`
/// and one per extra; the plot of train and test is `{plot}.png` with `y_label` on its axis, and
/// the extras (if any) are drawn in `{plot}-parts.png`.
#[derive(Clone, Debug, PartialEq)]
pub struct LogColumns {
    pub train: String,
    pub test: String,
    pub y_label: String,
    pub plot: String,
    pub extras: Vec<String>,
}

impl LogColumns {
    /// Bits/dim in training and test, no extras: the IDF's log (`train_bpd`, `test_bpd`, `bpd.png`).
    pub fn bpd() -> Self {
        LogColumns {
            train: "bpd".into(),
            test: "bpd".into(),
            y_label: "bits per dimension".into(),
            plot: "bpd".into(),
            extras: Vec::new(),
        }
    }
}

/// The optimiser as a family's [`Trainable::train_step`] uses it: the step's learning rate and
/// gradient clipping, applied to one parameter group at a time.
pub struct Update<'a> {
    opt: &'a mut Optimizer,
    lr: f64,
    clip_grad_norm: f64,
}

impl<'a> Update<'a> {
    pub(crate) fn new(opt: &'a mut Optimizer, lr: f64, clip_grad_norm: f64) -> Self {
        Update {
            opt,
            lr,
            clip_grad_norm,
        }
    }

    /// Minimises `loss` by one step of group `group`'s parameters: every gradient cleared,
    /// `loss` back-propagated, the group's gradients clipped to `clip_grad_norm` (if set), then
    /// the group's update. Other groups' parameters do not move.
    pub fn minimise(&mut self, loss: &Tensor, group: usize) {
        self.opt.zero_grad();
        loss.backward();
        let mut scale = 1.0;
        if self.clip_grad_norm > 0.0 {
            let norm = self.opt.grad_norm(group);
            if norm > self.clip_grad_norm {
                scale = self.clip_grad_norm / norm;
            }
        }
        self.opt.step(group, self.lr, scale);
    }
}

/// Something to do with a family's model type, given its config: the one `match` over the
/// families is in [`ModelConfig::with_family`].
pub trait FamilyFn {
    type Output;
    fn call<M: Trainable>(self, config: &M::Config) -> Self::Output;
}

/// The `[model]` section: `family = "idf"` (the default when absent) and the family's fields.
#[derive(Clone, Debug, PartialEq)]
pub enum ModelConfig {
    /// `family = "idf"`: the integer discrete flow ([`crate::nn::Idf`]).
    Idf(IdfModelConfig),
    /// `family = "vae"`: a variational autoencoder ([`crate::nn::vae::Vae`]), optionally with
    /// a WGAN critic on its decoder.
    Vae(VaeConfig),
    /// `family = "gan"`: a DCGAN or WGAN-GP ([`crate::nn::gan::Gan`]).
    Gan(GanConfig),
    /// `family = "hvae"`: a hierarchical VAE ([`crate::nn::hvae::Hvae`]), Bit-Swap's structure.
    Hvae(HvaeConfig),
    /// `family = "ebm-prior"`: a VAE whose prior is tilted by a WGAN critic's energy
    /// ([`crate::nn::ebm_prior::EbmPrior`]).
    EbmPrior(EbmPriorConfig),
    /// `family = "nice"`: NICE ([`crate::nn::flows::nice`]).
    Nice(NiceConfig),
    /// `family = "realnvp"`: RealNVP ([`crate::nn::flows::realnvp`]).
    RealNvp(RealNvpConfig),
    /// `family = "glow"`: Glow ([`crate::nn::flows::glow`]).
    Glow(GlowConfig),
}

impl Default for ModelConfig {
    fn default() -> Self {
        ModelConfig::Idf(Idf::default_config(super::config::CONFIG_VERSION))
    }
}

impl ModelConfig {
    /// Runs `f` with the family's model type.
    pub fn with_family<F: FamilyFn>(&self, f: F) -> F::Output {
        match self {
            ModelConfig::Idf(c) => f.call::<Idf>(c),
            ModelConfig::Vae(c) => f.call::<Vae>(c),
            ModelConfig::Gan(c) => f.call::<Gan>(c),
            ModelConfig::Hvae(c) => f.call::<Hvae>(c),
            ModelConfig::EbmPrior(c) => f.call::<EbmPrior>(c),
            ModelConfig::Nice(c) => f.call::<Nice>(c),
            ModelConfig::RealNvp(c) => f.call::<RealNvp>(c),
            ModelConfig::Glow(c) => f.call::<Glow>(c),
        }
    }

    /// The family's config from the `[model]` fields `fields` (its `family` tag removed), over
    /// the family's defaults of run-config version `version`.
    pub fn from_fields(family: &str, version: u32, fields: Value) -> Result<Self, String> {
        match family {
            Idf::FAMILY => parse_family::<Idf>(version, fields).map(ModelConfig::Idf),
            Vae::FAMILY => parse_family::<Vae>(version, fields).map(ModelConfig::Vae),
            Gan::FAMILY => parse_family::<Gan>(version, fields).map(ModelConfig::Gan),
            Hvae::FAMILY => parse_family::<Hvae>(version, fields).map(ModelConfig::Hvae),
            EbmPrior::FAMILY => {
                parse_family::<EbmPrior>(version, fields).map(ModelConfig::EbmPrior)
            }
            Nice::FAMILY => parse_family::<Nice>(version, fields).map(ModelConfig::Nice),
            RealNvp::FAMILY => parse_family::<RealNvp>(version, fields).map(ModelConfig::RealNvp),
            Glow::FAMILY => parse_family::<Glow>(version, fields).map(ModelConfig::Glow),
            other => Err(format!(
                "model.family = {other:?} is not a known family (known: {:?})",
                [
                    Idf::FAMILY,
                    Vae::FAMILY,
                    Gan::FAMILY,
                    Hvae::FAMILY,
                    EbmPrior::FAMILY,
                    Nice::FAMILY,
                    RealNvp::FAMILY,
                    Glow::FAMILY
                ]
            )),
        }
    }

    /// The config of `M`'s family, if this is one.
    pub fn of<M: Trainable>(&self) -> Option<&M::Config> {
        let any: &dyn std::any::Any = match self {
            ModelConfig::Idf(c) => c,
            ModelConfig::Vae(c) => c,
            ModelConfig::Gan(c) => c,
            ModelConfig::Hvae(c) => c,
            ModelConfig::EbmPrior(c) => c,
            ModelConfig::Nice(c) => c,
            ModelConfig::RealNvp(c) => c,
            ModelConfig::Glow(c) => c,
        };
        any.downcast_ref()
    }

    /// The config of `M`'s family, if this is one, to change.
    pub fn of_mut<M: Trainable>(&mut self) -> Option<&mut M::Config> {
        let any: &mut dyn std::any::Any = match self {
            ModelConfig::Idf(c) => c,
            ModelConfig::Vae(c) => c,
            ModelConfig::Gan(c) => c,
            ModelConfig::Hvae(c) => c,
            ModelConfig::EbmPrior(c) => c,
            ModelConfig::Nice(c) => c,
            ModelConfig::RealNvp(c) => c,
            ModelConfig::Glow(c) => c,
        };
        any.downcast_mut()
    }

    /// The IDF's config, when the family is the IDF.
    pub fn idf(&self) -> Option<&IdfModelConfig> {
        self.of::<Idf>()
    }

    pub fn idf_mut(&mut self) -> Option<&mut IdfModelConfig> {
        self.of_mut::<Idf>()
    }

    /// The VAE's config, when the family is the VAE.
    pub fn vae(&self) -> Option<&VaeConfig> {
        self.of::<Vae>()
    }

    pub fn vae_mut(&mut self) -> Option<&mut VaeConfig> {
        self.of_mut::<Vae>()
    }

    /// The family's log column names ([`Trainable::log_columns`]).
    pub fn log_columns(&self) -> LogColumns {
        struct Columns;
        impl FamilyFn for Columns {
            type Output = LogColumns;
            fn call<M: Trainable>(self, c: &M::Config) -> LogColumns {
                M::log_columns(c)
            }
        }
        self.with_family(Columns)
    }

    /// The one image side the model takes, if any ([`Trainable::image_size`]).
    pub fn image_size(&self) -> Option<usize> {
        struct Size;
        impl FamilyFn for Size {
            type Output = Option<usize>;
            fn call<M: Trainable>(self, c: &M::Config) -> Option<usize> {
                M::image_size(c)
            }
        }
        self.with_family(Size)
    }

    pub fn family(&self) -> &'static str {
        struct Family;
        impl FamilyFn for Family {
            type Output = &'static str;
            fn call<M: Trainable>(self, _: &M::Config) -> &'static str {
                M::FAMILY
            }
        }
        self.with_family(Family)
    }

    pub fn name(&self) -> &'static str {
        struct Name;
        impl FamilyFn for Name {
            type Output = &'static str;
            fn call<M: Trainable>(self, _: &M::Config) -> &'static str {
                M::NAME
            }
        }
        self.with_family(Name)
    }

    pub fn validate(&self) -> Result<(), String> {
        struct Validate;
        impl FamilyFn for Validate {
            type Output = Result<(), String>;
            fn call<M: Trainable>(self, c: &M::Config) -> Self::Output {
                M::validate(c)
            }
        }
        self.with_family(Validate)
    }

    pub fn parameter_count(&self) -> usize {
        struct Count;
        impl FamilyFn for Count {
            type Output = usize;
            fn call<M: Trainable>(self, c: &M::Config) -> usize {
                M::parameter_count(c)
            }
        }
        self.with_family(Count)
    }

    pub fn in_channels(&self) -> usize {
        struct Channels;
        impl FamilyFn for Channels {
            type Output = usize;
            fn call<M: Trainable>(self, c: &M::Config) -> usize {
                M::in_channels(c)
            }
        }
        self.with_family(Channels)
    }

    pub fn size_multiple(&self) -> usize {
        struct Multiple;
        impl FamilyFn for Multiple {
            type Output = usize;
            fn call<M: Trainable>(self, c: &M::Config) -> usize {
                M::size_multiple(c)
            }
        }
        self.with_family(Multiple)
    }
}

/// `fields` laid over `M`'s defaults of `version`, read strictly (unknown fields are errors).
fn parse_family<M: Trainable>(version: u32, fields: Value) -> Result<M::Config, String> {
    let defaults = serde_json::to_value(M::default_config(version)).expect("config serialises");
    serde_json::from_value(super::config::overlay(defaults, fields))
        .map_err(|e| format!("model: {e}"))
}

impl Serialize for ModelConfig {
    /// `family` first, then the family's fields.
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        #[derive(Serialize)]
        struct Tagged<'a, C> {
            family: &'static str,
            #[serde(flatten)]
            config: &'a C,
        }
        struct Write<S>(S);
        impl<S: Serializer> FamilyFn for Write<S> {
            type Output = Result<S::Ok, S::Error>;
            fn call<M: Trainable>(self, config: &M::Config) -> Self::Output {
                Tagged {
                    family: M::FAMILY,
                    config,
                }
                .serialize(self.0)
            }
        }
        self.with_family(Write(s))
    }
}

impl<'de> Deserialize<'de> for ModelConfig {
    /// With the current version's defaults; a whole run config is read with its own version's
    /// (see [`crate::train::config::TrainConfig`]).
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let mut v = Value::deserialize(d)?;
        let family = take_family(&mut v).map_err(serde::de::Error::custom)?;
        ModelConfig::from_fields(&family, super::config::CONFIG_VERSION, v)
            .map_err(serde::de::Error::custom)
    }
}

/// Removes and returns `family` from a `[model]` table (`"idf"` when absent).
pub(crate) fn take_family(model: &mut Value) -> Result<String, String> {
    let Value::Object(map) = model else {
        return Err("model must be a table".into());
    };
    match map.remove("family") {
        None => Ok(Idf::FAMILY.to_string()),
        Some(Value::String(f)) => Ok(f),
        Some(other) => Err(format!("model.family must be a string, not {other}")),
    }
}
