//! Which model a file was coded with, so that it is never decoded with another.

use super::cursor::Cursor;
use super::FormatError;
use byteorder::{LittleEndian, WriteBytesExt};
use std::fmt;
use std::io::{self, Write};

/// The model a file needs, identified by the 64-bit id computed from its weights.
///
/// Models built into the codec are referenced by the low 32 bits of their id (4 bytes): the
/// decoder finds the embedded model whose id matches, and refuses the file if none does. A model
/// loaded from a file (`--model PATH`) is referenced by its whole id (8 bytes), so that the user
/// can be told exactly which weights are needed.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum ModelRef {
    /// A model built into the codec.
    Embedded {
        /// `id & 0xffff_ffff`.
        id_low32: u32,
    },
    /// A model given as a file.
    External {
        /// The whole id.
        id: u64,
    },
}

impl ModelRef {
    /// Reference to the embedded model with this id.
    pub fn embedded(id: u64) -> Self {
        ModelRef::Embedded {
            id_low32: id as u32,
        }
    }

    /// Reference to the external model with this id.
    pub fn external(id: u64) -> Self {
        ModelRef::External { id }
    }

    /// No learned model: every plane is coded by the context coder ([`crate::context`]). Stored
    /// as an embedded reference whose low 32 bits are 0; no embedded model has those bits
    /// ([`crate::Registry::check`]).
    pub const NONE: ModelRef = ModelRef::Embedded { id_low32: 0 };

    /// Whether this is [`ModelRef::NONE`].
    pub fn is_none(&self) -> bool {
        *self == ModelRef::NONE
    }

    /// Whether a model with this id is the one referenced.
    pub fn matches(&self, id: u64) -> bool {
        match *self {
            ModelRef::Embedded { id_low32 } => id as u32 == id_low32,
            ModelRef::External { id: stored } => id == stored,
        }
    }

    /// Refuses a model that is not the one referenced, naming both.
    pub fn verify(&self, name: &str, id: u64) -> Result<(), FormatError> {
        if self.matches(id) {
            Ok(())
        } else {
            Err(FormatError::ModelMismatch {
                file: *self,
                given_name: name.to_string(),
                given_id: id,
            })
        }
    }

    /// Whether the model is external (the flag bit that selects the id's width).
    pub fn is_external(&self) -> bool {
        matches!(self, ModelRef::External { .. })
    }

    /// Writes the id (4 or 8 bytes, little-endian); the flag is written by the caller.
    pub(super) fn write_id(&self, out: &mut impl Write) -> io::Result<()> {
        match *self {
            ModelRef::Embedded { id_low32 } => out.write_u32::<LittleEndian>(id_low32),
            ModelRef::External { id } => out.write_u64::<LittleEndian>(id),
        }
    }

    /// Reads the id whose width the flag `external` selects.
    pub(super) fn read_id(cur: &mut Cursor<'_>, external: bool) -> Result<Self, FormatError> {
        Ok(if external {
            ModelRef::External {
                id: cur.u64_le("model id")?,
            }
        } else {
            ModelRef::Embedded {
                id_low32: cur.u32_le("model id")?,
            }
        })
    }
}

impl fmt::Display for ModelRef {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ModelRef::Embedded { id_low32: 0 } => write!(f, "no model (context coding only)"),
            ModelRef::Embedded { id_low32 } => {
                write!(f, "the embedded model whose id ends in {id_low32:08x}")
            }
            ModelRef::External { id } => write!(f, "the external model with id {id:016x}"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn verify_names_both_models() {
        let id = 0x0123_4567_89ab_cdef;
        for r in [ModelRef::embedded(id), ModelRef::external(id)] {
            r.verify("m", id).unwrap();
            let err = r.verify("other", id ^ 1).unwrap_err().to_string();
            assert!(
                err.contains("89abcdef") && err.contains("0123456789abcdee"),
                "{err}"
            );
            assert!(err.contains("'other'"), "{err}");
        }
        // only the low half is stored for embedded models
        assert!(ModelRef::embedded(id).matches(id ^ (1 << 40)));
        assert!(!ModelRef::external(id).matches(id ^ (1 << 40)));
    }
}
