//! The extension block (versions 2 and 3): optional typed records after an image's geometry, room for
//! what later pixel formats need (palettes, transparency, colour information) without another
//! version bump. The container parses and writes them; the codec does not use any yet.
//!
//! Block: `length` varint (bytes of the records, `1..=`[`MAX_EXTENSION_BYTES`]), then records
//! `type` varint, `length` varint, `length` bytes. Types are strictly increasing (each at most
//! once, one order), known ([`ExtensionKind`]), and each record's length follows its type's rule;
//! the records fill the block exactly. An image without records has no block (descriptor bit 7
//! clear), so an empty block is refused.

use super::cursor::Cursor;
use super::{varint, FormatError, PixelFormat};
use std::io::Write;

/// Largest extension block (16 MiB: room for any ICC profile).
pub const MAX_EXTENSION_BYTES: u64 = 1 << 24;

/// What an extension record holds. The bytes are opaque to the container and copied as PNG
/// stores them.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum ExtensionKind {
    /// Type 1: palette entries, 3 bytes (red, green, blue) each, 1 to 256 entries (PNG `PLTE`).
    Palette,
    /// Type 2: transparency, 1 to 256 bytes (PNG `tRNS`).
    Transparency,
    /// Type 3: ICC profile, 1 or more bytes (PNG `iCCP`: name, 0, method, compressed profile).
    IccProfile,
    /// Type 4: image gamma, 4 bytes (PNG `gAMA`).
    Gamma,
    /// Type 5: primary chromaticities and white point, 32 bytes (PNG `cHRM`).
    Chromaticities,
    /// Type 6: sRGB rendering intent, 1 byte (PNG `sRGB`).
    Srgb,
    /// Type 7: coding-independent code points, 4 bytes (PNG `cICP`).
    Cicp,
}

/// Every kind, in type order (type = index + 1).
const KINDS: [ExtensionKind; 7] = [
    ExtensionKind::Palette,
    ExtensionKind::Transparency,
    ExtensionKind::IccProfile,
    ExtensionKind::Gamma,
    ExtensionKind::Chromaticities,
    ExtensionKind::Srgb,
    ExtensionKind::Cicp,
];

impl ExtensionKind {
    /// Every kind, in type order.
    pub const ALL: [ExtensionKind; 7] = KINDS;

    /// The type number stored in the record.
    pub fn code(self) -> u64 {
        KINDS
            .iter()
            .position(|&k| k == self)
            .expect("every kind is in KINDS") as u64
            + 1
    }

    /// The kind with this type number, if this version defines one.
    pub fn from_code(code: u64) -> Option<Self> {
        code.checked_sub(1)
            .and_then(|i| usize::try_from(i).ok())
            .and_then(|i| KINDS.get(i).copied())
    }

    /// Checks a record length against the kind's rule.
    fn check_len(self, len: u64) -> Result<(), FormatError> {
        use ExtensionKind::*;
        let (field, range, ok) = match self {
            Palette => (
                "palette record length",
                "3..=768, a multiple of 3",
                (3..=768).contains(&len) && len % 3 == 0,
            ),
            Transparency => (
                "transparency record length",
                "1..=256",
                (1..=256).contains(&len),
            ),
            IccProfile => (
                "ICC profile record length",
                "1..=16777216",
                (1..=MAX_EXTENSION_BYTES).contains(&len),
            ),
            Gamma => ("gamma record length", "4", len == 4),
            Chromaticities => ("chromaticities record length", "32", len == 32),
            Srgb => ("sRGB record length", "1", len == 1),
            Cicp => ("cICP record length", "4", len == 4),
        };
        if ok {
            Ok(())
        } else {
            Err(FormatError::FieldOutOfRange {
                field,
                value: len,
                range,
            })
        }
    }
}

/// One extension record.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct Extension<T = Vec<u8>> {
    pub kind: ExtensionKind,
    pub data: T,
}

