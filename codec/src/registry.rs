//! Models built into the codec (compiled in with `include_bytes!`), loaded on first use.
//!
//! Files refer to an embedded model by the low 32 bits of its id ([`crate::format::ModelRef`]),
//! so the registry's ids must differ in their low 32 bits ([`Registry::check`], run by the
//! tests). The first entry serving a pixel format is that format's default model
//! ([`Registry::default_for`]).
//!
//! **Adding a model is one line** in [`EMBEDDED`]:
//! `embedded_model!("mnist", [Gray8], "models/mnist.safetensors"),` embeds that file (the path
//! is relative to the workspace root) as the model named `mnist` for 8-bit grayscale. Once a file
//! has been written with an embedded model, that model must stay in the registry forever (or the
//! file needs `--model PATH`).

use std::sync::OnceLock;

use crate::format::{ModelRef, PixelFormat};
use crate::image::{ImageCodecError, ModelLookup, NamedModel};
use crate::Model;

/// A model as compiled in: its name, the pixel formats it serves, its safetensors bytes.
#[derive(Clone, Copy, Debug)]
pub struct EmbeddedSpec {
    /// Name shown by `idfcodec models` and accepted by `--model NAME`.
    pub name: &'static str,
    /// Pixel formats this model codes; the first entry serving a format is its default.
    pub serves: &'static [PixelFormat],
    /// The exported model file (see [`Model::from_safetensors`]).
    pub bytes: &'static [u8],
}

/// One [`EmbeddedSpec`]: name, pixel formats, model file relative to the workspace root.
#[allow(unused_macros)]
macro_rules! embedded_model {
    ($name:literal, [$($format:ident),+ $(,)?], $file:literal) => {
        EmbeddedSpec {
            name: $name,
            serves: &[$(PixelFormat::$format),+],
            bytes: include_bytes!(concat!(env!("CARGO_MANIFEST_DIR"), "/../", $file)),
        }
    };
}

/// The embedded models, defaults first. One line per model (see the module docs).
#[rustfmt::skip]
const EMBEDDED: &[EmbeddedSpec] = &[
    embedded_model!("fashion-mnist", [Gray8], "models/fashion-mnist.safetensors"),
    embedded_model!("mnist", [Gray8], "models/mnist.safetensors"),
    embedded_model!("photos", [Rgb8], "models/photos.safetensors"),
    embedded_model!("vae-fashion-mnist", [Gray8], "models/vae-fashion-mnist.safetensors"),
    embedded_model!("vae-mnist", [Gray8], "models/vae-mnist.safetensors"),
    embedded_model!("hvae-mnist", [Gray8], "models/hvae-mnist.safetensors"),
    // superseded models: kept so that every file coded with them still decodes
    embedded_model!("vae-mnist-v1", [Gray8], "models/legacy/vae-mnist-v1.safetensors"),
    embedded_model!("fashion-mnist-v5", [Gray8], "models/legacy/fashion-mnist-v5.safetensors"),
    embedded_model!("fashion-mnist-v4", [Gray8], "models/legacy/fashion-mnist-v4.safetensors"),
    embedded_model!("mnist-v2", [Gray8], "models/legacy/mnist-v2.safetensors"),
];

/// A registry entry: the spec and its lazily loaded model.
#[derive(Debug)]
pub struct RegistryEntry {
    spec: EmbeddedSpec,
    loaded: OnceLock<Result<Model, String>>,
}

impl RegistryEntry {
    /// The model's name.
    pub fn name(&self) -> &'static str {
        self.spec.name
    }

    /// The pixel formats it serves.
    pub fn serves(&self) -> &'static [PixelFormat] {
        self.spec.serves
    }

    /// Size of the embedded model file in bytes.
    pub fn file_bytes(&self) -> usize {
        self.spec.bytes.len()
    }

    /// The model, parsed on first use.
    pub fn model(&self) -> Result<&Model, ImageCodecError> {
        self.loaded
            .get_or_init(|| Model::from_safetensors(self.spec.bytes).map_err(|e| e.to_string()))
            .as_ref()
            .map_err(|reason| ImageCodecError::EmbeddedModel {
                name: self.spec.name.to_string(),
                reason: reason.clone(),
            })
    }

    /// The model with its name.
    pub fn named(&self) -> Result<NamedModel<'_>, ImageCodecError> {
        Ok(NamedModel {
            name: self.spec.name,
            model: self.model()?,
        })
    }
}

/// A set of embedded models, and how files find theirs: it is the [`ModelLookup`] that
/// [`crate::decompress`] resolves a file's model reference with.
///
/// ```
/// use idfcodec_codec::{PixelFormat, Registry};
///
/// let registry = Registry::embedded();
/// for entry in registry.entries() {
///     let model = entry.model()?; // loaded and checked on first use
///     println!("{}: {} model, id {:016x}, codes {:?}", entry.name(), model.family(), model.id(),
///              entry.serves());
/// }
/// let rgb = registry.default_for(PixelFormat::Rgb8).expect("an RGB model");
/// assert_eq!(rgb.model()?.planes(), 3);
/// assert!(registry.by_name("no such model").is_none());
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Debug)]
pub struct Registry {
    entries: Vec<RegistryEntry>,
}

