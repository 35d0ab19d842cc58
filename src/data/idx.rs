//! Reader for IDX files (the MNIST format), plain or gzip-compressed.
//!
//! Layout: a 4-byte magic `00 00 08 n` (unsigned bytes, `n` dimensions: `0x00000803` for images,
//! `0x00000801` for labels), `n` big-endian `u32` sizes, then the data, one byte per element.
//! Compression is detected from the content (gzip magic `1f 8b`), not from the file name.
//! Every size is checked before the data buffer is allocated: against the file size for plain files,
//! and against the compressed size times deflate's maximum ratio (and [`MAX_IDX_BYTES`]) for gzip.

use std::fs::File;
use std::io::{BufRead, BufReader, ErrorKind, Read};
use std::path::Path;

use flate2::read::MultiGzDecoder;

use super::DataError;

/// Element type code of unsigned bytes, the only one datasets here use.
const UBYTE: u8 = 0x08;
/// The two bytes that open a gzip stream.
const GZIP_MAGIC: [u8; 2] = [0x1f, 0x8b];
/// Deflate expands at most about 1032:1; a gzip file claiming more data than this is corrupt.
const MAX_DEFLATE_RATIO: u64 = 1032;
/// Largest data payload accepted from one IDX file (4 GiB).
pub const MAX_IDX_BYTES: u64 = 1 << 32;
/// Most dimensions accepted in a header.
const MAX_DIMS: u8 = 4;

/// The magic number of an unsigned-byte IDX file with `ndim` dimensions (`0x803` for images, `0x801` for labels).
pub fn magic(ndim: u8) -> u32 {
    u32::from_be_bytes([0, 0, UBYTE, ndim])
}

/// The contents of one IDX file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IdxArray {
    /// Sizes from the header, outermost first (e.g. `[count, height, width]`).
    pub dims: Vec<usize>,
    /// The elements in row-major order; `data.len()` is the product of `dims`.
    pub data: Vec<u8>,
}

/// Reads an unsigned-byte IDX file with exactly `ndim` dimensions (plain or gzip).
pub fn read(path: &Path, ndim: u8) -> Result<IdxArray, DataError> {
    let file = File::open(path).map_err(|e| DataError::io(path, e))?;
    let file_len = file.metadata().map_err(|e| DataError::io(path, e))?.len();
    let mut buffered = BufReader::new(file);
    let head = buffered.fill_buf().map_err(|e| DataError::io(path, e))?;
    let gzip = head.starts_with(&GZIP_MAGIC);
    let mut reader: Box<dyn Read> = if gzip {
        Box::new(MultiGzDecoder::new(buffered))
    } else {
        Box::new(buffered)
    };
    let dims = read_header(&mut reader, path, ndim)?;
    let header_len = 4 + 4 * u64::from(ndim);
    let payload = payload_len(&dims, path)?;
    check_payload(
        path,
        payload,
        Source {
            file_len,
            header_len,
            gzip,
        },
    )?;
    let data = read_payload(&mut reader, path, payload)?;
    Ok(IdxArray {
        dims: dims.into_iter().map(|d| d as usize).collect(),
        data,
    })
}

/// How the bytes of one IDX file are stored, for the size checks.
struct Source {
    /// Size of the file on disk.
    file_len: u64,
    /// Size of the (uncompressed) header.
    header_len: u64,
    /// Whether the file is gzip-compressed.
    gzip: bool,
}

/// Reads and checks the magic and the `ndim` big-endian sizes.
fn read_header(reader: &mut impl Read, path: &Path, ndim: u8) -> Result<Vec<u32>, DataError> {
    let want = magic(ndim);
    let got = read_u32(reader, path, "magic number")?;
    if got != want {
        return Err(DataError::corrupt(path, describe_magic(got, want)));
    }
    (0..ndim)
        .map(|i| read_u32(reader, path, &format!("size of dimension {i}")))
        .collect()
}

