//! A folder of PNG/JPEG images (e.g. `data/photos/train`) as a source of random square patches.
//!
//! Which files count: [`list_images`] takes the regular files directly in the folder whose extension is
//! `png`, `jpg` or `jpeg` (any case), sorted by name; anything else (`SHA256SUMS`, `README`, sub-folders)
//! is skipped without a note. A file with an image extension that does not decode is an error naming it:
//! a broken training image should be noticed, not silently dropped.
//!
//! [`PatchSampler`] decodes every image once, converts it to 8-bit grayscale or RGB (alpha dropped,
//! 16-bit scaled), keeps it in memory (at most [`MAX_TOTAL_PIXELS`] pixels in all, checked from each
//! header before decoding) and draws crops from a seeded ChaCha8 generator, so a seed gives the same
//! batches on every run and machine. Each crop is uniform over all crop positions of all images, so
//! large images give proportionally more patches; images smaller than the patch are rejected.

use std::path::{Path, PathBuf};

use image::{DynamicImage, ImageDecoder, ImageReader};
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;

use super::{DataError, ImageSet};

/// Default limit on the pixels a [`PatchSampler`] keeps in memory (2^28 ≈ 268 Mpx, 805 MB as RGB).
pub const MAX_TOTAL_PIXELS: u64 = 1 << 28;

/// File extensions taken as images (compared case-insensitively).
const IMAGE_EXTENSIONS: [&str; 3] = ["png", "jpg", "jpeg"];

/// The PNG and JPEG files directly in `dir`, sorted by file name; an error if there are none.
pub fn list_images(dir: &Path) -> Result<Vec<PathBuf>, DataError> {
    let entries = std::fs::read_dir(dir).map_err(|e| DataError::io(dir, e))?;
    let mut images = Vec::new();
    for entry in entries {
        let entry = entry.map_err(|e| DataError::io(dir, e))?;
        let path = entry.path();
        if has_image_extension(&path) && path.is_file() {
            images.push(path);
        }
    }
    if images.is_empty() {
        return Err(DataError::NoImages {
            dir: dir.to_path_buf(),
        });
    }
    images.sort_by(|a, b| a.file_name().cmp(&b.file_name()));
    Ok(images)
}

/// Whether the file name ends in one of [`IMAGE_EXTENSIONS`].
fn has_image_extension(path: &Path) -> bool {
    path.extension()
        .and_then(|e| e.to_str())
        .is_some_and(|e| IMAGE_EXTENSIONS.iter().any(|x| x.eq_ignore_ascii_case(e)))
}

/// The whole images of a folder (the files [`list_images`] takes), all of one size, as 8-bit gray
/// or RGB. [`FolderImages::scan`] reads only the headers, so sizes, colour and the memory they need
/// are known (and checked) before anything is decoded; [`FolderImages::load`] decodes them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FolderImages {
    /// The folder.
    pub dir: PathBuf,
    /// The image files, sorted by name (the first `limit` of them when one was given).
    pub paths: Vec<PathBuf>,
    /// Width of every image.
    pub width: usize,
    /// Height of every image.
    pub height: usize,
    /// Whether any image has colour (else all are grayscale, with or without alpha).
    pub colour: bool,
}

impl FolderImages {
    /// Reads the headers of the first `limit` images of `dir` (all: `None`); an error when they
    /// differ in size or together exceed [`MAX_TOTAL_PIXELS`].
    pub fn scan(dir: &Path, limit: Option<usize>) -> Result<Self, DataError> {
        let mut paths = list_images(dir)?;
        if let Some(n) = limit {
            if n == 0 {
                return Err(DataError::Config("a limit of 0 images".into()));
            }
            paths.truncate(n);
        }
        let mut size = None;
        let mut colour = false;
        let mut total = 0u64;
        for path in &paths {
            let decoder = open_decoder(path)?;
            let (width, height) = decoder.dimensions();
            colour |= decoder.color_type().has_color();
            match size {
                None => size = Some((width, height, path.clone())),
                Some((w, h, ref first)) if (w, h) != (width, height) => {
                    return Err(DataError::SizeMismatch {
                        path: path.clone(),
                        width,
                        height,
                        first: first.clone(),
                        first_width: w,
                        first_height: h,
                    })
                }
                Some(_) => {}
            }
            total += u64::from(width) * u64::from(height);
            if total > MAX_TOTAL_PIXELS {
                return Err(DataError::TooManyPixels {
                    dir: dir.to_path_buf(),
                    at: path.clone(),
                    limit: MAX_TOTAL_PIXELS,
                });
            }
        }
        let (width, height, _) = size.expect("list_images returns at least one image");
        Ok(FolderImages {
            dir: dir.to_path_buf(),
            paths,
            width: width as usize,
            height: height as usize,
            colour,
        })
    }

