//! Whole images to and from container bytes: tiling, padding, parallel tile coding, model and
//! checksum checks.
//!
//! - [`compress`] / [`decompress`]: one [`Image`] ↔ one single-image file.
//! - [`compress_archive`] / [`decompress_archive`]: many [`NamedImage`]s ↔ one archive.
//!
//! Tiles ([`crate::tile`]) are coded independently on a thread pool of
//! [`EncodeOptions::threads`]; the bytes never depend on the thread count. Files are written in
//! [`Version::NEWEST`] (3) and read in versions 1 to 3. Decoding refuses a file whose model is
//! not the one found by the [`ModelLookup`] before decoding anything, checks each tile's padding
//! and ANS stream, and returns pixels only when they match the stored checksums: each tile's,
//! carried in its ANS start state (versions 2 and 3; version 3's covers everything decoded beside
//! the samples too: [`TileCheck`]), or the whole image's in the header (version 1). Archives
//! decode entry by entry within [`DecodeOptions::max_memory`] ([`ArchiveDecoder`]).
//!
//! Every pixel format is coded: a learned model (optional, of any family, through
//! [`crate::model::PlaneModel`]) codes the leading 8-bit planes its inputs match (the gray plane of
//! gray8 and gray+alpha 8 images, the red, green and blue planes of rgb8: [`learned_channels`]),
//! the context coder ([`crate::context`]) every other plane; see [`TileCoding`] and FORMAT.md's
//! "Payload".

use rayon::prelude::*;

use crate::context::{self, FirstPlane, PlaneContent, PlaneLayout};
use crate::entropy::{self, StreamStart};
use constriction::stream::stack::DefaultAnsCoder;
use std::sync::Mutex;

use crate::format::{
    CodedImage, EntryName, Extension, ExtensionKind, FormatError, ImageFile, ImageHeader, Limits,
    ModelRef, PixelFormat, TileCheck, Version,
};
use crate::tile::{self, TileLayout};
use crate::{CodecError, Model};

/// A decoded image: geometry, pixel format and canonical pixel bytes.
///
/// The samples are the format's canonical pixel bytes ([`PixelFormat`]): row-major, samples of a
/// pixel interleaved; for gray8 simply one byte per pixel.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Image {
    pub(crate) width: u32,
    pub(crate) height: u32,
    pub(crate) pixel_format: PixelFormat,
    pub(crate) samples: Vec<u8>,
    /// Palette, transparency and colour information, as the container stores them.
    pub(crate) extensions: Vec<Extension>,
}

impl Image {
    /// An image of `width × height` pixels; `samples` must hold exactly its canonical bytes.
    pub fn new(
        width: u32,
        height: u32,
        pixel_format: PixelFormat,
        samples: Vec<u8>,
    ) -> Result<Self, ImageCodecError> {
        if width == 0 || height == 0 {
            return Err(ImageCodecError::InvalidImage(format!(
                "an image needs at least one pixel, got {width}×{height}"
            )));
        }
        let expected =
            u64::from(width) * u64::from(height) * u64::from(pixel_format.bytes_per_pixel());
        if samples.len() as u64 != expected {
            return Err(ImageCodecError::InvalidImage(format!(
                "a {width}×{height} {} image has {expected} sample bytes, got {}",
                format_name(pixel_format),
                samples.len()
            )));
        }
        Ok(Image {
            width,
            height,
            pixel_format,
            samples,
            extensions: Vec::new(),
        })
    }

    /// The image with these extension records (palette, transparency, colour information; see
    /// [`ExtensionKind`]), which must be valid for a container: increasing kinds, each at most
    /// once, lengths within their rules (none at all is fine). Palette formats need a palette
    /// record to be coded.
    pub fn with_extensions(mut self, extensions: Vec<Extension>) -> Result<Self, ImageCodecError> {
        if !extensions.is_empty() {
            crate::format::validate_extensions(&extensions)?;
        }
        self.extensions = extensions;
        Ok(self)
    }

    /// The extension records.
    pub fn extensions(&self) -> &[Extension] {
        &self.extensions
    }

    /// The record of `kind`, if the image has one.
    pub fn extension(&self, kind: ExtensionKind) -> Option<&[u8]> {
        self.extensions
            .iter()
            .find(|e| e.kind == kind)
            .map(|e| e.data.as_slice())
    }

