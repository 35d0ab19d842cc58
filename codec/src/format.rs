//! The container format: how coded images and archives are laid out, byte by byte.
//!
//! `FORMAT.md` at the repository root is the specification; this module implements it and
//! nothing else (no model code). A file is either
//! - an **image** ([`ImageFile`]): magic, [`ImageHeader`], [`ModelRef`], tile payloads; or
//! - an **archive** ([`Archive`]): magic, one [`ModelRef`], then named entries, each an image
//!   without its own model reference.
//!
//! Reading is zero-copy (tile payloads borrow the input) and never trusts a length: every size
//! is checked against [`Limits`] and against the bytes actually present *before* anything is
//! allocated. Every accepted file is canonical: writing what was read gives back the same bytes.
//!
//! What the container cannot see, the codec must check: a single image's last tile runs to the end
//! of the file, so the decoder must verify that each ANS stream is consumed exactly, and that the
//! decoded pixels match their checksum: in versions 2 and 3 each tile's ([`TileCheck`]: version 3
//! also covers the header, colour records, tile position and archive entry name), carried in its
//! ANS start state
//! (see `entropy`), in version 1 [`ImageHeader::pixel_crc`] ([`ImageHeader::verify_pixels`]).

mod archive;
mod check;
mod cursor;
mod extension;
mod header;
mod image;
mod limits;
mod magic;
mod model;
mod name;
mod pixel;
mod tiling;
mod varint;

pub use archive::{next_name, Archive, ArchiveEntry};
pub use check::{ChainCheck, EntryPosition, TileCheck};
pub(crate) use extension::{check_fits as check_extensions_fit, validate as validate_extensions};
pub use extension::{Extension, ExtensionKind, MAX_EXTENSION_BYTES};
pub use header::ImageHeader;
pub use image::{CodedImage, ImageFile};
pub use limits::Limits;
pub use magic::{detect, identify, FileKind, Version, VERSION};
pub use model::ModelRef;
pub use name::{EntryName, MAX_NAME_BYTES};
pub use pixel::PixelFormat;
pub use tiling::{TileGrid, TileRect, Tiling, MAX_TILE_LOG2, MIN_TILE_LOG2};

/// A parsed file of either kind, borrowing its payloads from the input bytes.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Container<'a> {
    /// A single coded image.
    Image(ImageFile<&'a [u8]>),
    /// Many coded images sharing one model.
    Archive(Archive<&'a [u8]>),
}

/// Parses a file of either kind (see [`detect`]), checking `limits` before allocating.
pub fn read<'a>(bytes: &'a [u8], limits: &Limits) -> Result<Container<'a>, FormatError> {
    match detect(bytes)? {
        FileKind::Image => ImageFile::read(bytes, limits).map(Container::Image),
        FileKind::Archive => Archive::read(bytes, limits).map(Container::Archive),
    }
}

/// CRC-32 (IEEE 802.3, the one of zlib and PNG) of canonical pixel bytes: of a tile's, carried
/// in its ANS start state (version 2; version 3 prefixes more, [`TileCheck`]), or of the whole
/// image's, stored in
/// [`ImageHeader::pixel_crc`] (version 1). See [`PixelFormat`] for the canonical byte layout.
pub fn crc32(pixels: &[u8]) -> u32 {
    crc32fast::hash(pixels)
}