/// Bytes of the records of a block (what its length field holds).
fn records_len<T: AsRef<[u8]>>(records: &[Extension<T>]) -> u64 {
    records
        .iter()
        .map(|r| {
            let len = r.data.as_ref().len() as u64;
            (varint::len(r.kind.code()) + varint::len(len)) as u64 + len
        })
        .sum()
}

/// Checks what the reader would: increasing types, lengths, total size.
pub(crate) fn validate<T: AsRef<[u8]>>(records: &[Extension<T>]) -> Result<(), FormatError> {
    for pair in records.windows(2) {
        if pair[0].kind >= pair[1].kind {
            return Err(FormatError::NonCanonical {
                what: "extension records must be in increasing type order, each type at most once",
            });
        }
    }
    for r in records {
        r.kind.check_len(r.data.as_ref().len() as u64)?;
    }
    check_block_len(records_len(records))
}

/// Checks that `records` suit an image of `format` as PNG defines them: a palette only on
/// palette images (which need one, with at most `2^bits` entries), a transparency record on a
/// palette image with at most one byte per palette entry, on gray and RGB images one colour
/// (2 or 6 bytes), and none on images with an alpha channel. Version 3 enforces this when
/// reading; every version when writing.
pub(crate) fn check_fits<T: AsRef<[u8]>>(
    records: &[Extension<T>],
    format: PixelFormat,
) -> Result<(), FormatError> {
    let len = |kind| {
        records
            .iter()
            .find(|r| r.kind == kind)
            .map(|r| r.data.as_ref().len())
    };
    let misfit = |what| Err(FormatError::ExtensionMisfit { format, what });
    let palette = len(ExtensionKind::Palette);
    match (format.is_palette(), palette) {
        (true, None) => return misfit("a palette image needs a palette record"),
        (true, Some(n)) if n / 3 > 1 << format.bits_per_sample() => {
            return misfit("the palette has more entries than the indices can address")
        }
        (false, Some(_)) => return misfit("only palette images carry a palette record"),
        _ => {}
    }
    let transparency_fits = match (len(ExtensionKind::Transparency), palette) {
        (None, _) => true,
        (Some(n), Some(entries)) => n <= entries / 3,
        (Some(n), None) => match format.channels() {
            1 => n == 2,
            3 => n == 6,
            _ => false,
        },
    };
    if !transparency_fits {
        return misfit(
            "a transparency record holds one alpha per palette entry at most, or one colour \
             of a gray or RGB image (2 or 6 bytes), and images with alpha have none",
        );
    }
    Ok(())
}

fn check_block_len(len: u64) -> Result<(), FormatError> {
    if (1..=MAX_EXTENSION_BYTES).contains(&len) {
        Ok(())
    } else {
        Err(FormatError::FieldOutOfRange {
            field: "extension block length",
            value: len,
            range: "1..=16777216",
        })
    }
}

/// Writes the block of non-empty, [`validate`]d `records`.
pub(super) fn write_block<T: AsRef<[u8]>>(
    out: &mut impl Write,
    records: &[Extension<T>],
) -> Result<(), FormatError> {
    varint::write(out, records_len(records))?;
    for r in records {
        let data = r.data.as_ref();
        varint::write(out, r.kind.code())?;
        varint::write(out, data.len() as u64)?;
        out.write_all(data)?;
    }
    Ok(())
}