    /// An 8-bit grayscale image, one byte per pixel, row-major.
    pub fn gray8(width: u32, height: u32, samples: Vec<u8>) -> Result<Self, ImageCodecError> {
        Image::new(width, height, PixelFormat::Gray8, samples)
    }

    /// Width in pixels.
    pub fn width(&self) -> u32 {
        self.width
    }

    /// Height in pixels.
    pub fn height(&self) -> u32 {
        self.height
    }

    /// The pixel format.
    pub fn pixel_format(&self) -> PixelFormat {
        self.pixel_format
    }

    /// The canonical pixel bytes.
    pub fn samples(&self) -> &[u8] {
        &self.samples
    }

    /// The canonical pixel bytes, by value.
    pub fn into_samples(self) -> Vec<u8> {
        self.samples
    }

    /// Samples in the image (`width · height · channels`): the "dimensions" of bits per dimension.
    pub fn dimensions(&self) -> u64 {
        u64::from(self.width) * u64::from(self.height) * u64::from(self.pixel_format.channels())
    }
}

/// An image with its name in an archive.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct NamedImage {
    pub name: EntryName,
    pub image: Image,
}

/// How a file refers to its model (see [`ModelRef`]).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ModelStorage {
    /// The model is built into the codec (registry): 4-byte reference.
    Embedded,
    /// The model is a file the decoder must be given: 8-byte reference.
    External,
}

impl ModelStorage {
    /// The reference to `model` stored this way.
    pub fn reference(self, model: &Model) -> ModelRef {
        match self {
            ModelStorage::Embedded => ModelRef::embedded(model.id()),
            ModelStorage::External => ModelRef::external(model.id()),
        }
    }
}

/// Encoder settings. None of them changes what a decoder needs to know beyond the file itself.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct EncodeOptions {
    /// Worker threads; 0 uses every core. The output does not depend on it.
    pub threads: usize,
    /// Tile side, a power of two from [`tile::MIN_TILE_SIDE`] to [`tile::MAX_TILE_SIDE`], at
    /// least the model's size multiple. Images that fit in one tile are coded whole.
    pub tile_side: u32,
    /// How the file refers to the model.
    pub model_storage: ModelStorage,
    /// How an archive lays out its entries (ignored for single images).
    pub archive_layout: ArchiveLayout,
}

/// How an archive lays out its entries (FORMAT.md, "Archive" and "Chained archives").
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum ArchiveLayout {
    /// Chained when the model codes with bits back ([`Model::uses_bits_back`]), independent
    /// otherwise.
    #[default]
    Auto,
    /// Each entry its own tile streams: entries are coded and decoded in parallel, and decoded
    /// in batches within the memory budget.
    Independent,
    /// One stream for all entries (format version 4): a bits-back model carries its bits from
    /// entry to entry, and no entry pays a start state of its own; decoding runs on one thread
    /// and holds every entry until the stream is checked.
    Chained,
}

impl ArchiveLayout {
    /// [`ArchiveLayout::Independent`] or [`ArchiveLayout::Chained`]: what `Auto` means for
    /// `model`.
    pub fn resolve(self, model: Option<&Model>) -> ArchiveLayout {
        match self {
            ArchiveLayout::Auto if model.is_some_and(Model::uses_bits_back) => {
                ArchiveLayout::Chained
            }
            ArchiveLayout::Auto => ArchiveLayout::Independent,
            layout => layout,
        }
    }
}

impl Default for EncodeOptions {
    /// All cores, [`tile::DEFAULT_TILE_SIDE`], external model reference (the safe choice for a
    /// model that is not known to be embedded).
    fn default() -> Self {
        EncodeOptions {
            threads: 0,
            tile_side: tile::DEFAULT_TILE_SIDE,
            model_storage: ModelStorage::External,
            archive_layout: ArchiveLayout::Auto,
        }
    }
}

/// Decoder settings: what a file may make the decoder do.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct DecodeOptions {
    /// Container limits (image size, tiles, entries), checked before allocating.
    pub limits: Limits,
    /// Largest tile, padding included, in pixels (`--max-tile-pixels`): the decoder's working
    /// memory grows with it.
    pub max_tile_pixels: u64,
    /// Worker threads; 0 uses every core.
    pub threads: usize,
    /// Most bytes the decoder may hold at once (`--max-memory`): an image's pixels and the
    /// working memory of the tiles decoded together ([`decode_memory`]); for an archive, of the
    /// entries decoded together. A file that needs more is refused before decoding.
    pub max_memory: u64,
}

