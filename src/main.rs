//! `idfcodec`: command-line entry point. Parsing only; each subcommand lives in `cli/`.

use clap::Parser;

fn main() -> anyhow::Result<()> {
    let cli = idfcodec::cli::Cli::parse();
    idfcodec::cli::run(cli)
}
