//! Training run configuration: a TOML file, overridable by command-line flags, saved beside each
//! checkpoint as JSON.
//!
//! ```toml
//! version = 2            # the run-config version whose defaults fill what is left out
//! [model]
//! family = "idf"         # the model family (absent: "idf"); the family's fields follow
//! levels = 2             # … the IDF's architecture (`IdfConfig`)
//! [model.train]          # the IDF's own training fields (data_init, output/coupling_lr_scale)
//! [data]                 # which images
//! [train]                # the schedule every family shares
//! ```
//!
//! **Versions.** A config is read with the defaults of its `version`, never silently with newer
//! ones: a stored config (a run's `checkpoint.json`) or a file without the field is version 1,
//! the layout from before families (the IDF's training fields in `[train]`). When a default
//! changes, [`CONFIG_VERSION`] goes up and the `defaults(version)` functions keep the old value
//! for the old versions.
//! - 1: the IDF-only layout; read and moved into the version-2 layout.
//! - 2: `[model] family`, the IDF's training fields in `[model.train]`; defaults as in 1.

use serde::{Deserialize, Deserializer, Serialize};
use serde_json::Value;
use std::path::{Path, PathBuf};

use super::model::{take_family, ModelConfig};
use super::optim::OptimizerKind;

/// The run-config version this build writes.
pub const CONFIG_VERSION: u32 = 2;

/// Everything that defines a training run. Saved beside each checkpoint as JSON.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct TrainConfig {
    /// The version whose defaults filled the fields the config left out ([`CONFIG_VERSION`]
    /// for a config made by this build; 1 for one without the field).
    pub version: u32,
    pub model: ModelConfig,
    pub data: DataConfig,
    pub train: Schedule,
}

impl Default for TrainConfig {
    fn default() -> Self {
        TrainConfig {
            version: CONFIG_VERSION,
            model: ModelConfig::default(),
            data: DataConfig::defaults(CONFIG_VERSION),
            train: Schedule::defaults(CONFIG_VERSION),
        }
    }
}

impl<'de> Deserialize<'de> for TrainConfig {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        TrainConfig::from_value(Value::deserialize(d)?).map_err(serde::de::Error::custom)
    }
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
    /// Start from the weights of another run of the same family (its folder): what fits is
    /// copied ([`super::model::Trainable::copy_matching`]; for the IDF every tensor with the
    /// same name and shape, and grown priors and blocks). Lets a trained model grow, e.g. a
    /// larger `top_groups` or more `blocks`.
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
        Self::defaults(CONFIG_VERSION)
    }
}

impl DataConfig {
    /// The defaults of run-config version `version`.
    pub fn defaults(version: u32) -> Self {
        let _ = version; // the same in versions 1 and 2
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
        Self::defaults(CONFIG_VERSION)
    }
}

impl Schedule {
    /// The defaults of run-config version `version`.
    pub fn defaults(version: u32) -> Self {
        let _ = version; // the same in versions 1 and 2
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
            init_from: None,
            freeze: Vec::new(),
        }
    }
}

impl TrainConfig {
    /// Reads a TOML file; missing fields take the defaults of its version, unknown fields are
    /// errors.
    pub fn from_toml_file(path: &Path) -> Result<Self, String> {
        let text = std::fs::read_to_string(path)
            .map_err(|e| format!("cannot read {}: {e}", path.display()))?;
        let cfg = Self::from_toml(&text).map_err(|e| format!("{}: {e}", path.display()))?;
        cfg.validate()
            .map_err(|e| format!("{}: {e}", path.display()))?;
        Ok(cfg)
    }

    /// Reads TOML text (see [`TrainConfig::from_value`]).
    pub fn from_toml(text: &str) -> Result<Self, String> {
        let v: toml::Value = toml::from_str(text).map_err(|e| e.to_string())?;
        Self::from_value(serde_json::to_value(v).map_err(|e| e.to_string())?)
    }

