//! The two leading bytes: `'i'`, then the file kind (high nibble) and format version (low nibble).

use super::cursor::Cursor;
use super::FormatError;
use std::fmt;
use std::io::{self, Write};

/// The format version this build writes (the newest it reads). Any change to the layout bumps
/// it; decoders for older versions are kept (see "Version policy" in `FORMAT.md`).
pub const VERSION: u8 = 6;

/// A format version this build reads.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Version {
    /// Version 1: pixel checksum in the header, ANS streams start at state 1, archive entries
    /// store whole names.
    V1,
    /// Version 2: per-tile checksums of the tiles' samples in the ANS start states, optional
    /// extension block, front-coded archive entries.
    V2,
    /// Version 3: the layout of version 2; each tile's checksum covers its samples together with
    /// everything decoded beside them ([`crate::format::TileCheck`]): pixel format, size,
    /// extension records, the tile's position and, in archives, the entry's name and position.
    V3,
    /// Version 4: version 3, plus **chained archives** (model flags bit 1): all entries' tiles
    /// in one ANS stream, so a bits-back model carries its bits from entry to entry.
    V4,
    /// Version 5: version 4, plus **sequential names** (archive entry flags bit 1): an entry
    /// named by counting on from the previous entry's name takes no name bytes.
    V5,
    /// Version 6: version 5, plus **runs** in chained archives (archive entry flags bit 2): a
    /// run of entries each with the previous entry's geometry and the previous name counted on
    /// is one entry and a count; the run's other entries take no bytes.
    V6,
}

impl Version {
    /// The version this build writes.
    pub const NEWEST: Version = Version::V6;

    /// Every version this build reads, oldest first.
    pub const ALL: [Version; 6] = [
        Version::V1,
        Version::V2,
        Version::V3,
        Version::V4,
        Version::V5,
        Version::V6,
    ];

    /// The number in the magic's low nibble.
    pub fn number(self) -> u8 {
        match self {
            Version::V1 => 1,
            Version::V2 => 2,
            Version::V3 => 3,
            Version::V4 => 4,
            Version::V5 => 5,
            Version::V6 => 6,
        }
    }

    fn from_number(number: u8) -> Option<Self> {
        Version::ALL.into_iter().find(|v| v.number() == number)
    }
}

impl fmt::Display for Version {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.number())
    }
}

const _: () = assert!(VERSION == 6 && matches!(Version::NEWEST, Version::V6));

/// First byte of every idfcodec file.
const MAGIC: u8 = b'i';

/// What a file holds, from the high nibble of its second byte.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum FileKind {
    /// One coded image (`69 d6` for version 6; `69 d5` … `69 d1` for older versions).
    Image,
    /// Many named coded images sharing one model (`69 a6` for version 6; `69 a5` … `69 a1` for
    /// older versions).
    Archive,
}

impl FileKind {
    fn nibble(self) -> u8 {
        match self {
            FileKind::Image => 0xd,
            FileKind::Archive => 0xa,
        }
    }

    fn from_nibble(nibble: u8) -> Option<Self> {
        [FileKind::Image, FileKind::Archive]
            .into_iter()
            .find(|k| k.nibble() == nibble)
    }
}

impl fmt::Display for FileKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            FileKind::Image => "image",
            FileKind::Archive => "archive",
        })
    }
}

/// Writes the magic of `kind` at `version`.
pub(super) fn write(out: &mut impl Write, kind: FileKind, version: Version) -> io::Result<()> {
    out.write_all(&[MAGIC, kind.nibble() << 4 | version.number()])
}

/// Reads the magic and checks that the file is `expected` at a supported version.
pub(super) fn read(cur: &mut Cursor<'_>, expected: FileKind) -> Result<Version, FormatError> {
    let (found, version) = read_kind(cur)?;
    if found == expected {
        Ok(version)
    } else {
        Err(FormatError::WrongKind { expected, found })
    }
}

/// Tells an image from an archive by the first two bytes, checking the version.
pub fn detect(bytes: &[u8]) -> Result<FileKind, FormatError> {
    identify(bytes).map(|(kind, _)| kind)
}

/// The kind and version of a file, from its first two bytes.
pub fn identify(bytes: &[u8]) -> Result<(FileKind, Version), FormatError> {
    read_kind(&mut Cursor::new(bytes))
}

fn read_kind(cur: &mut Cursor<'_>) -> Result<(FileKind, Version), FormatError> {
    let bad_magic = |bytes: &[u8]| FormatError::BadMagic {
        found: bytes
            .iter()
            .map(|b| format!("{b:02x}"))
            .collect::<Vec<_>>()
            .join(" "),
    };
    let first = cur.u8("magic bytes")?;
    if first != MAGIC {
        return Err(bad_magic(&[first]));
    }
    let second = cur.u8("magic bytes")?;
    let kind = FileKind::from_nibble(second >> 4).ok_or_else(|| bad_magic(&[first, second]))?;
    match Version::from_number(second & 0x0f) {
        Some(version) => Ok((kind, version)),
        None => Err(FormatError::UnsupportedVersion {
            kind,
            found: second & 0x0f,
            newest: VERSION,
        }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn detects_kinds_and_rejects_others() {
        for kind in [FileKind::Image, FileKind::Archive] {
            for version in Version::ALL {
                let mut buf = Vec::new();
                write(&mut buf, kind, version).unwrap();
                assert_eq!(identify(&buf).unwrap(), (kind, version));
                assert_eq!(detect(&buf).unwrap(), kind);
            }
        }
        assert!(matches!(
            detect(b"\x89PNG"),
            Err(FormatError::BadMagic { .. })
        ));
        assert!(matches!(detect(b"iX"), Err(FormatError::BadMagic { .. })));
        assert!(matches!(detect(b"i"), Err(FormatError::Truncated { .. })));
        assert!(matches!(detect(b""), Err(FormatError::Truncated { .. })));
        for found in [0, 7, 15] {
            let err = detect(&[b'i', 0xd0 | found]).unwrap_err();
            assert!(matches!(
                err,
                FormatError::UnsupportedVersion { found: f, newest: 6, .. } if f == found
            ));
            assert!(err.to_string().contains("reads versions 1 to 6"), "{err}");
        }
    }
}
