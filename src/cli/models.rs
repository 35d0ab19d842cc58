//! `idfcodec models`, and how `--model NAME|PATH` picks a model for the codec subcommands.
//!
//! `--model` is first looked up by name among the embedded models; anything else is read as a
//! model file. A file coded with an embedded model refers to it by a 4-byte id; with a model
//! file, by its whole 8-byte id, and decoding then needs the same file (`--model PATH`).

use std::borrow::Cow;
use std::path::Path;

use anyhow::{anyhow, Context, Result};
use clap::Args;
use idfcodec_codec::format::{ModelRef, PixelFormat};
use idfcodec_codec::image::format_name;
use idfcodec_codec::registry::RegistryEntry;
use idfcodec_codec::{ImageCodecError, Model, ModelLookup, ModelStorage, NamedModel, Registry};

#[derive(Debug, Args)]
#[command(after_help = "Example:\n  idfcodec models")]
pub struct ModelsArgs {}

/// A model picked for coding, with its name for messages and how files refer to it.
#[derive(Debug)]
pub struct ChosenModel {
    /// Registry name, or the file path as given.
    pub name: String,
    pub model: Cow<'static, Model>,
    pub storage: ModelStorage,
}

impl ChosenModel {
    /// The model as named in messages.
    pub fn named(&self) -> NamedModel<'_> {
        NamedModel {
            name: &self.name,
            model: &self.model,
        }
    }

    /// `--model NAME|PATH`: an embedded model by name, else a model file.
    pub fn from_arg(arg: &str) -> Result<Self> {
        match Registry::embedded().by_name(arg) {
            Some(entry) => ChosenModel::embedded(entry),
            None => ChosenModel::from_file(Path::new(arg)),
        }
    }

    /// The default model for `format`: the first embedded model serving it.
    pub fn default_for(format: PixelFormat) -> Result<Self> {
        let entry = Registry::embedded().default_for(format).ok_or_else(|| {
            anyhow!(
                "this build of idfcodec has no embedded model for {} images: \
                 give a model file with --model PATH",
                format_name(format)
            )
        })?;
        ChosenModel::embedded(entry)
    }

    /// Every embedded model serving `format`, defaults first.
    pub fn all_for(format: PixelFormat) -> Result<Vec<Self>> {
        Registry::embedded()
            .entries()
            .iter()
            .filter(|e| e.serves().contains(&format))
            .map(ChosenModel::embedded)
            .collect()
    }

    fn embedded(entry: &'static RegistryEntry) -> Result<Self> {
        Ok(ChosenModel {
            name: entry.name().to_string(),
            model: Cow::Borrowed(entry.model()?),
            storage: ModelStorage::Embedded,
        })
    }

    fn from_file(path: &Path) -> Result<Self> {
        let bytes = std::fs::read(path).with_context(|| {
            format!(
                "cannot read the model file {} (and no embedded model has that name; \
                 `idfcodec models` lists them)",
                path.display()
            )
        })?;
        let model = Model::from_safetensors(&bytes)
            .with_context(|| format!("{} is not a usable idfcodec model", path.display()))?;
        Ok(ChosenModel {
            name: path.display().to_string(),
            model: Cow::Owned(model),
            storage: ModelStorage::External,
        })
    }
}

impl ModelLookup for ChosenModel {
    /// This model if it is the one wanted, else an error naming both.
    fn resolve(&self, wanted: ModelRef) -> Result<NamedModel<'_>, ImageCodecError> {
        wanted.verify(&self.name, self.model.id())?;
        Ok(self.named())
    }
}

/// The models a decoder may use: exactly the one given with `--model`, or the embedded ones.
pub enum DecodingModels {
    /// Boxed: a model owned from a file is far larger than the other variant.
    Given(Box<ChosenModel>),
    Embedded,
}

impl DecodingModels {
    /// From an optional `--model NAME|PATH`.
    pub fn from_arg(arg: Option<&str>) -> Result<Self> {
        Ok(match arg {
            Some(arg) => DecodingModels::Given(Box::new(ChosenModel::from_arg(arg)?)),
            None => DecodingModels::Embedded,
        })
    }
}

impl ModelLookup for DecodingModels {
    fn resolve(&self, wanted: ModelRef) -> Result<NamedModel<'_>, ImageCodecError> {
        match self {
            DecodingModels::Given(chosen) => chosen.resolve(wanted),
            DecodingModels::Embedded => Registry::embedded().resolve(wanted),
        }
    }
}

/// Lists the embedded models with their card fields.
pub fn run(_: ModelsArgs) -> Result<()> {
    let registry = Registry::embedded();
    if registry.entries().is_empty() {
        println!(
            "no models are embedded in this build of idfcodec: compress with --model PATH \
             (a file made by `idfcodec export`)"
        );
        return Ok(());
    }
    for (i, entry) in registry.entries().iter().enumerate() {
        if i > 0 {
            println!();
        }
        print_entry(registry, entry)?;
    }
    Ok(())
}

fn print_entry(registry: &Registry, entry: &RegistryEntry) -> Result<()> {
    let model = entry.model()?;
    let formats: Vec<String> = entry
        .serves()
        .iter()
        .map(|&f| {
            let default = registry
                .default_for(f)
                .is_some_and(|d| d.name() == entry.name());
            format!(
                "{}{}",
                format_name(f),
                if default { " (default)" } else { "" }
            )
        })
        .collect();
    let config = model.config();
    println!("{}", entry.name());
    println!("  id:          {:016x}", model.id());
    println!("  codes:       {}", formats.join(", "));
    println!(
        "  model:       {} parameters, {} KiB file; {} levels × {} couplings, hidden {}, \
         {} blocks, {} mixtures; top in {} group(s), factor-outs in {}{}",
        config.parameter_count(),
        entry.file_bytes().div_ceil(1024),
        config.levels,
        config.couplings,
        config.hidden,
        config.blocks,
        config.mixtures,
        config.top_groups,
        config.prior_groups,
        match config.phase_levels {
            0 => String::new(),
            n => format!(" per pixel phase (4 phases) at the first {n} level(s)"),
        } + &[
            (config.top_phases, "; top groups by pixel phase"),
            (config.phase_squeeze, "; phase-major squeezes"),
            (config.prior_skip, "; linear skips in the priors"),
        ]
        .iter()
        .filter(|(on, _)| *on)
        .map(|(_, text)| *text)
        .collect::<String>()
    );
    if let Some(card) = model.card().as_object() {
        for (key, value) in card {
            let shown = match value {
                serde_json::Value::String(s) => s.clone(),
                other => other.to_string(),
            };
            println!("  {:<12} {shown}", format!("{key}:"));
        }
    }
    Ok(())
}
