//! The feature classifiers trained here, one per dataset (`models/features/NAME.safetensors`):
//! two 3×3 convolutions (ReLU, 2×2 max-pooling each), a fully connected layer whose ReLU output is
//! the feature vector (FID, KID), and a linear layer to the class logits (inception score).
//! Input: `N×C×H×W` pixels `0..=255`, scaled to `[0, 1]` inside.
//!
//! The file: safetensors with the weights (f32) and, in the metadata under `idfcodec.features`,
//! the [`ClassifierCard`] (architecture, training budget and machine, measured test accuracy). One
//! writer ([`save`]) and one reader ([`load`]).

use std::collections::HashMap;
use std::path::Path;
use std::time::Instant;

use anyhow::{anyhow, Context, Result};
use serde::{Deserialize, Serialize};
use tch::nn::{self, Module, VarStore};
use tch::{Device, Kind, Tensor};

use super::{tensor_to_matrix, FeatureNet, Features, Fit};
use crate::data::{self, Dataset, ImageSet, Split};
use crate::train::optim::{Optimizer, OptimizerKind, ParamGroup};
use crate::train::{to_tensor, BatchOrder};

/// Metadata key of the card.
const CARD_KEY: &str = "idfcodec.features";

/// The architecture.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ClassifierConfig {
    /// Input channels, height and width (height and width multiples of 4).
    pub channels: usize,
    pub height: usize,
    pub width: usize,
    pub classes: usize,
    /// Channels of the two convolutions.
    pub conv1: usize,
    pub conv2: usize,
    /// Feature dimension (the penultimate layer).
    pub features: usize,
}

impl ClassifierConfig {
    /// The architecture of the shipped classifiers, for 28×28 gray images of 10 classes.
    pub fn default_for(set: &ImageSet) -> Self {
        ClassifierConfig {
            channels: set.channels,
            height: set.height,
            width: set.width,
            classes: 10,
            conv1: 32,
            conv2: 64,
            features: 128,
        }
    }

    fn validate(&self) -> Result<()> {
        anyhow::ensure!(
            self.height % 4 == 0 && self.width % 4 == 0 && self.height > 0 && self.width > 0,
            "classifier input {}×{}: height and width must be positive multiples of 4",
            self.height,
            self.width
        );
        anyhow::ensure!(
            self.channels > 0
                && self.classes >= 2
                && self.conv1 > 0
                && self.conv2 > 0
                && self.features > 0,
            "classifier config {self:?} has an empty layer"
        );
        Ok(())
    }

    fn flat(&self) -> i64 {
        (self.conv2 * (self.height / 4) * (self.width / 4)) as i64
    }

    pub fn parameter_count(&self) -> usize {
        let c = self;
        (c.channels * 9 + 1) * c.conv1
            + (c.conv1 * 9 + 1) * c.conv2
            + (c.flat() as usize + 1) * c.features
            + (c.features + 1) * c.classes
    }
}

/// What a classifier file says about itself.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct ClassifierCard {
    /// The name printed beside every score ("mnist-classifier-v1").
    pub name: String,
    /// The dataset it was trained on.
    pub dataset: String,
    pub config: ClassifierConfig,
    /// Fraction of the dataset's test split classified correctly.
    pub test_accuracy: f64,
    pub training: TrainingRecord,
}

/// How a classifier was trained.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct TrainingRecord {
    pub epochs: usize,
    pub steps: usize,
    pub batch: usize,
    pub learning_rate: f64,
    pub seed: u64,
    pub seconds: f64,
    /// Mean training cross-entropy of the last epoch, in nats.
    pub last_epoch_loss: f64,
    /// Where it ran (`device::describe`).
    pub machine: String,
}

/// The classifier network.
#[derive(Debug)]
pub struct Classifier {
    conv1: nn::Conv2D,
    conv2: nn::Conv2D,
    fc: nn::Linear,
    out: nn::Linear,
    config: ClassifierConfig,
}

/// Dropout on the features while training.
const DROPOUT: f64 = 0.3;

