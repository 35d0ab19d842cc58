//! `idfcodec bench`'s machinery: every codec behind one [`Codec`] trait, each image coded,
//! decoded and checked by each codec in turn, the results summed per codec ([`report`]) and
//! drawn ([`plot`]).
//!
//! - [`builtin`]: the codecs run in this process: idfcodec (one entry per model) and PNG (the
//!   `image` crate at its best compression, the reference of the "vs PNG" column).
//! - [`external`]: command-line tools (optipng, cwebp/dwebp, cjxl/djxl), timed per process.
//! - [`python`]: Python modules (pyoxipng, imagecodecs' JPEG-LS) in a helper process.
//! - [`memory`]: peak memory of this process and of child processes.
//!
//! A new codec (or an idfcodec entry per effort level) is one more [`Codec`] value in the list
//! `cli/bench.rs` builds; everything downstream works per entry.

pub mod builtin;
pub mod external;
pub mod memory;
pub mod plot;
pub mod python;
pub mod report;

use std::path::{Path, PathBuf};
use std::time::Duration;

use anyhow::{Context, Result};
use idfcodec_codec::NamedImage;
use image::codecs::png::CompressionType;
use image::DynamicImage;

/// Whose codec an entry is (the plots colour them apart).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Family {
    Idfcodec,
    Baseline,
}

impl Family {
    pub fn as_str(self) -> &'static str {
        match self {
            Family::Idfcodec => "idfcodec",
            Family::Baseline => "baseline",
        }
    }
}

/// A codec under test.
pub trait Codec {
    /// The row label: `idfcodec`, `idfcodec:mnist`, `webp`, `jxl-e9`, ...
    fn name(&self) -> &str;
    /// What runs, for the table and the CSV (`cwebp -lossless -z 9; dwebp -pam`).
    fn settings(&self) -> String;
    fn family(&self) -> Family;
    /// Codes `picture` and decodes it again, checking the pixels. `scratch` is an empty
    /// folder of this run for temporary files (the codec removes what it writes).
    fn code(&mut self, picture: &Picture, scratch: &Path) -> Outcome;
    /// Codes `images` as one archive and decodes it again, checking names and pixels; `None`
    /// for a codec without an archive form (every one but idfcodec).
    fn code_archive(&mut self, _images: &[NamedImage]) -> Option<Outcome> {
        None
    }
}

/// One image's result under one codec.
#[derive(Clone, Debug)]
pub enum Outcome {
    /// Coded and decoded back to identical pixels.
    Coded(Trial),
    /// The codec does not take this kind of image (the reason, e.g. "8-bit RGB").
    Unsupported(String),
    /// The codec failed, or gave back other pixels.
    Failed(String),
}

/// Size, times and memory of one verified round trip.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Trial {
    /// The coded file, whole.
    pub bytes: u64,
    pub encode: Duration,
    pub decode: Duration,
    /// Peak memory in bytes (see [`memory`] for what each kind of codec measures).
    pub peak_memory: Option<u64>,
}

/// An input image, decoded once for every codec.
pub struct Picture {
    /// The name relative to the folder given (or the file name).
    pub name: String,
    /// A PNG file of exactly these pixels, without ancillary chunks, that every external tool
    /// reads: so all codecs see the same samples (a tool that honoured an input's gAMA chunk, as
    /// cwebp does, would code other pixels), and low bit depths and palettes arrive expanded.
    pub png_path: PathBuf,
    pub pixels: DynamicImage,
}

impl Picture {
    /// Reads an image file and writes its pixels as `scratch/input.png`.
    pub fn load(name: &str, path: &Path, scratch: &Path) -> Result<Picture> {
        let bytes =
            std::fs::read(path).with_context(|| format!("cannot read {}", path.display()))?;
        let pixels = crate::picture::read_picture(&bytes, &path.display().to_string())?;
        Picture::from_pixels(name, pixels, scratch)
    }

    /// A picture of decoded `pixels`, written as `scratch/input.png`.
    pub fn from_pixels(name: &str, pixels: DynamicImage, scratch: &Path) -> Result<Picture> {
        let png_path = scratch.join("input.png");
        let png = builtin::encode_png(&pixels, CompressionType::Fast)?;
        std::fs::write(&png_path, png)
            .with_context(|| format!("cannot write {}", png_path.display()))?;
        Ok(Picture {
            name: name.to_string(),
            png_path,
            pixels,
        })
    }

    /// Samples (width · height · channels): the "dimensions" of bits per sub-pixel.
    pub fn subpixels(&self) -> u64 {
        self.pixel_count() * u64::from(self.pixels.color().channel_count())
    }

    /// Bytes of the raw pixels (16-bit samples count two): the "MB" of MB/s.
    pub fn raw_bytes(&self) -> u64 {
        self.pixel_count() * u64::from(self.pixels.color().bytes_per_pixel())
    }

    /// Whether 16-bit (or float) samples are stored.
    pub fn is_high_depth(&self) -> bool {
        self.pixels.color().bytes_per_pixel() > self.pixels.color().channel_count()
    }

    fn pixel_count(&self) -> u64 {
        u64::from(self.pixels.width()) * u64::from(self.pixels.height())
    }

    /// Whether `decoded` holds this picture's pixels: equal samples after widening both to
    /// 16-bit RGBA, where fully transparent pixels only need to agree on their alpha (codecs
    /// may change the invisible colour under alpha 0).
    pub fn same_pixels(&self, decoded: &DynamicImage) -> bool {
        if (decoded.width(), decoded.height()) != (self.pixels.width(), self.pixels.height()) {
            return false;
        }
        let (a, b) = (self.pixels.to_rgba16(), decoded.to_rgba16());
        a.pixels()
            .zip(b.pixels())
            .all(|(p, q)| p == q || (p[3] == 0 && q[3] == 0))
    }

    /// The outcome of a decode: a trial when the pixels are this picture's.
    pub fn check(&self, decoded: &DynamicImage, trial: Trial) -> Outcome {
        if self.same_pixels(decoded) {
            Outcome::Coded(trial)
        } else {
            Outcome::Failed("the decoded pixels differ from the original".to_string())
        }
    }
}
