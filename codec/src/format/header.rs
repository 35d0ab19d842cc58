//! The image header: geometry, pixel format, tiling and pixel checksum.

use super::cursor::Cursor;
use super::limits::{self, Limits};
use super::tiling::{TileGrid, Tiling};
use super::{crc32, varint, FormatError, PixelFormat};
use byteorder::{LittleEndian, WriteBytesExt};
use std::io::Write;

/// Everything about an image except its model and its tile payloads.
///
/// Layout: `width` varint, `height` varint, descriptor byte, tile size byte (tiled images only),
/// `pixel_crc` (4 bytes, little-endian). In a single-image file the model id follows the tile size
/// byte; see `FORMAT.md`.
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
    /// [`crc32`] of the canonical pixel bytes.
    pub pixel_crc: u32,
}

/// The descriptor byte: bits 0–4 pixel format code, bit 5 external model, bit 6 tiled,
/// bit 7 reserved (zero).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) struct Descriptor {
    pub pixel_format: PixelFormat,
    pub external_model: bool,
    pub tiled: bool,
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
const RESERVED: u8 = 0x80;

impl Descriptor {
    fn encode(self) -> u8 {
        self.pixel_format.code()
            | if self.external_model {
                EXTERNAL_MODEL
            } else {
                0
            }
            | if self.tiled { TILED } else { 0 }
    }

    /// Decodes `byte`; the external-model bit is reserved unless `model_bit` is allowed.
    fn decode(byte: u8, model_bit: ModelBit) -> Result<Self, FormatError> {
        let reserved = match model_bit {
            ModelBit::Allowed => RESERVED,
            ModelBit::Reserved => RESERVED | EXTERNAL_MODEL,
        };
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

    /// Checks decoded canonical pixel bytes against the size and checksum in this header.
    pub fn verify_pixels(&self, pixels: &[u8]) -> Result<(), FormatError> {
        if pixels.len() as u64 != self.pixel_bytes() {
            return Err(FormatError::PixelSizeMismatch {
                expected: self.pixel_bytes(),
                found: pixels.len(),
            });
        }
        match crc32(pixels) {
            computed if computed == self.pixel_crc => Ok(()),
            computed => Err(FormatError::PixelChecksum {
                stored: self.pixel_crc,
                computed,
            }),
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

    /// Writes the fields up to the tile size byte; `external_model` goes into the descriptor.
    pub(super) fn write_geometry(
        &self,
        out: &mut impl Write,
        external_model: bool,
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
            }
            .encode(),
        )?;
        if let Tiling::Square { log2 } = self.tiling {
            out.write_u8(log2)?;
        }
        Ok(())
    }

    /// Writes the checksum.
    pub(super) fn write_crc(&self, out: &mut impl Write) -> Result<(), FormatError> {
        Ok(out.write_u32::<LittleEndian>(self.pixel_crc)?)
    }

    /// Reads the fields up to the tile size byte, checking `limits`; the checksum is left at zero
    /// for [`ImageHeader::read_crc`]. Returns the descriptor's external-model flag too.
    pub(super) fn read_geometry(
        cur: &mut Cursor<'_>,
        limits: &Limits,
        model_bit: ModelBit,
    ) -> Result<(Self, bool), FormatError> {
        let width = read_dimension(cur, "image width", limits.max_width, "--max-width")?;
        let height = read_dimension(cur, "image height", limits.max_height, "--max-height")?;
        let pixels = u64::from(width) * u64::from(height);
        limits::check("pixel count", pixels, limits.max_pixels, "--max-pixels")?;
        let descriptor = Descriptor::decode(cur.u8("descriptor byte")?, model_bit)?;
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
            pixel_crc: 0,
        };
        Ok((header, descriptor.external_model))
    }

    /// Reads the checksum.
    pub(super) fn read_crc(&mut self, cur: &mut Cursor<'_>) -> Result<(), FormatError> {
        self.pixel_crc = cur.u32_le("pixel checksum")?;
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
        for (byte, model_bit) in
            (0..=255u8).flat_map(|b| [(b, ModelBit::Allowed), (b, ModelBit::Reserved)])
        {
            match Descriptor::decode(byte, model_bit) {
                Ok(d) => assert_eq!(d.encode(), byte),
                Err(FormatError::ReservedBits { .. }) => assert!(
                    byte & RESERVED != 0
                        || (model_bit == ModelBit::Reserved && byte & EXTERNAL_MODEL != 0)
                ),
                Err(FormatError::UnknownPixelFormat { code }) => {
                    assert!(usize::from(code) >= PixelFormat::ALL.len())
                }
                Err(e) => panic!("{byte:#04x}: {e}"),
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
            pixel_crc: crc32(&pixels),
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
        h.pixel_format = PixelFormat::Gray16;
        assert!(matches!(
            h.verify_pixels(&pixels),
            Err(FormatError::PixelSizeMismatch { expected: 24, .. })
        ));
    }
}