/// Reads a block, borrowing the record bytes. At most one record per kind, so the vector stays
/// tiny whatever the block claims.
pub(super) fn read_block<'a>(
    cur: &mut Cursor<'a>,
) -> Result<Vec<Extension<&'a [u8]>>, FormatError> {
    let len = cur.varint("extension block length")?;
    check_block_len(len)?;
    let mut block = Cursor::new(cur.take(len, "extension block")?);
    let mut records: Vec<Extension<&'a [u8]>> = Vec::new();
    while block.remaining() > 0 {
        let code = block.varint("extension record type")?;
        let kind = ExtensionKind::from_code(code).ok_or(FormatError::UnknownExtension { code })?;
        if records.last().is_some_and(|last| last.kind >= kind) {
            return Err(FormatError::NonCanonical {
                what: "extension records must be in increasing type order, each type at most once",
            });
        }
        let data_len = block.varint("extension record length")?;
        kind.check_len(data_len)?;
        let data = block.take(data_len, "extension record")?;
        records.push(Extension { kind, data });
    }
    Ok(records)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(bytes: &[u8]) -> Result<Vec<Extension<&[u8]>>, FormatError> {
        let mut cur = Cursor::new(bytes);
        let records = read_block(&mut cur)?;
        assert_eq!(cur.remaining(), 0);
        Ok(records)
    }

    #[test]
    fn codes_are_a_bijection() {
        for (i, k) in ExtensionKind::ALL.iter().enumerate() {
            assert_eq!(k.code(), i as u64 + 1);
            assert_eq!(ExtensionKind::from_code(k.code()), Some(*k));
        }
        assert_eq!(ExtensionKind::from_code(0), None);
        assert_eq!(ExtensionKind::from_code(8), None);
        assert_eq!(ExtensionKind::from_code(u64::MAX), None);
    }

    #[test]
    fn blocks_round_trip() {
        let records = vec![
            Extension {
                kind: ExtensionKind::Palette,
                data: vec![1, 2, 3, 4, 5, 6],
            },
            Extension {
                kind: ExtensionKind::Gamma,
                data: vec![0, 1, 0x86, 0xa0],
            },
            Extension {
                kind: ExtensionKind::Srgb,
                data: vec![0],
            },
        ];
        validate(&records).unwrap();
        let mut bytes = Vec::new();
        write_block(&mut bytes, &records).unwrap();
        assert_eq!(bytes[0] as usize, bytes.len() - 1);
        let read = parse(&bytes).unwrap();
        let owned: Vec<Extension> = read
            .iter()
            .map(|r| Extension {
                kind: r.kind,
                data: r.data.to_vec(),
            })
            .collect();
        assert_eq!(owned, records);
    }

    #[test]
    fn bad_blocks_are_refused() {
        // empty block, unknown type 0 and 7, repeated and decreasing types
        for (bytes, what) in [
            (&[0x00][..], "empty"),
            (&[0x03, 0x00, 0x01, 0x00], "type 0"),
            (&[0x03, 0x07, 0x01, 0x00], "type 7"),
            (&[0x06, 0x06, 0x01, 0x00, 0x06, 0x01, 0x00], "repeated"),
            (
                &[0x09, 0x06, 0x01, 0x00, 0x04, 0x04, 1, 2, 3, 4],
                "decreasing",
            ),
            (&[0x03, 0x06, 0x02, 0x00], "record past the block"),
            (&[0x04, 0x06, 0x01, 0x00], "block past the input"),
            (&[0x04, 0x06, 0x01, 0x00, 0x06], "trailing partial record"),
            (&[0x03, 0x04, 0x01, 0x00], "short gamma"),
            (&[0x04, 0x01, 0x02, 0x00, 0x00], "palette of 2 bytes"),
            (&[0x02, 0x02, 0x00], "empty transparency"),
        ] {
            assert!(parse(bytes).is_err(), "{what}");
        }
        let huge = [0x81, 0x80, 0x80, 0x08]; // 2^24 + 1
        assert!(matches!(
            parse(&huge),
            Err(FormatError::FieldOutOfRange { .. })
        ));
        let unordered = [
            Extension {
                kind: ExtensionKind::Srgb,
                data: vec![0],
            },
            Extension {
                kind: ExtensionKind::Palette,
                data: vec![0; 3],
            },
        ];
        assert!(matches!(
            validate(&unordered),
            Err(FormatError::NonCanonical { .. })
        ));
        assert!(validate::<Vec<u8>>(&[]).is_err(), "an empty block");
    }
}
