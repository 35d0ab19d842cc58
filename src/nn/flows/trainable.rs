//! The flow families as one [`Trainable`]: [`FlowModel<F>`] for a [`FlowFamily`] `F` (NICE,
//! RealNVP, Glow), whose config becomes a [`FlowSpec`].

use serde::de::DeserializeOwned;
use serde::Serialize;
use std::fmt;
use std::marker::PhantomData;
use tch::{nn, Device, Kind, Tensor};

use super::flow::{Flow, FlowSpec, LayerSpec, TERM_NAMES};
use crate::metrics::bpd;
use crate::nn::generative::Generative;
use crate::nn::layers::count_parameters;
use crate::train::model::{Evaluation, Trainable};

/// A flow family: its `[model]` section and how it describes its flow.
pub trait FlowFamily: 'static {
    type Config: Clone + fmt::Debug + PartialEq + Serialize + DeserializeOwned + 'static;
    const FAMILY: &'static str;
    const NAME: &'static str;
    fn default_config() -> Self::Config;
    /// The flow the config describes, or why it describes none.
    fn spec(config: &Self::Config) -> Result<FlowSpec, String>;
}

/// A trained (or training) flow of family `F`.
pub struct FlowModel<F> {
    flow: Flow,
    device: Device,
    family: PhantomData<F>,
}

impl<F> FlowModel<F> {
    pub fn flow(&self) -> &Flow {
        &self.flow
    }
}

/// Training images whose activations start the ActNorm layers.
const DATA_INIT_IMAGES: i64 = 512;

fn spec_of<F: FlowFamily>(c: &F::Config) -> FlowSpec {
    F::spec(c).expect("a validated flow config")
}

impl<F: FlowFamily> Trainable for FlowModel<F> {
    type Config = F::Config;
    const FAMILY: &'static str = F::FAMILY;
    const NAME: &'static str = F::NAME;

    /// The families came with run-config version 2; the same defaults for every version.
    fn default_config(version: u32) -> F::Config {
        let _ = version;
        F::default_config()
    }

    fn validate(c: &F::Config) -> Result<(), String> {
        F::spec(c)?.shapes().map(|_| ())
    }

    fn parameter_count(c: &F::Config) -> usize {
        let vs = nn::VarStore::new(Device::Cpu);
        let _ = Flow::new(&vs.root(), &spec_of::<F>(c));
        count_parameters(&vs)
    }

    fn in_channels(c: &F::Config) -> usize {
        spec_of::<F>(c).in_channels
    }

    fn size_multiple(c: &F::Config) -> usize {
        spec_of::<F>(c).size_multiple()
    }

    fn image_size(c: &F::Config) -> Option<usize> {
        Some(spec_of::<F>(c).image_size)
    }

    fn new(p: &nn::Path, c: &F::Config) -> Self {
        FlowModel {
            flow: Flow::new(p, &spec_of::<F>(c)),
            device: p.device(),
            family: PhantomData,
        }
    }

    /// The batch's bits/dim bound (one draw of the dequantization noise).
    fn loss(&self, x: &Tensor) -> Tensor {
        bpd::batch_bpd(self, x)
    }

    /// Test bits/dim and its parts: prior, log-det and dequantization (they sum to it).
    fn evaluate(&self, images: &Tensor, batch: i64, device: Device) -> Evaluation {
        let shares = bpd::dataset_bpd_by_term(self, images, batch, device);
        Evaluation::of_shares(TERM_NAMES.iter().map(|s| s.to_string()), shares)
    }

    fn lr_scale(_: &F::Config, _: &str, param: &Tensor) -> Tensor {
        Tensor::from(1f32).to_device(param.device())
    }

    fn into_generative(self) -> Result<Box<dyn Generative>, String> {
        Ok(Box::new(self))
    }

    /// ActNorm layers start from the first training images (uniformly dequantized). A run
    /// grown from another (`init_from`, `fresh` given) keeps the copied values and starts
    /// nothing: actnorm statistics of a different model would not fit.
    fn data_init(&self, c: &F::Config, train: &Tensor, device: Device, fresh: Option<&[String]>) {
        let spec = spec_of::<F>(c);
        let has_actnorm = spec.levels.iter().any(|l| {
            l.before_squeeze
                .iter()
                .chain(&l.after_squeeze)
                .any(|s| *s == LayerSpec::ActNorm)
        });
        if !has_actnorm || fresh.is_some() {
            return;
        }
        let n = DATA_INIT_IMAGES.min(train.size()[0]);
        let x = train.narrow(0, 0, n).to_device(device).to_kind(Kind::Float);
        let v = (&x + x.rand_like()) / 256.0 - 0.5;
        self.flow.data_init(&v);
    }
}

/// The flow's NLL bound per image ([`Flow`]'s terms): what its loss and test bpd average, and what
/// OOD detection scores images by.
impl<F> bpd::Likelihood for FlowModel<F> {
    fn nll_terms(&self, x: &Tensor) -> Vec<Tensor> {
        bpd::Likelihood::nll_terms(&self.flow, x)
    }
}

impl<F: FlowFamily> Generative for FlowModel<F> {
    fn image_shape(&self) -> [i64; 3] {
        let s = self.flow.spec().image_size as i64;
        [self.flow.spec().in_channels as i64, s, s]
    }

    fn latent_size(&self) -> i64 {
        self.flow.dims()
    }

    fn device(&self) -> Device {
        self.device
    }

    /// The inverse flow from standardised latents (factored-out halves first, the top last).
    fn decode(&self, z: &Tensor) -> Tensor {
        self.flow.decode_pixels(z)
    }

    fn has_encoder(&self) -> bool {
        true
    }

    /// The flow itself, at the centres of the pixels' bins.
    fn encode(&self, x: &Tensor) -> Option<Tensor> {
        Some(self.flow.encode_pixels(x))
    }
}
