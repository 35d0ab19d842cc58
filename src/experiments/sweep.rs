//! A sweep file: a base run config, variants that override some of its keys, the datasets, the
//! step budget and what to report.
//!
//! ```toml
//! title = "VAE latent size"
//! base = "../configs/vae-mnist.toml"   # relative to this file; a variant may name its own
//! datasets = ["mnist", "fashion-mnist"] # optional: data.dataset of every run (default: the base's)
//! steps = 800                           # train.steps of every run (a variant's `set` may give
//!                                       # its own; `--steps` overrides them all, `--budget-scale`
//!                                       # multiplies them)
//! [set]                                 # optional: overrides for every variant
//! "train.eval_every" = 200
//! [report]                              # optional; these are the defaults
//! samples = 1000                        # FID/KID: samples vs the first test images (0: none)
//! figures = ["curves", "samples", "reconstructions", "interpolations"]
//! [[variant]]
//! name = "latent-3"                     # letters, digits, `-`, `_`, `.`: a folder name
//! set = { "model.latent" = 3 }          # dotted config keys and their values
//! ```

use serde::Deserialize;
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use crate::train::config::TrainConfig;

/// The figures a sweep can draw.
pub const FIGURES: [&str; 4] = ["curves", "samples", "reconstructions", "interpolations"];

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
struct SweepFile {
    title: Option<String>,
    base: Option<PathBuf>,
    #[serde(default)]
    datasets: Vec<String>,
    steps: Option<usize>,
    #[serde(default)]
    set: BTreeMap<String, toml::Value>,
    #[serde(default)]
    report: Report,
    #[serde(default)]
    variant: Vec<VariantFile>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
struct VariantFile {
    name: String,
    base: Option<PathBuf>,
    #[serde(default)]
    set: BTreeMap<String, toml::Value>,
}

/// What a sweep reports beside its table's training figures.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Report {
    /// Samples drawn from each run for FID and KID against as many test images, with the
    /// dataset's shipped feature classifier (0: no FID/KID).
    pub samples: usize,
    /// Which of [`FIGURES`] to draw.
    pub figures: Vec<String>,
}

impl Default for Report {
    fn default() -> Self {
        Report {
            samples: 1000,
            figures: FIGURES.iter().map(|s| s.to_string()).collect(),
        }
    }
}

impl Report {
    pub fn wants(&self, figure: &str) -> bool {
        self.figures.iter().any(|f| f == figure)
    }
}

/// One run of a sweep: a variant on a dataset, with its complete config.
#[derive(Debug, Clone)]
pub struct Run {
    pub variant: String,
    pub dataset: String,
    pub config: TrainConfig,
}

/// A sweep read and checked: every run's config is complete and valid.
#[derive(Debug, Clone)]
pub struct Sweep {
    /// The file's stem (the default output folder's name).
    pub name: String,
    pub title: String,
    pub path: PathBuf,
    pub report: Report,
    /// Datasets in order, then variants in order.
    pub runs: Vec<Run>,
}

/// How many steps each run of a sweep trains for.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Budget {
    /// The sweep file's steps (and its variants' own).
    AsWritten,
    /// Every run trains this many steps (`--steps`).
    Steps(usize),
    /// Every run's written steps times this factor, rounded (`--budget-scale`): keeps the
    /// sweep's ratios, e.g. between a VAE's and a GAN's budget.
    Scaled(f64),
}

impl Budget {
    fn check(self) -> Result<(), String> {
        match self {
            Budget::Steps(0) => Err("steps must be at least 1".into()),
            Budget::Scaled(k) if !(k.is_finite() && k > 0.0) => {
                Err(format!("budget scale {k} must be a positive number"))
            }
            _ => Ok(()),
        }
    }
}

impl Sweep {
    /// Reads a sweep file with its runs' step budgets set by `budget`. Every error
    /// names the file and, where there is one, the variant.
    pub fn from_file(path: &Path, budget: Budget) -> Result<Sweep, String> {
        let text = std::fs::read_to_string(path)
            .map_err(|e| format!("cannot read sweep file {}: {e}", path.display()))?;
        Self::from_toml(&text, path, budget).map_err(|e| format!("{}: {e}", path.display()))
    }