/// Default [`DecodeOptions::max_memory`]: 2 GiB.
pub const DEFAULT_MAX_MEMORY: u64 = 2 << 30;

impl Default for DecodeOptions {
    fn default() -> Self {
        DecodeOptions {
            limits: Limits::default(),
            max_tile_pixels: tile::DEFAULT_MAX_TILE_PIXELS,
            threads: 0,
            max_memory: DEFAULT_MAX_MEMORY,
        }
    }
}

/// A model with the name used in messages (registry name or file path).
#[derive(Clone, Copy, Debug)]
pub struct NamedModel<'a> {
    pub name: &'a str,
    pub model: &'a Model,
}

/// Finds the model a file refers to.
pub trait ModelLookup {
    /// The model `wanted` refers to, or an error saying what is missing or mismatched.
    fn resolve(&self, wanted: ModelRef) -> Result<NamedModel<'_>, ImageCodecError>;
}

impl ModelLookup for NamedModel<'_> {
    /// This model if it is the one wanted, else [`FormatError::ModelMismatch`] naming both.
    fn resolve(&self, wanted: ModelRef) -> Result<NamedModel<'_>, ImageCodecError> {
        wanted.verify(self.name, self.model.id())?;
        Ok(*self)
    }
}

/// Why an image could not be coded or decoded.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ImageCodecError {
    /// The image itself is inconsistent (size and samples disagree).
    #[error("invalid image: {0}")]
    InvalidImage(String),
    /// The encoder options are unusable.
    #[error("invalid options: {0}")]
    InvalidOptions(String),
    /// The model cannot code the image: learned models code the gray plane of gray8 and
    /// gray+alpha 8 images (1-channel models) or the colour planes of rgb8 (3-channel models).
    #[error(
        "a {model_channels}-channel model cannot code {} images: 1-channel models code the gray \
         plane of 8-bit grayscale (+alpha) images, 3-channel models the planes of 8-bit RGB; \
         every other plane is context-coded",
        format_name(*format)
    )]
    ModelDoesNotFit {
        model_channels: usize,
        format: PixelFormat,
    },
    /// No model available matches the file's model reference.
    #[error("{}", model_not_found(*.0))]
    ModelNotFound(ModelRef),
    /// An embedded model failed to load (a broken build).
    #[error("the embedded model '{name}' cannot be loaded: {reason}")]
    EmbeddedModel { name: String, reason: String },
    /// A tile larger than [`DecodeOptions::max_tile_pixels`].
    #[error(
        "the file's tiles are coded at {width}×{height} pixels, above the limit of {limit} \
         pixels per tile (raise it with --max-tile-pixels if you trust the file)"
    )]
    TileTooLarge {
        width: usize,
        height: usize,
        limit: u64,
    },
    /// Decoding the file would take more memory than [`DecodeOptions::max_memory`].
    #[error(
        "decoding needs about {needed} bytes of memory, above the budget of {limit} bytes \
         (raise it with --max-memory if you trust the file and have the memory)"
    )]
    MemoryBudget { needed: u64, limit: u64 },
    /// The container is malformed, or the decoded pixels fail its checks.
    #[error(transparent)]
    Format(#[from] FormatError),
    /// Coding one tile failed (for decoding: the payload is corrupt).
    #[error("{error} (tile {} of {count})", .index + 1)]
    Tile {
        /// Zero-based, raster order (shown one-based).
        index: u64,
        count: u64,
        error: CodecError,
    },
    /// The one stream of a chained archive failed its checks (corrupt, truncated, or its end
    /// state not the checksum of what it decoded).
    #[error("archive chain: {0}")]
    Chain(CodecError),
    /// Something about one archive entry.
    #[error("archive entry '{name}': {error}")]
    Entry {
        name: String,
        error: Box<ImageCodecError>,
    },
    /// The worker threads could not be started.
    #[error("cannot start {threads} worker threads: {reason}")]
    ThreadPool { threads: usize, reason: String },
}

