//! The image header: geometry, pixel format, tiling and (version 1) pixel checksum.

use super::cursor::Cursor;
use super::limits::{self, Limits};
use super::tiling::{TileGrid, Tiling};
use super::{crc32, varint, FormatError, PixelFormat, Version};
use byteorder::{LittleEndian, WriteBytesExt};
use std::io::Write;

/// Everything about an image except its model and its tile payloads.
///
/// Layout ("geometry"): `width` varint, `height` varint, descriptor byte, tile size byte (tiled
/// images only); in version 1 `pixel_crc` (4 bytes, little-endian) comes after the model id of a
/// single-image file or directly after the geometry in an archive entry; see `FORMAT.md`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct ImageHeader {
    /// Width in pixels, at least 1.
    pub width: u32,
    /// Height in pixels, at least 1.
    pub height: u32,
    /// Samples per pixel and their depth.
    pub pixel_format: PixelFormat,
    /// How the image is cut into tiles.
    pub tiling: Tiling,
    /// Version 1: [`crc32`] of the whole image's canonical pixel bytes. Versions 2 and 3: `None` (each
    /// tile's checksum is carried in its ANS stream's start state).
    pub pixel_crc: Option<u32>,
}

/// The descriptor byte: bits 0–4 pixel format code, bit 5 external model, bit 6 tiled,
/// bit 7 extension block follows (version 2; reserved, zero, in version 1).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) struct Descriptor {
    pub pixel_format: PixelFormat,
    pub external_model: bool,
    pub tiled: bool,
    pub extensions: bool,
}

/// What the geometry fields say besides the header itself.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) struct Geometry {
    /// The header, with `pixel_crc` left `None`.
    pub header: ImageHeader,
    /// The descriptor's external-model bit.
    pub external_model: bool,
    /// The descriptor's extension bit.
    pub extensions: bool,
}

/// Whether the descriptor's external-model bit may be set: in single-image files it selects the
/// width of the model id; archive entries have no model id of their own, so there it is reserved.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum ModelBit {
    Allowed,
    Reserved,
}

const FORMAT_MASK: u8 = 0x1f;
const EXTERNAL_MODEL: u8 = 0x20;
const TILED: u8 = 0x40;
const EXTENSIONS: u8 = 0x80;

impl Descriptor {
    fn encode(self) -> u8 {
        let bit = |set: bool, bit: u8| if set { bit } else { 0 };
        self.pixel_format.code()
            | bit(self.external_model, EXTERNAL_MODEL)
            | bit(self.tiled, TILED)
            | bit(self.extensions, EXTENSIONS)
    }

    /// Decodes `byte`; the external-model bit is reserved unless `model_bit` is allowed, the
    /// extension bit before version 2.
    fn decode(byte: u8, model_bit: ModelBit, version: Version) -> Result<Self, FormatError> {
        let mut reserved = match model_bit {
            ModelBit::Allowed => 0,
            ModelBit::Reserved => EXTERNAL_MODEL,
        };
        if version == Version::V1 {
            reserved |= EXTENSIONS;
        }
        if byte & reserved != 0 {
            return Err(FormatError::ReservedBits {
                field: "descriptor byte",
                value: byte,
            });
        }
        let code = byte & FORMAT_MASK;
        Ok(Descriptor {
            pixel_format: PixelFormat::from_code(code)
                .ok_or(FormatError::UnknownPixelFormat { code })?,
            external_model: byte & EXTERNAL_MODEL != 0,
            tiled: byte & TILED != 0,
            extensions: byte & EXTENSIONS != 0,
        })
    }
}

const DIMENSION_RANGE: &str = "1..=4294967295";

impl ImageHeader {
    /// The tile grid.
    pub fn grid(&self) -> TileGrid {
        self.tiling.grid(self.width, self.height)
    }

    /// `width · height`.
    pub fn pixel_count(&self) -> u64 {
        u64::from(self.width) * u64::from(self.height)
    }

    /// Size of the canonical pixel bytes (see [`PixelFormat`]).
    pub fn pixel_bytes(&self) -> u64 {
        self.pixel_count() * u64::from(self.pixel_format.bytes_per_pixel())
    }

    /// Checks decoded canonical pixel bytes against the size in this header and, in version 1,
    /// its checksum.
    pub fn verify_pixels(&self, pixels: &[u8]) -> Result<(), FormatError> {
        if pixels.len() as u64 != self.pixel_bytes() {
            return Err(FormatError::PixelSizeMismatch {
                expected: self.pixel_bytes(),
                found: pixels.len(),
            });
        }
        match (self.pixel_crc, crc32(pixels)) {
            (Some(stored), computed) if computed != stored => {
                Err(FormatError::PixelChecksum { stored, computed })
            }
            _ => Ok(()),
        }
    }

    /// Checks what the types cannot: non-zero sizes, tile side in range.
    pub(super) fn validate(&self) -> Result<(), FormatError> {
        for (field, value) in [("image width", self.width), ("image height", self.height)] {
            if value == 0 {
                return Err(FormatError::FieldOutOfRange {
                    field,
                    value: 0,
                    range: DIMENSION_RANGE,
                });
            }
        }
        self.tiling.validate()
    }