    /// Number of images.
    pub fn count(&self) -> usize {
        self.paths.len()
    }

    /// Decodes every image as 8-bit gray (`channels` 1: colour converted to luma) or RGB (3: gray
    /// replicated), alpha dropped, into an [`ImageSet`] without labels (CHW per image).
    pub fn load(&self, channels: usize) -> Result<ImageSet, DataError> {
        if channels != 1 && channels != 3 {
            return Err(DataError::Config(format!(
                "channels must be 1 or 3, not {channels}"
            )));
        }
        let plane = self.width * self.height;
        let mut pixels = Vec::with_capacity(self.count() * channels * plane);
        for path in &self.paths {
            let picture = decode(path, open_decoder(path)?, channels)?;
            if (picture.width, picture.height) != (self.width, self.height) {
                // the file changed since `scan`
                return Err(DataError::SizeMismatch {
                    path: path.clone(),
                    width: picture.width as u32,
                    height: picture.height as u32,
                    first: self.paths[0].clone(),
                    first_width: self.width as u32,
                    first_height: self.height as u32,
                });
            }
            // HWC → CHW
            for c in 0..channels {
                pixels.extend(picture.pixels.iter().skip(c).step_by(channels));
            }
        }
        Ok(ImageSet {
            count: self.count(),
            channels,
            height: self.height,
            width: self.width,
            pixels,
            labels: None,
        })
    }
}

/// How patches are cut.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PatchConfig {
    /// Side of the square patches in pixels.
    pub size: usize,
    /// 1 (grayscale) or 3 (RGB).
    pub channels: usize,
    /// Seed of the crop generator.
    pub seed: u64,
    /// Whether half the patches (at random) are mirrored left to right.
    pub flips: bool,
}

impl PatchConfig {
    /// Rejects a zero size or a channel count other than 1 or 3.
    fn validate(&self) -> Result<(), DataError> {
        if self.size == 0 {
            return Err(DataError::Config("patch size must be at least 1".into()));
        }
        if self.channels != 1 && self.channels != 3 {
            return Err(DataError::Config(format!(
                "channels must be 1 or 3, not {}",
                self.channels
            )));
        }
        Ok(())
    }
}

/// One decoded image, pixels interleaved (HWC).
struct Picture {
    width: usize,
    height: usize,
    pixels: Vec<u8>,
}

/// Random patches from the images of one folder, decoded once and kept in memory.
pub struct PatchSampler {
    config: PatchConfig,
    pictures: Vec<Picture>,
    /// Running total of crop positions: picture `k` owns positions `crop_ends[k-1]..crop_ends[k]`.
    crop_ends: Vec<u64>,
    rng: ChaCha8Rng,
}

impl PatchSampler {
    /// Decodes every image of `dir` (see [`list_images`]), keeping at most [`MAX_TOTAL_PIXELS`] pixels.
    pub fn open(dir: &Path, config: PatchConfig) -> Result<Self, DataError> {
        Self::open_limited(dir, config, MAX_TOTAL_PIXELS)
    }

    /// As [`PatchSampler::open`], with the limit on the total pixels kept in memory given.
    pub fn open_limited(
        dir: &Path,
        config: PatchConfig,
        max_pixels: u64,
    ) -> Result<Self, DataError> {
        config.validate()?;
        let mut pictures = Vec::new();
        let mut budget = max_pixels;
        for path in list_images(dir)? {
            let decoder = open_decoder(&path)?;
            let (width, height) = decoder.dimensions();
            if (width as usize) < config.size || (height as usize) < config.size {
                return Err(DataError::TooSmall {
                    path,
                    width,
                    height,
                    patch: config.size,
                });
            }
            let pixels = u64::from(width) * u64::from(height);
            if pixels > budget {
                return Err(DataError::TooManyPixels {
                    dir: dir.to_path_buf(),
                    at: path,
                    limit: max_pixels,
                });
            }
            budget -= pixels;
            pictures.push(decode(&path, decoder, config.channels)?);
        }
        let crop_ends = crop_ends(&pictures, config.size);
        Ok(PatchSampler {
            config,
            pictures,
            crop_ends,
            rng: ChaCha8Rng::seed_from_u64(config.seed),
        })
    }