/// Explains why a magic number is not the expected one.
fn describe_magic(got: u32, want: u32) -> String {
    let [z0, z1, kind, ndim] = got.to_be_bytes();
    let what = if u16::from_be_bytes([z0, z1]) != 0 {
        "not an IDX header".to_string()
    } else if kind != UBYTE {
        format!("element type 0x{kind:02x}, not unsigned bytes (0x08)")
    } else if ndim == 0 || ndim > MAX_DIMS {
        format!("{ndim} dimensions")
    } else {
        format!("{ndim} dimensions, expected {}", want & 0xff)
    };
    format!("magic 0x{got:08x}, expected 0x{want:08x} ({what})")
}

/// Reads one big-endian `u32`, naming `what` if the file ends first.
fn read_u32(reader: &mut impl Read, path: &Path, what: &str) -> Result<u32, DataError> {
    let mut bytes = [0u8; 4];
    reader
        .read_exact(&mut bytes)
        .map_err(|e| read_error(path, e, &format!("truncated header: no {what}")))?;
    Ok(u32::from_be_bytes(bytes))
}

/// The number of data bytes the header announces.
fn payload_len(dims: &[u32], path: &Path) -> Result<u64, DataError> {
    dims.iter()
        .try_fold(1u64, |acc, &d| acc.checked_mul(u64::from(d)))
        .ok_or_else(|| DataError::corrupt(path, format!("sizes {dims:?} overflow")))
}

/// Checks the announced payload against what the file can hold, before anything is allocated.
fn check_payload(path: &Path, payload: u64, src: Source) -> Result<(), DataError> {
    if payload > MAX_IDX_BYTES {
        return Err(DataError::corrupt(
            path,
            format!("header announces {payload} data bytes, above the {MAX_IDX_BYTES} limit"),
        ));
    }
    if src.gzip {
        let most = src.file_len.saturating_mul(MAX_DEFLATE_RATIO);
        if payload > most {
            return Err(DataError::corrupt(
                path,
                format!("header announces {payload} data bytes; {} gzip bytes cannot hold more than {most}", src.file_len),
            ));
        }
    } else if src.header_len + payload != src.file_len {
        let held = src.file_len.saturating_sub(src.header_len);
        let how = if held < payload {
            "truncated"
        } else {
            "trailing bytes"
        };
        return Err(DataError::corrupt(
            path,
            format!("{how}: header announces {payload} data bytes, the file holds {held}"),
        ));
    }
    usize::try_from(payload).map_err(|_| {
        DataError::corrupt(path, format!("{payload} data bytes do not fit in memory"))
    })?;
    Ok(())
}

/// Reads exactly `payload` bytes and checks that nothing follows.
fn read_payload(reader: &mut impl Read, path: &Path, payload: u64) -> Result<Vec<u8>, DataError> {
    let mut data = vec![0u8; payload as usize];
    reader.read_exact(&mut data).map_err(|e| {
        read_error(
            path,
            e,
            &format!("truncated: header announces {payload} data bytes"),
        )
    })?;
    let mut extra = [0u8; 1];
    match reader.read(&mut extra) {
        Ok(0) => Ok(data),
        Ok(_) => Err(DataError::corrupt(
            path,
            format!("trailing bytes after the {payload} announced data bytes"),
        )),
        Err(e) => Err(read_error(path, e, "gzip stream ends before its trailer")),
    }
}

/// Maps a read error: early end of file → `truncated` (with `context`), bad gzip → corrupt, else I/O.
fn read_error(path: &Path, e: std::io::Error, context: &str) -> DataError {
    match e.kind() {
        ErrorKind::UnexpectedEof => DataError::corrupt(path, context),
        ErrorKind::InvalidInput | ErrorKind::InvalidData => {
            DataError::corrupt(path, format!("bad gzip stream: {e}"))
        }
        _ => DataError::io(path, e),
    }
}