impl Classifier {
    /// Builds the variables under `p` (seeded by the caller).
    pub fn new(p: &nn::Path, config: &ClassifierConfig) -> Self {
        let conv = nn::ConvConfig {
            padding: 1,
            ..Default::default()
        };
        Classifier {
            conv1: nn::conv2d(
                p / "conv1",
                config.channels as i64,
                config.conv1 as i64,
                3,
                conv,
            ),
            conv2: nn::conv2d(
                p / "conv2",
                config.conv1 as i64,
                config.conv2 as i64,
                3,
                conv,
            ),
            fc: nn::linear(
                p / "fc",
                config.flat(),
                config.features as i64,
                Default::default(),
            ),
            out: nn::linear(
                p / "out",
                config.features as i64,
                config.classes as i64,
                Default::default(),
            ),
            config: config.clone(),
        }
    }

    pub fn config(&self) -> &ClassifierConfig {
        &self.config
    }

    /// Features and logits of `x` (`N×C×H×W`, any kind holding pixels `0..=255`).
    pub fn forward_t(&self, x: &Tensor, train: bool) -> (Tensor, Tensor) {
        let x = x.to_kind(Kind::Float) / 255.0;
        let h = self.conv1.forward(&x).relu().max_pool2d_default(2);
        let h = self.conv2.forward(&h).relu().max_pool2d_default(2);
        let features = self.fc.forward(&h.flatten(1, -1)).relu();
        let logits = self.out.forward(&features.dropout(DROPOUT, train));
        (features, logits)
    }
}

/// A loaded classifier with its card, as a [`FeatureNet`].
#[derive(Debug)]
pub struct LoadedClassifier {
    pub card: ClassifierCard,
    net: Classifier,
    device: Device,
    _vs: VarStore,
}

impl FeatureNet for LoadedClassifier {
    fn name(&self) -> String {
        self.card.name.clone()
    }

    fn fit(&self, channels: usize, height: usize, width: usize) -> Result<Fit, String> {
        let c = &self.card.config;
        if channels != c.channels || height != c.height || width != c.width {
            return Err(format!(
                "{} takes {}-channel {}×{} images, not {}-channel {}×{}",
                self.card.name, c.channels, c.height, c.width, channels, height, width
            ));
        }
        Ok(Fit {
            channels: c.channels,
        })
    }

    fn extract(&self, set: &ImageSet, batch: usize) -> Result<Features> {
        let images = to_tensor(set);
        let (mut features, mut logits) = (Vec::new(), Vec::new());
        tch::no_grad(|| {
            for start in (0..set.count).step_by(batch.max(1)) {
                let n = batch.min(set.count - start);
                let x = images
                    .narrow(0, start as i64, n as i64)
                    .to_device(self.device);
                let (f, l) = self.net.forward_t(&x, false);
                features.push(f.to_device(Device::Cpu));
                logits.push(l.to_device(Device::Cpu));
            }
        });
        Ok(Features {
            features: tensor_to_matrix(&Tensor::cat(&features, 0))?,
            logits: Some(tensor_to_matrix(&Tensor::cat(&logits, 0))?),
        })
    }
}

/// Writes the classifier's weights and card to `path` (safetensors).
pub fn save(path: &Path, vs: &VarStore, card: &ClassifierCard) -> Result<()> {
    let mut named: Vec<(String, Vec<usize>, Vec<u8>)> = Vec::new();
    for (name, t) in vs.variables() {
        let shape: Vec<usize> = t.size().iter().map(|&d| d as usize).collect();
        let values = Vec::<f32>::try_from(t.to_device(Device::Cpu).flatten(0, -1))?;
        let bytes = values.iter().flat_map(|v| v.to_le_bytes()).collect();
        named.push((name, shape, bytes));
    }
    named.sort_by(|a, b| a.0.cmp(&b.0));
    let views = named
        .iter()
        .map(|(name, shape, bytes)| {
            safetensors::tensor::TensorView::new(safetensors::Dtype::F32, shape.clone(), bytes)
                .map(|v| (name.clone(), v))
        })
        .collect::<Result<Vec<_>, _>>()?;
    let metadata = HashMap::from([(CARD_KEY.to_string(), serde_json::to_string(card)?)]);
    let bytes = safetensors::serialize(views, &Some(metadata))?;
    std::fs::write(path, bytes).with_context(|| format!("writing {}", path.display()))
}