    /// Reads sweep text; relative `base` paths are taken from `path`'s folder.
    pub fn from_toml(text: &str, path: &Path, budget: Budget) -> Result<Sweep, String> {
        let file: SweepFile = toml::from_str(text).map_err(|e| e.to_string())?;
        if file.variant.is_empty() {
            return Err("no [[variant]]: a sweep needs at least one".into());
        }
        for f in &file.report.figures {
            if !FIGURES.contains(&f.as_str()) {
                return Err(format!(
                    "report.figures: unknown figure {f:?} (known: {})",
                    FIGURES.join(", ")
                ));
            }
        }
        budget.check()?;
        if file.steps == Some(0) {
            return Err("steps must be at least 1".into());
        }
        let folder = path.parent().unwrap_or(Path::new(""));
        let mut names = Vec::new();
        for v in &file.variant {
            check_name(&v.name)?;
            if names.contains(&v.name) {
                return Err(format!("two variants are named {:?}", v.name));
            }
            names.push(v.name.clone());
        }
        let datasets = if file.datasets.is_empty() {
            vec![None]
        } else {
            file.datasets.iter().map(|d| Some(d.clone())).collect()
        };
        let mut runs = Vec::new();
        for dataset in &datasets {
            for v in &file.variant {
                let config = variant_config(&file, v, folder, dataset.as_deref(), budget)
                    .map_err(|e| format!("variant {:?}: {e}", v.name))?;
                runs.push(Run {
                    variant: v.name.clone(),
                    dataset: config.data.dataset.clone(),
                    config,
                });
            }
        }
        let name = path
            .file_stem()
            .map(|s| s.to_string_lossy().into_owned())
            .unwrap_or_else(|| "sweep".into());
        Ok(Sweep {
            title: file.title.clone().unwrap_or_else(|| name.clone()),
            name,
            path: path.to_path_buf(),
            report: file.report,
            runs,
        })
    }
}

/// A variant's name becomes a folder and file name.
fn check_name(name: &str) -> Result<(), String> {
    let ok = !name.is_empty()
        && !name.starts_with('.')
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'));
    if ok {
        Ok(())
    } else {
        Err(format!(
            "variant name {name:?}: use letters, digits, `-`, `_` and `.` (it names a folder)"
        ))
    }
}

/// The base config's TOML with the sweep's and the variant's overrides, the dataset and the
/// budget laid over it, read and validated as a run config.
fn variant_config(
    file: &SweepFile,
    v: &VariantFile,
    folder: &Path,
    dataset: Option<&str>,
    budget: Budget,
) -> Result<TrainConfig, String> {
    let base = v
        .base
        .as_ref()
        .or(file.base.as_ref())
        .ok_or("no base config: give `base` in the sweep or in the variant")?;
    let base = folder.join(base);
    let text = std::fs::read_to_string(&base)
        .map_err(|e| format!("cannot read base config {}: {e}", base.display()))?;
    let mut root: toml::Value =
        toml::from_str(&text).map_err(|e| format!("{}: {e}", base.display()))?;
    let steps_value = |s: usize| toml::Value::Integer(s as i64);
    if let Some(s) = file.steps {
        set_key(&mut root, "train.steps", steps_value(s))?;
    }
    for (key, value) in file.set.iter().chain(&v.set) {
        set_key(&mut root, key, value.clone())?;
    }
    if let Some(d) = dataset {
        set_key(&mut root, "data.dataset", toml::Value::String(d.into()))?;
    }
    let value = serde_json::to_value(root).map_err(|e| e.to_string())?;
    let mut config = TrainConfig::from_value(value)?;
    match budget {
        Budget::AsWritten => {}
        Budget::Steps(s) => config.train.steps = s,
        Budget::Scaled(k) => {
            config.train.steps = ((config.train.steps as f64 * k).round() as usize).max(1)
        }
    }
    config.validate()?;
    Ok(config)
}