    /// Number of images held.
    pub fn image_count(&self) -> usize {
        self.pictures.len()
    }

    /// Pixels held, all images together.
    pub fn total_pixels(&self) -> u64 {
        self.pictures
            .iter()
            .map(|p| (p.width * p.height) as u64)
            .sum()
    }

    /// Bytes per patch: `channels × size × size`.
    pub fn patch_len(&self) -> usize {
        self.config.channels * self.config.size * self.config.size
    }

    /// The next `n` patches, `n × channels × size × size` bytes, CHW within each patch.
    /// Panics only if that byte count overflows `usize`.
    pub fn sample_batch(&mut self, n: usize) -> Vec<u8> {
        let len = self.patch_len();
        let mut out = vec![
            0u8;
            n.checked_mul(len)
                .expect("patch batch size overflows usize")
        ];
        for patch in out.chunks_exact_mut(len) {
            self.sample_into(patch);
        }
        out
    }

    /// Draws one crop position (and flip) and copies that patch into `out` as CHW.
    fn sample_into(&mut self, out: &mut [u8]) {
        let total = *self
            .crop_ends
            .last()
            .expect("a sampler holds at least one image");
        let r = self.rng.gen_range(0..total);
        let flip = self.config.flips && self.rng.gen::<bool>();
        let k = self.crop_ends.partition_point(|&end| end <= r);
        let offset = r - if k == 0 { 0 } else { self.crop_ends[k - 1] };
        let picture = &self.pictures[k];
        let across = (picture.width - self.config.size + 1) as u64;
        let origin = ((offset % across) as usize, (offset / across) as usize);
        copy_patch(picture, origin, flip, self.config, out);
    }
}

impl std::fmt::Debug for PatchSampler {
    /// The configuration and sizes, not the pixels.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PatchSampler")
            .field("config", &self.config)
            .field("images", &self.image_count())
            .field("total_pixels", &self.total_pixels())
            .finish_non_exhaustive()
    }
}

/// Opens an image file and reads its header (the format is guessed from the content).
fn open_decoder(path: &Path) -> Result<impl ImageDecoder, DataError> {
    ImageReader::open(path)
        .and_then(|r| r.with_guessed_format())
        .map_err(|e| DataError::io(path, e))?
        .into_decoder()
        .map_err(|source| DataError::Decode {
            path: path.to_path_buf(),
            source,
        })
}

/// Decodes the image behind `decoder` as 8-bit gray (`channels` 1) or RGB (3), interleaved.
fn decode(path: &Path, decoder: impl ImageDecoder, channels: usize) -> Result<Picture, DataError> {
    let image = DynamicImage::from_decoder(decoder).map_err(|source| DataError::Decode {
        path: path.to_path_buf(),
        source,
    })?;
    let (width, height) = (image.width() as usize, image.height() as usize);
    let pixels = match channels {
        1 => image.into_luma8().into_raw(),
        _ => image.into_rgb8().into_raw(),
    };
    Ok(Picture {
        width,
        height,
        pixels,
    })
}

/// Running totals of the crop positions `(w - size + 1) × (h - size + 1)` of each picture.
fn crop_ends(pictures: &[Picture], size: usize) -> Vec<u64> {
    pictures
        .iter()
        .scan(0u64, |total, p| {
            *total += ((p.width - size + 1) * (p.height - size + 1)) as u64;
            Some(*total)
        })
        .collect()
}

/// Copies the patch at `origin` (x, y) of `picture`, mirrored if `flip`, into `out` as CHW.
fn copy_patch(
    picture: &Picture,
    origin: (usize, usize),
    flip: bool,
    config: PatchConfig,
    out: &mut [u8],
) {
    let (size, channels) = (config.size, config.channels);
    let (x0, y0) = origin;
    for y in 0..size {
        let row_start = ((y0 + y) * picture.width + x0) * channels;
        let row = &picture.pixels[row_start..row_start + size * channels];
        for x in 0..size {
            let src = if flip { size - 1 - x } else { x } * channels;
            for c in 0..channels {
                out[(c * size + y) * size + x] = row[src + c];
            }
        }
    }
}
