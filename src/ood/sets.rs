//! The image sets an OOD comparison reads, as written on the command line: every source
//! `idfcodec metrics` takes ([`ImageSource`]: `mnist:test[..1000]`, a folder of same-sized
//! images), and three made here:
//!
//! - `patches:SIZE:DIR`: square `SIZE`×`SIZE` RGB patches cut at seeded random places from the
//!   photos of `DIR` (the photo model's data, [`PatchSampler`]);
//! - `noise`: uniform noise, every sample drawn independently from 0..=255;
//! - `constant`: images of one colour each (a random value per channel).
//!
//! `noise` and `constant` take the in-distribution set's geometry, so they cannot be it. A set
//! of another geometry than the in-distribution one is an error unless fitted
//! ([`Fit::Resize`]: gray replicated to RGB or RGB turned to luma, then resized with a triangle
//! filter), and the report says what was done.

use std::fmt;
use std::path::{Path, PathBuf};
use std::str::FromStr;

use anyhow::{bail, Context, Result};
use image::imageops::{self, FilterType};
use image::{DynamicImage, GrayImage, RgbImage};
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;

use crate::data::{ImageSet, PatchConfig, PatchSampler};
use crate::metrics::source::ImageSource;

/// One set of images as written on the command line.
#[derive(Clone, Debug, PartialEq)]
pub enum SetSpec {
    Source(ImageSource),
    Patches { size: usize, dir: PathBuf },
    Noise,
    Constant,
}

impl FromStr for SetSpec {
    type Err = anyhow::Error;

    fn from_str(spec: &str) -> Result<Self> {
        match spec {
            "noise" => return Ok(SetSpec::Noise),
            "constant" => return Ok(SetSpec::Constant),
            _ => {}
        }
        if let Some(rest) = spec.strip_prefix("patches:") {
            let (size, dir) = rest
                .split_once(':')
                .with_context(|| format!("{spec}: patches are written patches:SIZE:DIR"))?;
            let size: usize = size
                .parse()
                .ok()
                .filter(|&s| (1..=4096).contains(&s))
                .with_context(|| format!("{spec}: the patch size must be 1 to 4096"))?;
            return Ok(SetSpec::Patches {
                size,
                dir: dir.into(),
            });
        }
        Ok(SetSpec::Source(spec.parse()?))
    }
}

impl fmt::Display for SetSpec {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            SetSpec::Source(s) => write!(f, "{s}"),
            SetSpec::Patches { size, dir } => write!(f, "patches:{size}:{}", dir.display()),
            SetSpec::Noise => f.write_str("noise"),
            SetSpec::Constant => f.write_str("constant"),
        }
    }
}

/// What to do with a set whose geometry differs from the in-distribution set's.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Fit {
    /// An error.
    Refuse,
    /// Channels converted and images resized to the in-distribution geometry.
    Resize,
}

/// Images, channel count and side lengths.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Geometry {
    pub channels: usize,
    pub height: usize,
    pub width: usize,
}

impl fmt::Display for Geometry {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let kind = if self.channels == 1 { "gray" } else { "RGB" };
        write!(f, "{}×{} {kind}", self.width, self.height)
    }
}

impl Geometry {
    pub fn of(set: &ImageSet) -> Geometry {
        Geometry {
            channels: set.channels,
            height: set.height,
            width: set.width,
        }
    }
}

/// A loaded set: its name (the spec), the images, and what was done to fit them.
#[derive(Debug)]
pub struct LoadedSet {
    pub name: String,
    pub images: ImageSet,
    pub fitted: Option<String>,
}

/// The seed of `patches`, `noise` and `constant` (so every run reads the same images).
pub const SET_SEED: u64 = 0;

impl SetSpec {
    /// Loads at most `limit` images (`noise`, `constant`: exactly `limit`). `target`: the
    /// in-distribution geometry (`None` while loading that set itself).
    pub fn load(
        &self,
        data_dir: &Path,
        limit: usize,
        target: Option<Geometry>,
        fit: Fit,
    ) -> Result<LoadedSet> {
        if limit == 0 {
            bail!("{self}: a limit of 0 images leaves nothing to score");
        }
        let name = self.to_string();
        let made = |what: &str| -> Result<Geometry> {
            target.with_context(|| {
                format!("{what} takes the in-distribution set's geometry, so it cannot be that set")
            })
        };
        let images = match self {
            SetSpec::Source(source) => {
                // with its own channels: converting them is fitting
                let opened = source.open(data_dir, Some(limit))?;
                let channels = opened.geometry().channels;
                opened.load(channels)?
            }
            SetSpec::Patches { size, dir } => {
                let channels = 3;
                let mut sampler = PatchSampler::open(
                    dir,
                    PatchConfig {
                        size: *size,
                        channels,
                        seed: SET_SEED,
                        flips: false,
                    },
                )?;
                ImageSet {
                    count: limit,
                    channels,
                    height: *size,
                    width: *size,
                    pixels: sampler.sample_batch(limit),
                    labels: None,
                }
            }
            SetSpec::Noise => synthetic(made("noise")?, limit, |rng, out| {
                out.iter_mut().for_each(|p| *p = rng.gen())
            }),
            SetSpec::Constant => {
                let g = made("constant")?;
                let plane = g.height * g.width;
                synthetic(g, limit, |rng, out| {
                    for c in out.chunks_exact_mut(plane) {
                        c.fill(rng.gen());
                    }
                })
            }
        };
        if images.count == 0 {
            bail!("{name}: no images");
        }
        let Some(target) = target else {
            return Ok(LoadedSet {
                name,
                images,
                fitted: None,
            });
        };
        let have = Geometry::of(&images);
        if have == target {
            return Ok(LoadedSet {
                name,
                images,
                fitted: None,
            });
        }
        match fit {
            Fit::Refuse => bail!(
                "{name} holds {have} images, the in-distribution set {target} ones: pass --fit \
                 to convert and resize them"
            ),
            Fit::Resize => Ok(LoadedSet {
                name,
                fitted: Some(format!("{have} → {target}")),
                images: resized(&images, target)?,
            }),
        }
    }
}

