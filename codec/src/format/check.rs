//! What each tile's checksum covers, per format version (FORMAT.md, "Tile checksum").
//!
//! Every tile's ANS stream starts from, and must decode back to, a state that carries a 32-bit
//! checksum (versions 2 and 3; version 1 has one checksum of the whole image in its header):
//! - version 2: the CRC-32 of the tile's canonical pixel bytes only;
//! - version 3: the CRC-32 of the tile's **binding** bytes, then its index, then its canonical
//!   pixel bytes. The binding is everything a decoder outputs beside the samples, as the file
//!   stores it: the magic, (archives) the entry's index, the entry count and the entry's name,
//!   then the image's size, descriptor (pixel format, tiling, model storage), tile size code,
//!   model id and extension block. So a change to any byte a decoder turns into output (a
//!   colour record, the pixel format, a name, which tile goes where, how many entries there are)
//!   makes the check fail, at no cost in bytes.

use std::io::Write;

use super::header::ImageHeader;
use super::magic::{self, FileKind};
use super::{extension, varint, EntryName, Extension, FormatError, ModelRef, Version};

/// Where an archive entry sits: its index, the archive's entry count and its name.
#[derive(Clone, Copy, Debug)]
pub struct EntryPosition<'a> {
    pub index: u64,
    pub count: u64,
    pub name: &'a EntryName,
}

/// How the tiles of one coded image are checked (see the module docs).
#[derive(Clone, Debug)]
pub struct TileCheck {
    kind: CheckKind,
    version: Version,
}

#[derive(Clone, Debug)]
enum CheckKind {
    /// Version 1: no per-tile checksum (the header holds the whole image's).
    None,
    /// Version 2: the CRC-32 of the tile's samples.
    Samples,
    /// Version 3: the CRC-32 continues from the binding bytes.
    Bound(crc32fast::Hasher),
}

impl TileCheck {
    /// The check of the tiles of an image with this header and extension records, in a file of
    /// `version` that refers to `model`; `entry` for an archive entry, `None` for a single
    /// image.
    pub fn new<T: AsRef<[u8]>>(
        version: Version,
        model: ModelRef,
        header: &ImageHeader,
        extensions: &[Extension<T>],
        entry: Option<EntryPosition<'_>>,
    ) -> Result<Self, FormatError> {
        let kind = match version {
            Version::V1 => CheckKind::None,
            Version::V2 => CheckKind::Samples,
            Version::V3 | Version::V4 | Version::V5 | Version::V6 => {
                let mut bytes = Vec::new();
                write_binding(&mut bytes, version, model, header, extensions, entry)?;
                let mut hasher = crc32fast::Hasher::new();
                hasher.update(&bytes);
                CheckKind::Bound(hasher)
            }
        };
        Ok(TileCheck { kind, version })
    }

    /// The format version of the file the tiles are in.
    pub fn version(&self) -> Version {
        self.version
    }

    /// Whether each tile's stream carries a checksum (versions 2 and 3).
    pub fn per_tile(&self) -> bool {
        !matches!(self.kind, CheckKind::None)
    }

    /// The checksum tile `index` (raster order) with these canonical pixel bytes carries in its
    /// stream; `None` in version 1 (no per-tile checksum).
    pub fn checksum(&self, index: u64, samples: &[u8]) -> Option<u32> {
        match &self.kind {
            CheckKind::None => None,
            CheckKind::Samples => Some(super::crc32(samples)),
            CheckKind::Bound(binding) => {
                let mut check = ChainCheck {
                    hasher: binding.clone(),
                };
                check.tile(index, samples);
                Some(check.finish())
            }
        }
    }
}

/// The checksum of a chained archive's one stream (version 4, FORMAT.md "Chained archives"):
/// the CRC-32 of, entry after entry, the entry's binding bytes followed by each of its tiles'
/// index and canonical pixel bytes — everything each tile's own checksum would cover, in one
/// run. The stream starts from `2^32 +` this and must decode back to it.
#[derive(Clone, Debug, Default)]
pub struct ChainCheck {
    hasher: crc32fast::Hasher,
}

impl ChainCheck {
    /// A checksum over nothing yet.
    pub fn new() -> Self {
        Self::default()
    }

    /// Adds an entry's binding bytes (before its tiles).
    pub fn entry<T: AsRef<[u8]>>(
        &mut self,
        version: Version,
        model: ModelRef,
        header: &ImageHeader,
        extensions: &[Extension<T>],
        entry: EntryPosition<'_>,
    ) -> Result<(), FormatError> {
        let mut bytes = Vec::new();
        write_binding(&mut bytes, version, model, header, extensions, Some(entry))?;
        self.hasher.update(&bytes);
        Ok(())
    }