impl ImageCodecError {
    /// Whose fault it is.
    pub fn fault(&self) -> crate::Fault {
        use crate::Fault;
        match self {
            ImageCodecError::InvalidImage(_) | ImageCodecError::InvalidOptions(_) => Fault::Input,
            ImageCodecError::ModelDoesNotFit { .. }
            | ImageCodecError::ModelNotFound(_)
            | ImageCodecError::EmbeddedModel { .. } => Fault::Model,
            ImageCodecError::TileTooLarge { .. } | ImageCodecError::MemoryBudget { .. } => {
                Fault::Limits
            }
            ImageCodecError::Format(e) => e.fault(),
            ImageCodecError::Tile { error, .. } | ImageCodecError::Chain(error) => error.fault(),
            ImageCodecError::Entry { error, .. } => error.fault(),
            ImageCodecError::ThreadPool { .. } => Fault::Resources,
        }
    }
}

/// The message of [`ImageCodecError::ModelNotFound`].
fn model_not_found(wanted: ModelRef) -> String {
    match wanted {
        ModelRef::Embedded { .. } => format!(
            "this file needs {wanted}, which this build of idfcodec does not include \
             (the file may come from another build; if it was coded with a model file, \
             give that file with --model PATH)"
        ),
        ModelRef::External { .. } => {
            format!("this file was coded with {wanted}: give that model file with --model PATH")
        }
    }
}

/// A human name of a pixel format, for messages ("8-bit grayscale", "16-bit RGBA", ...).
pub fn format_name(format: PixelFormat) -> &'static str {
    use PixelFormat::*;
    match format {
        Gray8 => "8-bit grayscale",
        Gray1 => "1-bit grayscale",
        Gray2 => "2-bit grayscale",
        Gray4 => "4-bit grayscale",
        Gray16 => "16-bit grayscale",
        GrayAlpha8 => "8-bit grayscale+alpha",
        GrayAlpha16 => "16-bit grayscale+alpha",
        Rgb8 => "8-bit RGB",
        Rgb16 => "16-bit RGB",
        Rgba8 => "8-bit RGBA",
        Rgba16 => "16-bit RGBA",
        Palette8 => "8-bit palette",
        Palette4 => "4-bit palette",
        Palette2 => "2-bit palette",
        Palette1 => "1-bit palette",
    }
}

/// Codes `image` into a single-image file: with `model` (a learned model for its leading 8-bit
/// planes: [`learned_channels`]) or without (`None`: every plane by the context coder).
pub fn compress<'m>(
    image: &Image,
    model: impl Into<Option<&'m Model>>,
    options: &EncodeOptions,
) -> Result<Vec<u8>, ImageCodecError> {
    let model = model.into();
    let version = Version::NEWEST;
    let reference = reference(model, options);
    let header = image_header(image, model, options)?;
    let check = TileCheck::new(version, reference, &header, &image.extensions, None)?;
    let coded = on_threads(options.threads, || {
        encode_coded(image, header, model, &check)
    })?;
    let file = ImageFile {
        version,
        model: reference,
        image: coded,
    };
    Ok(file.to_bytes()?)
}

/// Decodes a single-image file, with the model `models` finds for it (none is needed for a file
/// coded without one).
pub fn decompress(
    bytes: &[u8],
    models: &dyn ModelLookup,
    options: &DecodeOptions,
) -> Result<Image, ImageCodecError> {
    let file = ImageFile::read(bytes, &options.limits)?;
    let named = checked_model(models, file.model)?;
    let model = named.map(|n| n.model);
    check_decodable(&file.image, model, options)?;
    let needed = decode_memory(&file.image.header, model, options.threads);
    check_memory(needed, options.max_memory)?;
    let check = TileCheck::new(
        file.version,
        file.model,
        &file.image.header,
        &file.image.extensions,
        None,
    )?;
    on_threads(options.threads, || decode_coded(&file.image, model, &check))
}

/// How the file refers to `model` ([`ModelRef::NONE`] without one).
pub(crate) fn reference(model: Option<&Model>, options: &EncodeOptions) -> ModelRef {
    model.map_or(ModelRef::NONE, |m| options.model_storage.reference(m))
}

/// Finds the model and checks its id against the reference once more; `None` for a file coded
/// without a model.
pub(crate) fn checked_model(
    models: &dyn ModelLookup,
    wanted: ModelRef,
) -> Result<Option<NamedModel<'_>>, ImageCodecError> {
    if wanted.is_none() {
        return Ok(None);
    }
    let named = models.resolve(wanted)?;
    wanted.verify(named.name, named.model.id())?;
    Ok(Some(named))
}

/// Most worker threads a caller may ask for.
pub const MAX_THREADS: usize = 1024;

