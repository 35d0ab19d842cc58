//! Training and evaluation data: MNIST-style IDX datasets ([`load`]) and folders of PNG/JPEG images
//! sampled as random patches ([`folder::PatchSampler`]).
//!
//! Datasets live under the data dir ([`data_dir`]), one folder per dataset, as `scripts/fetch-data`
//! writes them: `DIR/mnist/train-images-idx3-ubyte`, `DIR/fashion-mnist/t10k-labels-idx1-ubyte`, ...
//! A gzipped copy under the same name, or under the name plus `.gz`, is read as well.

mod error;
pub mod folder;
pub mod idx;

use std::fmt;
use std::path::{Path, PathBuf};
use std::str::FromStr;

pub use error::DataError;
pub use folder::{list_images, FolderImages, PatchConfig, PatchSampler};

/// Environment variable naming the data dir.
pub const DATA_ENV: &str = "IDFCODEC_DATA";

/// The IDX datasets this crate knows.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Dataset {
    /// Handwritten digits, 28×28 grayscale.
    Mnist,
    /// Zalando's clothing images, 28×28 grayscale.
    FashionMnist,
}

impl Dataset {
    /// Every dataset, in a fixed order.
    pub const ALL: [Dataset; 2] = [Dataset::Mnist, Dataset::FashionMnist];

    /// Folder name under the data dir; also the name `scripts/fetch-data` and [`FromStr`] take.
    pub fn dir_name(&self) -> &'static str {
        match self {
            Dataset::Mnist => "mnist",
            Dataset::FashionMnist => "fashion-mnist",
        }
    }
}

impl fmt::Display for Dataset {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.dir_name())
    }
}

/// A dataset name that is not one of [`Dataset::ALL`].
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("unknown dataset '{0}' (known: mnist, fashion-mnist)")]
pub struct UnknownDataset(pub String);

impl FromStr for Dataset {
    type Err = UnknownDataset;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Dataset::ALL
            .into_iter()
            .find(|d| d.dir_name() == s)
            .ok_or_else(|| UnknownDataset(s.to_string()))
    }
}

/// Which part of a dataset.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Split {
    /// The training images (60000 for MNIST and Fashion-MNIST).
    Train,
    /// The test images (10000).
    Test,
}

impl Split {
    /// Both splits, in a fixed order.
    pub const ALL: [Split; 2] = [Split::Train, Split::Test];

    /// The split's name, as [`FromStr`] takes it: `train`, `test`.
    pub fn name(&self) -> &'static str {
        match self {
            Split::Train => "train",
            Split::Test => "test",
        }
    }

    /// Prefix of the IDX file names (`train`, `t10k`).
    fn file_prefix(&self) -> &'static str {
        match self {
            Split::Train => "train",
            Split::Test => "t10k",
        }
    }
}

impl fmt::Display for Split {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// A split name other than `train` or `test`.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("unknown split {0:?} (train or test)")]
pub struct UnknownSplit(pub String);

impl FromStr for Split {
    type Err = UnknownSplit;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Split::ALL
            .into_iter()
            .find(|x| x.name() == s)
            .ok_or_else(|| UnknownSplit(s.to_string()))
    }
}

/// A set of same-sized 8-bit images, stored one after another.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ImageSet {
    /// Number of images.
    pub count: usize,
    /// Channels per image (1 for the IDX datasets).
    pub channels: usize,
    /// Image height in pixels.
    pub height: usize,
    /// Image width in pixels.
    pub width: usize,
    /// `count × channels × height × width` bytes, channel-major (CHW) within each image.
    pub pixels: Vec<u8>,
    /// One class label per image, when the dataset has them.
    pub labels: Option<Vec<u8>>,
}

impl ImageSet {
    /// Bytes per image: `channels × height × width`.
    pub fn image_len(&self) -> usize {
        self.channels * self.height * self.width
    }

