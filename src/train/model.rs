//! What the training loop needs of a model family ([`Trainable`]), and the run config's
//! `[model]` section tagged by family ([`ModelConfig`]): the one place the families are listed.
//!
//! A family is a tch model with `new(&nn::Path, &Config)` (the tch-example style), a loss of a
//! batch, an evaluation on test images, per-parameter learning-rate multipliers and, where it
//! has them, data-dependent initialisation and a way to grow from another run's weights.

use serde::de::DeserializeOwned;
use serde::{Deserialize, Deserializer, Serialize, Serializer};
use serde_json::Value;
use std::fmt;
use tch::{nn, Device, Tensor};

use crate::nn::idf::IdfModelConfig;
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

/// An evaluation: the figure (bits/dim for a likelihood model) and its named shares, if the
/// family splits it (the IDF: one per latent group), which sum to it.
#[derive(Clone, Debug, PartialEq)]
pub struct Evaluation {
    pub total: f64,
    pub parts: Vec<(String, f64)>,
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
        }
    }

    /// The family's config from the `[model]` fields `fields` (its `family` tag removed), over
    /// the family's defaults of run-config version `version`.
    pub fn from_fields(family: &str, version: u32, fields: Value) -> Result<Self, String> {
        match family {
            Idf::FAMILY => parse_family::<Idf>(version, fields).map(ModelConfig::Idf),
            other => Err(format!(
                "model.family = {other:?} is not a known family (known: {:?})",
                [Idf::FAMILY]
            )),
        }
    }

    /// The config of `M`'s family, if this is one.
    // one arm per family, as in `with_family`
    #[allow(clippy::infallible_destructuring_match)]
    pub fn of<M: Trainable>(&self) -> Option<&M::Config> {
        let any: &dyn std::any::Any = match self {
            ModelConfig::Idf(c) => c,
        };
        any.downcast_ref()
    }

    /// The IDF's config, when the family is the IDF.
    pub fn idf(&self) -> Option<&IdfModelConfig> {
        match self {
            ModelConfig::Idf(c) => Some(c),
        }
    }

    pub fn idf_mut(&mut self) -> Option<&mut IdfModelConfig> {
        match self {
            ModelConfig::Idf(c) => Some(c),
        }
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