/// Runs `work` on a pool of `threads` workers (0: every core).
pub(crate) fn on_threads<R: Send>(
    threads: usize,
    work: impl FnOnce() -> Result<R, ImageCodecError> + Send,
) -> Result<R, ImageCodecError> {
    if threads > MAX_THREADS {
        return Err(ImageCodecError::InvalidOptions(format!(
            "{threads} threads asked for, at most {MAX_THREADS} are allowed"
        )));
    }
    let pool = rayon::ThreadPoolBuilder::new()
        .num_threads(threads)
        .build()
        .map_err(|e| ImageCodecError::ThreadPool {
            threads,
            reason: e.to_string(),
        })?;
    pool.install(work)
}

/// How many of the image's first planes a learned model codes, if any: 1 for the gray samples of
/// gray8 and gray+alpha 8 images (a one-channel model), 3 for rgb8 images (an RGB model).
pub fn learned_channels(format: PixelFormat) -> Option<usize> {
    match format {
        PixelFormat::Gray8 | PixelFormat::GrayAlpha8 => Some(1),
        PixelFormat::Rgb8 => Some(3),
        _ => None,
    }
}

/// Refuses a model for an image it cannot code.
fn check_model_fits(format: PixelFormat, model: Option<&Model>) -> Result<(), ImageCodecError> {
    let Some(model) = model else {
        return Ok(());
    };
    let model_channels = model.planes();
    if learned_channels(format) != Some(model_channels) {
        return Err(ImageCodecError::ModelDoesNotFit {
            model_channels,
            format,
        });
    }
    Ok(())
}

/// What the context coder sees of an image of `format` with these extension records.
pub(crate) fn plane_content(
    format: PixelFormat,
    extensions: &[Extension<impl AsRef<[u8]>>],
) -> Result<PlaneContent, ImageCodecError> {
    if !format.is_palette() {
        return Ok(PlaneContent::Direct(format));
    }
    let palette = extensions
        .iter()
        .find(|e| e.kind == ExtensionKind::Palette)
        .ok_or_else(|| {
            ImageCodecError::InvalidImage(format!(
                "a {} image needs a palette record",
                format_name(format)
            ))
        })?;
    Ok(PlaneContent::Palette {
        bit_depth: format.bits_per_sample(),
        entries: (palette.data.as_ref().len() / 3) as u16,
    })
}

/// Checks the tile side against the format and the model.
fn check_tile_side(side: u32, model: Option<&Model>) -> Result<(), ImageCodecError> {
    tile::check_tile_side(side).map_err(ImageCodecError::InvalidOptions)?;
    let multiple = size_multiple(model);
    if (side as usize) < multiple {
        return Err(ImageCodecError::InvalidOptions(format!(
            "tile side {side} is smaller than the model's size multiple {multiple}"
        )));
    }
    Ok(())
}

/// What tile sizes are padded to: the model's size multiple, 1 without a model.
fn size_multiple(model: Option<&Model>) -> usize {
    model.map_or(1, Model::size_multiple)
}

/// The layout of every tile of `header`'s image for `model`, in raster order.
pub(crate) fn layouts(header: &ImageHeader, model: Option<&Model>) -> Vec<TileLayout> {
    let grid = header.grid();
    let multiple = size_multiple(model);
    (0..grid.count())
        .filter_map(|i| grid.rect(i))
        .map(|rect| TileLayout::new(rect, multiple))
        .collect()
}

/// The header `image` is coded with: its size, format and tiling.
pub(crate) fn image_header(
    image: &Image,
    model: Option<&Model>,
    options: &EncodeOptions,
) -> Result<ImageHeader, ImageCodecError> {
    check_model_fits(image.pixel_format, model)?;
    check_tile_side(options.tile_side, model)?;
    crate::format::check_extensions_fit(&image.extensions, image.pixel_format)?;
    Ok(ImageHeader {
        width: image.width,
        height: image.height,
        pixel_format: image.pixel_format,
        tiling: tile::choose_tiling(image.width, image.height, options.tile_side),
        pixel_crc: None,
    })
}

