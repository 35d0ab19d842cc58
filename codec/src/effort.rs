//! The coding policy: how hard the encoder tries ([`Effort`], 1 to 9, like rav1e's speed
//! presets), which ways of coding an image that means ([`Candidate`]s: a learned model, or the
//! context coder for every plane), and [`compress_with_effort`] (and
//! [`compress_archive_with_effort`]), which codes the image each way and keeps the smallest file.
//! Every effort writes an ordinary file: any effort decodes alike.
//!
//! Also [`bits_per_dimension`], the one measure of size every report uses.

use std::fmt;
use std::str::FromStr;

use crate::format::{ModelRef, PixelFormat};
use crate::image::{format_name, learned_channels, ArchiveLayout};
use crate::tile::{DEFAULT_CONTEXT_TILE_SIDE, DEFAULT_TILE_SIDE};
use crate::{
    compress, compress_archive, EncodeOptions, Image, ImageCodecError, Model, ModelLookup,
    ModelStorage, NamedImage, NamedModel, Registry,
};

/// How hard the encoder tries, 1 (fastest) to 9 (smallest files); [`Effort::default`] is 5.
///
/// What each level tries for the images a learned model can code (8-bit gray, gray+alpha and
/// RGB; every other pixel format is context-coded at every effort), see [`Effort::preset`]:
///
/// | effort | learned models tried ([`LearnedModels`])                              | context coder ([`ContextCoding`]) |
/// |--------|-----------------------------------------------------------------------|-----------------------------------|
/// | 1–3    | none                                                                  | only                              |
/// | 4      | the given model, else the registry's default gray model (RGB: none)   | when no model is tried            |
/// | 5–6    | as 4                                                                  | always; the smaller file is kept  |
/// | 7–9    | the given model, else every registry model for the format             | always; the smallest file is kept |
///
/// RGB images get no embedded model below effort 7: context coding measured better and faster
/// than any RGB model trained so far. From effort 5 the context coder is tried too: it costs
/// about 1 % of a learned model's time and keeps images unlike the model's training data from
/// costing twice as much.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Effort(u8);

impl Effort {
    /// The fastest effort.
    pub const MIN: Effort = Effort(1);
    /// The slowest effort.
    pub const MAX: Effort = Effort(9);
    /// The default: the learned gray model and the context coder, the smaller kept (the
    /// measured balance: see BENCHMARKS.md).
    pub const DEFAULT: Effort = Effort(5);

    /// Effort `level`, which must be 1 to 9.
    pub const fn new(level: u8) -> Result<Effort, InvalidEffort> {
        if level >= Effort::MIN.0 && level <= Effort::MAX.0 {
            Ok(Effort(level))
        } else {
            Err(InvalidEffort)
        }
    }

    /// The level, 1 to 9.
    pub const fn level(self) -> u8 {
        self.0
    }

    /// What this effort tries (see the table of [`Effort`]).
    pub const fn preset(self) -> Preset {
        match self.0 {
            1..=3 => Preset {
                learned: LearnedModels::None,
                context_coding: ContextCoding::Fallback,
            },
            4 => Preset {
                learned: LearnedModels::GivenOrGrayDefault,
                context_coding: ContextCoding::Fallback,
            },
            5 | 6 => Preset {
                learned: LearnedModels::GivenOrGrayDefault,
                context_coding: ContextCoding::Always,
            },
            _ => Preset {
                learned: LearnedModels::GivenOrEvery,
                context_coding: ContextCoding::Always,
            },
        }
    }
}

impl Default for Effort {
    fn default() -> Self {
        Effort::DEFAULT
    }
}

impl fmt::Display for Effort {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.0.fmt(f)
    }
}

impl TryFrom<u8> for Effort {
    type Error = InvalidEffort;

    fn try_from(level: u8) -> Result<Self, InvalidEffort> {
        Effort::new(level)
    }
}

impl FromStr for Effort {
    type Err = InvalidEffort;

    /// A level `1` to `9` (surrounding spaces allowed).
    fn from_str(s: &str) -> Result<Self, InvalidEffort> {
        s.trim()
            .parse::<u8>()
            .map_err(|_| InvalidEffort)
            .and_then(Effort::new)
    }
}

