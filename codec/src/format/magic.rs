//! The two leading bytes: `'i'`, then the file kind (high nibble) and format version (low nibble).

use super::cursor::Cursor;
use super::FormatError;
use std::fmt;
use std::io::{self, Write};

/// The format version this build writes and reads. Any change to the layout bumps it; decoders
/// for older versions are kept (see "Version policy" in `FORMAT.md`).
pub const VERSION: u8 = 1;

/// First byte of every idfcodec file.
const MAGIC: u8 = b'i';

/// What a file holds, from the high nibble of its second byte.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum FileKind {
    /// One coded image (`69 d1` for version 1).
    Image,
    /// Many named coded images sharing one model (`69 a1` for version 1).
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

/// Writes the magic of `kind` at the current [`VERSION`].
pub(super) fn write(out: &mut impl Write, kind: FileKind) -> io::Result<()> {
    out.write_all(&[MAGIC, kind.nibble() << 4 | VERSION])
}

/// Reads the magic and checks that the file is `expected` at a supported version.
pub(super) fn read(cur: &mut Cursor<'_>, expected: FileKind) -> Result<(), FormatError> {
    let found = read_kind(cur)?;
    if found == expected {
        Ok(())
    } else {
        Err(FormatError::WrongKind { expected, found })
    }
}

/// Tells an image from an archive by the first two bytes, checking the version.
pub fn detect(bytes: &[u8]) -> Result<FileKind, FormatError> {
    read_kind(&mut Cursor::new(bytes))
}

fn read_kind(cur: &mut Cursor<'_>) -> Result<FileKind, FormatError> {
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
    match second & 0x0f {
        VERSION => Ok(kind),
        found => Err(FormatError::UnsupportedVersion {
            kind,
            found,
            supported: VERSION,
        }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn detects_kinds_and_rejects_others() {
        for kind in [FileKind::Image, FileKind::Archive] {
            let mut buf = Vec::new();
            write(&mut buf, kind).unwrap();
            assert_eq!(detect(&buf).unwrap(), kind);
        }
        assert!(matches!(
            detect(b"\x89PNG"),
            Err(FormatError::BadMagic { .. })
        ));
        assert!(matches!(detect(b"iX"), Err(FormatError::BadMagic { .. })));
        assert!(matches!(detect(b"i"), Err(FormatError::Truncated { .. })));
        assert!(matches!(detect(b""), Err(FormatError::Truncated { .. })));
        let err = detect(&[b'i', 0xd2]).unwrap_err();
        assert!(matches!(
            err,
            FormatError::UnsupportedVersion {
                found: 2,
                supported: 1,
                ..
            }
        ));
        assert!(err.to_string().contains("reads version 1"), "{err}");
    }
}