/// Codes the tiles of `image` (in parallel, on the current pool) under `header`; each tile's
/// stream starts from its checksum under `check`.
pub(crate) fn encode_coded(
    image: &Image,
    header: ImageHeader,
    model: Option<&Model>,
    check: &TileCheck,
) -> Result<CodedImage, ImageCodecError> {
    let content = plane_content(image.pixel_format, &image.extensions)?;
    let layouts = layouts(&header, model);
    let count = layouts.len() as u64;
    let tiles = layouts
        .par_iter()
        .enumerate()
        .map(|(index, layout)| {
            let coding = TileCoding {
                model,
                version: check.version(),
                format: image.pixel_format,
                content,
                layout,
            };
            let bytes_per_pixel = usize::from(image.pixel_format.bytes_per_pixel());
            let samples =
                tile::copy_rect(&image.samples, image.width, bytes_per_pixel, layout.rect);
            let checksum = check.checksum(index as u64, &samples).ok_or_else(|| {
                CodecError::Internal("the newest version has a checksum per tile".into())
            });
            checksum
                .and_then(|checksum| coding.encode(&samples, checksum))
                .map_err(|error| ImageCodecError::Tile {
                    index: index as u64,
                    count,
                    error,
                })
        })
        .collect::<Result<Vec<_>, _>>()?;
    Ok(CodedImage {
        header,
        extensions: image.extensions.clone(),
        tiles,
    })
}

/// Checks, before any decoding, that `model` can decode `coded` within the tile limit.
pub(crate) fn check_decodable<T: AsRef<[u8]>>(
    coded: &CodedImage<T>,
    model: Option<&Model>,
    options: &DecodeOptions,
) -> Result<(), ImageCodecError> {
    check_model_fits(coded.header.pixel_format, model)?;
    plane_content(coded.header.pixel_format, &coded.extensions)?;
    check_tile_area(&coded.header, model, options.max_tile_pixels)
}

/// An upper bound of the memory, in bytes, that decoding an image with `header` takes: its
/// canonical pixel bytes, plus, for every tile decoded at the same time (one per thread), the
/// tile's samples and the working memory of its coders (`tile_memory`).
pub fn decode_memory(header: &ImageHeader, model: Option<&Model>, threads: usize) -> u64 {
    let grid = header.grid();
    let tile = grid.rect(0).map_or(0, |rect| {
        let layout = TileLayout::new(rect, size_multiple(model));
        tile_memory(&layout, header.pixel_format, model)
    });
    let threads = match threads {
        0 => std::thread::available_parallelism().map_or(1, usize::from),
        n => n,
    };
    let in_flight = grid.count().min(threads as u64);
    header
        .pixel_bytes()
        .saturating_add(in_flight.saturating_mul(tile))
}

/// An upper bound of the memory decoding one tile takes besides the image: its samples, the
/// context coder's planes and statistics, and the learned model's tensors.
pub(crate) fn tile_memory(layout: &TileLayout, format: PixelFormat, model: Option<&Model>) -> u64 {
    let pixels = layout.rect.width as u64 * layout.rect.height as u64;
    let samples = pixels * u64::from(format.channels());
    // samples and their copy, plus i32 planes, predictions and errors per sample
    let context = samples * (2 * u64::from(format.bytes_per_sample()) + 32) + CONTEXT_TABLES;
    let learned = model.map_or(0, |m| layout.padded_pixels() * m.coder().bytes_per_pixel());
    context + learned
}

/// The context coder's fixed-size tables per tile (bit-model trees), rounded up.
const CONTEXT_TABLES: u64 = 16 << 20;

/// Refuses work that needs more memory than `limit`.
pub(crate) fn check_memory(needed: u64, limit: u64) -> Result<(), ImageCodecError> {
    if needed > limit {
        return Err(ImageCodecError::MemoryBudget { needed, limit });
    }
    Ok(())
}

