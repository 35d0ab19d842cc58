//! `idfcodec models`, and the models a decoder may use (`--model NAME|PATH` is resolved by
//! [`ChosenModel`], see [`crate::coding`]).

use anyhow::Result;
use clap::Args;
use idfcodec_codec::format::ModelRef;
use idfcodec_codec::format_name;
use idfcodec_codec::RegistryEntry;
use idfcodec_codec::{ImageCodecError, ModelLookup, NamedModel, Registry};

use crate::coding::ChosenModel;

#[derive(Debug, Args)]
#[command(after_help = "Example:\n  idfcodec models")]
pub struct ModelsArgs {}

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
    println!("{}", entry.name());
    println!("  id:          {:016x}", model.id());
    println!("  codes:       {}", formats.join(", "));
    println!(
        "  model:       {}, {} parameters, {} KiB file; {}",
        model.family(),
        model.parameter_count(),
        entry.file_bytes().div_ceil(1024),
        model.summary()
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
