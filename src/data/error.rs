//! The one error type of the `data` module: every message names the file or folder concerned.

use std::io;
use std::path::PathBuf;

/// What went wrong while reading a dataset or an image folder.
#[derive(Debug, thiserror::Error)]
pub enum DataError {
    /// A dataset file is absent; `fetch` is the argument to give `scripts/fetch-data`.
    #[error("{} not found (nor {}.gz): run `scripts/fetch-data {fetch}` (data dir: $IDFCODEC_DATA, else ./data)",
        .path.display(), .path.display())]
    Missing { path: PathBuf, fetch: &'static str },

    /// An I/O error other than a missing file.
    #[error("{}: {source}", .path.display())]
    Io {
        path: PathBuf,
        #[source]
        source: io::Error,
    },

    /// A file that is not a valid IDX file (wrong magic, truncated, bad gzip, sizes that do not add up).
    #[error("{}: not a valid IDX file: {reason}", .path.display())]
    CorruptIdx { path: PathBuf, reason: String },

    /// Image and label files of one split disagree.
    #[error("{}: {labels} labels for {images} images", .path.display())]
    LabelCount {
        path: PathBuf,
        images: usize,
        labels: usize,
    },

    /// A patch configuration that cannot work.
    #[error("invalid patch configuration: {0}")]
    Config(String),

    /// A folder holds no PNG or JPEG file.
    #[error("{}: no .png/.jpg/.jpeg images in this folder", .dir.display())]
    NoImages { dir: PathBuf },

    /// An image file that does not decode.
    #[error("{}: cannot decode image: {source}", .path.display())]
    Decode {
        path: PathBuf,
        #[source]
        source: image::ImageError,
    },

    /// An image smaller than the patch size in width or height.
    #[error("{}: {width}x{height} image is smaller than the {patch}x{patch} patch", .path.display())]
    TooSmall {
        path: PathBuf,
        width: u32,
        height: u32,
        patch: usize,
    },

    /// Images of one folder that should all have one size do not.
    #[error("{}: {width}x{height}, but {} is {first_width}x{first_height} (the images of a folder must share one size)",
        .path.display(), .first.display())]
    SizeMismatch {
        path: PathBuf,
        width: u32,
        height: u32,
        first: PathBuf,
        first_width: u32,
        first_height: u32,
    },

    /// The images of a folder together exceed the pixel budget kept in memory.
    #[error("{}: images exceed the limit of {limit} pixels in memory (reached at {})", .dir.display(), .at.display())]
    TooManyPixels {
        dir: PathBuf,
        at: PathBuf,
        limit: u64,
    },
}

impl DataError {
    /// Wraps an I/O error with the path it concerns.
    pub(crate) fn io(path: impl Into<PathBuf>, source: io::Error) -> Self {
        DataError::Io {
            path: path.into(),
            source,
        }
    }

    /// A corrupt-IDX error with its reason.
    pub(crate) fn corrupt(path: impl Into<PathBuf>, reason: impl Into<String>) -> Self {
        DataError::CorruptIdx {
            path: path.into(),
            reason: reason.into(),
        }
    }
}