/// Decodes one coded image (in parallel over tiles, on the current pool) and checks it: each
/// tile's stream must end at its checksum under `check` (versions 2 and 3), the whole image at
/// the header's checksum (version 1). Each tile is pasted into the image as soon as it is
/// decoded, so the tiles never exist all at once beside the image.
pub(crate) fn decode_coded<T: AsRef<[u8]> + Sync>(
    coded: &CodedImage<T>,
    model: Option<&Model>,
    check: &TileCheck,
) -> Result<Image, ImageCodecError> {
    let header = coded.header;
    let content = plane_content(header.pixel_format, &coded.extensions)?;
    let layouts = layouts(&header, model);
    let count = layouts.len() as u64;
    let bytes_per_pixel = usize::from(header.pixel_format.bytes_per_pixel());
    // allocated when the first tile has decoded, so garbage costs no image-sized allocation
    let samples: Mutex<Option<Vec<u8>>> = Mutex::new(None);
    layouts
        .par_iter()
        .zip(coded.tiles.par_iter())
        .enumerate()
        .try_for_each(|(index, (layout, payload))| {
            let coding = TileCoding {
                model,
                version: check.version(),
                format: header.pixel_format,
                content,
                layout,
            };
            let tile_samples = coding
                .decode(payload.as_ref(), check, index as u64)
                .map_err(|error| ImageCodecError::Tile {
                    index: index as u64,
                    count,
                    error,
                })?;
            let mut samples = samples.lock().unwrap_or_else(|e| e.into_inner());
            let samples = match &mut *samples {
                Some(samples) => samples,
                empty => empty.insert(zeroed(header.pixel_bytes())?),
            };
            tile::paste_rect(
                &tile_samples,
                samples,
                header.width,
                bytes_per_pixel,
                layout.rect,
            );
            Ok::<_, ImageCodecError>(())
        })?;
    let samples = samples
        .into_inner()
        .unwrap_or_else(|e| e.into_inner())
        .unwrap_or_default();
    finish_image(&header, samples, &coded.extensions)
}

/// The decoded image of `header` with these samples and extension records, after the header's
/// own pixel check (version 1).
pub(crate) fn finish_image<T: AsRef<[u8]>>(
    header: &ImageHeader,
    samples: Vec<u8>,
    extensions: &[Extension<T>],
) -> Result<Image, ImageCodecError> {
    header.verify_pixels(&samples)?;
    let extensions = extensions
        .iter()
        .map(|e| Extension {
            kind: e.kind,
            data: e.data.as_ref().to_vec(),
        })
        .collect();
    Image::new(header.width, header.height, header.pixel_format, samples)?
        .with_extensions(extensions)
}

/// `len` zero bytes, or an error if the memory cannot be had (rather than an abort).
pub(crate) fn zeroed(len: u64) -> Result<Vec<u8>, ImageCodecError> {
    let too_large =
        || ImageCodecError::InvalidImage(format!("not enough memory for {len} bytes of pixels"));
    let len = usize::try_from(len).map_err(|_| too_large())?;
    let mut v = Vec::new();
    v.try_reserve_exact(len).map_err(|_| too_large())?;
    v.resize(len, 0);
    Ok(v)
}

/// Refuses tiles above `limit` pixels (padded) before any decoding. The first tile is the
/// largest: only tiles at the right and bottom edges are clipped.
fn check_tile_area(
    header: &ImageHeader,
    model: Option<&Model>,
    limit: u64,
) -> Result<(), ImageCodecError> {
    let grid = header.grid();
    let first = grid
        .rect(0)
        .ok_or_else(|| ImageCodecError::InvalidImage("the image has no tiles".to_string()))?;
    let layout = TileLayout::new(first, size_multiple(model));
    if layout.padded_pixels() > limit {
        return Err(ImageCodecError::TileTooLarge {
            width: layout.padded_width,
            height: layout.padded_height,
            limit,
        });
    }
    Ok(())
}

/// How one tile is coded. Its ANS stream holds, in decoding order: the learned model's latents of
/// its planes (with a model: the gray samples, or the red, green and blue planes of rgb8, each
/// padded to the model's size multiple by edge replication), then the context coder's block for
/// every other plane (every plane without a model; nothing for gray8 and rgb8 with a model), and
/// ends at the start state (versions 2 and 3: the tile's checksum).
pub(crate) struct TileCoding<'a> {
    pub(crate) model: Option<&'a Model>,
    /// The file's format version (a learned family's coding may depend on it).
    pub(crate) version: Version,
    pub(crate) format: PixelFormat,
    pub(crate) content: PlaneContent,
    pub(crate) layout: &'a TileLayout,
}

