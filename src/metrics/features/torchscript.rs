//! A TorchScript module as the feature net (`--features model.pt`), loaded with `tch::CModule`.
//!
//! What it is given: a float32 batch `N×C×S×S` (or `N×C×H×W` without `--ts-size`), with
//! - `C` = `--ts-channels` (default 3): grayscale images have their one channel replicated to
//!   three; colour images are turned to luma for `--ts-channels 1`;
//! - pixel values scaled by `--ts-range`: `unit` (default) `[0, 1]`, `signed` `[-1, 1]`, `byte`
//!   `[0, 255]`;
//! - the size: `--ts-size S` resizes bilinearly (no antialiasing, corners not aligned) to `S×S`
//!   before the module sees the images; without it, the images' own size.
//!
//! What it must return: a tensor `N×D` (or `N×D×1×1`), taken as the features — and as the logits
//! for the inception score; or a tuple/list whose first element is the features and whose second
//! (if any) is the logits.
//!
//! For pytorch-fid's Inception-v3 (`InceptionV3([3])`, which takes `[0, 1]` RGB and resizes to
//! 299×299 itself, output a list holding `N×2048×1×1`), `torch.jit.trace(model, torch.rand(1, 3,
//! 299, 299)).save("inception.pt")` gives a module for the defaults (`--ts-range unit`, 3 channels);
//! `--ts-size 299` spares it the resize of small images but changes nothing else. (Not tried here:
//! its weights cannot be fetched on the machines this was built on; `tests/metrics.rs` runs a
//! traced module of its own.)

use std::path::{Path, PathBuf};

use anyhow::{bail, Context, Result};
use tch::{CModule, Device, IValue, Kind, Tensor};

use super::{tensor_to_matrix, FeatureNet, Features, Fit};
use crate::data::ImageSet;
use crate::train::to_tensor;

/// How pixel values `0..=255` are scaled for the module.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, clap::ValueEnum)]
pub enum InputRange {
    /// `[0, 1]`.
    #[default]
    Unit,
    /// `[-1, 1]`.
    Signed,
    /// `[0, 255]`, unscaled.
    Byte,
}

/// The input a TorchScript module is given.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TorchScriptOptions {
    /// Channels (1 or 3).
    pub channels: usize,
    /// Resize to `size × size` first.
    pub size: Option<usize>,
    pub range: InputRange,
}

impl Default for TorchScriptOptions {
    fn default() -> Self {
        TorchScriptOptions {
            channels: 3,
            size: None,
            range: InputRange::Unit,
        }
    }
}

/// A loaded TorchScript feature net.
#[derive(Debug)]
pub struct TorchScriptNet {
    path: PathBuf,
    module: CModule,
    options: TorchScriptOptions,
    device: Device,
}

impl TorchScriptNet {
    pub fn load(path: &Path, options: TorchScriptOptions, device: Device) -> Result<Self> {
        if options.channels != 1 && options.channels != 3 {
            bail!("--ts-channels must be 1 or 3, not {}", options.channels);
        }
        if options.size == Some(0) {
            bail!("--ts-size must be at least 1");
        }
        if !path.is_file() {
            bail!("{}: no such file", path.display());
        }
        let mut module = CModule::load_on_device(path, device)
            .with_context(|| format!("{} is not a TorchScript module", path.display()))?;
        module.set_eval();
        Ok(TorchScriptNet {
            path: path.to_path_buf(),
            module,
            options,
            device,
        })
    }

    /// The module's input for a batch of `u8` images `N×C×H×W`.
    fn prepare(&self, x: &Tensor) -> Tensor {
        let mut x = x.to_kind(Kind::Float);
        if x.size()[1] == 1 && self.options.channels == 3 {
            x = x.repeat([1, 3, 1, 1]);
        }
        if let Some(s) = self.options.size {
            let s = s as i64;
            x = x.upsample_bilinear2d([s, s], false, None, None);
        }
        match self.options.range {
            InputRange::Unit => x / 255.0,
            InputRange::Signed => x / 127.5 - 1.0,
            InputRange::Byte => x,
        }
    }
}

/// The tensors of a module's output: a tensor, or the tensors of a tuple or list.
fn output_tensors(out: IValue) -> Result<Vec<Tensor>> {
    Ok(match out {
        IValue::Tensor(t) => vec![t],
        IValue::TensorList(ts) => ts,
        IValue::Tuple(vs) | IValue::GenericList(vs) => vs
            .into_iter()
            .map(|v| match v {
                IValue::Tensor(t) => Ok(t),
                other => bail!("the module returned a {other:?} among its outputs, not a tensor"),
            })
            .collect::<Result<_>>()?,
        other => bail!("the module returned {other:?}, not a tensor"),
    })
}

impl FeatureNet for TorchScriptNet {
    fn name(&self) -> String {
        format!("torchscript:{}", self.path.display())
    }

    fn fit(&self, channels: usize, height: usize, width: usize) -> Result<Fit, String> {
        if height == 0 || width == 0 {
            return Err(format!("empty {height}×{width} images"));
        }
        let _ = channels; // gray is replicated, colour turned to luma as the options say
        Ok(Fit {
            channels: if self.options.channels == 1 {
                1
            } else {
                channels
            },
        })
    }

    fn extract(&self, set: &ImageSet, batch: usize) -> Result<Features> {
        let images = to_tensor(set);
        let (mut features, mut logits) = (Vec::new(), Vec::new());
        tch::no_grad(|| -> Result<()> {
            for start in (0..set.count).step_by(batch.max(1)) {
                let n = batch.min(set.count - start);
                let x = self.prepare(
                    &images
                        .narrow(0, start as i64, n as i64)
                        .to_device(self.device),
                );
                let out = self
                    .module
                    .forward_is(&[IValue::Tensor(x)])
                    .with_context(|| format!("running {}", self.path.display()))?;
                let mut ts = output_tensors(out)?.into_iter();
                let f = ts
                    .next()
                    .with_context(|| format!("{} returned nothing", self.path.display()))?;
                let l = ts.next().unwrap_or_else(|| f.shallow_clone());
                features.push(f.to_device(Device::Cpu));
                logits.push(l.to_device(Device::Cpu));
            }
            Ok(())
        })?;
        let features = tensor_to_matrix(&Tensor::cat(&features, 0))?;
        if features.nrows() != set.count {
            bail!(
                "{} gave {} feature vectors for {} images",
                self.path.display(),
                features.nrows(),
                set.count
            );
        }
        Ok(Features {
            features,
            logits: Some(tensor_to_matrix(&Tensor::cat(&logits, 0))?),
        })
    }
}