/// An effort outside 1 to 9.
#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
#[error("the effort is a whole number from 1 to 9")]
pub struct InvalidEffort;

/// What an [`Effort`] tries: which learned models, and when the context coder.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Preset {
    /// The learned models tried for images a learned model can code.
    pub learned: LearnedModels,
    /// When the context coder (every plane, no model) is tried.
    pub context_coding: ContextCoding,
}

/// Which learned models an effort tries: a model the caller gives ([`EffortOptions::model`]), or
/// models of the registry ([`EffortOptions::registry`]).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum LearnedModels {
    /// None: every plane is context-coded (even with a given model).
    None,
    /// The given model; else the registry's default model for gray images (gray8, gray+alpha 8),
    /// none for RGB images.
    GivenOrGrayDefault,
    /// The given model; else every registry model for the format, defaults first.
    GivenOrEvery,
}

/// When an effort tries the context coder.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ContextCoding {
    /// Only when no learned model is tried.
    Fallback,
    /// Always, after the learned models.
    Always,
}

/// A learned model to code with, its name for reports and how files refer to it.
#[derive(Clone, Copy, Debug)]
pub struct LearnedModel<'a> {
    /// A registry name, or a model file's path.
    pub name: &'a str,
    pub model: &'a Model,
    /// [`ModelStorage::Embedded`] for a registry model (decoders find it built in),
    /// [`ModelStorage::External`] for a model file (decoding needs the same file).
    pub storage: ModelStorage,
}

impl<'a> LearnedModel<'a> {
    /// The model with its name.
    pub fn named(&self) -> NamedModel<'a> {
        NamedModel {
            name: self.name,
            model: self.model,
        }
    }
}

/// One way of coding an image that the policy tries.
#[derive(Clone, Copy, Debug)]
pub enum Candidate<'a> {
    /// A learned model for the image's learned planes (the context coder does the others).
    Learned(LearnedModel<'a>),
    /// Every plane by the context coder, no model.
    ContextCoding,
}

impl<'a> Candidate<'a> {
    /// The model, as [`compress`] takes it (`None` for context coding).
    pub fn model(&self) -> Option<&'a Model> {
        match self {
            Candidate::Learned(learned) => Some(learned.model),
            Candidate::ContextCoding => None,
        }
    }

    /// The name for reports: the model's, or `none (context coding)`.
    pub fn name(&self) -> &'a str {
        match self {
            Candidate::Learned(learned) => learned.name,
            Candidate::ContextCoding => "none (context coding)",
        }
    }
}

impl ModelLookup for Candidate<'_> {
    /// Exactly this candidate's model (a context-coded file needs none).
    fn resolve(&self, wanted: ModelRef) -> Result<NamedModel<'_>, ImageCodecError> {
        match self {
            Candidate::Learned(learned) => {
                wanted.verify(learned.name, learned.model.id())?;
                Ok(learned.named())
            }
            Candidate::ContextCoding => Err(ImageCodecError::ModelNotFound(wanted)),
        }
    }
}

/// Why a given model is not used for images of some format (they are context-coded).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum UnusedModel {
    /// The format has no plane a learned model codes.
    NoLearnedPlane,
    /// The model codes images of this many channels, the format's learned planes have another
    /// count.
    Channels(usize),
}

impl fmt::Display for UnusedModel {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            UnusedModel::NoLearnedPlane => {
                f.write_str("learned models code 8-bit gray and RGB planes only")
            }
            UnusedModel::Channels(codes) => write!(f, "it codes {codes}-channel images"),
        }
    }
}

/// Why the policy could not code an image.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum EffortError {
    /// The effort asks for the registry's default model of a format it has none for.
    #[error("the registry has no model for {} images: give a model", format_name(*.0))]
    NoModel(PixelFormat),
    /// An archive's images differ in pixel format (an archive is coded with one model).
    #[error(
        "{first} and {other} have different pixel formats: an archive holds one kind of image"
    )]
    MixedFormats { first: String, other: String },
    /// An archive of no images.
    #[error("no images to put into the archive")]
    NoImages,
    /// Coding failed.
    #[error(transparent)]
    Codec(#[from] ImageCodecError),
}