    /// Adds the entry's tile `index` (raster order) with these canonical pixel bytes.
    pub fn tile(&mut self, index: u64, samples: &[u8]) {
        let mut position = Vec::with_capacity(10);
        varint::write(&mut position, index).expect("writing to a Vec");
        self.hasher.update(&position);
        self.hasher.update(samples);
    }

    /// The checksum.
    pub fn finish(self) -> u32 {
        self.hasher.finalize()
    }
}

/// Writes the binding bytes of version 3 (see the module docs).
fn write_binding<T: AsRef<[u8]>>(
    out: &mut impl Write,
    version: Version,
    model: ModelRef,
    header: &ImageHeader,
    extensions: &[Extension<T>],
    entry: Option<EntryPosition<'_>>,
) -> Result<(), FormatError> {
    match entry {
        None => magic::write(out, FileKind::Image, version)?,
        Some(entry) => {
            magic::write(out, FileKind::Archive, version)?;
            let name = entry.name.as_str().as_bytes();
            varint::write(out, entry.index)?;
            varint::write(out, entry.count)?;
            varint::write(out, name.len() as u64)?;
            out.write_all(name)?;
        }
    }
    header.write_geometry(out, model.is_external(), !extensions.is_empty())?;
    model.write_id(out)?;
    if !extensions.is_empty() {
        extension::write_block(out, extensions)?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::format::{ExtensionKind, PixelFormat, Tiling};

    fn header(format: PixelFormat) -> ImageHeader {
        ImageHeader {
            width: 40,
            height: 20,
            pixel_format: format,
            tiling: Tiling::Square { log2: 4 },
            pixel_crc: None,
        }
    }

    fn check(
        version: Version,
        format: PixelFormat,
        gamma: u8,
        entry: Option<EntryPosition>,
    ) -> TileCheck {
        let records = [Extension {
            kind: ExtensionKind::Gamma,
            data: vec![0, 0, 0xb1, gamma],
        }];
        TileCheck::new(version, ModelRef::NONE, &header(format), &records, entry).unwrap()
    }

    #[test]
    fn version_3_binds_format_records_position_and_names() {
        let samples = [7u8; 16];
        let base = check(Version::V3, PixelFormat::Gray8, 0x8f, None);
        let sum = base.checksum(0, &samples);
        assert_eq!(sum, base.checksum(0, &samples), "deterministic");
        assert_ne!(sum, base.checksum(1, &samples), "tile position");
        assert_ne!(sum, base.checksum(0, &[7u8; 15]), "samples");
        assert_ne!(
            sum,
            check(Version::V3, PixelFormat::Gray4, 0x8f, None).checksum(0, &samples)
        );
        assert_ne!(
            sum,
            check(Version::V3, PixelFormat::Gray8, 0x8e, None).checksum(0, &samples)
        );
        let a = EntryName::new("d/img-01.png").unwrap();
        let b = EntryName::new("d?img-01.png").unwrap();
        let at = |name, index, count| EntryPosition { index, count, name };
        let entry = check(Version::V3, PixelFormat::Gray8, 0x8f, Some(at(&a, 0, 2)));
        let sum_entry = entry.checksum(0, &samples);
        assert_ne!(sum, sum_entry, "an entry is not a single image");
        for other in [at(&b, 0, 2), at(&a, 1, 2), at(&a, 0, 1)] {
            let other = check(Version::V3, PixelFormat::Gray8, 0x8f, Some(other));
            assert_ne!(sum_entry, other.checksum(0, &samples));
        }
    }

    #[test]
    fn older_versions_keep_their_checks() {
        let samples = [1u8, 2, 3];
        let v2 = check(Version::V2, PixelFormat::Gray8, 0x8f, None);
        assert_eq!(
            v2.checksum(5, &samples),
            Some(crate::format::crc32(&samples))
        );
        assert_eq!(
            check(Version::V1, PixelFormat::Gray8, 0x8f, None).checksum(0, &samples),
            None
        );
    }

    #[test]
    fn a_single_image_binding_is_its_header() {
        let mut bytes = Vec::new();
        let records: [Extension<Vec<u8>>; 0] = [];
        let model = ModelRef::embedded(0x0123_4567_89ab_cdef);
        let h = ImageHeader {
            width: 28,
            height: 28,
            pixel_format: PixelFormat::Gray8,
            tiling: Tiling::Whole,
            pixel_crc: None,
        };
        write_binding(&mut bytes, Version::V3, model, &h, &records, None).unwrap();
        assert_eq!(
            bytes,
            [0x69, 0xd3, 0x1c, 0x1c, 0x00, 0xef, 0xcd, 0xab, 0x89]
        );
    }
}
