//! Subcommands, one file each. `main.rs` only parses and dispatches here.

use clap::{Parser, Subcommand};

pub mod bench;
pub mod compress;
pub mod dataset;
pub mod decompress;
pub mod eval;
pub mod experiment;
pub mod export;
pub mod grid;
pub mod info;
pub mod interpolate;
pub mod io;
pub mod metrics;
pub mod models;
pub mod ood;
pub mod progress;
pub mod reconstruct;
pub mod sample;
pub mod train;
pub mod verify;

/// Lossless image compression with integer discrete flows: smaller files than PNG, WebP and
/// JPEG XL, decoded bit-exactly on any machine. The same binary trains and measures the models.
#[derive(Debug, Parser)]
#[command(name = "idfcodec", version, about, long_about = None)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Compress PNG/JPEG images (every PNG pixel format) into .idf files, or many into one .idfa archive.
    Compress(compress::CompressArgs),
    /// Decompress an .idf file into a PNG, or an .idfa archive into a folder.
    Decompress(decompress::DecompressArgs),
    /// Describe .idf/.idfa files: size, pixel format, model, tiles, bytes, bits per dimension.
    Info(info::InfoArgs),
    /// Compress and decompress images in memory; check every pixel and report bits per dimension.
    Verify(verify::VerifyArgs),
    /// List the models built into this binary.
    Models(models::ModelsArgs),
    /// Compare idfcodec with PNG, optipng, oxipng, WebP, JPEG XL and JPEG-LS: size, speed, memory.
    Bench(bench::BenchArgs),
    /// Write a dataset split (MNIST, Fashion-MNIST) as PNG files, one per image.
    DatasetPng(dataset::DatasetPngArgs),
    /// Train a model (IDF, VAE, hierarchical VAE, GAN, EBM-prior VAE, NICE, RealNVP or Glow: the
    /// config's family) on MNIST, Fashion-MNIST or image patches (needs the `train` feature and
    /// libtorch).
    Train(train::TrainArgs),
    /// Report the test figure of a training checkpoint (bits/dim; a VAE's ELBO; a GAN's losses).
    Eval(eval::EvalArgs),
    /// Draw images from a trained VAE, GAN, EBM-prior (origin or MALA) or flow run (at a temperature)
    /// into a PNG grid.
    Sample(sample::SampleArgs),
    /// Show images above their reconstructions by a trained VAE, as a PNG grid.
    Reconstruct(reconstruct::ReconstructArgs),
    /// Decode straight lines between latents of a trained VAE (real images) or GAN (random).
    Interpolate(interpolate::InterpolateArgs),
    /// Export a checkpoint as a self-describing model file (safetensors + card) for the codec.
    Export(export::ExportArgs),
    /// Sample-quality metrics: FID, KID, inception score between image sets, on a classifier's
    /// features (shipped per dataset) or a TorchScript model's; train the classifiers; an
    /// EBM-prior run's NLL and log partition function.
    Metrics(metrics::MetricsArgs),
    /// Run a sweep file of experiments end to end: train its variants, measure test ELBO and
    /// FID/KID, draw figures, write table.md and table.csv (resumable).
    Experiment(experiment::ExperimentArgs),
    /// Out-of-distribution detection: a model's NLL and real code length per image against
    /// generic coders (PNG, context coder, classical codecs) and a background model; AUROC,
    /// AUPR and FPR at 95 % TPR per score, a CSV and bpd histograms.
    Ood(ood::OodArgs),
}

pub fn run(cli: Cli) -> anyhow::Result<()> {
    match cli.command {
        Command::Compress(a) => compress::run(a),
        Command::Decompress(a) => decompress::run(a),
        Command::Info(a) => info::run(a),
        Command::Verify(a) => verify::run(a),
        Command::Models(a) => models::run(a),
        Command::Bench(a) => bench::run(a),
        Command::DatasetPng(a) => dataset::run(a),
        Command::Train(a) => train::run(a),
        Command::Eval(a) => eval::run(a),
        Command::Sample(a) => sample::run(a),
        Command::Reconstruct(a) => reconstruct::run(a),
        Command::Interpolate(a) => interpolate::run(a),
        Command::Export(a) => export::run(a),
        Command::Metrics(a) => metrics::run(a),
        Command::Experiment(a) => experiment::run(a),
        Command::Ood(a) => ood::run(a),
    }
}

/// The error given by tch-only subcommands in a build without the `train` feature.
#[cfg(not(feature = "train"))]
pub fn needs_train_feature(what: &str) -> anyhow::Error {
    anyhow::anyhow!(
        "`idfcodec {what}` needs libtorch: this binary was built with --no-default-features. \
         Run scripts/setup-libtorch, then build with the default features (cargo build --release)."
    )
}