impl EffortError {
    /// Whose fault it is.
    pub fn fault(&self) -> crate::Fault {
        match self {
            EffortError::NoModel(_) => crate::Fault::Model,
            EffortError::MixedFormats { .. } | EffortError::NoImages => crate::Fault::Input,
            EffortError::Codec(e) => e.fault(),
        }
    }
}

/// The policy's settings: effort, where learned models come from, and encoder settings.
#[derive(Clone, Copy, Debug)]
pub struct EffortOptions<'a> {
    pub effort: Effort,
    /// The registry's models for the image's pixel format ([`Registry::default_for`], and every
    /// entry serving the format) are tried as the effort's [`LearnedModels`] says, unless
    /// [`model`](Self::model) is given and fits the format. Usually [`Registry::embedded`].
    pub registry: &'a Registry,
    /// A model the caller picked (`--model`): tried instead of the registry's, at every effort
    /// that tries a learned model, for the formats it fits. Where it does not fit,
    /// [`Plan::unused_model`] says why, and the registry's models are tried as if no model
    /// had been given.
    pub model: Option<LearnedModel<'a>>,
    /// Worker threads; 0 uses every core. The output does not depend on it.
    pub threads: usize,
    /// Tile side (see [`EncodeOptions::tile_side`]); `None`: [`DEFAULT_TILE_SIDE`] with a
    /// learned model, [`DEFAULT_CONTEXT_TILE_SIDE`] for context coding (measured best for each).
    pub tile_side: Option<u32>,
    /// How archives lay out their entries (see [`EncodeOptions::archive_layout`]); `Auto`
    /// chains them for bits-back models.
    pub archive_layout: ArchiveLayout,
}

impl Default for EffortOptions<'static> {
    /// Effort 5, the embedded models, every core, default tiles.
    fn default() -> Self {
        EffortOptions {
            effort: Effort::DEFAULT,
            registry: Registry::embedded(),
            model: None,
            threads: 0,
            tile_side: None,
            archive_layout: ArchiveLayout::Auto,
        }
    }
}

/// The candidates for images of one pixel format.
#[derive(Clone, Debug)]
pub struct Plan<'a> {
    /// In order of preference on ties; never empty.
    pub candidates: Vec<Candidate<'a>>,
    /// Why the given [`EffortOptions::model`] is not among them, if it does not fit the format
    /// (said whatever the effort).
    pub unused_model: Option<UnusedModel>,
}

impl<'a> EffortOptions<'a> {
    /// What is tried for images of `format` ([`Effort::preset`]). Registry models are loaded
    /// here (once per process: the registry keeps them).
    pub fn plan(&self, format: PixelFormat) -> Result<Plan<'a>, EffortError> {
        let Some(channels) = learned_channels(format) else {
            return Ok(Plan {
                candidates: vec![Candidate::ContextCoding],
                unused_model: self.model.map(|_| UnusedModel::NoLearnedPlane),
            });
        };
        let mut unused_model = None;
        let given = self.model.filter(|given| {
            let codes = given.model.planes();
            if codes != channels {
                unused_model = Some(UnusedModel::Channels(codes));
            }
            codes == channels
        });
        // the registry models that serve the format's learned planes
        let serves = if channels == 1 {
            PixelFormat::Gray8
        } else {
            PixelFormat::Rgb8
        };
        let preset = self.effort.preset();
        let mut candidates = match (preset.learned, given) {
            (LearnedModels::None, _) => vec![],
            (_, Some(given)) => vec![Candidate::Learned(given)],
            (LearnedModels::GivenOrGrayDefault, None) if channels == 1 => {
                let entry = self
                    .registry
                    .default_for(serves)
                    .ok_or(EffortError::NoModel(format))?;
                vec![registered(entry)?]
            }
            (LearnedModels::GivenOrGrayDefault, None) => vec![],
            (LearnedModels::GivenOrEvery, None) => self
                .registry
                .entries()
                .iter()
                .filter(|e| e.serves().contains(&serves))
                .map(registered)
                .collect::<Result<_, _>>()?,
        };
        if candidates.is_empty() || preset.context_coding == ContextCoding::Always {
            candidates.push(Candidate::ContextCoding);
        }
        Ok(Plan {
            candidates,
            unused_model,
        })
    }

    /// The encoder options for `candidate`.
    pub fn encode_options(&self, candidate: &Candidate<'_>) -> EncodeOptions {
        let (tile_side, model_storage) = match candidate {
            Candidate::Learned(learned) => (DEFAULT_TILE_SIDE, learned.storage),
            Candidate::ContextCoding => (DEFAULT_CONTEXT_TILE_SIDE, ModelStorage::Embedded),
        };
        EncodeOptions {
            threads: self.threads,
            tile_side: self.tile_side.unwrap_or(tile_side),
            model_storage,
            archive_layout: self.archive_layout,
        }
    }
}