/// `count` images of `g` filled by `fill(rng, image)` from [`SET_SEED`].
fn synthetic(g: Geometry, count: usize, fill: impl Fn(&mut ChaCha8Rng, &mut [u8])) -> ImageSet {
    let mut rng = ChaCha8Rng::seed_from_u64(SET_SEED);
    let len = g.channels * g.height * g.width;
    let mut pixels = vec![0u8; count * len];
    for image in pixels.chunks_exact_mut(len) {
        fill(&mut rng, image);
    }
    ImageSet {
        count,
        channels: g.channels,
        height: g.height,
        width: g.width,
        pixels,
        labels: None,
    }
}

/// Image `i` of `set` (CHW) as a decoded picture (gray or RGB).
pub fn picture(set: &ImageSet, i: usize) -> DynamicImage {
    let (w, h) = (set.width as u32, set.height as u32);
    let x = set.image(i);
    match set.channels {
        1 => DynamicImage::ImageLuma8(
            GrayImage::from_raw(w, h, x.to_vec()).expect("a CHW gray image fills its buffer"),
        ),
        _ => {
            let plane = set.width * set.height;
            let hwc = (0..plane)
                .flat_map(|p| (0..3).map(move |c| x[c * plane + p]))
                .collect();
            DynamicImage::ImageRgb8(
                RgbImage::from_raw(w, h, hwc).expect("a CHW RGB image fills its buffer"),
            )
        }
    }
}

/// Every image of `set` converted to `target`'s channels and resized to its sides.
fn resized(set: &ImageSet, target: Geometry) -> Result<ImageSet> {
    if target.channels != 1 && target.channels != 3 {
        bail!(
            "{} channels: only gray and RGB sets can be fitted",
            target.channels
        );
    }
    let (w, h) = (target.width as u32, target.height as u32);
    let plane = target.width * target.height;
    let mut pixels = Vec::with_capacity(set.count * target.channels * plane);
    for i in 0..set.count {
        let p = picture(set, i);
        match target.channels {
            1 => pixels
                .extend(imageops::resize(&p.to_luma8(), w, h, FilterType::Triangle).into_raw()),
            _ => {
                let rgb = imageops::resize(&p.to_rgb8(), w, h, FilterType::Triangle).into_raw();
                for c in 0..3 {
                    pixels.extend(rgb.iter().skip(c).step_by(3));
                }
            }
        }
    }
    Ok(ImageSet {
        count: set.count,
        channels: target.channels,
        height: target.height,
        width: target.width,
        pixels,
        labels: None,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn specs_parse_and_print_back() {
        for s in [
            "noise",
            "constant",
            "patches:32:data/photos/test",
            "mnist:test[..500]",
        ] {
            assert_eq!(s.parse::<SetSpec>().unwrap().to_string(), s);
        }
        assert_eq!(
            "patches:32:a:b".parse::<SetSpec>().unwrap(),
            SetSpec::Patches {
                size: 32,
                dir: "a:b".into()
            }
        );
        for bad in ["patches:0:x", "patches:x", "patches:99999:x", "mnist:valid"] {
            assert!(bad.parse::<SetSpec>().is_err(), "{bad}");
        }
    }

    #[test]
    fn made_sets_take_the_target_geometry_and_fitting_is_explicit() {
        let g = Geometry {
            channels: 3,
            height: 8,
            width: 4,
        };
        let dir = Path::new("unused");
        let noise = SetSpec::Noise.load(dir, 5, Some(g), Fit::Refuse).unwrap();
        assert_eq!((Geometry::of(&noise.images), noise.images.count), (g, 5));
        let constant = SetSpec::Constant
            .load(dir, 2, Some(g), Fit::Refuse)
            .unwrap();
        for i in 0..2 {
            for plane in constant.images.image(i).chunks(32) {
                assert!(plane.iter().all(|&p| p == plane[0]));
            }
        }
        assert!(SetSpec::Noise.load(dir, 5, None, Fit::Refuse).is_err());
        assert!(SetSpec::Noise.load(dir, 0, Some(g), Fit::Refuse).is_err());
        // a gray 2×2 set fitted to RGB 4×4: gray replicated to three equal planes
        let gray = ImageSet {
            count: 1,
            channels: 1,
            height: 2,
            width: 2,
            pixels: vec![10, 10, 10, 10],
            labels: None,
        };
        let rgb = Geometry {
            channels: 3,
            height: 4,
            width: 4,
        };
        let fitted = resized(&gray, rgb).unwrap();
        assert_eq!(Geometry::of(&fitted), rgb);
        assert!(fitted.pixels.iter().all(|&p| p == 10));
    }
}
