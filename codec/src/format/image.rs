//! Coded images: a header, extension records and one payload per tile, and the single-image
//! file.

use super::cursor::Cursor;
use super::extension::{self, Extension};
use super::header::{Geometry, ModelBit};
use super::limits::{self, Limits};
use super::magic::{self, FileKind};
use super::{varint, FormatError, ImageHeader, ModelRef, Version};
use std::io::Write;

/// A header and the extension records that complete it.
type HeaderAndExtensions<'a> = (ImageHeader, Vec<Extension<&'a [u8]>>);

/// An image's header, its extension records and its tile payloads (one ANS stream per tile,
/// raster order).
///
/// `T` is `&[u8]` for what [`ImageFile::read`] returns (borrowing the input) and `Vec<u8>` for
/// what an encoder builds.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct CodedImage<T = Vec<u8>> {
    pub header: ImageHeader,
    /// Extension records (version 2 only), in increasing type order; usually none.
    pub extensions: Vec<Extension<T>>,
    pub tiles: Vec<T>,
}

/// A single-image file: its version, the model it needs and the coded image.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct ImageFile<T = Vec<u8>> {
    pub version: Version,
    pub model: ModelRef,
    pub image: CodedImage<T>,
}

impl<T: AsRef<[u8]>> CodedImage<T> {
    /// Copies the payloads into an owned image.
    pub fn to_owned_image(&self) -> CodedImage<Vec<u8>> {
        CodedImage {
            header: self.header,
            extensions: self
                .extensions
                .iter()
                .map(|e| Extension {
                    kind: e.kind,
                    data: e.data.as_ref().to_vec(),
                })
                .collect(),
            tiles: self.tiles.iter().map(|t| t.as_ref().to_vec()).collect(),
        }
    }

    /// Checks the header, that there is one payload per tile, and that `version` can hold the
    /// image: a header checksum in version 1 and none in version 2, extensions only in 2.
    pub(super) fn validate(&self, version: Version) -> Result<(), FormatError> {
        self.header.validate()?;
        let expected = self.header.grid().count();
        if self.tiles.len() as u64 != expected {
            return Err(FormatError::TileCountMismatch {
                expected,
                found: self.tiles.len(),
            });
        }
        self.validate_header(version)
    }

    /// An entry of a chained archive (version 4): a valid header and no tiles of its own (they
    /// are in the archive's chain).
    pub(super) fn validate_chained(&self, version: Version) -> Result<(), FormatError> {
        self.header.validate()?;
        if !self.tiles.is_empty() {
            return Err(FormatError::TileCountMismatch {
                expected: 0,
                found: self.tiles.len(),
            });
        }
        self.validate_header(version)
    }

    /// The version's rules for the header and records (the header itself checked already).
    fn validate_header(&self, version: Version) -> Result<(), FormatError> {
        let not_in = |what| Err(FormatError::NotInVersion { version, what });
        match version {
            Version::V1 if self.header.pixel_crc.is_none() => {
                not_in("an image without a pixel checksum in its header")
            }
            Version::V1 if !self.extensions.is_empty() => not_in("extension records"),
            Version::V2 | Version::V3 | Version::V4 | Version::V5 | Version::V6
                if self.header.pixel_crc.is_some() =>
            {
                not_in("a pixel checksum in the header (it is carried in the tile streams)")
            }
            Version::V2 if !self.extensions.is_empty() => extension::validate(&self.extensions),
            Version::V2 => Ok(()),
            Version::V3 | Version::V4 | Version::V5 | Version::V6 => {
                if !self.extensions.is_empty() {
                    extension::validate(&self.extensions)?;
                }
                extension::check_fits(&self.extensions, self.header.pixel_format)
            }
            _ => Ok(()),
        }
    }

    /// Writes the geometry ([`ImageHeader::write_geometry`]).
    pub(super) fn write_geometry(
        &self,
        out: &mut impl Write,
        external_model: bool,
    ) -> Result<(), FormatError> {
        self.header
            .write_geometry(out, external_model, !self.extensions.is_empty())
    }