/// Reads a classifier file (`what` names it in errors) onto `device`: the card, then the
/// network it describes, every tensor checked against it.
pub fn load(bytes: &[u8], what: &str, device: Device) -> Result<LoadedClassifier> {
    let (_, meta) = safetensors::SafeTensors::read_metadata(bytes)
        .with_context(|| format!("{what} is not a safetensors file"))?;
    let card_json = meta
        .metadata()
        .as_ref()
        .and_then(|m| m.get(CARD_KEY))
        .ok_or_else(|| anyhow!("{what} is not a feature classifier (no {CARD_KEY} metadata)"))?;
    let card: ClassifierCard = serde_json::from_str(card_json)
        .with_context(|| format!("{what}: unreadable {CARD_KEY} metadata"))?;
    card.config.validate()?;
    let tensors = safetensors::SafeTensors::deserialize(bytes)
        .with_context(|| format!("{what} is not a safetensors file"))?;
    let mut vs = VarStore::new(device);
    let net = Classifier::new(&vs.root(), &card.config);
    tch::no_grad(|| -> Result<()> {
        for (name, mut var) in vs.variables() {
            let view = tensors
                .tensor(&name)
                .with_context(|| format!("{what}: tensor {name} missing"))?;
            let shape: Vec<i64> = view.shape().iter().map(|&d| d as i64).collect();
            anyhow::ensure!(
                view.dtype() == safetensors::Dtype::F32 && shape == var.size(),
                "{what}: tensor {name} is {:?} {:?}, the card's architecture needs f32 {:?}",
                view.dtype(),
                shape,
                var.size()
            );
            let values: Vec<f32> = view
                .data()
                .chunks_exact(4)
                .map(|b| f32::from_le_bytes([b[0], b[1], b[2], b[3]]))
                .collect();
            var.copy_(&Tensor::from_slice(&values).reshape(&shape));
        }
        Ok(())
    })?;
    vs.freeze();
    Ok(LoadedClassifier {
        card,
        net,
        device,
        _vs: vs,
    })
}

/// How to train a classifier.
#[derive(Clone, Debug)]
pub struct TrainOptions {
    pub dataset: Dataset,
    pub data_dir: std::path::PathBuf,
    pub epochs: usize,
    pub batch: usize,
    pub learning_rate: f64,
    pub seed: u64,
    pub device: Device,
    /// The name written into the card ("mnist-classifier-v1").
    pub name: String,
}

/// Trains a classifier on the dataset's training split and measures it on the test split.
/// Returns its variables and card (the test accuracy filled in).
pub fn train(opts: &TrainOptions, progress: impl Fn(&str)) -> Result<(VarStore, ClassifierCard)> {
    let train_set = data::load(&opts.data_dir, opts.dataset, Split::Train)?;
    let test_set = data::load(&opts.data_dir, opts.dataset, Split::Test)?;
    let labels = |s: &ImageSet| -> Result<Tensor> {
        let l = s
            .labels
            .as_ref()
            .ok_or_else(|| anyhow!("{} has no labels", opts.dataset))?;
        Ok(Tensor::from_slice(l).to_kind(Kind::Int64))
    };
    let (x_train, y_train) = (to_tensor(&train_set), labels(&train_set)?);
    let config = ClassifierConfig::default_for(&train_set);
    config.validate()?;

    tch::manual_seed(opts.seed as i64);
    let vs = VarStore::new(opts.device);
    let net = Classifier::new(&vs.root(), &config);
    let mut opt = Optimizer::new(&vs, OptimizerKind::Adam, &[ParamGroup::all()], |_, _| {
        Tensor::from(1f32)
    })
    .map_err(anyhow::Error::msg)?;
    let mut order = BatchOrder::new(opts.seed, train_set.count, opts.batch);
    let steps = opts.epochs * order.steps_per_epoch();
    let t = Instant::now();
    let mut epoch_loss = (0.0, 0usize);
    let mut last_epoch_loss = f64::NAN;
    for step in 0..steps {
        let idx = order.indices(step);
        let x = x_train.index_select(0, &idx).to_device(opts.device);
        let y = y_train.index_select(0, &idx).to_device(opts.device);
        let (_, logits) = net.forward_t(&x, true);
        let loss = logits.cross_entropy_for_logits(&y);
        opt.zero_grad();
        loss.backward();
        opt.step(0, opts.learning_rate, 1.0);
        epoch_loss.0 += loss.double_value(&[]);
        epoch_loss.1 += 1;
        if (step + 1) % order.steps_per_epoch() == 0 {
            last_epoch_loss = epoch_loss.0 / epoch_loss.1 as f64;
            progress(&format!(
                "epoch {}/{}: train loss {last_epoch_loss:.4} ({:.0} s)",
                (step + 1) / order.steps_per_epoch(),
                opts.epochs,
                t.elapsed().as_secs_f64()
            ));
            epoch_loss = (0.0, 0);
        }
    }
    let seconds = t.elapsed().as_secs_f64();
    let test_accuracy = accuracy(&net, &test_set, opts.device)?;
    let card = ClassifierCard {
        name: opts.name.clone(),
        dataset: opts.dataset.to_string(),
        config,
        test_accuracy,
        training: TrainingRecord {
            epochs: opts.epochs,
            steps,
            batch: opts.batch,
            learning_rate: opts.learning_rate,
            seed: opts.seed,
            seconds,
            last_epoch_loss,
            machine: crate::device::describe(opts.device),
        },
    };
    Ok((vs, card))
}

