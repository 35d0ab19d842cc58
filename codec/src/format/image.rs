//! Coded images: a header plus one payload per tile, and the single-image file.

use super::cursor::Cursor;
use super::header::ModelBit;
use super::limits::{self, Limits};
use super::magic::{self, FileKind};
use super::{varint, FormatError, ImageHeader, ModelRef};
use std::io::Write;

/// An image's header and its tile payloads (one ANS stream per tile, raster order).
///
/// `T` is `&[u8]` for what [`ImageFile::read`] returns (borrowing the input) and `Vec<u8>` for
/// what an encoder builds.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct CodedImage<T = Vec<u8>> {
    pub header: ImageHeader,
    pub tiles: Vec<T>,
}

/// A single-image file: the model it needs and the coded image.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct ImageFile<T = Vec<u8>> {
    pub model: ModelRef,
    pub image: CodedImage<T>,
}

impl<T: AsRef<[u8]>> CodedImage<T> {
    /// Copies the payloads into an owned image.
    pub fn to_owned_image(&self) -> CodedImage<Vec<u8>> {
        CodedImage {
            header: self.header,
            tiles: self.tiles.iter().map(|t| t.as_ref().to_vec()).collect(),
        }
    }

    /// Checks the header and that there is one payload per tile.
    pub(super) fn validate(&self) -> Result<(), FormatError> {
        self.header.validate()?;
        let expected = self.header.grid().count();
        if self.tiles.len() as u64 != expected {
            return Err(FormatError::TileCountMismatch {
                expected,
                found: self.tiles.len(),
            });
        }
        Ok(())
    }

    /// Bytes of the tile section: the tile index and the payloads.
    pub(super) fn section_len(&self) -> u64 {
        let payloads: u64 = self.tiles.iter().map(|t| t.as_ref().len() as u64).sum();
        payloads
            + self
                .index_lengths()
                .map(|n| varint::len(n) as u64)
                .sum::<u64>()
    }

    /// Writes the tile section: a varint length for every tile but the last, then the payloads.
    pub(super) fn write_section(&self, out: &mut impl Write) -> Result<(), FormatError> {
        for len in self.index_lengths() {
            varint::write(out, len)?;
        }
        for tile in &self.tiles {
            out.write_all(tile.as_ref())?;
        }
        Ok(())
    }

    /// Lengths stored in the tile index (the last tile's length is implied).
    fn index_lengths(&self) -> impl Iterator<Item = u64> + '_ {
        let indexed = self.tiles.len().saturating_sub(1);
        self.tiles[..indexed]
            .iter()
            .map(|t| t.as_ref().len() as u64)
    }
}

impl<'a> CodedImage<&'a [u8]> {
    /// Splits a tile section (all of `section`) into the payloads of `header`'s tiles, checking
    /// [`Limits::max_tiles`] and that the index fits in `section` before allocating.
    pub(super) fn read_section(
        header: ImageHeader,
        section: &'a [u8],
        limits: &Limits,
    ) -> Result<Self, FormatError> {
        let count = header.grid().count();
        limits::check("tile count", count, limits.max_tiles, "--max-tiles")?;
        // every indexed tile takes at least one byte of index, so this bounds the allocation
        // (a valid header has at least one tile)
        let indexed = count.saturating_sub(1);
        if indexed > section.len() as u64 {
            return Err(FormatError::Truncated { what: "tile index" });
        }
        let mut cur = Cursor::new(section);
        let lengths = (0..indexed)
            .map(|_| cur.varint("tile index"))
            .collect::<Result<Vec<_>, _>>()?;
        let mut tiles = Vec::with_capacity(lengths.len() + 1);
        for len in lengths {
            tiles.push(cur.take(len, "tile payloads")?);
        }
        tiles.push(cur.into_rest());
        Ok(CodedImage { header, tiles })
    }
}

impl<T: AsRef<[u8]>> ImageFile<T> {
    /// Writes the file: magic, header (with the model id before the checksum), tile section.
    /// Nothing is written if the image is invalid.
    pub fn write_to(&self, out: &mut impl Write) -> Result<(), FormatError> {
        self.image.validate()?;
        magic::write(out, FileKind::Image)?;
        self.image
            .header
            .write_geometry(out, self.model.is_external())?;
        self.model.write_id(out)?;
        self.image.header.write_crc(out)?;
        self.image.write_section(out)
    }

    /// The file as bytes.
    pub fn to_bytes(&self) -> Result<Vec<u8>, FormatError> {
        let mut out = Vec::new();
        self.write_to(&mut out)?;
        Ok(out)
    }

    /// Copies the payloads into an owned file.
    pub fn to_owned_file(&self) -> ImageFile<Vec<u8>> {
        ImageFile {
            model: self.model,
            image: self.image.to_owned_image(),
        }
    }
}

impl<'a> ImageFile<&'a [u8]> {
    /// Parses a single-image file. The last tile's payload is everything after the tile index,
    /// so the decoder must check that each ANS stream is consumed exactly.
    pub fn read(bytes: &'a [u8], limits: &Limits) -> Result<Self, FormatError> {
        let mut cur = Cursor::new(bytes);
        magic::read(&mut cur, FileKind::Image)?;
        let (mut header, external) =
            ImageHeader::read_geometry(&mut cur, limits, ModelBit::Allowed)?;
        let model = ModelRef::read_id(&mut cur, external)?;
        header.read_crc(&mut cur)?;
        let image = CodedImage::read_section(header, cur.into_rest(), limits)?;
        Ok(ImageFile { model, image })
    }
}