/// Why a file could not be read or written.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum FormatError {
    /// The file does not start with an idfcodec magic.
    #[error(
        "not an idfcodec file: it starts with [{found}], idfcodec files start with \
         [69 d1]..[69 d6] (image) or [69 a1]..[69 a6] (archive)"
    )]
    BadMagic {
        /// The first bytes, in hex.
        found: String,
    },
    /// The magic is right but the version is not one this build reads.
    #[error(
        "{kind} format version {found} is not supported: this build reads versions 1 to {newest} \
         (a newer idfcodec may have written this file)"
    )]
    UnsupportedVersion {
        kind: FileKind,
        found: u8,
        newest: u8,
    },
    /// An image was expected and an archive found, or the reverse.
    #[error("expected an idfcodec {expected} file, found an idfcodec {found} file")]
    WrongKind { expected: FileKind, found: FileKind },
    /// The file ends in the middle of something.
    #[error("file is truncated: it ends inside the {what}")]
    Truncated { what: &'static str },
    /// A field holds a value the format does not allow.
    #[error("{field} is {value}, outside the valid range {range}")]
    FieldOutOfRange {
        field: &'static str,
        value: u64,
        range: &'static str,
    },
    /// Bits that this version defines as zero are set.
    #[error("reserved bits are set in the {field} ({value:#04x}): the file may come from a newer idfcodec")]
    ReservedBits { field: &'static str, value: u8 },
    /// A pixel format code that this version does not define.
    #[error(
        "unknown pixel format code {code}: this version defines codes 0..=14 \
         (15..=31 are reserved; the file may come from a newer idfcodec)"
    )]
    UnknownPixelFormat { code: u8 },
    /// An extension record type that this version does not define.
    #[error(
        "unknown extension record type {code}: this version defines types 1..=7 \
         (the file may come from a newer idfcodec)"
    )]
    UnknownExtension { code: u64 },
    /// Extension records that do not suit the image's pixel format (a palette on a gray image,
    /// a transparency record of the wrong size, ...).
    #[error("extension records do not suit a {format:?} image: {what}")]
    ExtensionMisfit {
        format: PixelFormat,
        what: &'static str,
    },
    /// A field that could have been written more compactly or in another order (every file has
    /// exactly one encoding).
    #[error("not canonical: {what}")]
    NonCanonical { what: &'static str },
    /// Something the version given cannot express (writing only).
    #[error("format version {version} cannot hold this: {what}")]
    NotInVersion {
        version: Version,
        what: &'static str,
    },
    /// A varint that is longer than necessary (every value has exactly one encoding).
    #[error("the {field} is not minimally encoded")]
    NonCanonicalVarint { field: &'static str },
    /// A varint that does not fit in 64 bits.
    #[error("the {field} does not fit in 64 bits")]
    VarintOverflow { field: &'static str },
    /// A size above a configurable [`Limits`] value.
    #[error(
        "{what} {value} exceeds the limit {limit} (raise it with {flag} if you trust the file)"
    )]
    LimitExceeded {
        what: &'static str,
        value: u64,
        limit: u64,
        flag: &'static str,
    },
    /// Bytes after the end of an archive.
    #[error("{count} unexpected bytes after the last archive entry")]
    TrailingBytes { count: usize },
    /// An archive entry name that could escape the output directory or is otherwise unusable.
    #[error("invalid entry name {name:?}: {reason}")]
    InvalidName {
        /// The name (lossily decoded, shortened to 100 characters).
        name: String,
        reason: &'static str,
    },
    /// Two archive entries with the same name.
    #[error("duplicate entry name {name:?}")]
    DuplicateName { name: String },
    /// The number of tile payloads does not match the tiling (writing only).
    #[error("the tiling needs {expected} tile payloads, {found} were given")]
    TileCountMismatch { expected: u64, found: usize },
    /// The file names a model other than the one given.
    #[error("this file was coded with {file}, but the model given is '{given_name}' (id {given_id:016x})")]
    ModelMismatch {
        file: ModelRef,
        given_name: String,
        given_id: u64,
    },
    /// Decoded pixels do not have the size the header implies.
    #[error("decoded pixels are {found} bytes, the header implies {expected}")]
    PixelSizeMismatch { expected: u64, found: usize },
    /// Decoded pixels do not match the stored checksum.
    #[error(
        "decoded pixels do not match the stored checksum (stored {stored:08x}, computed \
         {computed:08x}): the file is corrupt or was decoded differently from how it was coded"
    )]
    PixelChecksum { stored: u32, computed: u32 },
    /// Writing to the output failed.
    #[error("writing failed: {0}")]
    Io(#[from] std::io::Error),
}

impl FormatError {
    /// Whose fault it is: the file's, a limit's, or (for [`FormatError::Io`]) the machine's.
    pub fn fault(&self) -> crate::Fault {
        match self {
            FormatError::LimitExceeded { .. } => crate::Fault::Limits,
            FormatError::Io(_) => crate::Fault::Resources,
            _ => crate::Fault::Format,
        }
    }
}