    /// Writes the geometry (up to the tile size byte); `external_model` and `extensions` go into
    /// the descriptor.
    pub(super) fn write_geometry(
        &self,
        out: &mut impl Write,
        external_model: bool,
        extensions: bool,
    ) -> Result<(), FormatError> {
        self.validate()?;
        varint::write(out, self.width.into())?;
        varint::write(out, self.height.into())?;
        let tiled = matches!(self.tiling, Tiling::Square { .. });
        out.write_u8(
            Descriptor {
                pixel_format: self.pixel_format,
                external_model,
                tiled,
                extensions,
            }
            .encode(),
        )?;
        if let Tiling::Square { log2 } = self.tiling {
            out.write_u8(log2)?;
        }
        Ok(())
    }

    /// Writes the version-1 checksum.
    pub(super) fn write_crc(&self, out: &mut impl Write) -> Result<(), FormatError> {
        let crc = self.pixel_crc.ok_or(FormatError::NotInVersion {
            version: Version::V1,
            what: "an image without a pixel checksum in its header",
        })?;
        Ok(out.write_u32::<LittleEndian>(crc)?)
    }

    /// Reads the geometry (up to the tile size byte), checking `limits`; the checksum is left
    /// `None` for [`ImageHeader::read_crc`].
    pub(super) fn read_geometry(
        cur: &mut Cursor<'_>,
        limits: &Limits,
        model_bit: ModelBit,
        version: Version,
    ) -> Result<Geometry, FormatError> {
        let width = read_dimension(cur, "image width", limits.max_width, "--max-width")?;
        let height = read_dimension(cur, "image height", limits.max_height, "--max-height")?;
        let pixels = u64::from(width) * u64::from(height);
        limits::check("pixel count", pixels, limits.max_pixels, "--max-pixels")?;
        let descriptor = Descriptor::decode(cur.u8("descriptor byte")?, model_bit, version)?;
        let tiling = if descriptor.tiled {
            Tiling::read_square(cur)?
        } else {
            Tiling::Whole
        };
        let header = ImageHeader {
            width,
            height,
            pixel_format: descriptor.pixel_format,
            tiling,
            pixel_crc: None,
        };
        Ok(Geometry {
            header,
            external_model: descriptor.external_model,
            extensions: descriptor.extensions,
        })
    }

    /// Reads the version-1 checksum.
    pub(super) fn read_crc(&mut self, cur: &mut Cursor<'_>) -> Result<(), FormatError> {
        self.pixel_crc = Some(cur.u32_le("pixel checksum")?);
        Ok(())
    }
}

fn read_dimension(
    cur: &mut Cursor<'_>,
    field: &'static str,
    limit: u32,
    flag: &'static str,
) -> Result<u32, FormatError> {
    let value = cur.varint(field)?;
    let out_of_range = || FormatError::FieldOutOfRange {
        field,
        value,
        range: DIMENSION_RANGE,
    };
    let dimension = u32::try_from(value)
        .ok()
        .filter(|&v| v > 0)
        .ok_or_else(out_of_range)?;
    limits::check(field, value, limit.into(), flag)?;
    Ok(dimension)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn descriptor_round_trips_and_rejects_unknown_bits() {
        for byte in 0..=255u8 {
            for model_bit in [ModelBit::Allowed, ModelBit::Reserved] {
                for version in [Version::V1, Version::V2] {
                    match Descriptor::decode(byte, model_bit, version) {
                        Ok(d) => assert_eq!(d.encode(), byte),
                        Err(FormatError::ReservedBits { .. }) => assert!(
                            (version == Version::V1 && byte & EXTENSIONS != 0)
                                || (model_bit == ModelBit::Reserved && byte & EXTERNAL_MODEL != 0)
                        ),
                        Err(FormatError::UnknownPixelFormat { code }) => {
                            assert!(usize::from(code) >= PixelFormat::ALL.len())
                        }
                        Err(e) => panic!("{byte:#04x}: {e}"),
                    }
                }
            }
        }
    }

    #[test]
    fn verify_pixels_checks_size_and_checksum() {
        let pixels: Vec<u8> = (0..12u8).collect();
        let mut h = ImageHeader {
            width: 4,
            height: 3,
            pixel_format: PixelFormat::Gray8,
            tiling: Tiling::Whole,
            pixel_crc: Some(crc32(&pixels)),
        };
        h.verify_pixels(&pixels).unwrap();
        assert!(matches!(
            h.verify_pixels(&pixels[1..]),
            Err(FormatError::PixelSizeMismatch { .. })
        ));
        let mut flipped = pixels.clone();
        flipped[5] ^= 4;
        assert!(matches!(
            h.verify_pixels(&flipped),
            Err(FormatError::PixelChecksum { .. })
        ));
        // version 2: no checksum in the header, the size is still checked
        h.pixel_crc = None;
        h.verify_pixels(&flipped).unwrap();
        h.pixel_format = PixelFormat::Gray16;
        assert!(matches!(
            h.verify_pixels(&pixels),
            Err(FormatError::PixelSizeMismatch { expected: 24, .. })
        ));
    }
}
