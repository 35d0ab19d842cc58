//! The coding settings `compress`, `verify` and `bench` share, around the codec's one policy
//! function ([`compress_with_effort`]): `--model NAME|PATH` resolved to a model
//! ([`ChosenModel`]), effort, threads and tile side ([`Coding`]); the note for a `--model` that
//! images of some format do not use (printed once per process); and [`RoundTrip`], the checked
//! in-memory round trip of `verify` and `bench`.
//!
//! `--model` is first looked up by name among the embedded models; anything else is read as a
//! model file. A file coded with an embedded model refers to it by a 4-byte id; with a model
//! file, by its whole 8-byte id, and decoding then needs the same file (`--model PATH`).

use std::borrow::Cow;
use std::cell::OnceCell;
use std::collections::BTreeSet;
use std::path::Path;
use std::time::{Duration, Instant};

use anyhow::{anyhow, bail, Context, Result};
use idfcodec_codec::format::{Limits, ModelRef, PixelFormat};
use idfcodec_codec::RegistryEntry;
use idfcodec_codec::{archive_format, ArchiveLayout, EffortError, UnusedModel};
use idfcodec_codec::{
    compress_archive_with_effort, compress_with_effort, decompress, decompress_archive, Compressed,
    DecodeOptions, Effort, EffortOptions, Image, ImageCodecError, LearnedModel, Model, ModelLookup,
    ModelStorage, NamedImage, NamedModel, Plan, Registry,
};
use idfcodec_codec::{format_name, learned_channels};

/// A model picked with `--model`, with its name for messages and how files refer to it.
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

    /// The model as the codec's policy takes it.
    pub fn learned(&self) -> LearnedModel<'_> {
        LearnedModel {
            name: &self.name,
            model: &self.model,
            storage: self.storage,
        }
    }

    /// `--model NAME|PATH`: an embedded model by name, else a model file.
    pub fn from_arg(arg: &str) -> Result<Self> {
        match Registry::embedded().by_name(arg) {
            Some(entry) => ChosenModel::embedded(entry),
            None => ChosenModel::from_file(Path::new(arg)),
        }
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

/// Encoder settings of `compress`, `verify` and `bench`: the codec's [`EffortOptions`] with the
/// embedded registry and the `--model` given, read on first use (once per run, however many
/// images it codes).
#[derive(Debug)]
pub struct Coding {
    pub effort: Effort,
    /// `--model NAME|PATH`.
    model_arg: Option<String>,
    model: OnceCell<ChosenModel>,
    /// Worker threads (0: every core).
    pub threads: usize,
    /// Tile side (`None`: the default of each candidate).
    pub tile: Option<u32>,
    /// How archives lay out their entries (`--archive-layout`; `Auto` unless set).
    pub archive_layout: ArchiveLayout,
}

impl Coding {
    /// Settings with `--model` (not read yet), effort, threads and tile side.
    pub fn new(model: Option<&str>, effort: Effort, threads: usize, tile: Option<u32>) -> Self {
        Coding {
            effort,
            model_arg: model.map(str::to_string),
            model: OnceCell::new(),
            threads,
            tile,
            archive_layout: ArchiveLayout::Auto,
        }
    }

    /// The `--model` argument as given.
    pub fn model_arg(&self) -> Option<&str> {
        self.model_arg.as_deref()
    }

    /// The `--model` given, read now if it has not been.
    fn given(&self) -> Result<Option<&ChosenModel>> {
        let Some(arg) = &self.model_arg else {
            return Ok(None);
        };
        if let Some(model) = self.model.get() {
            return Ok(Some(model));
        }
        let model = ChosenModel::from_arg(arg)?;
        Ok(Some(self.model.get_or_init(|| model)))
    }

    /// The codec's options for images of `format`. The given `--model` is read only for
    /// formats a learned model codes: for the others it cannot matter (the policy context-codes
    /// them), so a `--model` that cannot be read only earns them the note, as any model does.
    pub fn options(&self, format: PixelFormat) -> Result<EffortOptions<'_>> {
        let model = match learned_channels(format).is_some() {
            true => self.given()?.map(ChosenModel::learned),
            false => None,
        };
        Ok(EffortOptions {
            effort: self.effort,
            registry: Registry::embedded(),
            model,
            threads: self.threads,
            tile_side: self.tile,
            archive_layout: self.archive_layout,
        })
    }

    /// The candidates for images of `format` (models loaded here), with the note for an unused
    /// `--model`.
    pub fn plan(&self, format: PixelFormat) -> Result<Plan<'_>> {
        let plan = self.options(format)?.plan(format).map_err(effort_error)?;
        self.note_unused(format, plan.unused_model);
        Ok(plan)
    }

    /// `image` coded with every candidate of its format, the smallest file kept.
    pub fn compress(&self, image: &Image) -> Result<Compressed<'_>> {
        let format = image.pixel_format();
        let compressed =
            compress_with_effort(image, &self.options(format)?).map_err(effort_error)?;
        self.note_unused(format, compressed.unused_model);
        Ok(compressed)
    }

    /// `images` coded into an archive with every candidate of their (one) pixel format, the
    /// smallest file kept.
    pub fn compress_archive(&self, images: &[NamedImage]) -> Result<Compressed<'_>> {
        // one format (checked before a model is read)
        let format = archive_format(images).map_err(effort_error)?;
        let compressed =
            compress_archive_with_effort(images, &self.options(format)?).map_err(effort_error)?;
        self.note_unused(format, compressed.unused_model);
        Ok(compressed)
    }

    /// The note, once per process, when images of `format` do not use the `--model` given.
    fn note_unused(&self, format: PixelFormat, unused: Option<UnusedModel>) {
        // formats without a learned plane were planned without the model (see `options`)
        let unused = match learned_channels(format).is_some() {
            true => unused,
            false => Some(UnusedModel::NoLearnedPlane),
        };
        if let (Some(model), Some(why)) = (&self.model_arg, unused) {
            note_once(format!(
                "note: --model {model} is not used for {} images ({why}): they are context-coded",
                format_name(format)
            ));
        }
    }
}

