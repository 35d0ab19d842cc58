//! PNG files ↔ [`SourceImage`]: every pixel format a PNG can hold, read and written back with
//! identical pixels.
//!
//! # What is kept
//! - **Geometry and samples.** Gray 1/2/4/8/16, gray+alpha 8/16, RGB 8/16 and RGBA 8/16 become a
//!   [`PixelFormat`] with the samples in the canonical layout of `FORMAT.md` (row-major,
//!   interleaved, one byte per sample up to 8 bits — unpacked, a gray1 sample is `0` or `1` —
//!   and two bytes little-endian for 16 bits).
//! - **Palette images** stay palette images: [`PaletteImage`] holds the bit depth (1/2/4/8), the
//!   PLTE entries, the tRNS alphas (possibly fewer than the entries, as in the file) and the
//!   indices, one byte per pixel. They are not expanded to RGB(A): indices are what the file
//!   stores, they code better, and writing them back gives the same file layout.
//! - **tRNS of gray and RGB images** (the one transparent colour), [`Transparent`].
//! - **Colour chunks** that change how pixels look, as raw chunk data in file order:
//!   [`COLOUR_CHUNKS`] (`iCCP`, `sRGB`, `gAMA`, `cHRM`, `cICP`). The ICC profile is kept
//!   compressed as it was (the name and compression method are checked, the profile is not
//!   inflated).
//! - **Everything else is dropped** and listed in [`SourceImage::dropped`] (text, time, pHYs,
//!   bKGD, sBIT, eXIf, APNG frames, a suggested palette of an RGB image, ...), so a CLI can
//!   report it.
//!
//! Interlaced images are read and written back non-interlaced: the pixels are what is lossless.
//!
//! # Safety on hostile input
//! The chunk layout is walked first ([`read`]): signature, every chunk's length (checked against
//! the bytes present and, for kept ancillary chunks, [`PngLimits::max_chunk_bytes`]), CRC, chunk
//! order, IHDR fields, PLTE/tRNS sizes, and the image size against [`PngLimits`] — all before any
//! pixel buffer is allocated. Only then the `png` crate inflates and unfilters the image data,
//! with its own allocation limit set from the checked size; text chunks and the ICC profile are
//! never inflated (no decompression bombs). Palette indices beyond the palette are refused.
//! Every failure is a [`PngError`]; nothing panics.

use std::io::Cursor;

use crate::format::{Extension, ExtensionKind, PixelFormat};
use crate::Image;

/// The 8-byte PNG signature.
pub const SIGNATURE: [u8; 8] = [0x89, b'P', b'N', b'G', b'\r', b'\n', 0x1a, b'\n'];

/// The ancillary chunks kept as raw bytes because they change how the pixels look. They are
/// written back right after IHDR, in the order they were read.
pub const COLOUR_CHUNKS: [[u8; 4]; 5] = [*b"iCCP", *b"sRGB", *b"gAMA", *b"cHRM", *b"cICP"];

/// Largest chunk length the PNG specification allows (2^31 − 1).
const MAX_CHUNK_LENGTH: u32 = 0x7fff_ffff;

/// Size limits, checked before allocating. The defaults match the container's (`FORMAT.md`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct PngLimits {
    /// Widest image accepted, in pixels.
    pub max_width: u32,
    /// Tallest image accepted, in pixels.
    pub max_height: u32,
    /// Most pixels (`width · height`) accepted.
    pub max_pixels: u64,
    /// Largest kept ancillary chunk (the ICC profile is the only big one).
    pub max_chunk_bytes: u32,
}

impl Default for PngLimits {
    fn default() -> Self {
        PngLimits {
            max_width: 1 << 16,
            max_height: 1 << 16,
            max_pixels: 1 << 28,
            max_chunk_bytes: 16 << 20,
        }
    }
}

/// Why a PNG could not be read or written. Messages name the chunk and the problem.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum PngError {
    /// The input does not start with the PNG signature.
    #[error("not a PNG file: it starts with [{found}]")]
    NotPng {
        /// The first bytes, in hex.
        found: String,
    },
    /// The file ends inside a chunk or before IEND.
    #[error("truncated PNG: the file ends {0}")]
    Truncated(String),
    /// A chunk's CRC does not match its contents.
    #[error("PNG chunk {chunk} has a wrong CRC (damaged file)")]
    BadCrc {
        /// The chunk type.
        chunk: String,
    },
    /// A chunk is malformed, misplaced, repeated or unknown-but-critical.
    #[error("invalid PNG chunk {chunk}: {reason}")]
    BadChunk {
        /// The chunk type.
        chunk: String,
        /// What is wrong with it.
        reason: String,
    },
    /// The image or a chunk is larger than a limit.
    #[error("PNG {what} is {value}, above the limit of {limit}")]
    LimitExceeded {
        /// What was measured.
        what: &'static str,
        /// Its value in the file.
        value: u64,
        /// The limit.
        limit: u64,
    },
    /// The compressed image data is damaged (zlib or filter error, missing rows, ...).
    #[error("damaged PNG image data: {0}")]
    ImageData(String),
    /// A palette index refers to no palette entry.
    #[error("palette index {index} at pixel {pixel} is beyond the {entries}-entry palette")]
    IndexOutOfPalette {
        /// The index found.
        index: u8,
        /// Where (row-major pixel number).
        pixel: u64,
        /// Entries in PLTE.
        entries: usize,
    },
    /// A [`SourceImage`] built by hand is inconsistent (sizes, sample ranges, palette).
    #[error("invalid image: {0}")]
    InvalidImage(String),
    /// Writing the PNG failed (a bug or an inconsistent image, not bad input).
    #[error("PNG encoding failed: {0}")]
    Encode(String),
}

