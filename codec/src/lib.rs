//! idfcodec-codec: the tch-free half of idfcodec, a lossless image codec whose learned models
//! supply the probabilities to an ANS entropy coder.
//!
//! # Using it
//! The main entry points are at the top level: [`compress`] and [`decompress`] (one image),
//! [`compress_archive`], [`decompress_archive`] and [`ArchiveDecoder`] (many images in one
//! file), [`compress_with_effort`] (the coding policy: [`Effort`] 1 to 9, keep the smallest
//! file), [`Registry`] (the models built in) and [`Model`] (a model file of any [`Family`]).
//! Errors say what went wrong and, by [`Fault`], whose fault it is.
//!
//! ```
//! use idfcodec_codec::{compress, decompress, DecodeOptions, EncodeOptions, Image, Registry};
//! use idfcodec_codec::format::PixelFormat;
//!
//! // a 28×28 8-bit grayscale image, coded with the embedded default gray model
//! let pixels: Vec<u8> = (0..28 * 28).map(|i| (i % 28 * 9) as u8).collect();
//! let image = Image::new(28, 28, PixelFormat::Gray8, pixels)?;
//! let model = Registry::embedded().default_for(PixelFormat::Gray8).unwrap().model()?;
//! let file = compress(&image, model, &EncodeOptions::default())?;
//! let back = decompress(&file, Registry::embedded(), &DecodeOptions::default())?;
//! assert_eq!(back, image);
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```
//!
//! # Layers
//! Below the entry points, for tools and for the training crate:
//! - [`format`](mod@format): the container (`.idf`, `.idfa`), its limits and checks;
//! - [`png`]: PNG files ↔ [`png::SourceImage`] (every PNG pixel format, palettes, colour chunks);
//! - [`tile`]: cutting images into tiles, padded to the model's size multiple;
//! - [`context`]: adaptive context-model coding of the planes no learned model codes;
//! - [`model`]: the model file and its family tag, one folder per learned family
//!   ([`model::idf`]: architecture, flow, latent coding);
//! - [`entropy`]: probability tables for constriction's ANS coder, and the stream framing;
//! - [`engine`]: the deterministic tensor engine the families' networks run on.
//!
//! Everything on the coding path is bit-exact across machines: integer arithmetic, or `f32`/`f64`
//! arithmetic in one fixed order without fused multiply-adds, with transcendentals from `libm`.

pub mod context;
pub mod engine;
pub mod entropy;
pub mod format;
pub mod model;
pub mod png;
pub mod tile;

mod archive;
mod effort;
mod image;
mod registry;

pub use archive::{compress_archive, decompress_archive, ArchiveDecoder};
pub use effort::{
    archive_format, bits_per_dimension, compress_archive_with_effort, compress_with_effort,
    Candidate, Compressed, ContextCoding, Effort, EffortError, EffortOptions, InvalidEffort,
    LearnedModel, LearnedModels, Plan, Preset, UnusedModel,
};
pub use format::{FormatError, Limits, PixelFormat};
pub use image::{
    compress, decode_memory, decompress, format_name, learned_channels, ArchiveLayout,
    DecodeOptions, EncodeOptions, Image, ImageCodecError, ModelLookup, ModelStorage, NamedImage,
    NamedModel, DEFAULT_MAX_MEMORY, MAX_THREADS,
};
pub use model::idf::{Idf, IdfConfig};
pub use model::vae::{Vae, VaeConfig};
pub use model::{Family, Model};
pub use registry::{EmbeddedSpec, Registry, RegistryEntry};

/// Whose fault an error is, for callers that react by kind (exit codes, bindings, retries):
/// every error type of the crate says it with its `fault()`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum Fault {
    /// The caller's input: an inconsistent image, unusable options, images that cannot go
    /// together.
    Input,
    /// The file: not an idfcodec file, malformed, truncated, corrupt or failing its checks.
    Format,
    /// A limit: the file asks for more tiles, pixels or memory than the decoder allows.
    Limits,
    /// The model: missing, unloadable, or not one that can code this image.
    Model,
    /// The machine: reading or writing, threads or memory that could not be had.
    Resources,
    /// A bug in idfcodec.
    Internal,
}

/// Errors of coding one payload (a tile's stream, a model file). Messages describe the problem;
/// no dependency types leak out.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum CodecError {
    /// The model file or config is unusable (bad metadata, missing tensor, wrong shape, ...).
    #[error("invalid model: {0}")]
    InvalidModel(String),
    /// The image (or its stated dimensions) does not fit the model.
    #[error("invalid image: {0}")]
    InvalidImage(String),
    /// The model produced a prior that cannot be turned into probabilities (NaN or infinity).
    #[error("the model produced non-finite prior parameters")]
    NonFiniteParameters,
    /// The coded payload is damaged or does not belong to this model and image size.
    #[error("corrupt payload: {0}")]
    CorruptPayload(String),
    /// A tile's stream ends at another checksum than the decoded tile has (each tile's checksum
    /// sits in its ANS start state: format version 2 covers the tile's samples, version 3 also
    /// the header, colour records, tile position and archive entry name).
    #[error(
        "the decoded tile does not match the checksum in its stream (stored {stored:08x}, \
         computed {computed:08x}): the file is corrupt (its pixels, header, colour records, tile \
         order or entry names were changed) or was decoded differently from how it was coded"
    )]
    PixelChecksum { stored: u32, computed: u32 },
    /// The container around a payload is malformed.
    #[error("invalid container: {0}")]
    InvalidContainer(String),
    /// The memory for a tile's working buffers could not be had (the tile's size comes from
    /// the file; `--max-memory` and `--max-tile-pixels` keep it within what the machine has).
    #[error("not enough memory: {bytes} bytes could not be allocated for a tile")]
    OutOfMemory { bytes: u64 },
    /// An internal invariant failed while coding (a bug, not bad input).
    #[error("internal coding error: {0}")]
    Internal(String),
}

impl CodecError {
    /// Whose fault it is.
    pub fn fault(&self) -> Fault {
        match self {
            CodecError::InvalidModel(_) => Fault::Model,
            CodecError::InvalidImage(_) => Fault::Input,
            // garbage latents drive the networks out of range
            CodecError::NonFiniteParameters
            | CodecError::CorruptPayload(_)
            | CodecError::PixelChecksum { .. }
            | CodecError::InvalidContainer(_) => Fault::Format,
            CodecError::OutOfMemory { .. } => Fault::Resources,
            CodecError::Internal(_) => Fault::Internal,
        }
    }
}

/// Result type of the codec crate.
pub type Result<T, E = CodecError> = std::result::Result<T, E>;
