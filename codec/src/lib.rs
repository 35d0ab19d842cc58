//! idfcodec-codec: the tch-free half of idfcodec.
//!
//! - [`arch`]: the architecture, described once (config, tensor names, flow semantics).
//! - [`engine`]: a small deterministic CHW tensor engine (3×3 convolutions, channel ops).
//! - [`model`]: loading and saving an exported model (one safetensors file).
//! - [`flow`]: the integer discrete flow run on the engine, forward and inverse, and its NLL.
//! - [`entropy`]: mixture priors → integer probability tables, and ANS coding of the latents.
//! - [`tile`]: cutting images into tiles and padding them to the model's size multiple.
//! - [`image`]: whole images ↔ container bytes ([`compress`], [`decompress`], archives).
//! - [`registry`]: the models built into the codec.
//! - [`context`]: adaptive context-model coding of the sample planes no learned model codes.
//! - [`effort`]: the coding policy: [`Effort`] 1 to 9, the candidates each tries, and
//!   [`compress_with_effort`] (the smallest file kept); [`bits_per_dimension`].
//! - [`png`]: PNG files ↔ [`png::SourceImage`] (every PNG pixel format, palettes, colour chunks).
//!
//! Everything on the coding path is bit-exact across machines: integer arithmetic, or `f32`/`f64`
//! arithmetic in one fixed order without fused multiply-adds, with transcendentals from `libm`.

pub mod arch;
pub mod context;
pub mod effort;
pub mod engine;
pub mod entropy;
pub mod flow;
pub mod format;
pub mod image;
pub mod model;
pub mod png;
pub mod registry;
pub mod tile;

pub use arch::IdfConfig;
pub use effort::{
    bits_per_dimension, compress_archive_with_effort, compress_with_effort, Candidate, Compressed,
    Effort, EffortError, EffortOptions, LearnedModel, Plan,
};
pub use image::{
    compress, compress_archive, decompress, decompress_archive, ArchiveDecoder, DecodeOptions,
    EncodeOptions, Image, ImageCodecError, ModelLookup, ModelStorage, NamedImage, NamedModel,
};
pub use model::Model;
pub use registry::Registry;

/// Errors of the codec crate. Messages describe the problem; no dependency types leak out.
#[derive(Debug, thiserror::Error)]
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

/// Result type of the codec crate.
pub type Result<T, E = CodecError> = std::result::Result<T, E>;