    /// The CHW bytes of image `i`. Panics if `i >= count`.
    pub fn image(&self, i: usize) -> &[u8] {
        assert!(i < self.count, "image {i} of a set of {}", self.count);
        let n = self.image_len();
        &self.pixels[i * n..(i + 1) * n]
    }

    /// The label of image `i`, if the set has labels.
    pub fn label(&self, i: usize) -> Option<u8> {
        self.labels.as_ref().and_then(|l| l.get(i).copied())
    }

    /// Images `range` (and their labels) as a set of their own. Panics if the range is not
    /// within `0..count`.
    pub fn range(&self, range: std::ops::Range<usize>) -> ImageSet {
        assert!(
            range.start <= range.end && range.end <= self.count,
            "images {range:?} of a set of {}",
            self.count
        );
        let n = self.image_len();
        ImageSet {
            count: range.len(),
            pixels: self.pixels[range.start * n..range.end * n].to_vec(),
            labels: self.labels.as_ref().map(|l| l[range.clone()].to_vec()),
            ..*self
        }
    }
}

/// The data dir: `$IDFCODEC_DATA` if set and not empty, else `data` (relative to the current dir).
pub fn data_dir() -> PathBuf {
    match std::env::var_os(DATA_ENV) {
        Some(dir) if !dir.is_empty() => PathBuf::from(dir),
        _ => PathBuf::from("data"),
    }
}

/// Loads one split of an IDX dataset from `dir` (the data dir holding `mnist/`, `fashion-mnist/`, ...).
pub fn load(dir: &Path, ds: Dataset, split: Split) -> Result<ImageSet, DataError> {
    let images_path = find_file(dir, ds, split, "images-idx3-ubyte")?;
    let labels_path = find_file(dir, ds, split, "labels-idx1-ubyte")?;
    let images = idx::read(&images_path, 3)?;
    let labels = idx::read(&labels_path, 1)?;
    let (count, height, width) = (images.dims[0], images.dims[1], images.dims[2]);
    if labels.data.len() != count {
        return Err(DataError::LabelCount {
            path: labels_path,
            images: count,
            labels: labels.data.len(),
        });
    }
    Ok(ImageSet {
        count,
        channels: 1,
        height,
        width,
        pixels: images.data,
        labels: Some(labels.data),
    })
}

/// The path of one IDX file: `DIR/<dataset>/<split>-<kind>`, else the same with `.gz`.
fn find_file(dir: &Path, ds: Dataset, split: Split, kind: &str) -> Result<PathBuf, DataError> {
    let plain = dir
        .join(ds.dir_name())
        .join(format!("{}-{kind}", split.file_prefix()));
    let gz = plain.with_file_name(format!("{}-{kind}.gz", split.file_prefix()));
    if plain.is_file() {
        Ok(plain)
    } else if gz.is_file() {
        Ok(gz)
    } else {
        Err(DataError::Missing {
            path: plain,
            fetch: ds.dir_name(),
        })
    }
}

/// `count` patches cut once from the images of `dir` (see [`PatchSampler`]) as an [`ImageSet`]
/// without labels. The size is checked before the patches are allocated.
pub fn patch_set(dir: &Path, config: PatchConfig, count: usize) -> Result<ImageSet, DataError> {
    let mut sampler = PatchSampler::open(dir, config)?;
    if count == 0
        || count
            .checked_mul(sampler.patch_len())
            .map_or(true, |b| b > MAX_PATCH_BYTES)
    {
        return Err(DataError::Config(format!(
            "{count} patches of {} bytes: between 1 and {MAX_PATCH_BYTES} bytes in all are allowed",
            sampler.patch_len()
        )));
    }
    Ok(ImageSet {
        count,
        channels: config.channels,
        height: config.size,
        width: config.size,
        pixels: sampler.sample_batch(count),
        labels: None,
    })
}

/// Most bytes [`patch_set`] cuts at once (4 GiB).
pub const MAX_PATCH_BYTES: usize = 1 << 32;