type Result<T, E = PngError> = std::result::Result<T, E>;

/// The transparent colour of a gray or RGB image (its tRNS chunk), in the image's sample range.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Transparent {
    /// Gray images: the gray level shown fully transparent.
    Gray(u16),
    /// RGB images: the colour shown fully transparent.
    Rgb([u16; 3]),
}

impl Transparent {
    /// The tRNS chunk's bytes: each value as two bytes, big-endian, as PNG stores it.
    fn to_bytes(self) -> Vec<u8> {
        match self {
            Transparent::Gray(g) => g.to_be_bytes().to_vec(),
            Transparent::Rgb(c) => c.iter().flat_map(|v| v.to_be_bytes()).collect(),
        }
    }

    /// From tRNS bytes of a gray (2 bytes) or RGB (6 bytes) image; `None` for other lengths.
    fn from_bytes(bytes: &[u8]) -> Option<Self> {
        let v = |i: usize| u16::from_be_bytes([bytes[2 * i], bytes[2 * i + 1]]);
        match bytes.len() {
            2 => Some(Transparent::Gray(v(0))),
            6 => Some(Transparent::Rgb([v(0), v(1), v(2)])),
            _ => None,
        }
    }

    /// Channels of the images it belongs to.
    fn channels(self) -> u8 {
        match self {
            Transparent::Gray(_) => 1,
            Transparent::Rgb(_) => 3,
        }
    }
}

/// A palette image: indices into a palette, as the PNG stores them.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PaletteImage {
    /// Bits per index in the file: 1, 2, 4 or 8.
    pub bit_depth: u8,
    /// The PLTE entries (1 to `2^bit_depth`, at most 256).
    pub palette: Vec<[u8; 3]>,
    /// The tRNS alphas of the first entries (at most one per entry; missing ones are opaque).
    pub alpha: Vec<u8>,
    /// One index per pixel, row-major, each below `palette.len()`.
    pub indices: Vec<u8>,
}

/// The pixels of a [`SourceImage`].
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Pixels {
    /// Samples in a pixel format's canonical layout (see [`PixelFormat`]).
    Direct {
        /// The pixel format.
        format: PixelFormat,
        /// Canonical pixel bytes.
        samples: Vec<u8>,
        /// The transparent colour (gray and RGB formats only).
        transparent: Option<Transparent>,
    },
    /// Palette indices with their palette.
    Palette(PaletteImage),
}

/// A raw ancillary chunk kept with the pixels (one of [`COLOUR_CHUNKS`]).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ColourChunk {
    /// The chunk type, e.g. `*b"iCCP"`.
    pub chunk_type: [u8; 4],
    /// The chunk data exactly as in the file.
    pub data: Vec<u8>,
}

/// A chunk that was read but not kept.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DroppedChunk {
    /// The chunk type.
    pub chunk_type: [u8; 4],
    /// Its data length in bytes.
    pub len: u32,
}

impl DroppedChunk {
    /// The chunk type as text (chunk types are ASCII letters).
    pub fn name(&self) -> String {
        chunk_name(self.chunk_type)
    }
}

/// An image as read from a PNG: exactly what is needed to write the identical pixels back.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SourceImage {
    width: u32,
    height: u32,
    pixels: Pixels,
    colour_chunks: Vec<ColourChunk>,
    dropped: Vec<DroppedChunk>,
    trailing_bytes: usize,
}

