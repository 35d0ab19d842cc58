//! Subcommands, one file each. `main.rs` only parses and dispatches here.

use clap::{Parser, Subcommand};

pub mod eval;
pub mod export;
pub mod train;

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
    /// Train an IDF on MNIST or Fashion-MNIST (needs the `train` feature and libtorch).
    Train(train::TrainArgs),
    /// Report the test bits/dim of a training checkpoint.
    Eval(eval::EvalArgs),
    /// Export a checkpoint as a self-describing model file (safetensors + card) for the codec.
    Export(export::ExportArgs),
}

pub fn run(cli: Cli) -> anyhow::Result<()> {
    match cli.command {
        Command::Train(a) => train::run(a),
        Command::Eval(a) => eval::run(a),
        Command::Export(a) => export::run(a),
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