/// Fraction of `set` (with labels) that `net` classifies correctly.
pub fn accuracy(net: &Classifier, set: &ImageSet, device: Device) -> Result<f64> {
    let labels = set
        .labels
        .as_ref()
        .ok_or_else(|| anyhow!("the set has no labels"))?;
    let images = to_tensor(set);
    let mut correct = 0i64;
    tch::no_grad(|| {
        for start in (0..set.count).step_by(1000) {
            let n = 1000.min(set.count - start);
            let x = images.narrow(0, start as i64, n as i64).to_device(device);
            let y = Tensor::from_slice(&labels[start..start + n])
                .to_kind(Kind::Int64)
                .to_device(device);
            let (_, logits) = net.forward_t(&x, false);
            correct += logits
                .argmax(-1, false)
                .eq_tensor(&y)
                .sum(Kind::Int64)
                .int64_value(&[]);
        }
    });
    Ok(correct as f64 / set.count as f64)
}

/// The card as Markdown (`models/features/NAME.md`), with the command that made it.
pub fn card_markdown(card: &ClassifierCard, command: &str) -> String {
    let c = &card.config;
    let t = &card.training;
    format!(
        "# {name}\n\n\
         Feature network for `idfcodec metrics` on {dataset} (the default for `{dataset}:…` sources).\n\n\
         - **Test accuracy: {acc:.2} %** ({dataset} test split, 10,000 images; measured at the end of training)\n\
         - Architecture: input {ch}×{h}×{w} pixels scaled to [0, 1]; conv 3×3 → {c1} channels, ReLU, max-pool 2; \
         conv 3×3 → {c2}, ReLU, max-pool 2; fully connected → {f} + ReLU (**the features**, dimension {f}, \
         used by FID and KID); dropout {drop} (training only); linear → {k} logits (the inception score). \
         {params} parameters, f32.\n\
         - Training: Adam, learning rate {lr}, batch {batch}, {epochs} epochs ({steps} steps), seed {seed}, \
         cross-entropy; last epoch's mean training loss {loss:.4} nats. No augmentation.\n\
         - Budget: {secs:.0} s on {machine}.\n\
         - Command: `{command}`\n",
        name = card.name,
        dataset = card.dataset,
        acc = 100.0 * card.test_accuracy,
        ch = c.channels,
        h = c.height,
        w = c.width,
        c1 = c.conv1,
        c2 = c.conv2,
        f = c.features,
        drop = DROPOUT,
        k = c.classes,
        params = c.parameter_count(),
        lr = t.learning_rate,
        batch = t.batch,
        epochs = t.epochs,
        steps = t.steps,
        seed = t.seed,
        loss = t.last_epoch_loss,
        secs = t.seconds,
        machine = t.machine,
    )
}
