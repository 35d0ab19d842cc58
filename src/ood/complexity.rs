//! An image's complexity as generic lossless coders measure it, in coded bytes (Serrà et al.,
//! ICLR 2020, with real files rather than an estimate): PNG through the `image` crate at its best
//! compression, the codec's context coder (no model), and the best of the classical command-line
//! codecs installed (`cwebp -lossless -z 9`, `cjxl -d 0 -e 9`, `optipng -o5`: `idfcodec bench`'s
//! runners, every file decoded back and checked).

use anyhow::{bail, Result};
use idfcodec_codec::Image;
use image::codecs::png::CompressionType;
use image::DynamicImage;

use super::model::context_coded_bytes;
use crate::bench::builtin::encode_png;
use crate::bench::external::Tool;
use crate::bench::{Codec, Outcome, Picture};

/// One image's generic code lengths in bytes.
#[derive(Clone, Debug, PartialEq)]
pub struct Complexity {
    pub png: u64,
    pub context: u64,
    /// The smallest file of the installed classical codecs, with the codec's name (`None`: none
    /// is installed).
    pub classical: Option<(u64, String)>,
}

/// The generic coders of one run: the classical tools found installed, and a scratch folder for
/// their files.
pub struct Generic {
    tools: Vec<Tool>,
    scratch: tempfile::TempDir,
}

impl Generic {
    /// The classical codecs installed, and a note for each one that is not.
    pub fn installed() -> Result<(Generic, Vec<String>)> {
        let mut notes = Vec::new();
        let tools = [Tool::webp(), Tool::jxl(9, 1), Tool::optipng()]
            .into_iter()
            .filter(|t| match t.check_installed() {
                Ok(()) => true,
                Err(note) => {
                    notes.push(note);
                    false
                }
            })
            .collect();
        let scratch = tempfile::Builder::new().prefix("idfcodec-ood").tempdir()?;
        Ok((Generic { tools, scratch }, notes))
    }

    /// The classical codecs in use, by name.
    pub fn classical_names(&self) -> Vec<String> {
        self.tools.iter().map(|t| t.name().to_string()).collect()
    }

    /// The code lengths of one image (`pixels` and `image` the same picture; `name` for
    /// messages).
    pub fn measure(
        &mut self,
        name: &str,
        pixels: &DynamicImage,
        image: &Image,
    ) -> Result<Complexity> {
        let png = encode_png(pixels, CompressionType::Best)?.len() as u64;
        let context = context_coded_bytes(image)?;
        let mut classical: Option<(u64, String)> = None;
        if !self.tools.is_empty() {
            let picture = Picture::from_pixels(name, pixels.clone(), self.scratch.path())?;
            for tool in &mut self.tools {
                let bytes = match tool.code(&picture, self.scratch.path()) {
                    Outcome::Coded(trial) => trial.bytes,
                    Outcome::Unsupported(why) | Outcome::Failed(why) => {
                        bail!("{}: {name}: {why}", tool.name())
                    }
                };
                if classical.as_ref().map_or(true, |(b, _)| bytes < *b) {
                    classical = Some((bytes, tool.name().to_string()));
                }
            }
        }
        Ok(Complexity {
            png,
            context,
            classical,
        })
    }
}
