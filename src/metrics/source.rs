//! Where the images a metric compares come from, as written on the command line:
//!
//! - `DATASET:SPLIT` or `DATASET:SPLIT[RANGE]`: a split of MNIST or Fashion-MNIST (`mnist:test`,
//!   `fashion-mnist:train[..5000]`, `mnist:test[1000..2000]`); `RANGE` is `A..B` (images A to B−1),
//!   `A..` or `..B`, counted from 0 in the dataset's own order.
//! - `run:DIR`, or a folder holding a training run (`checkpoint.json`): images sampled from the
//!   run's model ([`ImageSource::Run`]: [`RUN_SAMPLES`] of them unless a limit is given, drawn
//!   from the model's prior with seed [`RUN_SEED`]; needs the `train` feature).
//! - anything else: a folder of PNG/JPEG images, all of one size, taken in file-name order
//!   (`./mnist:test` names a folder that looks like a dataset split).

use std::fmt;
use std::ops::Range;
use std::path::{Path, PathBuf};
use std::str::FromStr;

use crate::data::{self, DataError, Dataset, FolderImages, ImageSet, Split};

/// One side of a comparison.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ImageSource {
    /// A dataset split, optionally narrowed to `start..end` (`None`: from 0 / to the end).
    Dataset {
        dataset: Dataset,
        split: Split,
        start: Option<usize>,
        end: Option<usize>,
    },
    /// A folder of images.
    Folder(PathBuf),
    /// Images sampled from a training run's model (its folder).
    Run(PathBuf),
}

/// What can go wrong reading a source.
#[derive(Debug, thiserror::Error)]
pub enum SourceError {
    #[error("{spec}: {why}")]
    Syntax { spec: String, why: String },
    #[error("{spec}: images {start}..{end} asked for, but the split has {count}")]
    OutOfRange {
        spec: String,
        start: usize,
        end: usize,
        count: usize,
    },
    /// The run cannot be read or cannot generate images (an IDF run), or this build has no
    /// libtorch.
    #[error("{}: {why}", .dir.display())]
    Run { dir: PathBuf, why: String },
    #[error("{0}")]
    Data(#[from] DataError),
}

impl FromStr for ImageSource {
    type Err = SourceError;

    fn from_str(spec: &str) -> Result<Self, SourceError> {
        let syntax = |why: String| SourceError::Syntax {
            spec: spec.to_string(),
            why,
        };
        if let Some(dir) = spec.strip_prefix("run:") {
            return Ok(ImageSource::Run(PathBuf::from(dir)));
        }
        let Some((name, rest)) = spec.split_once(':') else {
            return Ok(Self::folder_or_run(spec));
        };
        let Ok(dataset) = name.parse::<Dataset>() else {
            return Ok(Self::folder_or_run(spec));
        };
        let (split, range) = match rest.split_once('[') {
            None => (rest, None),
            Some((split, range)) => {
                let range = range.strip_suffix(']').ok_or_else(|| {
                    syntax("a range is written [A..B], [A..] or [..B], closed by ]".into())
                })?;
                (split, Some(range))
            }
        };
        let split: Split = split.parse().map_err(|e| syntax(format!("{e}")))?;
        let (start, end) = match range {
            None => (None, None),
            Some(r) => parse_range(r).map_err(syntax)?,
        };
        Ok(ImageSource::Dataset {
            dataset,
            split,
            start,
            end,
        })
    }
}

/// `A..B`, `A..`, `..B` → bounds, with `A ≤ B`.
fn parse_range(r: &str) -> Result<(Option<usize>, Option<usize>), String> {
    let (a, b) = r
        .split_once("..")
        .ok_or_else(|| format!("range [{r}] is not of the form [A..B], [A..] or [..B]"))?;
    let bound = |s: &str| -> Result<Option<usize>, String> {
        if s.is_empty() {
            Ok(None)
        } else {
            s.trim()
                .parse()
                .map(Some)
                .map_err(|_| format!("{s:?} in [{r}] is not an image index"))
        }
    };
    let (a, b) = (bound(a)?, bound(b)?);
    if let (Some(a), Some(b)) = (a, b) {
        if a >= b {
            return Err(format!("range [{r}] is empty"));
        }
    }
    Ok((a, b))
}

impl ImageSource {
    /// A path: a run if the folder holds a run's `checkpoint.json`, else a folder of images.
    fn folder_or_run(path: &str) -> Self {
        let path = PathBuf::from(path);
        if path.join("checkpoint.json").is_file() {
            ImageSource::Run(path)
        } else {
            ImageSource::Folder(path)
        }
    }