impl SourceImage {
    /// A checked image: at least one pixel, sample and index counts matching the size, sub-byte
    /// samples and indices in range, a palette of 1..=`2^bit_depth` (≤ 256) entries, tRNS no
    /// longer than the palette, a transparent colour only on gray and RGB formats, colour chunks
    /// only of the [`COLOUR_CHUNKS`] types, each at most once, with the sizes (and, for iCCP,
    /// the name and compression method) the PNG specification requires.
    pub fn new(
        width: u32,
        height: u32,
        pixels: Pixels,
        colour_chunks: Vec<ColourChunk>,
    ) -> Result<Self> {
        let bad = |m: String| Err(PngError::InvalidImage(m));
        if width == 0 || height == 0 {
            return bad(format!(
                "an image needs at least one pixel, got {width}×{height}"
            ));
        }
        let count = u64::from(width) * u64::from(height);
        match &pixels {
            Pixels::Direct {
                format,
                samples,
                transparent,
            } => {
                if format.is_palette() {
                    return bad(format!(
                        "{format:?} samples need their palette: use Pixels::Palette"
                    ));
                }
                let expected = count * u64::from(format.bytes_per_pixel());
                if samples.len() as u64 != expected {
                    return bad(format!(
                        "{width}×{height} {format:?} needs {expected} sample bytes, got {}",
                        samples.len()
                    ));
                }
                let bits = format.bits_per_sample();
                if bits < 8 {
                    if let Some(i) = samples.iter().position(|&s| s >> bits != 0) {
                        return bad(format!(
                            "sample {} at {i} does not fit in {bits} bits",
                            samples[i]
                        ));
                    }
                }
                let max = if bits == 16 {
                    u16::MAX
                } else {
                    (1 << bits) - 1
                };
                match (transparent, format.channels()) {
                    (None, _) => {}
                    (Some(Transparent::Gray(g)), 1) if *g <= max => {}
                    (Some(Transparent::Rgb(c)), 3) if c.iter().all(|v| *v <= max) => {}
                    (Some(t), _) => {
                        return bad(format!("transparent colour {t:?} does not fit {format:?}"))
                    }
                }
            }
            Pixels::Palette(p) => {
                if ![1, 2, 4, 8].contains(&p.bit_depth) {
                    return bad(format!("palette bit depth {} (1, 2, 4 or 8)", p.bit_depth));
                }
                let most = 1usize << p.bit_depth;
                if p.palette.is_empty() || p.palette.len() > most {
                    return bad(format!(
                        "{} palette entries at bit depth {} (1..={most})",
                        p.palette.len(),
                        p.bit_depth
                    ));
                }
                if p.alpha.len() > p.palette.len() {
                    return bad(format!(
                        "{} tRNS alphas for {} palette entries",
                        p.alpha.len(),
                        p.palette.len()
                    ));
                }
                if p.indices.len() as u64 != count {
                    return bad(format!(
                        "{width}×{height} needs {count} indices, got {}",
                        p.indices.len()
                    ));
                }
                check_indices(&p.indices, p.palette.len())?;
            }
        }
        for (i, c) in colour_chunks.iter().enumerate() {
            if !COLOUR_CHUNKS.contains(&c.chunk_type) {
                return bad(format!(
                    "{} is not a colour chunk",
                    chunk_name(c.chunk_type)
                ));
            }
            if colour_chunks[..i]
                .iter()
                .any(|d| d.chunk_type == c.chunk_type)
            {
                return bad(format!("two {} chunks", chunk_name(c.chunk_type)));
            }
            if u32::try_from(c.data.len()).map_or(true, |n| n > MAX_CHUNK_LENGTH) {
                return bad(format!("{} chunk too long", chunk_name(c.chunk_type)));
            }
            check_colour_chunk(c.chunk_type, &c.data)
                .map_err(|e| PngError::InvalidImage(e.to_string()))?;
        }
        Ok(SourceImage {
            width,
            height,
            pixels,
            colour_chunks,
            dropped: Vec::new(),
            trailing_bytes: 0,
        })
    }

    /// Width in pixels.
    pub fn width(&self) -> u32 {
        self.width
    }

    /// Height in pixels.
    pub fn height(&self) -> u32 {
        self.height
    }

    /// The pixels.
    pub fn pixels(&self) -> &Pixels {
        &self.pixels
    }

    /// The pixel format of direct images; `None` for palette images.
    pub fn pixel_format(&self) -> Option<PixelFormat> {
        match &self.pixels {
            Pixels::Direct { format, .. } => Some(*format),
            Pixels::Palette(_) => None,
        }
    }

    /// Samples (or indices) per pixel.
    pub fn channels(&self) -> u8 {
        self.pixel_format().map_or(1, PixelFormat::channels)
    }

    /// The kept colour chunks, in file order.
    pub fn colour_chunks(&self) -> &[ColourChunk] {
        &self.colour_chunks
    }

    /// The chunks read but not kept (empty for images not read from a file).
    pub fn dropped(&self) -> &[DroppedChunk] {
        &self.dropped
    }

    /// Bytes after IEND that were ignored.
    pub fn trailing_bytes(&self) -> usize {
        self.trailing_bytes
    }
}

fn check_indices(indices: &[u8], entries: usize) -> Result<()> {
    match indices.iter().position(|&i| usize::from(i) >= entries) {
        None => Ok(()),
        Some(pixel) => Err(PngError::IndexOutOfPalette {
            index: indices[pixel],
            pixel: pixel as u64,
            entries,
        }),
    }
}

fn chunk_name(t: [u8; 4]) -> String {
    t.iter()
        .map(|&b| {
            if b.is_ascii_alphabetic() {
                char::from(b).to_string()
            } else {
                format!("\\x{b:02x}")
            }
        })
        .collect()
}

fn bad_chunk(t: [u8; 4], reason: impl Into<String>) -> PngError {
    PngError::BadChunk {
        chunk: chunk_name(t),
        reason: reason.into(),
    }
}

/// One chunk of a PNG, borrowed from the file.
#[derive(Clone, Copy, Debug)]
struct Chunk<'a> {
    chunk_type: [u8; 4],
    data: &'a [u8],
}

