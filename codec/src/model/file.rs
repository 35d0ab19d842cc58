//! The model file every learned family shares: one safetensors file whose `__metadata__` holds
//! [`FAMILY_KEY`] (which family reads the rest; absent in files written before families were
//! tagged, which are IDF files), [`ARCH_KEY`] (the family's architecture as JSON) and
//! [`CARD_KEY`] (a free-form JSON object: training data, steps, test bpd, ...), and whose tensors
//! are all `F32`, named and shaped as the family's architecture says.

use std::collections::HashMap;
use std::fmt;

use safetensors::{tensor::TensorView, Dtype, SafeTensors};

use crate::{CodecError, Result};

/// Metadata key of the family tag ([`Family::tag`]).
pub const FAMILY_KEY: &str = "idfcodec.family";
/// Metadata key of the architecture JSON.
pub const ARCH_KEY: &str = "idfcodec.arch";
/// Metadata key of the model card JSON.
pub const CARD_KEY: &str = "idfcodec.card";
/// Largest model accepted, in parameters (1 GiB of `f32`).
pub const MAX_PARAMETERS: usize = 1 << 28;

/// A family of learned models the codec can run.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum Family {
    /// Integer discrete flows ([`crate::model::idf`]).
    Idf,
    /// Variational autoencoders coded by bits-back ANS ([`crate::model::vae`]).
    Vae,
}

impl Family {
    /// Every family this build knows.
    pub const ALL: [Family; 2] = [Family::Idf, Family::Vae];

    /// The tag stored under [`FAMILY_KEY`].
    pub fn tag(self) -> &'static str {
        match self {
            Family::Idf => "idf",
            Family::Vae => "vae",
        }
    }

    /// The family a tag names.
    pub fn from_tag(tag: &str) -> Option<Family> {
        Family::ALL.into_iter().find(|f| f.tag() == tag)
    }
}

impl fmt::Display for Family {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Family::Idf => "IDF",
            Family::Vae => "VAE",
        })
    }
}

pub(crate) fn invalid(msg: impl Into<String>) -> CodecError {
    CodecError::InvalidModel(msg.into())
}

/// The file's metadata map, checked to be there.
pub(crate) fn metadata(bytes: &[u8]) -> Result<HashMap<String, String>> {
    let (_, metadata) = SafeTensors::read_metadata(bytes)
        .map_err(|e| invalid(format!("not a valid safetensors file ({e:?})")))?;
    metadata
        .metadata()
        .clone()
        .ok_or_else(|| invalid("no __metadata__"))
}

/// The family a file's metadata names; files without a tag are IDF files.
pub(crate) fn family(info: &HashMap<String, String>) -> Result<Family> {
    match info.get(FAMILY_KEY) {
        None => Ok(Family::Idf),
        Some(tag) => Family::from_tag(tag).ok_or_else(|| {
            let known: Vec<_> = Family::ALL.iter().map(|f| f.tag()).collect();
            invalid(format!(
                "{FAMILY_KEY} is {tag:?}, a model family this build does not know (known: {})",
                known.join(", ")
            ))
        }),
    }
}

/// The architecture JSON, parsed as `T`.
pub(crate) fn arch<T: serde::de::DeserializeOwned>(info: &HashMap<String, String>) -> Result<T> {
    let json = info
        .get(ARCH_KEY)
        .ok_or_else(|| invalid(format!("metadata lacks {ARCH_KEY}")))?;
    serde_json::from_str(json)
        .map_err(|e| invalid(format!("{ARCH_KEY} is not a valid config: {e}")))
}

/// The model card (a JSON object).
pub(crate) fn card(info: &HashMap<String, String>) -> Result<serde_json::Value> {
    let json = info
        .get(CARD_KEY)
        .ok_or_else(|| invalid(format!("metadata lacks {CARD_KEY}")))?;
    let card: serde_json::Value =
        serde_json::from_str(json).map_err(|e| invalid(format!("{CARD_KEY} is not JSON: {e}")))?;
    if !card.is_object() {
        return Err(invalid(format!("{CARD_KEY} must be a JSON object")));
    }
    Ok(card)
}

