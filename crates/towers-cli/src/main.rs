//! `towers`: train, evaluate and query two-tower retrieval models from the command line.
//! Every subcommand is a thin layer over the `towers` library.

mod bench;
mod common;
mod evaluate;
mod quickstart;
mod recommend;
mod train;

use clap::{Parser, Subcommand};
use std::process::ExitCode;

/// Two-tower retrieval recommenders: train, evaluate, recommend.
#[derive(Parser)]
#[command(name = "towers", version, about)]
struct Cli {
    /// More log output (-v info, -vv debug).
    #[arg(short, long, action = clap::ArgAction::Count, global = true)]
    verbose: u8,
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Train a retrieval model and save it as a model directory.
    Train(train::Args),
    /// Evaluate a saved model on a test file (top-k accuracy over all candidates).
    Evaluate(evaluate::Args),
    /// Recommend items for a user.
    Recommend(recommend::Args),
    /// Train on MovieLens 100K, evaluate, and recommend for user 42, in one command.
    Quickstart(quickstart::Args),
    /// Measure training and evaluation speed (beside TFRS when its peer is set up).
    Bench(bench::Args),
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let level = match cli.verbose {
        0 => tracing::Level::WARN,
        1 => tracing::Level::INFO,
        _ => tracing::Level::DEBUG,
    };
    tracing_subscriber::fmt().with_max_level(level).with_writer(std::io::stderr).with_target(false).init();
    let result = match cli.command {
        Command::Train(a) => train::run(a),
        Command::Evaluate(a) => evaluate::run(a),
        Command::Recommend(a) => recommend::run(a),
        Command::Quickstart(a) => quickstart::run(a),
        Command::Bench(a) => bench::run(a),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e}");
            ExitCode::from(common::exit_code(&e))
        }
    }
}