/// Splits a file into chunks after the signature, checking lengths and CRCs. Stops after IEND;
/// returns the chunks and the number of bytes after IEND.
fn chunks(bytes: &[u8]) -> Result<(Vec<Chunk<'_>>, usize)> {
    if bytes.len() < SIGNATURE.len() || bytes[..8] != SIGNATURE {
        let found: Vec<String> = bytes.iter().take(8).map(|b| format!("{b:02x}")).collect();
        return Err(PngError::NotPng {
            found: found.join(" "),
        });
    }
    let mut at = SIGNATURE.len();
    let mut out = Vec::new();
    loop {
        let rest = &bytes[at..];
        if rest.len() < 8 {
            return Err(PngError::Truncated(if out.is_empty() {
                "before the first chunk".into()
            } else {
                "before the IEND chunk".into()
            }));
        }
        let len = u32::from_be_bytes([rest[0], rest[1], rest[2], rest[3]]);
        let chunk_type = [rest[4], rest[5], rest[6], rest[7]];
        if !chunk_type.iter().all(u8::is_ascii_alphabetic) {
            return Err(bad_chunk(chunk_type, "the chunk type is not four letters"));
        }
        if len > MAX_CHUNK_LENGTH {
            return Err(bad_chunk(
                chunk_type,
                format!("length {len} above 2^31 − 1"),
            ));
        }
        let len = len as usize;
        if rest.len() - 8 < len + 4 {
            return Err(PngError::Truncated(format!(
                "inside the {} chunk",
                chunk_name(chunk_type)
            )));
        }
        let data = &rest[8..8 + len];
        let stored = u32::from_be_bytes(rest[8 + len..12 + len].try_into().expect("4 bytes"));
        let mut crc = crc32fast::Hasher::new();
        crc.update(&chunk_type);
        crc.update(data);
        if crc.finalize() != stored {
            return Err(PngError::BadCrc {
                chunk: chunk_name(chunk_type),
            });
        }
        out.push(Chunk { chunk_type, data });
        at += 12 + len;
        if chunk_type == *b"IEND" {
            return Ok((out, bytes.len() - at));
        }
    }
}

/// The IHDR fields.
#[derive(Clone, Copy, Debug)]
struct Header {
    width: u32,
    height: u32,
    bit_depth: u8,
    colour_type: u8,
}

impl Header {
    fn parse(c: &Chunk<'_>) -> Result<Self> {
        let d = c.data;
        if d.len() != 13 {
            return Err(bad_chunk(
                c.chunk_type,
                format!("length {} (must be 13)", d.len()),
            ));
        }
        let u32_at = |i: usize| u32::from_be_bytes(d[i..i + 4].try_into().expect("4 bytes"));
        let h = Header {
            width: u32_at(0),
            height: u32_at(4),
            bit_depth: d[8],
            colour_type: d[9],
        };
        let ok_depths: &[u8] = match h.colour_type {
            0 => &[1, 2, 4, 8, 16],
            3 => &[1, 2, 4, 8],
            2 | 4 | 6 => &[8, 16],
            t => return Err(bad_chunk(c.chunk_type, format!("unknown colour type {t}"))),
        };
        if !ok_depths.contains(&h.bit_depth) {
            return Err(bad_chunk(
                c.chunk_type,
                format!(
                    "bit depth {} with colour type {}",
                    h.bit_depth, h.colour_type
                ),
            ));
        }
        let max = MAX_CHUNK_LENGTH;
        if h.width == 0 || h.height == 0 || h.width > max || h.height > max {
            return Err(bad_chunk(
                c.chunk_type,
                format!("size {}×{} (1..=2^31 − 1 each)", h.width, h.height),
            ));
        }
        if d[10] != 0 || d[11] != 0 {
            return Err(bad_chunk(
                c.chunk_type,
                format!(
                    "compression method {} / filter method {} (must be 0)",
                    d[10], d[11]
                ),
            ));
        }
        if d[12] > 1 {
            return Err(bad_chunk(
                c.chunk_type,
                format!("interlace method {}", d[12]),
            ));
        }
        Ok(h)
    }

    fn pixel_format(&self) -> Option<PixelFormat> {
        use PixelFormat::*;
        Some(match (self.colour_type, self.bit_depth) {
            (0, 1) => Gray1,
            (0, 2) => Gray2,
            (0, 4) => Gray4,
            (0, 8) => Gray8,
            (0, 16) => Gray16,
            (4, 8) => GrayAlpha8,
            (4, 16) => GrayAlpha16,
            (2, 8) => Rgb8,
            (2, 16) => Rgb16,
            (6, 8) => Rgba8,
            (6, 16) => Rgba16,
            _ => return None,
        })
    }

    fn check_limits(&self, limits: &PngLimits) -> Result<()> {
        let checks = [
            ("width", u64::from(self.width), u64::from(limits.max_width)),
            (
                "height",
                u64::from(self.height),
                u64::from(limits.max_height),
            ),
            (
                "pixel count",
                u64::from(self.width) * u64::from(self.height),
                limits.max_pixels,
            ),
        ];
        for (what, value, limit) in checks {
            if value > limit {
                return Err(PngError::LimitExceeded { what, value, limit });
            }
        }
        Ok(())
    }
}

/// What the chunk walk found besides the image data.
struct Layout {
    header: Header,
    palette: Option<Vec<[u8; 3]>>,
    trns: Option<Vec<u8>>,
    colour_chunks: Vec<ColourChunk>,
    dropped: Vec<DroppedChunk>,
}

