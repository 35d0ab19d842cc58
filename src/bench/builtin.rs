//! The codecs that run inside this process: idfcodec itself and PNG through the `image` crate.
//! Their peak memory is the growth of this process's peak RSS ([`super::memory::PeakMeter`]).

use std::path::Path;
use std::time::Instant;

use anyhow::Result;
use idfcodec_codec::format::PixelFormat;
use idfcodec_codec::{archive_format, Candidate, NamedImage};
use image::codecs::png::{CompressionType, FilterType, PngEncoder};
use image::{DynamicImage, ImageFormat};

use super::memory;
use super::{Codec, Family, Outcome, Picture, Trial};
use crate::coding::{Coded, Coding, RoundTrip};
use crate::picture::codec_image;

/// idfcodec with one model (and, later, one effort level): a round trip in memory through the
/// codec crate, exactly as `idfcodec verify` does it.
pub struct Idfcodec {
    name: String,
    settings: String,
    trips: RoundTrip,
}

impl Idfcodec {
    /// An entry for `coding`'s model (none given: the embedded models of each pixel format, as
    /// its effort says). The model is loaded here, so that a wrong `--model` fails before any
    /// work. With `name_effort`, the entry's name ends in `@e<effort>`.
    pub fn new(coding: Coding, name_effort: bool) -> Result<Self> {
        let mut name = match coding.model_arg() {
            Some(model) => format!("idfcodec:{model}"),
            None => "idfcodec".to_string(),
        };
        if name_effort {
            name.push_str(&format!("@e{}", coding.effort));
        }
        // gray and RGB images use the learned model(s) of the effort (loaded here); other formats
        // are context-coded
        let models = |format| -> Result<String> {
            Ok(coding
                .plan(format)?
                .candidates
                .iter()
                .map(Candidate::name)
                .collect::<Vec<_>>()
                .join(" | "))
        };
        let (gray, rgb) = (models(PixelFormat::Gray8)?, models(PixelFormat::Rgb8)?);
        let (tile, threads, effort) = (coding.tile, coding.threads, coding.effort);
        let settings = format!(
            "effort {effort}; gray: {gray}; rgb: {rgb}; other formats: context coding; tile {}, {threads} thread{}",
            tile.map_or("default".to_string(), |t| t.to_string()),
            if threads == 1 { "" } else { "s" }
        );
        Ok(Idfcodec {
            name,
            settings,
            trips: RoundTrip::new(coding),
        })
    }
}

impl Codec for Idfcodec {
    fn name(&self) -> &str {
        &self.name
    }

    fn settings(&self) -> String {
        self.settings.clone()
    }

    fn family(&self) -> Family {
        Family::Idfcodec
    }

    fn code(&mut self, picture: &Picture, _scratch: &Path) -> Outcome {
        let image = match codec_image(picture.pixels.clone()) {
            Ok(image) => image,
            Err(color) => return Outcome::Unsupported(color),
        };
        // the model is loaded outside the measurement (once per run, not per image)
        if let Err(e) = self.trips.coding().plan(image.pixel_format()) {
            return Outcome::Failed(format!("{e:#}"));
        }
        measured(|| self.trips.run(&image))
    }

    fn code_archive(&mut self, images: &[NamedImage]) -> Option<Outcome> {
        let format = match archive_format(images) {
            Ok(format) => format,
            Err(e) => return Some(Outcome::Unsupported(e.to_string())),
        };
        // the model is loaded outside the measurement
        if let Err(e) = self.trips.coding().plan(format) {
            return Some(Outcome::Failed(format!("{e:#}")));
        }
        Some(measured(|| self.trips.run_archive(images)))
    }
}

/// A checked round trip as an outcome, with the peak memory it took.
fn measured(round_trip: impl FnOnce() -> Result<Coded>) -> Outcome {
    match memory::measure(round_trip) {
        (Ok(coded), peak_memory) => Outcome::Coded(Trial {
            bytes: coded.bytes,
            encode: coded.encode,
            decode: coded.decode,
            peak_memory,
        }),
        (Err(e), _) => Outcome::Failed(format!("{e:#}")),
    }
}

/// PNG as the `image` crate writes it at its best compression (adaptive filters): the
/// reference of the "vs PNG" column.
pub struct Png;

/// The name of the [`Png`] entry.
pub const PNG: &str = "png";

impl Codec for Png {
    fn name(&self) -> &str {
        PNG
    }

    fn settings(&self) -> String {
        "image crate, best compression, adaptive filters".to_string()
    }

    fn family(&self) -> Family {
        Family::Baseline
    }

    fn code(&mut self, picture: &Picture, _scratch: &Path) -> Outcome {
        let (result, peak_memory) = memory::measure(|| -> Result<(u64, DynamicImage, _, _)> {
            let start = Instant::now();
            let png = encode_png(&picture.pixels, CompressionType::Best)?;
            let encode = start.elapsed();
            let start = Instant::now();
            let decoded = image::load_from_memory_with_format(&png, ImageFormat::Png)?;
            Ok((png.len() as u64, decoded, encode, start.elapsed()))
        });
        match result {
            Ok((bytes, decoded, encode, decode)) => picture.check(
                &decoded,
                Trial {
                    bytes,
                    encode,
                    decode,
                    peak_memory,
                },
            ),
            Err(e) => Outcome::Failed(format!("{e:#}")),
        }
    }
}

/// `pixels` as a PNG file (adaptive filters), compressed as asked.
pub fn encode_png(pixels: &DynamicImage, compression: CompressionType) -> Result<Vec<u8>> {
    let mut png = Vec::new();
    pixels.write_with_encoder(PngEncoder::new_with_quality(
        &mut png,
        compression,
        FilterType::Adaptive,
    ))?;
    Ok(png)
}

/// Reads and decodes an image file (the output of a tool) as `format`.
pub fn decode_file(path: &Path, format: ImageFormat) -> Result<DynamicImage> {
    let bytes = std::fs::read(path)?;
    Ok(image::load_from_memory_with_format(&bytes, format)?)
}
