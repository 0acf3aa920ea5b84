//! `towers-bench`: the developers' speed measurements — training and evaluation beside TFRS, the
//! indexes beside the ANN libraries, the GRU, millions of users and items — kept out of the
//! `towers` binary users install (`towers bench …` runs this binary when it is beside it, as
//! `cargo build --release` leaves it).

#[path = "../bench/mod.rs"]
mod bench;
// the CLI's helpers the measurements print and draw with
#[allow(dead_code)]
#[path = "../common.rs"]
mod common;
#[allow(dead_code)]
#[path = "../progress.rs"]
mod progress;

use clap::Parser;
use std::process::ExitCode;

/// Measure speed: `train` (beside TFRS when its peer is set up), `index`, `gru`, `scale`.
#[derive(Parser, Debug)]
#[command(name = "towers-bench", version)]
struct Cli {
    #[command(subcommand)]
    command: bench::Args,
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    tracing_subscriber::fmt().with_max_level(tracing::Level::WARN).with_writer(std::io::stderr).init();
    match bench::run(cli.command) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e}");
            ExitCode::from(common::exit_code(&e))
        }
    }
}