/// Checks the chunk sequence and collects what is kept (see the module docs).
fn layout(chunks: &[Chunk<'_>], limits: &PngLimits) -> Result<Layout> {
    let first = chunks[0];
    if first.chunk_type != *b"IHDR" {
        return Err(bad_chunk(first.chunk_type, "the first chunk must be IHDR"));
    }
    let header = Header::parse(&first)?;
    header.check_limits(limits)?;
    let mut out = Layout {
        header,
        palette: None,
        trns: None,
        colour_chunks: Vec::new(),
        dropped: Vec::new(),
    };
    let (mut seen_idat, mut idat_ended) = (false, false);
    for c in &chunks[1..] {
        let t = c.chunk_type;
        if t != *b"IDAT" && seen_idat {
            idat_ended = true;
        }
        match &t {
            b"IHDR" => return Err(bad_chunk(t, "appears twice")),
            b"IEND" => {
                if !c.data.is_empty() {
                    return Err(bad_chunk(t, "IEND must be empty"));
                }
            }
            b"IDAT" => {
                if idat_ended {
                    return Err(bad_chunk(t, "IDAT chunks must be consecutive"));
                }
                seen_idat = true;
            }
            b"PLTE" => {
                if seen_idat || out.palette.is_some() || out.trns.is_some() {
                    return Err(bad_chunk(t, "must come once, before tRNS and IDAT"));
                }
                let n = c.data.len() / 3;
                let most = if header.colour_type == 3 {
                    1usize << header.bit_depth
                } else {
                    256
                };
                if c.data.len() % 3 != 0 || n == 0 || n > most {
                    return Err(bad_chunk(
                        t,
                        format!("{} bytes: 1..={most} RGB entries needed", c.data.len()),
                    ));
                }
                match header.colour_type {
                    3 => out.palette = Some(c.data.chunks(3).map(|e| [e[0], e[1], e[2]]).collect()),
                    // A suggested palette for viewers of an RGB image: not part of the pixels.
                    2 | 6 => out.dropped.push(DroppedChunk {
                        chunk_type: t,
                        len: c.data.len() as u32,
                    }),
                    _ => return Err(bad_chunk(t, "not allowed in a gray image")),
                }
            }
            b"tRNS" => {
                if seen_idat || out.trns.is_some() {
                    return Err(bad_chunk(t, "must come once, before IDAT"));
                }
                let ok = match header.colour_type {
                    0 => c.data.len() == 2,
                    2 => c.data.len() == 6,
                    3 => out
                        .palette
                        .as_ref()
                        .is_some_and(|p| c.data.len() <= p.len()),
                    _ => return Err(bad_chunk(t, "not allowed in an image with alpha")),
                };
                if !ok {
                    return Err(bad_chunk(
                        t,
                        format!("{} bytes do not fit the colour type", c.data.len()),
                    ));
                }
                out.trns = Some(c.data.to_vec());
            }
            _ if COLOUR_CHUNKS.contains(&t) => {
                if out.colour_chunks.iter().any(|k| k.chunk_type == t) {
                    return Err(bad_chunk(t, "appears twice"));
                }
                if seen_idat || out.palette.is_some() {
                    // Decoders ignore these after PLTE or IDAT; so do we.
                    out.dropped.push(DroppedChunk {
                        chunk_type: t,
                        len: c.data.len() as u32,
                    });
                    continue;
                }
                if c.data.len() as u64 > u64::from(limits.max_chunk_bytes) {
                    return Err(PngError::LimitExceeded {
                        what: "colour chunk length",
                        value: c.data.len() as u64,
                        limit: u64::from(limits.max_chunk_bytes),
                    });
                }
                check_colour_chunk(t, c.data)?;
                out.colour_chunks.push(ColourChunk {
                    chunk_type: t,
                    data: c.data.to_vec(),
                });
            }
            _ if t[0].is_ascii_uppercase() => {
                return Err(bad_chunk(t, "unknown critical chunk"));
            }
            _ => out.dropped.push(DroppedChunk {
                chunk_type: t,
                len: c.data.len() as u32,
            }),
        }
    }
    if !seen_idat {
        return Err(bad_chunk(*b"IDAT", "no image data"));
    }
    if header.colour_type == 3 && out.palette.is_none() {
        return Err(bad_chunk(*b"PLTE", "a palette image has no palette"));
    }
    Ok(out)
}

/// Sizes and fields of the kept colour chunks.
fn check_colour_chunk(t: [u8; 4], d: &[u8]) -> Result<()> {
    let need = |n: usize| {
        if d.len() == n {
            Ok(())
        } else {
            Err(bad_chunk(t, format!("length {} (must be {n})", d.len())))
        }
    };
    match &t {
        b"sRGB" => {
            need(1)?;
            if d[0] > 3 {
                return Err(bad_chunk(t, format!("rendering intent {}", d[0])));
            }
            Ok(())
        }
        b"gAMA" => need(4),
        b"cHRM" => need(32),
        b"cICP" => need(4),
        b"iCCP" => {
            let name_len = d.iter().position(|&b| b == 0).unwrap_or(d.len());
            if !(1..=79).contains(&name_len) || d.len() < name_len + 3 {
                return Err(bad_chunk(
                    t,
                    "profile name must be 1 to 79 bytes, then a NUL",
                ));
            }
            if d[name_len + 1] != 0 {
                return Err(bad_chunk(
                    t,
                    format!("unknown compression method {}", d[name_len + 1]),
                ));
            }
            Ok(())
        }
        _ => Ok(()),
    }
}

/// Reads a PNG with the default [`PngLimits`].
pub fn read(bytes: &[u8]) -> Result<SourceImage> {
    read_with_limits(bytes, &PngLimits::default())
}

/// Reads a PNG (see the module docs for what is kept and checked).
pub fn read_with_limits(bytes: &[u8], limits: &PngLimits) -> Result<SourceImage> {
    let (chunks, trailing_bytes) = chunks(bytes)?;
    let layout = layout(&chunks, limits)?;
    let h = layout.header;
    let raw = decode_image_data(bytes, &h)?;
    let (width, height) = (h.width as usize, h.height as usize);
    let pixels = match h.pixel_format() {
        Some(format) => {
            let samples = canonical_samples(&raw, width, height, format);
            // `layout` admits tRNS only with 2 bytes on gray and 6 on RGB images
            let transparent = layout.trns.as_deref().and_then(Transparent::from_bytes);
            let max = u16::MAX >> (16 - h.bit_depth);
            let fits = match transparent {
                None => true,
                Some(Transparent::Gray(g)) => g <= max,
                Some(Transparent::Rgb(c)) => c.iter().all(|v| *v <= max),
            };
            if !fits {
                return Err(bad_chunk(
                    *b"tRNS",
                    "transparent colour beyond the bit depth",
                ));
            }
            Pixels::Direct {
                format,
                samples,
                transparent,
            }
        }
        None => {
            let palette = layout.palette.expect("checked by layout");
            let indices = unpack(&raw, width, height, h.bit_depth);
            check_indices(&indices, palette.len())?;
            Pixels::Palette(PaletteImage {
                bit_depth: h.bit_depth,
                palette,
                alpha: layout.trns.unwrap_or_default(),
                indices,
            })
        }
    };
    Ok(SourceImage {
        width: h.width,
        height: h.height,
        pixels,
        colour_chunks: layout.colour_chunks,
        dropped: layout.dropped,
        trailing_bytes,
    })
}

/// Inflates and unfilters the image data with the `png` crate: rows of packed samples at the
/// file's bit depth, 16-bit samples big-endian, de-interlaced.
fn decode_image_data(bytes: &[u8], h: &Header) -> Result<Vec<u8>> {
    let channels: u64 = match h.colour_type {
        0 | 3 => 1,
        4 => 2,
        2 => 3,
        _ => 4,
    };
    let row = (u64::from(h.width) * channels * u64::from(h.bit_depth)).div_ceil(8) + 1;
    let image_bytes = row * u64::from(h.height);
    // The png crate counts its own buffers (rows, interlace passes, inflate window) against this.
    let budget = usize::try_from(image_bytes.saturating_mul(2) + (4 << 20)).unwrap_or(usize::MAX);
    let mut options = ::png::DecodeOptions::default();
    options.set_ignore_adler32(false); // a damaged zlib stream is an error, not noise
    options.set_ignore_text_chunk(true);
    options.set_ignore_iccp_chunk(true);
    let mut decoder = ::png::Decoder::new_with_options(Cursor::new(bytes), options);
    decoder.set_limits(::png::Limits { bytes: budget });
    decoder.set_transformations(::png::Transformations::IDENTITY);
    let fail = |e: ::png::DecodingError| PngError::ImageData(e.to_string());
    let mut reader = decoder.read_info().map_err(fail)?;
    let size = reader
        .output_buffer_size()
        .ok_or_else(|| PngError::ImageData("image too large for this machine".into()))?;
    if size as u64 != image_bytes - u64::from(h.height) {
        return Err(PngError::ImageData("unexpected output size".into()));
    }
    let mut buf = vec![0u8; size];
    reader.next_frame(&mut buf).map_err(fail)?;
    Ok(buf)
}

/// Packed rows (`bits` per sample, rows byte-aligned) → one byte per sample.
fn unpack(raw: &[u8], samples_per_row: usize, height: usize, bits: u8) -> Vec<u8> {
    if bits == 8 {
        return raw.to_vec();
    }
    let row_bytes = (samples_per_row * usize::from(bits)).div_ceil(8);
    let per_byte = 8 / usize::from(bits);
    let mask = (1u8 << bits) - 1;
    let mut out = Vec::with_capacity(samples_per_row * height);
    for row in raw.chunks_exact(row_bytes).take(height) {
        for x in 0..samples_per_row {
            let shift = 8 - usize::from(bits) * (x % per_byte + 1);
            out.push((row[x / per_byte] >> shift) & mask);
        }
    }
    out
}

/// One byte per sample → packed rows (the inverse of [`unpack`]).
fn pack(samples: &[u8], samples_per_row: usize, bits: u8) -> Vec<u8> {
    if bits == 8 {
        return samples.to_vec();
    }
    let row_bytes = (samples_per_row * usize::from(bits)).div_ceil(8);
    let per_byte = 8 / usize::from(bits);
    let mut out = Vec::with_capacity(row_bytes * (samples.len() / samples_per_row));
    for row in samples.chunks_exact(samples_per_row) {
        let start = out.len();
        out.resize(start + row_bytes, 0);
        for (x, &s) in row.iter().enumerate() {
            let shift = 8 - usize::from(bits) * (x % per_byte + 1);
            out[start + x / per_byte] |= s << shift;
        }
    }
    out
}

/// The png crate's raw rows → canonical pixel bytes.
fn canonical_samples(raw: &[u8], width: usize, height: usize, format: PixelFormat) -> Vec<u8> {
    let channels = usize::from(format.channels());
    match format.bits_per_sample() {
        16 => raw
            .chunks_exact(2)
            .flat_map(|s| [s[1], s[0]])
            .collect::<Vec<u8>>(),
        bits => unpack(raw, width * channels, height, bits),
    }
}

/// Canonical pixel bytes → the png crate's raw rows.
fn raw_rows(samples: &[u8], width: usize, format: PixelFormat) -> Vec<u8> {
    let channels = usize::from(format.channels());
    match format.bits_per_sample() {
        16 => samples.chunks_exact(2).flat_map(|s| [s[1], s[0]]).collect(),
        bits => pack(samples, width * channels, bits),
    }
}

fn write_chunk(out: &mut Vec<u8>, chunk_type: [u8; 4], data: &[u8]) {
    out.extend_from_slice(&(data.len() as u32).to_be_bytes());
    out.extend_from_slice(&chunk_type);
    out.extend_from_slice(data);
    let mut crc = crc32fast::Hasher::new();
    crc.update(&chunk_type);
    crc.update(data);
    out.extend_from_slice(&crc.finalize().to_be_bytes());
}

/// Writes a non-interlaced PNG with the image's colour type, bit depth, palette, tRNS and colour
/// chunks (after IHDR, in their order). Dropped chunks are not written.
pub fn write(image: &SourceImage) -> Result<Vec<u8>> {
    use ::png::{BitDepth, ColorType};
    let (colour, depth, raw, palette, trns) = match &image.pixels {
        Pixels::Direct {
            format,
            samples,
            transparent,
        } => {
            use PixelFormat::*;
            let colour = match format {
                Gray1 | Gray2 | Gray4 | Gray8 | Gray16 => ColorType::Grayscale,
                GrayAlpha8 | GrayAlpha16 => ColorType::GrayscaleAlpha,
                Rgb8 | Rgb16 => ColorType::Rgb,
                Rgba8 | Rgba16 => ColorType::Rgba,
                // refused by `SourceImage::new`: palette samples come as `Pixels::Palette`
                Palette8 | Palette4 | Palette2 | Palette1 => ColorType::Indexed,
            };
            let trns = transparent.map(Transparent::to_bytes);
            let raw = raw_rows(samples, image.width as usize, *format);
            (colour, format.bits_per_sample(), raw, None, trns)
        }
        Pixels::Palette(p) => {
            let raw = pack(&p.indices, image.width as usize, p.bit_depth);
            let plte: Vec<u8> = p.palette.iter().flatten().copied().collect();
            let trns = (!p.alpha.is_empty()).then(|| p.alpha.clone());
            (ColorType::Indexed, p.bit_depth, raw, Some(plte), trns)
        }
    };
    let depth = match depth {
        1 => BitDepth::One,
        2 => BitDepth::Two,
        4 => BitDepth::Four,
        8 => BitDepth::Eight,
        _ => BitDepth::Sixteen,
    };
    // The png crate writes IHDR and the image data; the other chunks are spliced in here so
    // that they are written byte for byte as kept, in the right order.
    let mut encoded = Vec::new();
    {
        let mut encoder = ::png::Encoder::new(&mut encoded, image.width, image.height);
        encoder.set_color(colour);
        encoder.set_depth(depth);
        encoder.set_compression(::png::Compression::High);
        if let Some(plte) = &palette {
            encoder.set_palette(plte.clone());
        }
        let fail = |e: ::png::EncodingError| PngError::Encode(e.to_string());
        let mut writer = encoder.write_header().map_err(fail)?;
        writer.write_image_data(&raw).map_err(fail)?;
        writer.finish().map_err(fail)?;
    }
    let (written, _) = chunks(&encoded).map_err(|e| PngError::Encode(e.to_string()))?;
    let mut out = SIGNATURE.to_vec();
    let ihdr = written
        .iter()
        .find(|c| c.chunk_type == *b"IHDR")
        .ok_or_else(|| PngError::Encode("no IHDR written".into()))?;
    write_chunk(&mut out, *b"IHDR", ihdr.data);
    for c in &image.colour_chunks {
        write_chunk(&mut out, c.chunk_type, &c.data);
    }
    if let Some(plte) = &palette {
        write_chunk(&mut out, *b"PLTE", plte);
    }
    if let Some(trns) = &trns {
        write_chunk(&mut out, *b"tRNS", trns);
    }
    for c in written.iter().filter(|c| c.chunk_type == *b"IDAT") {
        write_chunk(&mut out, *b"IDAT", c.data);
    }
    write_chunk(&mut out, *b"IEND", &[]);
    Ok(out)
}

/// The container record that carries a colour chunk, and back.
const COLOUR_RECORDS: [([u8; 4], ExtensionKind); 5] = [
    (*b"iCCP", ExtensionKind::IccProfile),
    (*b"gAMA", ExtensionKind::Gamma),
    (*b"cHRM", ExtensionKind::Chromaticities),
    (*b"sRGB", ExtensionKind::Srgb),
    (*b"cICP", ExtensionKind::Cicp),
];

/// The palette format of a bit depth.
fn palette_format(bit_depth: u8) -> Option<PixelFormat> {
    match bit_depth {
        8 => Some(PixelFormat::Palette8),
        4 => Some(PixelFormat::Palette4),
        2 => Some(PixelFormat::Palette2),
        1 => Some(PixelFormat::Palette1),
        _ => None,
    }
}

impl SourceImage {
    /// The codec's image: the same samples (palette images as their indices), with the palette,
    /// tRNS and colour chunks as extension records (bytes as PNG stores them).
    pub fn to_image(&self) -> Result<Image> {
        let invalid = |e: crate::ImageCodecError| PngError::InvalidImage(e.to_string());
        let mut records = Vec::new();
        let (format, samples) = match &self.pixels {
            Pixels::Direct {
                format,
                samples,
                transparent,
            } => {
                if let Some(t) = transparent {
                    records.push(Extension {
                        kind: ExtensionKind::Transparency,
                        data: t.to_bytes(),
                    });
                }
                (*format, samples.clone())
            }
            Pixels::Palette(p) => {
                let format = palette_format(p.bit_depth).ok_or_else(|| {
                    PngError::InvalidImage(format!("palette bit depth {}", p.bit_depth))
                })?;
                records.push(Extension {
                    kind: ExtensionKind::Palette,
                    data: p.palette.iter().flatten().copied().collect(),
                });
                if !p.alpha.is_empty() {
                    records.push(Extension {
                        kind: ExtensionKind::Transparency,
                        data: p.alpha.clone(),
                    });
                }
                (format, p.indices.clone())
            }
        };
        for chunk in &self.colour_chunks {
            if let Some((_, kind)) = COLOUR_RECORDS.iter().find(|(t, _)| *t == chunk.chunk_type) {
                records.push(Extension {
                    kind: *kind,
                    data: chunk.data.clone(),
                });
            }
        }
        records.sort_by_key(|r| r.kind);
        Image::new(self.width, self.height, format, samples)
            .and_then(|image| image.with_extensions(records))
            .map_err(invalid)
    }

    /// The PNG content of a codec image (inverse of [`SourceImage::to_image`]; colour chunks in
    /// record order).
    pub fn from_image(image: &Image) -> Result<SourceImage> {
        let format = image.pixel_format();
        let bad = |m: String| PngError::InvalidImage(m);
        let trns = image.extension(ExtensionKind::Transparency);
        let pixels = if format.is_palette() {
            let plte = image
                .extension(ExtensionKind::Palette)
                .ok_or_else(|| bad("a palette image without its palette".into()))?;
            Pixels::Palette(PaletteImage {
                bit_depth: format.bits_per_sample(),
                palette: plte.chunks_exact(3).map(|c| [c[0], c[1], c[2]]).collect(),
                alpha: trns.map(<[u8]>::to_vec).unwrap_or_default(),
                indices: image.samples().to_vec(),
            })
        } else {
            let transparent = match trns {
                None => None,
                Some(t) => Some(
                    Transparent::from_bytes(t)
                        .filter(|tr| tr.channels() == format.channels())
                        .ok_or_else(|| {
                            bad(format!(
                                "a {}-byte transparency record on a {format:?} image",
                                t.len()
                            ))
                        })?,
                ),
            };
            Pixels::Direct {
                format,
                samples: image.samples().to_vec(),
                transparent,
            }
        };
        let colour_chunks = COLOUR_RECORDS
            .iter()
            .filter_map(|(chunk_type, kind)| {
                image.extension(*kind).map(|data| ColourChunk {
                    chunk_type: *chunk_type,
                    data: data.to_vec(),
                })
            })
            .collect();
        SourceImage::new(image.width(), image.height(), pixels, colour_chunks)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pack_unpack_are_inverse() {
        for bits in [1u8, 2, 4, 8] {
            for width in [1usize, 3, 7, 8, 9, 17] {
                let samples: Vec<u8> = (0..width * 3)
                    .map(|i| ((i * 7 + 3) % (1 << bits)) as u8)
                    .collect();
                let packed = pack(&samples, width, bits);
                assert_eq!(packed.len(), 3 * (width * usize::from(bits)).div_ceil(8));
                assert_eq!(unpack(&packed, width, 3, bits), samples);
            }
        }
    }

    #[test]
    fn not_png_and_truncation_are_errors() {
        assert!(matches!(read(b"GIF89a"), Err(PngError::NotPng { .. })));
        assert!(matches!(read(&SIGNATURE), Err(PngError::Truncated(_))));
        let image = SourceImage::new(
            3,
            2,
            Pixels::Direct {
                format: PixelFormat::Gray8,
                samples: vec![1, 2, 3, 4, 5, 6],
                transparent: None,
            },
            vec![],
        )
        .unwrap();
        let bytes = write(&image).unwrap();
        assert_eq!(read(&bytes).unwrap(), image);
        for cut in 0..bytes.len() {
            assert!(read(&bytes[..cut]).is_err(), "cut at {cut}");
        }
        let mut flipped = bytes.clone();
        flipped[20] ^= 1;
        assert!(matches!(read(&flipped), Err(PngError::BadCrc { .. })));
    }

    #[test]
    fn limits_are_checked_before_decoding() {
        let image = SourceImage::new(
            5,
            4,
            Pixels::Direct {
                format: PixelFormat::Rgb8,
                samples: vec![9; 60],
                transparent: None,
            },
            vec![],
        )
        .unwrap();
        let bytes = write(&image).unwrap();
        let limits = PngLimits {
            max_pixels: 19,
            ..PngLimits::default()
        };
        assert!(matches!(
            read_with_limits(&bytes, &limits),
            Err(PngError::LimitExceeded {
                what: "pixel count",
                ..
            })
        ));
    }
}
