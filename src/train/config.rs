//! Training run configuration: a TOML file, overridable by command-line flags.

use idfcodec_codec::IdfConfig;
use serde::{Deserialize, Serialize};
use std::path::{Path, PathBuf};

use super::optim::OptimizerKind;

/// Everything that defines a training run. Saved beside each checkpoint as JSON.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct TrainConfig {
    pub model: IdfConfig,
    pub data: DataConfig,
    pub train: Schedule,
}

/// Which images to train on.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct DataConfig {
    /// `mnist` or `fashion-mnist` (IDX files), or the name of a folder `DIR/NAME` with `train/`
    /// and `test/` subfolders of PNG/JPEG images (e.g. `photos`), sampled as square patches.
    pub dataset: String,
    /// Data folder; empty means `$IDFCODEC_DATA`, else `./data`.
    pub dir: PathBuf,
    /// Image folders: side of the patches in pixels.
    pub patch_size: usize,
    /// Image folders: training patches, cut once at random (seeded) from `train/`, half of them
    /// mirrored.
    pub train_patches: usize,
    /// Image folders: test patches, cut once at random (seeded) from `test/`.
    pub test_patches: usize,
}

/// Optimisation and bookkeeping.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Schedule {
    pub batch_size: usize,
    pub optimizer: OptimizerKind,
    /// Peak learning rate, reached after `warmup_steps`.
    pub lr: f64,
    /// Final learning rate of the cosine decay.
    pub lr_min: f64,
    pub warmup_steps: usize,
    /// Total optimisation steps (the cosine decay spans them).
    pub steps: usize,
    pub seed: u64,
    /// Test bpd is measured every this many steps (0: only at the end).
    pub eval_every: usize,
    /// Test images used for the periodic evaluations (the final one uses all).
    pub eval_images: usize,
    /// A checkpoint is written at least this often.
    pub checkpoint_minutes: f64,
    /// Gradients with a larger global norm are scaled down to it (0: no clipping).
    pub clip_grad_norm: f64,
    /// Start every prior as the mixture fitted to the latents of the first training images
    /// ([`crate::nn::Idf::init_priors`]) rather than at random.
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
    /// Start from the weights of another run (its folder): every tensor of its checkpoint with
    /// the same name and shape is copied. Priors whose last layer was not copied start from the
    /// data (when `data_init`), other new tensors at their usual initialisation (the second
    /// convolution of a new residual block at zero). Lets a trained model grow, e.g. a larger
    /// `top_groups` or more `blocks`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub init_from: Option<PathBuf>,
    /// Parameters whose names start with one of these prefixes (e.g. `"level"`: the flow and
    /// the factor-out priors) keep their values: their learning rate is 0. For growing a
    /// trained model by new priors without disturbing what it learned.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub freeze: Vec<String>,
}

impl Default for DataConfig {
    fn default() -> Self {
        DataConfig {
            dataset: "fashion-mnist".into(),
            dir: PathBuf::new(),
            patch_size: 32,
            train_patches: 50_000,
            test_patches: 2_000,
        }
    }
}

impl Default for Schedule {
    fn default() -> Self {
        Schedule {
            batch_size: 64,
            optimizer: OptimizerKind::Adam,
            lr: 1e-3,
            lr_min: 1e-5,
            warmup_steps: 100,
            steps: 10_000,
            seed: 0,
            eval_every: 1000,
            eval_images: 2000,
            checkpoint_minutes: 5.0,
            clip_grad_norm: 0.0,
            data_init: true,
            output_lr_scale: 0.01,
            coupling_lr_scale: 0.001,
            init_from: None,
            freeze: Vec::new(),
        }
    }
}

impl TrainConfig {
    /// Reads a TOML file; missing fields take their defaults, unknown fields are errors.
    pub fn from_toml_file(path: &Path) -> Result<Self, String> {
        let text = std::fs::read_to_string(path)
            .map_err(|e| format!("cannot read {}: {e}", path.display()))?;
        let cfg: TrainConfig =
            toml::from_str(&text).map_err(|e| format!("{}: {e}", path.display()))?;
        cfg.validate()?;
        Ok(cfg)
    }

    pub fn validate(&self) -> Result<(), String> {
        self.model.validate()?;
        let t = &self.train;
        if t.batch_size == 0 || t.steps == 0 {
            return Err("batch_size and steps must be positive".into());
        }
        for (name, v) in [
            ("output_lr_scale", t.output_lr_scale),
            ("coupling_lr_scale", t.coupling_lr_scale),
        ] {
            if !(v > 0.0 && v <= 1.0) {
                return Err(format!("{name} must be in (0, 1]"));
            }
        }
        if !(t.lr > 0.0 && t.lr_min >= 0.0 && t.lr_min <= t.lr) {
            return Err("need 0 <= lr_min <= lr and lr > 0".into());
        }
        Ok(())
    }

    /// Learning rate at `step` (0-based): linear warm-up, then cosine decay to `lr_min`.
    pub fn lr_at(&self, step: usize) -> f64 {
        let t = &self.train;
        if step < t.warmup_steps {
            return t.lr * (step + 1) as f64 / t.warmup_steps as f64;
        }
        let span = t.steps.saturating_sub(t.warmup_steps).max(1) as f64;
        let progress = ((step - t.warmup_steps) as f64 / span).min(1.0);
        t.lr_min + 0.5 * (t.lr - t.lr_min) * (1.0 + (std::f64::consts::PI * progress).cos())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn schedule_warms_up_then_decays_to_the_minimum() {
        let mut c = TrainConfig::default();
        c.train.warmup_steps = 10;
        c.train.steps = 110;
        assert!((c.lr_at(0) - c.train.lr / 10.0).abs() < 1e-12);
        assert!((c.lr_at(9) - c.train.lr).abs() < 1e-12);
        assert!((c.lr_at(10) - c.train.lr).abs() < 1e-12);
        assert!((c.lr_at(60) - (c.train.lr + c.train.lr_min) / 2.0).abs() < 1e-12);
        assert!((c.lr_at(110) - c.train.lr_min).abs() < 1e-12);
        assert!((c.lr_at(500) - c.train.lr_min).abs() < 1e-12);
    }

    #[test]
    fn toml_partial_and_unknown_fields() {
        let c: TrainConfig = toml::from_str("[train]\nsteps = 5\n[model]\nhidden = 8\n").unwrap();
        assert_eq!(c.train.steps, 5);
        assert_eq!(c.model.hidden, 8);
        assert_eq!(c.model.levels, IdfConfig::default().levels);
        assert!(toml::from_str::<TrainConfig>("[train]\nstepz = 5\n").is_err());
    }
}
