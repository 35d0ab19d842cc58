//! A read position in a byte slice whose errors say what was being read.

use super::{varint, FormatError};
use byteorder::{LittleEndian, ReadBytesExt};

/// Reads fields front to back; every method names its field for [`FormatError::Truncated`].
pub struct Cursor<'a> {
    rest: &'a [u8],
}

impl<'a> Cursor<'a> {
    /// Starts at the beginning of `bytes`.
    pub fn new(bytes: &'a [u8]) -> Self {
        Cursor { rest: bytes }
    }

    /// Bytes not read yet.
    pub fn remaining(&self) -> usize {
        self.rest.len()
    }

    /// Everything not read yet, without consuming it.
    pub fn rest(&self) -> &'a [u8] {
        self.rest
    }

    /// Everything not read yet.
    pub fn into_rest(self) -> &'a [u8] {
        self.rest
    }

    /// One byte.
    pub fn u8(&mut self, what: &'static str) -> Result<u8, FormatError> {
        self.rest
            .read_u8()
            .map_err(|_| FormatError::Truncated { what })
    }

    /// A little-endian `u32`.
    pub fn u32_le(&mut self, what: &'static str) -> Result<u32, FormatError> {
        self.rest
            .read_u32::<LittleEndian>()
            .map_err(|_| FormatError::Truncated { what })
    }

    /// A little-endian `u64`.
    pub fn u64_le(&mut self, what: &'static str) -> Result<u64, FormatError> {
        self.rest
            .read_u64::<LittleEndian>()
            .map_err(|_| FormatError::Truncated { what })
    }

    /// A canonical LEB128 varint.
    pub fn varint(&mut self, what: &'static str) -> Result<u64, FormatError> {
        varint::read(self, what)
    }

    /// The next `len` bytes, without copying.
    pub fn take(&mut self, len: u64, what: &'static str) -> Result<&'a [u8], FormatError> {
        let len = usize::try_from(len)
            .ok()
            .filter(|&n| n <= self.rest.len())
            .ok_or(FormatError::Truncated { what })?;
        let (head, tail) = self.rest.split_at(len);
        self.rest = tail;
        Ok(head)
    }
}
