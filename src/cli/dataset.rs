//! `idfcodec dataset-png`: write a dataset split's images as PNG files, one per image, so that
//! `verify`, `compress --archive` and the classical codecs can be run on exactly the same images.

use anyhow::{Context, Result};
use clap::Args;
use std::path::PathBuf;

use crate::data::{self, Dataset, Split};

#[derive(Debug, Args)]
#[command(
    after_help = "Example:\n  idfcodec dataset-png --dataset fashion-mnist --split test --out data/png/fashion-mnist-test"
)]
pub struct DatasetPngArgs {
    /// mnist or fashion-mnist.
    #[arg(long)]
    pub dataset: String,
    /// train or test.
    #[arg(long, default_value = "test")]
    pub split: String,
    /// Output folder (created; existing files are never overwritten).
    #[arg(long)]
    pub out: PathBuf,
    /// Only the first N images.
    #[arg(long)]
    pub limit: Option<usize>,
    /// Data folder (default: $IDFCODEC_DATA, else ./data).
    #[arg(long)]
    pub data_dir: Option<PathBuf>,
}

pub fn run(a: DatasetPngArgs) -> Result<()> {
    let ds: Dataset = a.dataset.parse()?;
    let split: Split = a.split.parse()?;
    let set = data::load(&a.data_dir.unwrap_or_else(data::data_dir), ds, split)?;
    anyhow::ensure!(
        set.channels == 1,
        "only grayscale datasets are written as PNG"
    );
    std::fs::create_dir_all(&a.out).with_context(|| format!("creating {}", a.out.display()))?;
    let n = a.limit.unwrap_or(set.count).min(set.count);
    for i in 0..n {
        let path = a
            .out
            .join(format!("{}-{}-{i:05}.png", ds.dir_name(), a.split));
        anyhow::ensure!(
            !path.exists(),
            "{} exists; choose an empty --out",
            path.display()
        );
        let img =
            image::GrayImage::from_raw(set.width as u32, set.height as u32, set.image(i).to_vec())
                .expect("image size matches the dataset");
        img.save(&path)
            .with_context(|| format!("writing {}", path.display()))?;
    }
    println!("wrote {n} PNG files to {}", a.out.display());
    Ok(())
}