/// A registry entry as a candidate (its model loaded).
fn registered(entry: &crate::registry::RegistryEntry) -> Result<Candidate<'_>, EffortError> {
    Ok(Candidate::Learned(LearnedModel {
        name: entry.name(),
        model: entry.model()?,
        storage: ModelStorage::Embedded,
    }))
}

/// The file [`compress_with_effort`] kept.
#[derive(Clone, Debug)]
pub struct Compressed<'a> {
    /// The file.
    pub bytes: Vec<u8>,
    /// The candidate that made it (the smallest file, the first on ties). As a
    /// [`ModelLookup`], it decodes the file.
    pub candidate: Candidate<'a>,
    /// Why a given model was not used for this image (see [`Plan::unused_model`]).
    pub unused_model: Option<UnusedModel>,
}

/// Codes `image` into a single-image file with every candidate its effort tries for its pixel
/// format ([`EffortOptions::plan`]) and keeps the smallest file (the first on ties): the one
/// function behind `idfcodec compress`, `verify` and `bench`.
///
/// ```
/// use idfcodec_codec::{
///     bits_per_dimension, compress_with_effort, decompress, DecodeOptions, Effort,
///     EffortOptions, Image,
/// };
///
/// let image = Image::gray8(4, 2, vec![0, 10, 20, 30, 40, 50, 60, 70]).unwrap();
/// // effort 3: context coding only; the default, 5, also tries the embedded gray model
/// let options = EffortOptions { effort: "3".parse().unwrap(), ..EffortOptions::default() };
/// let compressed = compress_with_effort(&image, &options).unwrap();
/// assert_eq!(compressed.candidate.name(), "none (context coding)");
/// println!("{:.3} bpd", bits_per_dimension(compressed.bytes.len() as u64, image.dimensions()));
/// let back = decompress(&compressed.bytes, &compressed.candidate, &DecodeOptions::default());
/// assert_eq!(back.unwrap(), image);
/// assert_eq!(Effort::default().level(), 5);
/// ```
pub fn compress_with_effort<'a>(
    image: &Image,
    options: &EffortOptions<'a>,
) -> Result<Compressed<'a>, EffortError> {
    let plan = options.plan(image.pixel_format())?;
    let (bytes, candidate) = smallest(&plan.candidates, |candidate| {
        compress(image, candidate.model(), &options.encode_options(candidate))
    })?;
    Ok(Compressed {
        bytes,
        candidate,
        unused_model: plan.unused_model,
    })
}

/// [`compress_with_effort`] for an archive: the images must share one pixel format (an archive
/// has one model), and the candidates are tried on the whole archive.
pub fn compress_archive_with_effort<'a>(
    images: &[NamedImage],
    options: &EffortOptions<'a>,
) -> Result<Compressed<'a>, EffortError> {
    let plan = options.plan(archive_format(images)?)?;
    let (bytes, candidate) = smallest(&plan.candidates, |candidate| {
        compress_archive(
            images,
            candidate.model(),
            &options.encode_options(candidate),
        )
    })?;
    Ok(Compressed {
        bytes,
        candidate,
        unused_model: plan.unused_model,
    })
}

/// The pixel format every image of an archive has (an archive is coded with one model).
pub fn archive_format(images: &[NamedImage]) -> Result<PixelFormat, EffortError> {
    let Some(first) = images.first() else {
        return Err(EffortError::NoImages);
    };
    let format = first.image.pixel_format();
    match images.iter().find(|n| n.image.pixel_format() != format) {
        Some(other) => Err(EffortError::MixedFormats {
            first: first.name.to_string(),
            other: other.name.to_string(),
        }),
        None => Ok(format),
    }
}