/// The header of a model file of family `expected`, read before any tensor: refuses another
/// family's file by name, parses the architecture and checks it with `validate`, reads the card.
pub(crate) fn header<C: serde::de::DeserializeOwned>(
    bytes: &[u8],
    expected: Family,
    validate: impl FnOnce(&C) -> std::result::Result<(), String>,
) -> Result<(C, serde_json::Value)> {
    let info = metadata(bytes)?;
    let family = family(&info)?;
    if family != expected {
        let article = match expected {
            Family::Idf => "an",
            Family::Vae => "a",
        };
        return Err(invalid(format!(
            "this is a {family} model file, not {article} {expected} one"
        )));
    }
    let config: C = arch(&info)?;
    validate(&config).map_err(|e| invalid(format!("{ARCH_KEY}: {e}")))?;
    Ok((config, card(&info)?))
}

/// Refuses a model of more than [`MAX_PARAMETERS`] parameters (before anything is allocated).
pub(crate) fn check_size(count: usize) -> Result<()> {
    if count > MAX_PARAMETERS {
        return Err(invalid(format!(
            "{count} parameters exceed the limit of {MAX_PARAMETERS}"
        )));
    }
    Ok(())
}

/// The values of the `F32` tensor `name`, checked for dtype and `shape`.
pub(crate) fn tensor(tensors: &SafeTensors<'_>, name: &str, shape: &[usize]) -> Result<Vec<f32>> {
    let view = tensors
        .tensor(name)
        .map_err(|_| invalid(format!("missing tensor {name}")))?;
    if view.dtype() != Dtype::F32 {
        return Err(invalid(format!(
            "tensor {name} is {:?}, expected F32",
            view.dtype()
        )));
    }
    if view.shape() != shape {
        return Err(invalid(format!(
            "tensor {name} has shape {:?}, expected {shape:?}",
            view.shape()
        )));
    }
    Ok(view
        .data()
        .chunks_exact(4)
        .map(|b| f32::from_le_bytes([b[0], b[1], b[2], b[3]]))
        .collect())
}

/// The tensors of a file, after checking it holds exactly `expected` of them.
pub(crate) fn tensors(bytes: &[u8], expected: usize) -> Result<SafeTensors<'_>> {
    let tensors = SafeTensors::deserialize(bytes)
        .map_err(|e| invalid(format!("not a valid safetensors file ({e:?})")))?;
    if tensors.len() != expected {
        return Err(invalid(format!(
            "expected {expected} tensors, found {}",
            tensors.len()
        )));
    }
    Ok(tensors)
}

/// A model file of `family` with the architecture JSON `arch`, the card `card` (a JSON object)
/// and the tensors `(name, shape, values)`.
pub(crate) fn write(
    family: Family,
    arch: String,
    card: &serde_json::Value,
    tensors: &[(String, Vec<usize>, &[f32])],
) -> Result<Vec<u8>> {
    if !card.is_object() {
        return Err(invalid("the model card must be a JSON object"));
    }
    let bytes: Vec<Vec<u8>> = tensors
        .iter()
        .map(|(_, _, v)| v.iter().flat_map(|x| x.to_le_bytes()).collect())
        .collect();
    let views = tensors
        .iter()
        .zip(&bytes)
        .map(|((name, shape, _), b)| {
            TensorView::new(Dtype::F32, shape.clone(), b)
                .map(|v| (name.clone(), v))
                .map_err(|e| CodecError::Internal(format!("tensor {name}: {e:?}")))
        })
        .collect::<Result<Vec<_>>>()?;
    let metadata = HashMap::from([
        (FAMILY_KEY.to_string(), family.tag().to_string()),
        (ARCH_KEY.to_string(), arch),
        (CARD_KEY.to_string(), card.to_string()),
    ]);
    safetensors::serialize(views, &Some(metadata))
        .map_err(|e| CodecError::Internal(format!("safetensors serialisation failed: {e:?}")))
}

/// 64-bit FNV-1a.
pub(crate) struct Fnv1a(u64);

impl Fnv1a {
    pub(crate) fn new() -> Self {
        Fnv1a(0xcbf2_9ce4_8422_2325)
    }

    pub(crate) fn write(&mut self, bytes: &[u8]) {
        for &b in bytes {
            self.0 = (self.0 ^ b as u64).wrapping_mul(0x0000_0100_0000_01b3);
        }
    }

    pub(crate) fn finish(&self) -> u64 {
        self.0
    }
}

/// SplitMix64, a tiny deterministic generator for the families' `new_random` test models.
pub(crate) struct SplitMix64(pub(crate) u64);

impl SplitMix64 {
    pub(crate) fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }

    /// Uniform in `[-1, 1)`, exactly representable.
    pub(crate) fn symmetric(&mut self) -> f32 {
        (self.next_u64() >> 40) as f32 / (1u32 << 23) as f32 - 1.0
    }
}