/// Sets a dotted key (`model.latent`) in a TOML table, creating the tables on the way.
fn set_key(root: &mut toml::Value, key: &str, value: toml::Value) -> Result<(), String> {
    let parts: Vec<&str> = key.split('.').collect();
    if parts.iter().any(|p| p.is_empty()) {
        return Err(format!("bad config key {key:?}"));
    }
    let mut table = root;
    for part in &parts[..parts.len() - 1] {
        let toml::Value::Table(t) = table else {
            return Err(format!("config key {key:?}: {part} is not inside a table"));
        };
        table = t
            .entry(part.to_string())
            .or_insert_with(|| toml::Value::Table(Default::default()));
    }
    match table {
        toml::Value::Table(t) => {
            t.insert(parts[parts.len() - 1].to_string(), value);
            Ok(())
        }
        _ => Err(format!("config key {key:?}: its parent is not a table")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn base_dir() -> tempfile::TempDir {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(
            dir.path().join("base.toml"),
            "version = 2\n[model]\nfamily = \"vae\"\narch = \"mlp\"\nin_channels = 1\n\
             image_size = 28\nlatent = 4\nhidden = 8\n[data]\ndataset = \"mnist\"\n[train]\nsteps = 9\n",
        )
        .unwrap();
        dir
    }

    #[test]
    fn variants_override_keys_and_datasets_multiply() {
        let dir = base_dir();
        let text = "base = \"base.toml\"\ndatasets = [\"mnist\", \"fashion-mnist\"]\nsteps = 5\n\
                    [set]\n\"train.batch_size\" = 8\n\
                    [[variant]]\nname = \"a\"\nset = { \"model.latent\" = 3 }\n\
                    [[variant]]\nname = \"b\"\n";
        let s = Sweep::from_toml(text, &dir.path().join("x.toml"), Budget::AsWritten).unwrap();
        assert_eq!(s.runs.len(), 4);
        assert_eq!(s.runs[0].dataset, "mnist");
        assert_eq!(s.runs[3].dataset, "fashion-mnist");
        assert_eq!(s.runs[0].config.train.steps, 5);
        assert_eq!(s.runs[1].config.train.batch_size, 8);
        let latent = |r: &Run| {
            r.config
                .model
                .of::<crate::nn::vae::Vae>()
                .map(|c| c.latent)
                .unwrap()
        };
        assert_eq!((latent(&s.runs[0]), latent(&s.runs[1])), (3, 4));
        let own = text.replace(
            "name = \"b\"\n",
            "name = \"b\"\nset = { \"train.steps\" = 7 }\n",
        );
        let s = Sweep::from_toml(&own, &dir.path().join("x.toml"), Budget::AsWritten).unwrap();
        assert_eq!(
            (s.runs[0].config.train.steps, s.runs[1].config.train.steps),
            (5, 7)
        );
        let s = Sweep::from_toml(&own, &dir.path().join("x.toml"), Budget::Steps(2)).unwrap();
        assert!(s.runs.iter().all(|r| r.config.train.steps == 2));
        let s = Sweep::from_toml(&own, &dir.path().join("x.toml"), Budget::Scaled(3.0)).unwrap();
        assert_eq!(
            (s.runs[0].config.train.steps, s.runs[1].config.train.steps),
            (15, 21),
            "a scaled budget keeps the variants' ratio"
        );
        for bad in [
            Budget::Steps(0),
            Budget::Scaled(0.0),
            Budget::Scaled(f64::NAN),
        ] {
            assert!(Sweep::from_toml(&own, &dir.path().join("x.toml"), bad).is_err());
        }
    }

    #[test]
    fn bad_sweeps_are_errors() {
        let dir = base_dir();
        let p = dir.path().join("x.toml");
        let err = |text: &str| Sweep::from_toml(text, &p, Budget::AsWritten).unwrap_err();
        assert!(err("base = \"base.toml\"\n").contains("no [[variant]]"));
        assert!(err("base = \"base.toml\"\n[[variant]]\nname = \"a/b\"\n").contains("a/b"));
        assert!(err(
            "base = \"base.toml\"\n[[variant]]\nname = \"a\"\nset = { \"model.latnt\" = 3 }\n"
        )
        .contains("variant \"a\""));
        assert!(err("base = \"nope.toml\"\n[[variant]]\nname = \"a\"\n").contains("nope.toml"));
        assert!(err(
            "base = \"base.toml\"\n[report]\nfigures = [\"x\"]\n[[variant]]\nname = \"a\"\n"
        )
        .contains("unknown figure"));
        assert!(err("bse = 1\n").contains("bse"));
    }
}