    /// Writes what follows the geometry (and, in a single image, the model id) before the tile
    /// section: the checksum in version 1, the extension block (if any) in version 2.
    pub(super) fn write_trailer(
        &self,
        out: &mut impl Write,
        version: Version,
    ) -> Result<(), FormatError> {
        match version {
            Version::V1 => self.header.write_crc(out),
            _ if self.extensions.is_empty() => Ok(()),
            Version::V2 | Version::V3 | Version::V4 | Version::V5 | Version::V6 => {
                extension::write_block(out, &self.extensions)
            }
        }
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
    /// Reads what [`CodedImage::write_trailer`] writes, completing `geometry`: the header and
    /// the extension records.
    pub(super) fn read_trailer(
        cur: &mut Cursor<'a>,
        geometry: Geometry,
        version: Version,
    ) -> Result<HeaderAndExtensions<'a>, FormatError> {
        let mut header = geometry.header;
        let extensions = match version {
            Version::V1 => {
                header.read_crc(cur)?;
                Vec::new()
            }
            Version::V2 if geometry.extensions => extension::read_block(cur)?,
            Version::V2 => Vec::new(),
            Version::V3 | Version::V4 | Version::V5 | Version::V6 => {
                let records = match geometry.extensions {
                    true => extension::read_block(cur)?,
                    false => Vec::new(),
                };
                extension::check_fits(&records, header.pixel_format)?;
                records
            }
        };
        Ok((header, extensions))
    }

    /// Splits a tile section (all of `section`) into the payloads of `header`'s tiles, checking
    /// [`Limits::max_tiles`] and that the index fits in `section` before allocating.
    /// An entry of a chained archive: no tiles of its own; its tile count checked against the
    /// limits all the same (the chain holds that many tiles).
    pub(super) fn chained(
        header: ImageHeader,
        extensions: Vec<Extension<&'a [u8]>>,
        limits: &Limits,
    ) -> Result<Self, FormatError> {
        let count = header.grid().count();
        limits::check("tile count", count, limits.max_tiles, "--max-tiles")?;
        Ok(CodedImage {
            header,
            extensions,
            tiles: Vec::new(),
        })
    }

    pub(super) fn read_section(
        header: ImageHeader,
        extensions: Vec<Extension<&'a [u8]>>,
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
        Ok(CodedImage {
            header,
            extensions,
            tiles,
        })
    }
}

impl<T: AsRef<[u8]>> ImageFile<T> {
    /// Writes the file: magic, geometry, model id, checksum (version 1) or extension block
    /// (version 2, if any), tile section. Nothing is written if the image is invalid or its
    /// version cannot hold it.
    pub fn write_to(&self, out: &mut impl Write) -> Result<(), FormatError> {
        self.image.validate(self.version)?;
        magic::write(out, FileKind::Image, self.version)?;
        self.image.write_geometry(out, self.model.is_external())?;
        self.model.write_id(out)?;
        self.image.write_trailer(out, self.version)?;
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
            version: self.version,
            model: self.model,
            image: self.image.to_owned_image(),
        }
    }
}

impl<'a> ImageFile<&'a [u8]> {
    /// Parses a single-image file of either version. The last tile's payload is everything after
    /// the tile index, so the decoder must check that each ANS stream is consumed exactly.
    pub fn read(bytes: &'a [u8], limits: &Limits) -> Result<Self, FormatError> {
        let mut cur = Cursor::new(bytes);
        let version = magic::read(&mut cur, FileKind::Image)?;
        let geometry = ImageHeader::read_geometry(&mut cur, limits, ModelBit::Allowed, version)?;
        let model = ModelRef::read_id(&mut cur, geometry.external_model)?;
        let (header, extensions) = CodedImage::read_trailer(&mut cur, geometry, version)?;
        let image = CodedImage::read_section(header, extensions, cur.into_rest(), limits)?;
        Ok(ImageFile {
            version,
            model,
            image,
        })
    }
}
