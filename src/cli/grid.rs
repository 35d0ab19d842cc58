//! What `sample`, `reconstruct` and `interpolate` share: the run they draw from, the PNG grid
//! they write (never over an existing file without `--force`) and the device.

use clap::Args;
use std::path::PathBuf;

/// The run and the output of a grid-drawing subcommand.
#[derive(Debug, Args)]
pub struct GridRun {
    /// Run folder (checkpoint.safetensors + checkpoint.json, as `idfcodec train` writes it).
    pub run: PathBuf,
    /// Output PNG file (a grid of the images).
    #[arg(long)]
    pub out: PathBuf,
    /// cpu, cuda or cuda:N.
    #[arg(long, default_value = "cpu")]
    pub device: String,
    /// Replace an existing --out file.
    #[arg(long)]
    pub force: bool,
}

#[cfg(feature = "train")]
impl GridRun {
    /// The run's model as a generator, and its state; refuses first an existing `--out` without
    /// `--force`, so nothing is loaded for a grid that could not be written.
    pub fn load(
        &self,
    ) -> anyhow::Result<(
        Box<dyn crate::nn::generative::Generative>,
        crate::train::checkpoint::RunState,
    )> {
        super::io::check_not_clobbering(&self.out, self.force)?;
        let device = crate::device::select(&self.device).map_err(anyhow::Error::msg)?;
        Ok(crate::nn::generative::load_run(&self.run, device)?)
    }

    /// Writes `images` (`u8`, `N×C×H×W`) as a grid of `columns` per row to `--out`.
    pub fn write(&self, images: &tch::Tensor, columns: usize) -> anyhow::Result<()> {
        let png = crate::nn::generative::grid_png(images, columns)?;
        super::io::write_file(&self.out, &png, self.force)
    }
}
