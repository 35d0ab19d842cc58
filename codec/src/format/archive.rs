//! Archives: many named coded images sharing one model and one magic.

use super::cursor::Cursor;
use super::header::ModelBit;
use super::limits::{self, Limits};
use super::magic::{self, FileKind};
use super::{varint, CodedImage, EntryName, FormatError, ImageHeader, ModelRef};
use byteorder::WriteBytesExt;
use std::collections::HashSet;
use std::io::Write;

/// Many coded images, each with a name, all coded with one model.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct Archive<T = Vec<u8>> {
    pub model: ModelRef,
    pub entries: Vec<ArchiveEntry<T>>,
}

/// One image of an archive.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct ArchiveEntry<T = Vec<u8>> {
    pub name: EntryName,
    pub image: CodedImage<T>,
}

/// The model flags byte: bit 0 external model, other bits reserved (zero).
const EXTERNAL_MODEL: u8 = 0x01;

/// Fewest bytes an entry can take: name length and one name byte, width, height, descriptor,
/// checksum, section length.
const MIN_ENTRY_BYTES: usize = 1 + 1 + 1 + 1 + 1 + 4 + 1;

impl<T: AsRef<[u8]>> Archive<T> {
    /// Writes the archive. Nothing is written if an entry is invalid or a name repeats.
    pub fn write_to(&self, out: &mut impl Write) -> Result<(), FormatError> {
        self.validate()?;
        magic::write(out, FileKind::Archive)?;
        out.write_u8(if self.model.is_external() {
            EXTERNAL_MODEL
        } else {
            0
        })?;
        self.model.write_id(out)?;
        varint::write(out, self.entries.len() as u64)?;
        self.entries
            .iter()
            .try_for_each(|entry| entry.write_to(out))
    }

    /// The archive as bytes.
    pub fn to_bytes(&self) -> Result<Vec<u8>, FormatError> {
        let mut out = Vec::new();
        self.write_to(&mut out)?;
        Ok(out)
    }

    fn validate(&self) -> Result<(), FormatError> {
        let mut names = HashSet::with_capacity(self.entries.len());
        for entry in &self.entries {
            entry.image.validate()?;
            if !names.insert(entry.name.as_str()) {
                return Err(FormatError::DuplicateName {
                    name: entry.name.to_string(),
                });
            }
        }
        Ok(())
    }
}

impl<T: AsRef<[u8]>> ArchiveEntry<T> {
    /// Name, header (no model id), section length, section.
    fn write_to(&self, out: &mut impl Write) -> Result<(), FormatError> {
        let name = self.name.as_str().as_bytes();
        varint::write(out, name.len() as u64)?;
        out.write_all(name)?;
        self.image.header.write_geometry(out, false)?;
        self.image.header.write_crc(out)?;
        varint::write(out, self.image.section_len())?;
        self.image.write_section(out)
    }
}

impl<'a> Archive<&'a [u8]> {
    /// Parses an archive, checking limits before allocating and rejecting trailing bytes,
    /// invalid names and repeated names.
    pub fn read(bytes: &'a [u8], limits: &Limits) -> Result<Self, FormatError> {
        let mut cur = Cursor::new(bytes);
        magic::read(&mut cur, FileKind::Archive)?;
        let flags = cur.u8("model flags byte")?;
        if flags & !EXTERNAL_MODEL != 0 {
            return Err(FormatError::ReservedBits {
                field: "model flags byte",
                value: flags,
            });
        }
        let model = ModelRef::read_id(&mut cur, flags & EXTERNAL_MODEL != 0)?;
        let count = cur.varint("entry count")?;
        limits::check(
            "archive entry count",
            count,
            limits.max_entries,
            "--max-entries",
        )?;
        if count > (cur.remaining() / MIN_ENTRY_BYTES) as u64 {
            return Err(FormatError::Truncated {
                what: "archive entries",
            });
        }
        let mut entries = Vec::with_capacity(count as usize);
        let mut names = HashSet::with_capacity(count as usize);
        for _ in 0..count {
            let entry = ArchiveEntry::read(&mut cur, limits)?;
            if !names.insert(entry.name.clone()) {
                return Err(FormatError::DuplicateName {
                    name: entry.name.to_string(),
                });
            }
            entries.push(entry);
        }
        match cur.remaining() {
            0 => Ok(Archive { model, entries }),
            count => Err(FormatError::TrailingBytes { count }),
        }
    }
}

impl<'a> ArchiveEntry<&'a [u8]> {
    fn read(cur: &mut Cursor<'a>, limits: &Limits) -> Result<Self, FormatError> {
        let name_len = cur.varint("entry name length")?;
        if name_len > super::MAX_NAME_BYTES as u64 {
            return Err(FormatError::FieldOutOfRange {
                field: "entry name length",
                value: name_len,
                range: "1..=1024",
            });
        }
        let name = EntryName::from_bytes(cur.take(name_len, "entry name")?)?;
        let (mut header, _) = ImageHeader::read_geometry(cur, limits, ModelBit::Reserved)?;
        header.read_crc(cur)?;
        let section_len = cur.varint("entry section length")?;
        let section = cur.take(section_len, "entry tiles")?;
        let image = CodedImage::read_section(header, section, limits)?;
        Ok(ArchiveEntry { name, image })
    }
}