/// The policy's errors, in the CLI's words.
fn effort_error(error: EffortError) -> anyhow::Error {
    match error {
        EffortError::NoModel(format) => anyhow!(
            "this build of idfcodec has no embedded model for {} images: \
             give a model file with --model PATH",
            format_name(format)
        ),
        other => other.into(),
    }
}

/// Prints `note` to stderr unless this process printed it already (a folder or a bench run
/// codes many images of one format).
pub fn note_once(note: String) {
    static PRINTED: std::sync::Mutex<BTreeSet<String>> = std::sync::Mutex::new(BTreeSet::new());
    let mut printed = PRINTED.lock().unwrap_or_else(|e| e.into_inner());
    if !printed.contains(&note) {
        eprintln!("{note}");
        printed.insert(note);
    }
}

/// The size and times of an image coded and decoded in memory by [`RoundTrip::run`].
#[derive(Clone, Copy, Debug)]
pub struct Coded {
    pub bytes: u64,
    pub encode: Duration,
    pub decode: Duration,
}

/// Compresses and decompresses images in memory with the coding settings of `verify` (and
/// `bench`), checking every pixel.
#[derive(Debug)]
pub struct RoundTrip {
    coding: Coding,
}

impl RoundTrip {
    pub fn new(coding: Coding) -> Self {
        RoundTrip { coding }
    }

    /// The settings.
    pub fn coding(&self) -> &Coding {
        &self.coding
    }

    /// Codes `image` (the smallest of the candidates) and decodes the bytes again; an error
    /// unless every pixel comes back.
    pub fn run(&self, image: &Image) -> Result<Coded> {
        // models are read and loaded outside the timing (once per run, not per image)
        self.coding.plan(image.pixel_format())?;
        let start = Instant::now();
        let compressed = self.coding.compress(image)?;
        let encode = start.elapsed();
        let start = Instant::now();
        let decoded = decompress(
            &compressed.bytes,
            &compressed.candidate,
            &self.decode_options(),
        )?;
        let decode = start.elapsed();
        if decoded != *image {
            bail!("the decoded pixels differ from the original");
        }
        Ok(Coded {
            bytes: compressed.bytes.len() as u64,
            encode,
            decode,
        })
    }

    /// The same for `images` as one archive (as `compress --archive` writes it: a bits-back
    /// model's entries chained): an error unless every entry comes back, names and pixels.
    pub fn run_archive(&self, images: &[NamedImage]) -> Result<Coded> {
        self.coding
            .plan(archive_format(images).map_err(effort_error)?)?;
        let start = Instant::now();
        let compressed = self.coding.compress_archive(images)?;
        let encode = start.elapsed();
        let start = Instant::now();
        let decoded = decompress_archive(
            &compressed.bytes,
            &compressed.candidate,
            &self.decode_options(),
        )?;
        let decode = start.elapsed();
        if decoded != images {
            bail!("the decoded archive differs from the original images");
        }
        Ok(Coded {
            bytes: compressed.bytes.len() as u64,
            encode,
            decode,
        })
    }

    /// The bytes were made here: no limits beyond the encoder's own.
    fn decode_options(&self) -> DecodeOptions {
        DecodeOptions {
            threads: self.coding.threads,
            limits: Limits::UNLIMITED,
            ..DecodeOptions::default()
        }
    }
}