    /// The dataset the images are of, when the source says (a dataset split).
    pub fn dataset(&self) -> Option<Dataset> {
        match self {
            ImageSource::Dataset { dataset, .. } => Some(*dataset),
            _ => None,
        }
    }

    /// Opens the source: for a dataset the split is read (and narrowed), for a folder only the
    /// image headers (sizes known and checked, nothing decoded yet). `limit` keeps the first
    /// `limit` images.
    pub fn open(&self, data_dir: &Path, limit: Option<usize>) -> Result<Opened, SourceError> {
        match self {
            ImageSource::Dataset {
                dataset,
                split,
                start,
                end,
            } => {
                let set = data::load(data_dir, *dataset, *split)?;
                let start_at = start.unwrap_or(0);
                let end_at = end.unwrap_or(set.count);
                if start_at >= end_at || end_at > set.count {
                    return Err(SourceError::OutOfRange {
                        spec: self.to_string(),
                        start: start_at,
                        end: end_at,
                        count: set.count,
                    });
                }
                let end_at = limit.map_or(end_at, |n| end_at.min(start_at + n));
                Ok(Opened::Set(narrow(set, start_at..end_at)))
            }
            ImageSource::Folder(dir) => Ok(Opened::Folder(FolderImages::scan(dir, limit)?)),
            ImageSource::Run(dir) => sample_run(dir, limit.unwrap_or(RUN_SAMPLES)).map(Opened::Set),
        }
    }
}

/// How many images a run gives when no limit (`--n`) is set.
pub const RUN_SAMPLES: usize = 1000;
/// The seed a run's samples are drawn with (so a run's scores are reproducible).
pub const RUN_SEED: u64 = 0;

/// `n` images sampled from the run in `dir`, in batches (seeds `RUN_SEED`, `RUN_SEED + 1`, ...).
#[cfg(feature = "train")]
fn sample_run(dir: &Path, n: usize) -> Result<ImageSet, SourceError> {
    use crate::nn::generative;
    const BATCH: usize = 250;
    let fail = |why: String| SourceError::Run {
        dir: dir.to_path_buf(),
        why,
    };
    let (model, _) =
        generative::load_run(dir, tch::Device::Cpu).map_err(|e| fail(e.to_string()))?;
    let mut pixels = Vec::new();
    let mut shape = (0, 0, 0);
    for (k, start) in (0..n).step_by(BATCH).enumerate() {
        let count = BATCH.min(n - start);
        let images = generative::sample(model.as_ref(), count as i64, RUN_SEED + k as u64);
        let size = images.size();
        shape = (size[1] as usize, size[2] as usize, size[3] as usize);
        pixels.extend(Vec::<u8>::try_from(images.flatten(0, -1)).map_err(|e| fail(e.to_string()))?);
    }
    Ok(ImageSet {
        count: n,
        channels: shape.0,
        height: shape.1,
        width: shape.2,
        pixels,
        labels: None,
    })
}

#[cfg(not(feature = "train"))]
fn sample_run(dir: &Path, _n: usize) -> Result<ImageSet, SourceError> {
    Err(SourceError::Run {
        dir: dir.to_path_buf(),
        why: "sampling a run needs the `train` feature (libtorch): build without \
              --no-default-features"
            .into(),
    })
}

/// `set` narrowed to `range`, without copying when it is the whole set.
fn narrow(set: ImageSet, range: Range<usize>) -> ImageSet {
    if range == (0..set.count) {
        set
    } else {
        set.range(range)
    }
}

impl fmt::Display for ImageSource {
    /// The source as it is written on the command line (a canonical form).
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ImageSource::Dataset {
                dataset,
                split,
                start,
                end,
            } => {
                write!(f, "{dataset}:{split}")?;
                if start.is_some() || end.is_some() {
                    f.write_str("[")?;
                    if let Some(a) = start {
                        write!(f, "{a}")?;
                    }
                    f.write_str("..")?;
                    if let Some(b) = end {
                        write!(f, "{b}")?;
                    }
                    f.write_str("]")?;
                }
                Ok(())
            }
            ImageSource::Folder(dir) => write!(f, "{}", dir.display()),
            ImageSource::Run(dir) => write!(f, "run:{}", dir.display()),
        }
    }
}