    /// Reads a config of any version (TOML or JSON as a value): its `version` (absent: 1), the
    /// version-1 layout moved into the current one, every section laid over the defaults of
    /// that version, then read strictly (unknown fields are errors).
    pub fn from_value(value: Value) -> Result<Self, String> {
        let Value::Object(mut root) = value else {
            return Err("a run config is a table".into());
        };
        let version = match root.remove("version") {
            None => 1,
            Some(v) => v
                .as_u64()
                .and_then(|v| u32::try_from(v).ok())
                .ok_or(format!("version must be a positive integer, not {v}"))?,
        };
        if !(1..=CONFIG_VERSION).contains(&version) {
            return Err(format!(
                "config version {version}: this build reads versions 1 to {CONFIG_VERSION}"
            ));
        }
        let mut section = |name: &str| {
            root.remove(name)
                .unwrap_or(Value::Object(Default::default()))
        };
        let (mut model, data, mut train) = (section("model"), section("data"), section("train"));
        if let Some(unknown) = root.keys().next() {
            return Err(format!("unknown section or field `{unknown}`"));
        }
        if version == 1 {
            migrate_v1(&mut model, &mut train)?;
        }
        let family = take_family(&mut model)?;
        let strict = |what: &str, defaults: Value, given: Value| -> Result<Value, String> {
            if !given.is_object() {
                return Err(format!("{what} must be a table"));
            }
            Ok(overlay(defaults, given))
        };
        let data = strict("data", to_value(DataConfig::defaults(version)), data)?;
        let train = strict("train", to_value(Schedule::defaults(version)), train)?;
        Ok(TrainConfig {
            version,
            model: ModelConfig::from_fields(&family, version, model)?,
            data: serde_json::from_value(data).map_err(|e| format!("data: {e}"))?,
            train: serde_json::from_value(train).map_err(|e| format!("train: {e}"))?,
        })
    }

