//! Unsigned LEB128 varints, canonical (minimal) encodings only.
//!
//! Seven value bits per byte, least significant group first; the top bit says whether another
//! byte follows. A `u64` takes at most [`MAX_LEN`] bytes. Readers reject encodings longer than
//! necessary, so every value has exactly one encoding and re-writing a parsed file is exact.

use super::cursor::Cursor;
use super::FormatError;
use std::io::{self, Write};

/// Longest encoding of a `u64`.
pub const MAX_LEN: usize = 10;

/// Writes `value` in its minimal encoding.
pub fn write(out: &mut impl Write, value: u64) -> io::Result<()> {
    let mut buf = [0u8; MAX_LEN];
    let n = encode(value, &mut buf);
    out.write_all(&buf[..n])
}

/// Number of bytes [`write`] uses for `value`.
pub fn len(value: u64) -> usize {
    encode(value, &mut [0u8; MAX_LEN])
}

fn encode(mut value: u64, buf: &mut [u8; MAX_LEN]) -> usize {
    let mut n = 0;
    loop {
        let group = (value & 0x7f) as u8;
        value >>= 7;
        if value == 0 {
            buf[n] = group;
            return n + 1;
        }
        buf[n] = group | 0x80;
        n += 1;
    }
}

/// Reads one varint; `field` names it in errors.
pub fn read(cur: &mut Cursor<'_>, field: &'static str) -> Result<u64, FormatError> {
    let mut value = 0u64;
    for i in 0..MAX_LEN {
        let byte = cur.u8(field)?;
        let group = u64::from(byte & 0x7f);
        if i == MAX_LEN - 1 && group > 1 {
            return Err(FormatError::VarintOverflow { field });
        }
        value |= group << (7 * i);
        if byte & 0x80 == 0 {
            if byte == 0 && i > 0 {
                return Err(FormatError::NonCanonicalVarint { field });
            }
            return Ok(value);
        }
    }
    Err(FormatError::VarintOverflow { field })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn decode(bytes: &[u8]) -> Result<u64, FormatError> {
        let mut cur = Cursor::new(bytes);
        let v = read(&mut cur, "test value")?;
        assert_eq!(cur.remaining(), 0, "trailing bytes after {bytes:02x?}");
        Ok(v)
    }

    #[test]
    fn round_trips_boundaries() {
        for shift in 0..64 {
            for v in [
                (1u64 << shift) - 1,
                1u64 << shift,
                (1u64 << shift) + 1,
                u64::MAX >> shift,
            ] {
                let mut buf = Vec::new();
                write(&mut buf, v).unwrap();
                assert_eq!(buf.len(), len(v));
                assert_eq!(
                    buf.len(),
                    (64 - v.leading_zeros() as usize).div_ceil(7).max(1)
                );
                assert_eq!(decode(&buf).unwrap(), v, "{buf:02x?}");
            }
        }
    }

    #[test]
    fn known_encodings() {
        let mut buf = Vec::new();
        write(&mut buf, 300).unwrap();
        assert_eq!(buf, [0xac, 0x02]);
        assert_eq!(decode(&[0x1c]).unwrap(), 28);
    }

    #[test]
    fn rejects_overlong_overflowing_and_truncated() {
        assert!(matches!(
            decode(&[0x80, 0x00]),
            Err(FormatError::NonCanonicalVarint { .. })
        ));
        assert!(matches!(
            decode(&[0x81, 0x80, 0x00]),
            Err(FormatError::NonCanonicalVarint { .. })
        ));
        let mut max = vec![0xff; 9];
        max.push(0x01);
        assert_eq!(decode(&max).unwrap(), u64::MAX);
        max[9] = 0x02;
        assert!(matches!(
            decode(&max),
            Err(FormatError::VarintOverflow { .. })
        ));
        max[9] = 0x81;
        assert!(matches!(
            decode(&max),
            Err(FormatError::VarintOverflow { .. })
        ));
        assert!(matches!(
            decode(&[0x80]),
            Err(FormatError::Truncated { .. })
        ));
        assert!(matches!(decode(&[]), Err(FormatError::Truncated { .. })));
    }
}