/// An opened source: images in memory, or a folder whose headers were read.
#[derive(Debug)]
pub enum Opened {
    Set(ImageSet),
    Folder(FolderImages),
}

/// The geometry of an opened source, known before its pixels are decoded.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Geometry {
    pub count: usize,
    /// 1 (gray) or 3 (colour).
    pub channels: usize,
    pub height: usize,
    pub width: usize,
}

impl Opened {
    pub fn geometry(&self) -> Geometry {
        match self {
            Opened::Set(s) => Geometry {
                count: s.count,
                channels: s.channels,
                height: s.height,
                width: s.width,
            },
            Opened::Folder(f) => Geometry {
                count: f.count(),
                channels: if f.colour { 3 } else { 1 },
                height: f.height,
                width: f.width,
            },
        }
    }

    /// The images, with `channels` channels: a folder's are decoded so (gray replicated, colour
    /// turned to luma); a dataset's must already have them.
    pub fn load(self, channels: usize) -> Result<ImageSet, SourceError> {
        match self {
            Opened::Set(s) if s.channels == channels => Ok(s),
            Opened::Set(s) => Err(DataError::Config(format!(
                "{} channel(s) asked of a set of {}-channel images",
                channels, s.channels
            ))
            .into()),
            Opened::Folder(f) => Ok(f.load(channels)?),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(s: &str) -> ImageSource {
        s.parse().unwrap()
    }

    #[test]
    fn dataset_specs_parse_and_print_back() {
        for s in [
            "mnist:test",
            "fashion-mnist:train[..5000]",
            "mnist:test[1000..2000]",
            "mnist:train[10..]",
        ] {
            assert_eq!(parse(s).to_string(), s);
        }
        assert_eq!(
            parse("mnist:test[0..1000]"),
            ImageSource::Dataset {
                dataset: Dataset::Mnist,
                split: Split::Test,
                start: Some(0),
                end: Some(1000)
            }
        );
        assert_eq!(parse("mnist:test").dataset(), Some(Dataset::Mnist));
    }

    #[test]
    fn folders_runs_and_bad_specs() {
        assert_eq!(parse("samples/"), ImageSource::Folder("samples/".into()));
        assert_eq!(
            parse("./mnist:test"),
            ImageSource::Folder("./mnist:test".into())
        );
        assert_eq!(parse("svhn:test"), ImageSource::Folder("svhn:test".into()));
        assert_eq!(parse("run:runs/vae"), ImageSource::Run("runs/vae".into()));
        for bad in [
            "mnist:valid",
            "mnist:test[5..2]",
            "mnist:test[1..2",
            "mnist:test[a..2]",
            "mnist:test[3]",
        ] {
            assert!(
                matches!(bad.parse::<ImageSource>(), Err(SourceError::Syntax { .. })),
                "{bad}"
            );
        }
    }
}