impl TileCoding<'_> {
    fn planes(&self) -> PlaneLayout {
        PlaneLayout {
            width: self.layout.rect.width,
            height: self.layout.rect.height,
            content: self.content,
        }
    }

    /// Whether the context coder has planes to code: not when the model codes them all.
    fn has_context_planes(&self) -> bool {
        let all = Some(usize::from(self.format.channels()));
        self.model.is_none() || learned_channels(self.format) != all
    }

    /// The planes `model` codes, each padded to the coded size, channel after channel (CHW):
    /// the first `in_channels` channels of the tile's interleaved 8-bit samples (the gray of
    /// gray8 and gray+alpha 8, the red, green and blue of rgb8; [`check_model_fits`] has
    /// checked that the model fits the format).
    fn learned_planes(&self, model: &Model, samples: &[u8]) -> Vec<u8> {
        let stride = usize::from(self.format.channels());
        (0..model.planes())
            .flat_map(|c| {
                let plane: Vec<u8> = samples.iter().skip(c).step_by(stride).copied().collect();
                self.layout.pad(&plane)
            })
            .collect()
    }

    /// Inverse of [`TileCoding::learned_planes`]: the tile's own samples of the learned planes
    /// (interleaved for rgb8), after checking that every padding is the edge replication.
    fn unpad_learned(&self, padded: &[u8]) -> Result<Vec<u8>, CodecError> {
        let plane = self.layout.padded_width * self.layout.padded_height;
        let mut planes = Vec::new();
        for p in padded.chunks_exact(plane) {
            if !self.layout.padding_is_replicated(p) {
                return Err(CodecError::CorruptPayload(
                    "the decoded padding does not repeat the tile's edge".into(),
                ));
            }
            planes.push(self.layout.crop(p));
        }
        let pixels = planes.first().map_or(0, Vec::len);
        Ok((0..pixels)
            .flat_map(|i| planes.iter().map(move |p| p[i]))
            .collect())
    }

    /// Codes the tile's canonical pixel bytes into its payload, a stream that starts from
    /// `checksum`.
    fn encode(&self, samples: &[u8], checksum: u32) -> Result<Vec<u8>, CodecError> {
        let mut coder = entropy::start_stream(StreamStart::Checksum(checksum));
        self.push(&mut coder, samples)?;
        entropy::finish_stream(coder)
    }

    /// Pushes the tile's canonical pixel bytes onto `coder`: the context coder's block first,
    /// then the learned planes (so decoding pops the learned planes first).
    pub(crate) fn push(
        &self,
        coder: &mut DefaultAnsCoder,
        samples: &[u8],
    ) -> Result<(), CodecError> {
        let planes = self.planes();
        if self.has_context_planes() {
            let first = match self.model {
                Some(_) => FirstPlane::Known,
                None => FirstPlane::Coded,
            };
            context::encode(coder, &planes, samples, first)?;
        }
        if let Some(model) = self.model {
            let (h, w) = (self.layout.padded_height, self.layout.padded_width);
            let planes = self.learned_planes(model, samples);
            model.coder().push(coder, &planes, (h, w), self.version)?;
        }
        Ok(())
    }

    /// Pops what [`TileCoding::push`] pushed: the tile's canonical pixel bytes. `floor` is the
    /// state below which an honest stream without words left has run dry.
    pub(crate) fn pop(
        &self,
        coder: &mut DefaultAnsCoder,
        floor: u64,
    ) -> Result<Vec<u8>, CodecError> {
        let first = match self.model {
            Some(model) => {
                let (h, w) = (self.layout.padded_height, self.layout.padded_width);
                let padded = model.coder().pop(coder, (h, w), self.version, floor)?;
                Some(self.unpad_learned(&padded)?)
            }
            None => None,
        };
        match first {
            Some(first) if !self.has_context_planes() => Ok(first),
            first => context::decode(coder, &self.planes(), first.as_deref(), floor),
        }
    }

    /// Decodes a payload of [`TileCoding::encode`] into tile `index`'s canonical pixel bytes. The
    /// stream must end at their checksum under `check` (versions 2 and 3), or at state 1
    /// (version 1). A stream that runs dry is refused as soon as it does, before decoding on.
    fn decode(&self, payload: &[u8], check: &TileCheck, index: u64) -> Result<Vec<u8>, CodecError> {
        let floor = match check.per_tile() {
            true => entropy::CHECKSUM_BASE,
            false => entropy::INITIAL_STATE,
        };
        let mut coder = entropy::open_stream(payload)?;
        if !self.model.is_some_and(Model::uses_bits_back) {
            entropy::check_not_dry(&coder, floor)?;
        }
        let samples = self.pop(&mut coder, floor)?;
        let start = match check.checksum(index, &samples) {
            Some(sum) => StreamStart::Checksum(sum),
            None => StreamStart::One,
        };
        entropy::close_stream(coder, start)?;
        Ok(samples)
    }
}
