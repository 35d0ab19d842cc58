//! Feature networks for FID, KID and the inception score ([`FeatureNet`]): images in, one feature
//! vector (and, where the net has them, class logits) per image out.
//!
//! - The classifiers trained here, one per dataset ([`classifier`]), compiled into the binary from
//!   `models/features/` so the metrics work on a fresh machine; chosen by dataset name
//!   (`--features mnist`), or read from a file written by `idfcodec metrics train-features`.
//! - Any TorchScript module ([`torchscript`]), for features such as the Inception-v3 of the
//!   usual FID code, so scores can be put beside published ones.

pub mod classifier;
pub mod torchscript;

use std::path::{Path, PathBuf};

use anyhow::{bail, Context, Result};
use nalgebra::DMatrix;
use tch::{Device, Kind, Tensor};

use super::source::ImageSource;
use crate::data::{Dataset, ImageSet};

/// Feature vectors of a set of images, one row per image.
#[derive(Debug, Clone)]
pub struct Features {
    /// `n × d`.
    pub features: DMatrix<f64>,
    /// `n × classes`, where the net gives class logits.
    pub logits: Option<DMatrix<f64>>,
}

/// How a net takes a set of images of a given geometry.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Fit {
    /// The channels the images must be loaded with (a folder's gray images replicated to RGB,
    /// or its colour images turned to luma).
    pub channels: usize,
}

/// A feature network.
pub trait FeatureNet {
    /// The name printed beside every score ("mnist-classifier-v1").
    fn name(&self) -> String;
    /// Whether images of `channels` (1 gray, 3 colour), `height` and `width` fit, and how they
    /// are to be loaded; else why not. Asked before any pixel is decoded.
    fn fit(&self, channels: usize, height: usize, width: usize) -> Result<Fit, String>;
    /// The features of `set` (already loaded as [`FeatureNet::fit`] said), computed in batches of
    /// `batch` images.
    fn extract(&self, set: &ImageSet, batch: usize) -> Result<Features>;
}

/// `--features`: which feature net.
#[derive(Debug, Clone, PartialEq)]
pub enum FeatureChoice {
    /// The classifier shipped for a dataset (`mnist`, `fashion-mnist`).
    Shipped(Dataset),
    /// A classifier file (`.safetensors`, from `idfcodec metrics train-features`).
    ClassifierFile(PathBuf),
    /// A TorchScript module (`.pt`, `.pth`, `.ts`, `.torchscript`).
    TorchScript(PathBuf),
}

impl FeatureChoice {
    /// `mnist`, `fashion-mnist`, or a file path by its extension.
    pub fn parse(s: &str) -> Result<Self> {
        if let Ok(ds) = s.parse::<Dataset>() {
            return Ok(FeatureChoice::Shipped(ds));
        }
        let path = PathBuf::from(s);
        let ext = path
            .extension()
            .and_then(|e| e.to_str())
            .map(str::to_ascii_lowercase);
        match ext.as_deref() {
            Some("safetensors") => Ok(FeatureChoice::ClassifierFile(path)),
            Some("pt" | "pth" | "ts" | "torchscript") => Ok(FeatureChoice::TorchScript(path)),
            _ => bail!(
                "--features {s}: give a shipped classifier (mnist, fashion-mnist), a classifier \
                 file (.safetensors) or a TorchScript module (.pt)"
            ),
        }
    }
}

/// The bytes of the classifier shipped for `ds` (`models/features/<ds>.safetensors`).
pub fn shipped(ds: Dataset) -> &'static [u8] {
    match ds {
        Dataset::Mnist => include_bytes!("../../../models/features/mnist.safetensors"),
        Dataset::FashionMnist => {
            include_bytes!("../../../models/features/fashion-mnist.safetensors")
        }
    }
}

/// Opens the chosen feature net on `device`; `ts` are the options a TorchScript module runs with.
pub fn open(
    choice: &FeatureChoice,
    ts: &torchscript::TorchScriptOptions,
    device: Device,
) -> Result<Box<dyn FeatureNet>> {
    Ok(match choice {
        FeatureChoice::Shipped(ds) => Box::new(classifier::load(
            shipped(*ds),
            &format!("the shipped {ds} classifier"),
            device,
        )?),
        FeatureChoice::ClassifierFile(path) => {
            let bytes = read_file(path)?;
            Box::new(classifier::load(
                &bytes,
                &path.display().to_string(),
                device,
            )?)
        }
        FeatureChoice::TorchScript(path) => {
            Box::new(torchscript::TorchScriptNet::load(path, ts.clone(), device)?)
        }
    })
}

fn read_file(path: &Path) -> Result<Vec<u8>> {
    std::fs::read(path).with_context(|| format!("cannot read {}", path.display()))
}

/// A 2-D float tensor (`n × d`; `n × d × 1 × 1` is flattened) as an f64 matrix.
pub fn tensor_to_matrix(t: &Tensor) -> Result<DMatrix<f64>> {
    let t = match t.dim() {
        2 => t.shallow_clone(),
        d if d > 2 && t.size()[2..].iter().all(|&s| s == 1) => t.flatten(1, -1),
        _ => bail!(
            "the feature net gave a tensor of shape {:?}; N×D (or N×D×1×1) was expected",
            t.size()
        ),
    };
    let (n, d) = (t.size()[0] as usize, t.size()[1] as usize);
    let values = Vec::<f64>::try_from(
        t.to_device(Device::Cpu)
            .to_kind(Kind::Double)
            .contiguous()
            .flatten(0, -1),
    )?;
    if let Some(bad) = values.iter().position(|v| !v.is_finite()) {
        bail!(
            "the feature net gave a non-finite value ({}) for image {}",
            values[bad],
            bad / d.max(1)
        );
    }
    Ok(DMatrix::from_row_slice(n, d, &values))
}

/// The features of the images of `source` (its first `limit`), for `net`: the source's geometry is
/// checked against the net before any pixel is decoded.
pub fn features_of(
    net: &dyn FeatureNet,
    source: &ImageSource,
    data_dir: &Path,
    limit: Option<usize>,
    batch: usize,
) -> Result<Features> {
    let opened = source.open(data_dir, limit)?;
    let g = opened.geometry();
    if g.count == 0 {
        bail!("{source}: no images");
    }
    let fit = net
        .fit(g.channels, g.height, g.width)
        .map_err(|why| anyhow::anyhow!("{source}: {why}"))?;
    let set = opened.load(fit.channels)?;
    net.extract(&set, batch)
        .with_context(|| format!("features of {source}"))
}

/// The default feature net for `sources`: the shipped classifier of the one dataset they name;
/// an error asking for `--features` when they name none (folders) or two.
pub fn default_choice(sources: &[&ImageSource]) -> Result<FeatureChoice> {
    let mut named: Vec<Dataset> = sources.iter().filter_map(|s| s.dataset()).collect();
    named.dedup();
    match named.as_slice() {
        [ds] => Ok(FeatureChoice::Shipped(*ds)),
        [] => bail!(
            "no dataset named, so no default features: give --features mnist, --features \
             fashion-mnist, a classifier .safetensors or a TorchScript .pt"
        ),
        _ => bail!(
            "the images are of {} and {}: say whose features to compare them with \
             (--features {} or --features {}, or a TorchScript .pt)",
            named[0],
            named[1],
            named[0],
            named[1]
        ),
    }
}
