//! `idfcodec export`: a training checkpoint → `models/NAME.safetensors` + `models/NAME.md`.

use clap::Args;
use std::path::PathBuf;

#[derive(Debug, Args)]
#[command(
    after_help = "Example:\n  idfcodec export runs/fmnist --name fashion-mnist   # writes models/fashion-mnist.{safetensors,md}"
)]
pub struct ExportArgs {
    /// Run folder holding checkpoint.safetensors and checkpoint.json.
    pub run: PathBuf,
    /// Model name (file stem and the name shown by `idfcodec models`).
    #[arg(long)]
    pub name: String,
    /// Output folder.
    #[arg(long, default_value = "models")]
    pub out_dir: PathBuf,
    /// Replace existing model files.
    #[arg(long)]
    pub force: bool,
    /// Test images on which the engine's NLL is compared with the float model's (0: skip).
    #[arg(long, default_value_t = 200)]
    pub check_images: usize,
    /// Buckets of a hierarchical VAE's layers below the top: `fitted` (the default for a
    /// hierarchy) fits each dimension's grid to the training set's aggregate posterior, so the
    /// coded rate stays at the ELBO whatever scale the layer took; `standard` keeps the standard
    /// normal's grid (as models exported before). A one-layer VAE has no such layer.
    #[arg(long, value_enum)]
    pub latent_grids: Option<GridChoice>,
}

/// `--latent-grids`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum GridChoice {
    Standard,
    Fitted,
}

#[cfg(not(feature = "train"))]
pub fn run(_: ExportArgs) -> anyhow::Result<()> {
    Err(super::needs_train_feature("export"))
}

#[cfg(feature = "train")]
pub fn run(a: ExportArgs) -> anyhow::Result<()> {
    let report = crate::export::export(&crate::export::ExportJob {
        run: a.run,
        name: a.name,
        out_dir: a.out_dir,
        force: a.force,
        check_images: a.check_images,
        latent_grids: a.latent_grids.map(|g| match g {
            GridChoice::Standard => idfcodec_codec::model::vae::LatentGrids::Standard,
            GridChoice::Fitted => idfcodec_codec::model::vae::LatentGrids::Fitted,
        }),
    })?;
    println!("{report}");
    Ok(())
}
