//! `towers`: train, evaluate, query and serve two-tower recommenders (models and pipelines) from
//! the command line.
//! Every subcommand is a thin layer over the `towers` library.

mod common;
mod embed;
mod evaluate;
mod export;
mod index;
mod progress;
mod quickstart;
mod rank;
mod recommend;
mod serve;
mod similar;
mod train;

use clap::{Parser, Subcommand};
use std::process::ExitCode;

/// Two-tower recommenders: retrieval, ranking, sequential models and pipelines — train, evaluate,
/// recommend, serve.
#[derive(Parser)]
#[command(name = "towers", version, about)]
struct Cli {
    /// More log output (-v info, -vv debug). `serve` logs every request at info level.
    #[arg(short, long, action = clap::ArgAction::Count, global = true)]
    verbose: u8,
    /// Errors only (e.g. `serve` without request logs).
    #[arg(short, long, global = true, conflicts_with = "verbose")]
    quiet: bool,
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Train a model of any kind (--task), or a pipeline, and save it as a model directory.
    Train(Box<train::Args>),
    /// Evaluate a model or pipeline directory on a test file (top-k accuracy over all candidates).
    Evaluate(evaluate::Args),
    /// Recommend items for a user (or, for a sequential model, after a history of items).
    Recommend(recommend::Args),
    /// Re-score items for a user with a ranking model (given items, or a retriever's top candidates).
    Rank(rank::Args),
    /// Write a model's item (and user) embeddings with their ids, as Parquet and .npy.
    Embed(embed::Args),
    /// Items most similar to an item (cosine similarity of candidate embeddings).
    Similar(similar::Args),
    /// Build an approximate index in a model directory (`towers index build --kind ivf`).
    #[command(subcommand)]
    Index(index::Args),
    /// Serve a model or pipeline directory over HTTP/JSON (SIGHUP reloads it; --postgres: top-k from pgvector).
    Serve(serve::Args),
    /// Export a model's candidates to PostgreSQL + pgvector, for `serve --postgres`.
    Export(export::Args),
    /// Train on MovieLens 100K, evaluate, and recommend for user 42, in one command.
    Quickstart(quickstart::Args),
    /// Measure speed (a developers' tool, the `towers-bench` binary beside this one): `bench
    /// train`, `bench index`, `bench gru`, `bench scale`; `towers bench --help` lists them.
    #[command(disable_help_flag = true)]
    Bench {
        /// The arguments of `towers-bench`.
        #[arg(trailing_var_arg = true, allow_hyphen_values = true)]
        args: Vec<std::ffi::OsString>,
    },
}

/// `towers bench …`: runs `towers-bench …`, the developers' binary beside this one.
fn bench(args: &[std::ffi::OsString]) -> towers::Result<()> {
    use std::os::unix::process::CommandExt;
    let exe = std::env::current_exe().map_err(|e| towers::Error::io("towers", e))?.with_file_name("towers-bench");
    if !exe.is_file() {
        return Err(towers::Error::Config(format!(
            "towers bench is a developers' tool: build it with `cargo build --release -p towers-cli --bin towers-bench` \
             (not found: {})",
            exe.display()
        )));
    }
    Err(towers::Error::io(&exe, std::process::Command::new(&exe).args(args).exec()))
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let serving = matches!(cli.command, Command::Serve(_));
    if !serving {
        // `towers … | head`: a closed pipe ends the process quietly, as for other Unix tools
        // (the server keeps Rust's default: a client that leaves is an error on its socket)
        // SAFETY: called before any thread starts; SIG_DFL is a valid disposition.
        unsafe {
            libc::signal(libc::SIGPIPE, libc::SIG_DFL);
        }
    }
    let level = match cli.verbose {
        _ if cli.quiet => tracing::Level::ERROR,
        0 if serving => tracing::Level::INFO,
        0 => tracing::Level::WARN,
        1 => tracing::Level::INFO,
        _ => tracing::Level::DEBUG,
    };
    tracing_subscriber::fmt().with_max_level(level).with_writer(std::io::stderr).with_target(false).init();
    let result = match cli.command {
        Command::Train(a) => train::run(*a),
        Command::Evaluate(a) => evaluate::run(a),
        Command::Recommend(a) => recommend::run(a),
        Command::Rank(a) => rank::run(a),
        Command::Similar(a) => similar::run(a),
        Command::Embed(a) => embed::run(a),
        Command::Index(a) => index::run(a),
        Command::Serve(a) => serve::run(a),
        Command::Export(a) => export::run(a),
        Command::Quickstart(a) => quickstart::run(a),
        Command::Bench { args } => bench(&args),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {}", common::cli_spelling::<Cli>(&e.to_string()));
            ExitCode::from(common::exit_code(&e))
        }
    }
}
