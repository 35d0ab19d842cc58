//! Learned models: the model file every family shares ([`file`](mod@file): its family tag, architecture,
//! card and tensors), [`Model`] (a loaded model of any family), the interface the image
//! pipeline codes a tile's planes through (`planes.rs`), and one folder per family:
//!
//! - [`idf`]: integer discrete flows;
//! - [`vae`]: variational autoencoders, coded by bits-back ANS.
//!
//! A new family gets a folder here with its architecture config, its weights loaded for the
//! engine and its `PlaneModel` implementation, a variant of [`Family`] and one arm in each
//! `match` of this file (see `docs/STRUCTURE.md`, "Adding a model family").

pub mod file;
pub mod idf;
mod planes;
pub mod vae;

pub use file::{Family, ARCH_KEY, CARD_KEY, FAMILY_KEY, MAX_PARAMETERS};
pub(crate) use planes::PlaneModel;

use crate::Result;
use idf::Idf;
use vae::Vae;

/// A loaded learned model of any [`Family`], ready to code images on the engine.
///
/// ```
/// use idfcodec_codec::{format::PixelFormat, Family, Model, Registry};
///
/// let entry = Registry::embedded().default_for(PixelFormat::Gray8).expect("a gray model");
/// let model = entry.model()?;
/// assert_eq!((model.family(), model.planes()), (Family::Idf, 1));
/// let bytes = model.to_safetensors(model.card())?;
/// assert_eq!(Model::from_safetensors(&bytes)?.id(), model.id());
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Clone, Debug, PartialEq)]
pub struct Model {
    learned: Learned,
}

/// The family's own model.
#[derive(Clone, Debug, PartialEq)]
enum Learned {
    Idf(Idf),
    Vae(Vae),
}

impl From<Idf> for Model {
    fn from(idf: Idf) -> Model {
        Model {
            learned: Learned::Idf(idf),
        }
    }
}

impl From<Vae> for Model {
    fn from(vae: Vae) -> Model {
        Model {
            learned: Learned::Vae(vae),
        }
    }
}

impl Model {
    /// Parses and validates a model file of any family (see [`file`](mod@file); a file without a family
    /// tag is an IDF file). Checks the architecture, the parameter count against
    /// [`MAX_PARAMETERS`], and every tensor's presence, dtype and shape before copying any
    /// weights.
    pub fn from_safetensors(bytes: &[u8]) -> Result<Model> {
        let info = file::metadata(bytes)?;
        Ok(match file::family(&info)? {
            Family::Idf => Idf::from_safetensors(bytes)?.into(),
            Family::Vae => Vae::from_safetensors(bytes)?.into(),
        })
    }

    /// Serialises the model with `card` (a JSON object) as its card.
    pub fn to_safetensors(&self, card: &serde_json::Value) -> Result<Vec<u8>> {
        match &self.learned {
            Learned::Idf(m) => m.to_safetensors(card),
            Learned::Vae(m) => m.to_safetensors(card),
        }
    }

    /// Its family.
    pub fn family(&self) -> Family {
        match &self.learned {
            Learned::Idf(_) => Family::Idf,
            Learned::Vae(_) => Family::Vae,
        }
    }

    /// The 64-bit identity of the weights and architecture, which files coded with it name.
    pub fn id(&self) -> u64 {
        match &self.learned {
            Learned::Idf(m) => m.id(),
            Learned::Vae(m) => m.id(),
        }
    }

    /// The model card (a JSON object).
    pub fn card(&self) -> &serde_json::Value {
        match &self.learned {
            Learned::Idf(m) => m.card(),
            Learned::Vae(m) => m.card(),
        }
    }

    /// Its number of parameters.
    pub fn parameter_count(&self) -> usize {
        match &self.learned {
            Learned::Idf(m) => m.config().parameter_count(),
            Learned::Vae(m) => m.config().parameter_count(),
        }
    }

    /// A one-line description of its architecture, for listings.
    pub fn summary(&self) -> String {
        match &self.learned {
            Learned::Idf(m) => m.config().summary(),
            Learned::Vae(m) => m.config().summary(),
        }
    }

    /// The IDF, if it is one.
    pub fn idf(&self) -> Option<&Idf> {
        match &self.learned {
            Learned::Idf(m) => Some(m),
            Learned::Vae(_) => None,
        }
    }

    /// Whether the model codes with bits back (a VAE): its archives chain their entries on one
    /// stream ([`crate::ArchiveLayout`]).
    pub fn uses_bits_back(&self) -> bool {
        self.coder().bits_back()
    }

    /// The VAE, if it is one.
    pub fn vae(&self) -> Option<&Vae> {
        match &self.learned {
            Learned::Vae(m) => Some(m),
            Learned::Idf(_) => None,
        }
    }

    /// How many leading 8-bit planes of an image it codes: 1 (gray) or 3 (RGB).
    pub fn planes(&self) -> usize {
        self.coder().planes()
    }

    /// Tile sides are padded to a multiple of this.
    pub fn size_multiple(&self) -> usize {
        self.coder().size_multiple()
    }

    /// The family's coding of a tile's planes.
    pub(crate) fn coder(&self) -> &dyn PlaneModel {
        match &self.learned {
            Learned::Idf(m) => m,
            Learned::Vae(m) => m,
        }
    }
}