/// The smallest of the files `encode` makes from each candidate (the first on ties), with its
/// candidate.
fn smallest<'a>(
    candidates: &[Candidate<'a>],
    mut encode: impl FnMut(&Candidate<'a>) -> Result<Vec<u8>, ImageCodecError>,
) -> Result<(Vec<u8>, Candidate<'a>), EffortError> {
    let mut best: Option<(Vec<u8>, Candidate<'a>)> = None;
    for candidate in candidates {
        let bytes = encode(candidate)?;
        if best.as_ref().map_or(true, |(b, _)| bytes.len() < b.len()) {
            best = Some((bytes, *candidate));
        }
    }
    // a plan always holds a candidate
    Ok(best.expect("a plan is never empty"))
}

/// Bits per dimension of `bytes` bytes over `dimensions` samples (width · height · channels, as
/// [`Image::dimensions`]): the size measure of every report. No samples count as one.
pub fn bits_per_dimension(bytes: u64, dimensions: u64) -> f64 {
    bytes as f64 * 8.0 / dimensions.max(1) as f64
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn efforts_parse_from_1_to_9_with_5_the_default() {
        assert_eq!(Effort::default().level(), 5);
        assert_eq!(Effort::default(), Effort::DEFAULT);
        for level in 1..=9 {
            let effort: Effort = level.to_string().parse().unwrap();
            assert_eq!(effort.level(), level);
            assert_eq!(Effort::try_from(level).unwrap(), effort);
            assert_eq!(effort.to_string(), level.to_string());
        }
        assert_eq!(" 7 ".parse::<Effort>().unwrap().level(), 7);
        for bad in ["0", "10", "-1", "", "five", "5.0", "256"] {
            assert_eq!(bad.parse::<Effort>(), Err(InvalidEffort), "{bad:?}");
        }
        assert!(Effort::new(0).is_err() && Effort::new(10).is_err());
        assert!(Effort::MIN < Effort::DEFAULT && Effort::DEFAULT < Effort::MAX);
    }

    #[test]
    fn presets_are_the_documented_table() {
        use ContextCoding::*;
        use LearnedModels::*;
        let expected = |level| match level {
            1..=3 => (None, Fallback),
            4 => (GivenOrGrayDefault, Fallback),
            5 | 6 => (GivenOrGrayDefault, Always),
            _ => (GivenOrEvery, Always),
        };
        for level in 1..=9 {
            let preset = Effort::new(level).unwrap().preset();
            assert_eq!(
                (preset.learned, preset.context_coding),
                expected(level),
                "{level}"
            );
        }
    }

    fn names(options: &EffortOptions<'_>, format: PixelFormat) -> Vec<String> {
        let plan = options.plan(format).unwrap();
        plan.candidates
            .iter()
            .map(|c| c.name().to_string())
            .collect()
    }

    #[test]
    fn plans_follow_the_presets_over_the_embedded_registry() {
        let registry = Registry::embedded();
        let gray_default = registry.default_for(PixelFormat::Gray8).unwrap().name();
        let every = |format| -> Vec<String> {
            registry
                .entries()
                .iter()
                .filter(|e| e.serves().contains(&format))
                .map(|e| e.name().to_string())
                .collect()
        };
        let context = "none (context coding)".to_string();
        let at = |level| EffortOptions {
            effort: Effort::new(level).unwrap(),
            ..EffortOptions::default()
        };
        for format in [
            PixelFormat::Gray8,
            PixelFormat::GrayAlpha8,
            PixelFormat::Rgb8,
        ] {
            for level in 1..=3 {
                assert_eq!(names(&at(level), format), std::slice::from_ref(&context));
            }
            let gray = format != PixelFormat::Rgb8;
            let default: Vec<String> = if gray {
                vec![gray_default.to_string()]
            } else {
                vec![]
            };
            let four = if gray {
                default.clone()
            } else {
                vec![context.clone()]
            };
            assert_eq!(names(&at(4), format), four, "{format:?}");
            let with_context = |mut v: Vec<String>| {
                v.push(context.clone());
                v
            };
            for level in [5, 6] {
                assert_eq!(names(&at(level), format), with_context(default.clone()));
            }
            let serves = if gray {
                PixelFormat::Gray8
            } else {
                PixelFormat::Rgb8
            };
            for level in 7..=9 {
                assert_eq!(names(&at(level), format), with_context(every(serves)));
            }
        }
        for level in 1..=9 {
            let plan = at(level).plan(PixelFormat::Gray16).unwrap();
            assert_eq!(plan.candidates.len(), 1);
            assert!(matches!(plan.candidates[0], Candidate::ContextCoding));
            assert_eq!(plan.unused_model, None);
        }
    }

    #[test]
    fn a_given_model_is_tried_where_it_fits_and_said_unused_elsewhere() {
        let entry = Registry::embedded().by_name("mnist").unwrap();
        let given = LearnedModel {
            name: "mine",
            model: entry.model().unwrap(),
            storage: ModelStorage::External,
        };
        let at = |level| EffortOptions {
            effort: Effort::new(level).unwrap(),
            registry: Registry::embedded(),
            model: Some(given),
            threads: 1,
            tile_side: None,
            archive_layout: ArchiveLayout::Auto,
        };
        let context = "none (context coding)";
        assert_eq!(names(&at(1), PixelFormat::Gray8), [context]);
        assert_eq!(names(&at(4), PixelFormat::Gray8), ["mine"]);
        assert_eq!(names(&at(5), PixelFormat::GrayAlpha8), ["mine", context]);
        assert_eq!(names(&at(9), PixelFormat::Gray8), ["mine", context]);
        for level in [1, 4, 9] {
            let rgb = at(level).plan(PixelFormat::Rgb8).unwrap();
            assert_eq!(rgb.unused_model, Some(UnusedModel::Channels(1)));
            let sixteen = at(level).plan(PixelFormat::Gray16).unwrap();
            assert_eq!(sixteen.unused_model, Some(UnusedModel::NoLearnedPlane));
            assert_eq!(names(&at(level), PixelFormat::Gray16), [context]);
        }
        // where it does not fit, the registry's models are tried as without a given model
        assert_eq!(names(&at(4), PixelFormat::Rgb8), [context]);
        let rgb_models = Registry::embedded()
            .entries()
            .iter()
            .filter(|e| e.serves().contains(&PixelFormat::Rgb8))
            .map(|e| e.name())
            .chain([context]);
        assert!(names(&at(9), PixelFormat::Rgb8).iter().eq(rgb_models));
        assert_eq!(
            UnusedModel::Channels(1).to_string(),
            "it codes 1-channel images"
        );
        // the given model's storage and the default tiles reach the encoder
        let options = at(5);
        let learned = options.encode_options(&Candidate::Learned(given));
        assert_eq!(learned.model_storage, ModelStorage::External);
        assert_eq!(learned.tile_side, DEFAULT_TILE_SIDE);
        let context_tile = options.encode_options(&Candidate::ContextCoding).tile_side;
        assert_eq!(context_tile, DEFAULT_CONTEXT_TILE_SIDE);
        let tiled = EffortOptions {
            tile_side: Some(64),
            ..options
        };
        assert_eq!(
            tiled.encode_options(&Candidate::Learned(given)).tile_side,
            64
        );
    }

    #[test]
    fn a_registry_without_a_default_is_an_error_where_one_is_needed() {
        let empty = Registry::new([]);
        let at = |level| EffortOptions {
            effort: Effort::new(level).unwrap(),
            registry: &empty,
            model: None,
            threads: 1,
            tile_side: None,
            archive_layout: ArchiveLayout::Auto,
        };
        assert!(matches!(
            at(5).plan(PixelFormat::Gray8),
            Err(EffortError::NoModel(PixelFormat::Gray8))
        ));
        assert_eq!(at(9).plan(PixelFormat::Gray8).unwrap().candidates.len(), 1);
        assert_eq!(at(5).plan(PixelFormat::Rgb8).unwrap().candidates.len(), 1);
    }

    #[test]
    fn bits_per_dimension_counts_every_sample() {
        assert_eq!(bits_per_dimension(1, 8), 1.0);
        assert_eq!(bits_per_dimension(3, 0), 24.0);
        assert_eq!(bits_per_dimension(0, 5), 0.0);
    }
}