impl Registry {
    /// The models built into this codec.
    pub fn embedded() -> &'static Registry {
        static REGISTRY: OnceLock<Registry> = OnceLock::new();
        REGISTRY.get_or_init(|| Registry::new(EMBEDDED.iter().copied()))
    }

    /// A registry of the given models (nothing is parsed yet).
    pub fn new(specs: impl IntoIterator<Item = EmbeddedSpec>) -> Registry {
        Registry {
            entries: specs
                .into_iter()
                .map(|spec| RegistryEntry {
                    spec,
                    loaded: OnceLock::new(),
                })
                .collect(),
        }
    }

    /// Every entry, defaults first.
    pub fn entries(&self) -> &[RegistryEntry] {
        &self.entries
    }

    /// The entry called `name`.
    pub fn by_name(&self, name: &str) -> Option<&RegistryEntry> {
        self.entries.iter().find(|e| e.name() == name)
    }

    /// The default model for `format`: the first entry serving it.
    pub fn default_for(&self, format: PixelFormat) -> Option<&RegistryEntry> {
        self.entries.iter().find(|e| e.serves().contains(&format))
    }

    /// Loads every model and checks that names and the low 32 bits of ids are distinct.
    pub fn check(&self) -> Result<(), ImageCodecError> {
        for (i, entry) in self.entries.iter().enumerate() {
            let id = entry.model()?.id();
            if ModelRef::NONE.matches(id) {
                return Err(ImageCodecError::EmbeddedModel {
                    name: entry.name().to_string(),
                    reason: "the low 32 bits of its id are 0, which files use for \"no model\""
                        .to_string(),
                });
            }
            for earlier in &self.entries[..i] {
                let clash = if earlier.name() == entry.name() {
                    Some("its name is used twice".to_string())
                } else if earlier.model()?.id() as u32 == id as u32 {
                    Some(format!(
                        "the low 32 bits of its id ({:08x}) equal those of '{}'",
                        id as u32,
                        earlier.name()
                    ))
                } else {
                    None
                };
                if let Some(reason) = clash {
                    return Err(ImageCodecError::EmbeddedModel {
                        name: entry.name().to_string(),
                        reason,
                    });
                }
            }
        }
        Ok(())
    }
}

impl ModelLookup for Registry {
    /// The entry whose id matches `wanted` (loading entries in order until one does).
    fn resolve(&self, wanted: ModelRef) -> Result<NamedModel<'_>, ImageCodecError> {
        for entry in &self.entries {
            let named = entry.named()?;
            if wanted.matches(named.model.id()) {
                return Ok(named);
            }
        }
        Err(ImageCodecError::ModelNotFound(wanted))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::IdfConfig;

    fn tiny(seed: u64) -> &'static [u8] {
        let config = IdfConfig {
            levels: 1,
            couplings: 1,
            hidden: 2,
            blocks: 0,
            mixtures: 1,
            ..IdfConfig::default()
        };
        let model = Model::from(crate::Idf::new_random(config, seed).unwrap());
        Box::leak(
            model
                .to_safetensors(&serde_json::json!({}))
                .unwrap()
                .into_boxed_slice(),
        )
    }

    fn spec(name: &'static str, bytes: &'static [u8]) -> EmbeddedSpec {
        EmbeddedSpec {
            name,
            serves: &[PixelFormat::Gray8],
            bytes,
        }
    }

    #[test]
    fn the_embedded_registry_is_consistent() {
        let registry = Registry::embedded();
        registry.check().unwrap();
        for entry in registry.entries() {
            let model = entry.model().unwrap();
            assert!(
                !entry.serves().is_empty(),
                "{} serves nothing",
                entry.name()
            );
            for &format in entry.serves() {
                assert_eq!(model.planes(), usize::from(format.channels()));
            }
            let found = registry.resolve(ModelRef::embedded(model.id())).unwrap();
            assert_eq!(found.name, entry.name());
        }
    }

    #[test]
    fn lookup_by_id_name_and_format() {
        let (a, b) = (tiny(1), tiny(2));
        let registry = Registry::new([spec("a", a), spec("b", b)]);
        registry.check().unwrap();
        let id_b = Model::from_safetensors(b).unwrap().id();
        assert_eq!(
            registry.resolve(ModelRef::embedded(id_b)).unwrap().name,
            "b"
        );
        assert_eq!(
            registry.resolve(ModelRef::external(id_b)).unwrap().name,
            "b"
        );
        assert!(matches!(
            registry.resolve(ModelRef::external(id_b ^ (1 << 40))),
            Err(ImageCodecError::ModelNotFound(_))
        ));
        assert_eq!(registry.by_name("a").unwrap().name(), "a");
        assert!(registry.by_name("c").is_none());
        assert_eq!(
            registry.default_for(PixelFormat::Gray8).unwrap().name(),
            "a"
        );
        assert!(registry.default_for(PixelFormat::Rgb8).is_none());
    }

    #[test]
    fn the_macro_embeds_a_model_file() {
        const FIXTURE: EmbeddedSpec =
            embedded_model!("test", [Gray8], "fixtures/test-model.safetensors");
        let registry = Registry::new([FIXTURE]);
        registry.check().unwrap();
        let entry = registry.default_for(PixelFormat::Gray8).unwrap();
        assert_eq!(entry.name(), "test");
        assert!(entry.file_bytes() > 1000);
        let id = entry.model().unwrap().id();
        assert_eq!(
            registry.resolve(ModelRef::embedded(id)).unwrap().name,
            "test"
        );
    }

    #[test]
    fn check_finds_clashes_and_broken_models() {
        let a = tiny(3);
        assert!(Registry::new([spec("a", a), spec("b", a)]).check().is_err());
        assert!(Registry::new([spec("a", a), spec("a", tiny(4))])
            .check()
            .is_err());
        let broken = Registry::new([spec("broken", b"not a model")]);
        assert!(matches!(
            broken.check(),
            Err(ImageCodecError::EmbeddedModel { .. })
        ));
        let err = broken.resolve(ModelRef::embedded(0)).unwrap_err();
        assert!(err.to_string().contains("broken"), "{err}");
    }
}