    pub fn validate(&self) -> Result<(), String> {
        self.model.validate()?;
        let t = &self.train;
        if t.batch_size == 0 || t.steps == 0 {
            return Err("batch_size and steps must be positive".into());
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

fn to_value<T: Serialize>(v: T) -> Value {
    serde_json::to_value(v).expect("config serialises")
}

/// The IDF's training fields that version 1 kept in `[train]`.
const V1_IDF_TRAIN_FIELDS: [&str; 3] = ["data_init", "output_lr_scale", "coupling_lr_scale"];

/// Version 1 (every run an IDF) kept the IDF's training fields in `[train]`: they move to
/// `[model.train]`, where version 2 keeps them.
fn migrate_v1(model: &mut Value, train: &mut Value) -> Result<(), String> {
    let (Value::Object(model), Value::Object(train)) = (model, train) else {
        return Err("model and train must be tables".into());
    };
    for field in V1_IDF_TRAIN_FIELDS {
        let Some(v) = train.remove(field) else {
            continue;
        };
        let own = model
            .entry("train")
            .or_insert_with(|| Value::Object(Default::default()));
        let Value::Object(own) = own else {
            return Err("model.train must be a table".into());
        };
        if own.insert(field.to_string(), v).is_some() {
            return Err(format!(
                "{field} is given in both [train] and [model.train]"
            ));
        }
    }
    Ok(())
}

/// `given` laid over `defaults`: tables merge key by key (recursively), anything else in `given`
/// replaces the default. Keys only in `given` stay, for the strict reading to reject.
pub(crate) fn overlay(defaults: Value, given: Value) -> Value {
    match (defaults, given) {
        (Value::Object(mut d), Value::Object(g)) => {
            for (k, v) in g {
                let merged = match d.remove(&k) {
                    Some(dv) => overlay(dv, v),
                    None => v,
                };
                d.insert(k, merged);
            }
            Value::Object(d)
        }
        (_, given) => given,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use idfcodec_codec::IdfConfig;

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
        let c = TrainConfig::from_toml("[train]\nsteps = 5\n[model]\nhidden = 8\n").unwrap();
        assert_eq!(c.version, 1);
        assert_eq!(c.train.steps, 5);
        let idf = c.model.idf().unwrap();
        assert_eq!(idf.arch.hidden, 8);
        assert_eq!(idf.arch.levels, IdfConfig::default().levels);
        for bad in [
            "[train]\nstepz = 5\n",
            "[model]\nhiden = 8\n",
            "[model]\nfamily = \"gan9\"\n",
            "[extra]\nx = 1\n",
            "version = 3\n",
            "version = 0\n",
            // version 2 keeps the IDF's training fields in [model.train] only
            "version = 2\n[train]\ndata_init = false\n",
            "[train]\ndata_init = false\n[model.train]\ndata_init = true\n",
        ] {
            assert!(TrainConfig::from_toml(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn the_family_tag_and_the_idf_training_fields() {
        let new = TrainConfig::from_toml(
            "version = 2\n[model]\nfamily = \"idf\"\nhidden = 8\n[model.train]\noutput_lr_scale = 0.5\n",
        )
        .unwrap();
        let old = TrainConfig::from_toml("[model]\nhidden = 8\n[train]\noutput_lr_scale = 0.5\n")
            .unwrap();
        assert_eq!(new.version, 2);
        assert_eq!(old.version, 1);
        assert_eq!(new.model, old.model);
        assert_eq!(new.model.idf().unwrap().train.output_lr_scale, 0.5);
        assert_eq!(new.model.family(), "idf");
        // what a run saves reads back as itself, the version kept
        for c in [new, old] {
            let json = serde_json::to_string(&c).unwrap();
            assert!(json.contains("\"family\":\"idf\""), "{json}");
            assert_eq!(serde_json::from_str::<TrainConfig>(&json).unwrap(), c);
        }
    }

    /// Every version-1 config in `configs/` (those without `version`) reads as the effective
    /// config the IDF-only reader gave (`fixtures/train-configs/NAME.json`: what it saved into a
    /// run's `checkpoint.json`, written by that reader), and so does that stored form. Every
    /// later one reads and validates, and its stored form reads back as itself.
    #[test]
    fn every_shipped_config_reads_as_before() {
        let root = Path::new(env!("CARGO_MANIFEST_DIR"));
        let mut seen = 0;
        for entry in std::fs::read_dir(root.join("configs")).unwrap() {
            let path = entry.unwrap().path();
            let name = path.file_stem().unwrap().to_str().unwrap().to_string();
            let text = std::fs::read_to_string(&path).unwrap();
            if toml::from_str::<toml::Table>(&text)
                .unwrap()
                .contains_key("version")
            {
                let now = TrainConfig::from_toml_file(&path).unwrap();
                assert!(now.version >= 2, "{name}");
                let json = serde_json::to_string(&now).unwrap();
                assert_eq!(serde_json::from_str::<TrainConfig>(&json).unwrap(), now);
                continue;
            }
            let fixture = root.join(format!("fixtures/train-configs/{name}.json"));
            let stored: Value = serde_json::from_slice(&std::fs::read(&fixture).unwrap()).unwrap();
            assert!(stored.get("version").is_none(), "{name}: a version-1 file");
            let before = TrainConfig::from_value(stored).unwrap();
            let now = TrainConfig::from_toml_file(&path).unwrap();
            assert_eq!(now, before, "{name}");
            assert_eq!(now.version, 1, "{name}");
            seen += 1;
        }
        assert!(seen >= 10);
    }

    /// The defaults of version 1 as the IDF-only reader had them. A default that changes gets a
    /// new version: configs and stored runs of version 1 keep these.
    #[test]
    fn version_1_defaults_are_frozen() {
        let v1 = TrainConfig::from_value(serde_json::json!({})).unwrap();
        let want = serde_json::json!({
            "version": 1,
            "model": {
                "family": "idf",
                "in_channels": 1, "levels": 2, "couplings": 4, "hidden": 64, "blocks": 1,
                "mixtures": 5, "translation_scale": 128.0,
                "train": {"data_init": true, "output_lr_scale": 0.01, "coupling_lr_scale": 0.001}
            },
            "data": {
                "dataset": "fashion-mnist", "dir": "", "patch_size": 32,
                "train_patches": 50000, "test_patches": 2000
            },
            "train": {
                "batch_size": 64, "optimizer": "adam", "lr": 0.001, "lr_min": 0.00001,
                "warmup_steps": 100, "steps": 10000, "seed": 0, "eval_every": 1000,
                "eval_images": 2000, "checkpoint_minutes": 5.0, "clip_grad_norm": 0.0
            }
        });
        assert_eq!(serde_json::to_value(&v1).unwrap(), want);
    }

    /// A stored config without `version` is read with version 1's defaults and stays version 1,
    /// whatever the current defaults are.
    #[test]
    fn a_stored_config_takes_the_defaults_of_its_version() {
        let stored = serde_json::json!({
            "model": {"hidden": 8},
            "data": {"dataset": "mnist"},
            "train": {"steps": 7, "data_init": false}
        });
        let c = TrainConfig::from_value(stored).unwrap();
        assert_eq!(c.version, 1);
        let idf = c.model.idf().unwrap();
        assert!(!idf.train.data_init);
        assert_eq!(idf.train.output_lr_scale, 0.01);
        assert_eq!(c.train.clip_grad_norm, 0.0);
        assert_eq!(c.train.batch_size, 64);
        // the layer of defaults is the version's: laid over another version's, the same fields
        // give another config
        let mut other = to_value(Schedule::defaults(1));
        other["batch_size"] = Value::from(32);
        let over = overlay(other, serde_json::json!({"steps": 7}));
        assert_eq!(over["batch_size"], 32);
        assert_eq!(over["steps"], 7);
        let again: TrainConfig = serde_json::from_str(&serde_json::to_string(&c).unwrap()).unwrap();
        assert_eq!(again, c);
        assert_eq!(again.version, 1);
    }
}
