//! `idfcodec`: command-line entry point. Parsing only; each subcommand lives in `cli/`.

use clap::Parser;
use std::process::ExitCode;

fn main() -> ExitCode {
    let cli = idfcodec::cli::Cli::parse();
    match idfcodec::cli::run(cli) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            // the whole context chain on one line, never a backtrace: errors are for users
            eprintln!("error: {e:#}");
            ExitCode::FAILURE
        }
    }
}
