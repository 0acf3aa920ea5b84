//! `towers evaluate`.

use crate::common::{PostArgs, TableArgs, print_json, print_report};
use clap::Args as ClapArgs;
use std::path::PathBuf;
use towers::data::{InputFormat, Interactions, Share};
use towers::dist::{Collective, agree};
use towers::{Error, EvalOptions, Evaluation, Report, Served};

/// Options of `towers evaluate`.
#[derive(ClapArgs, Debug)]
pub struct Args {
    /// Model or pipeline directory written by `towers train --out`.
    #[arg(long)]
    pub model: PathBuf,
    /// Test interactions (CSV/TSV), or test sequences for a sequential model.
    #[arg(long)]
    pub test: PathBuf,
    /// Remove each user's training items (sequential models: the history's items) from the
    /// ranking, except the test item.
    #[arg(long)]
    pub exclude_seen: bool,
    /// Layout of a sequential model's test file (default: that of its training file).
    #[arg(long, value_enum)]
    pub test_format: Option<InputFormat>,
    #[command(flatten)]
    pub table: TableArgs,
    #[command(flatten)]
    pub post: PostArgs,
    /// Print one JSON object: top_1 … top_100 (recall@k), mrr, mrr_1 … mrr_100 (MRR@k), ndcg_10, n,
    /// baseline (popularity), repeat_last (sequential models), eval_s; rating models add rmse,
    /// rmse_mean_baseline, ndcg_10_rated, …; ranking models have only those; pipelines: top_k of
    /// their answers, retriever (the retriever's own order), ild_10, coverage_10.
    #[arg(long)]
    pub json: bool,
    /// Evaluate as one rank of an MPI job (`mpirun -np N towers evaluate … --distributed`; a
    /// build with `--features mpi`): each rank ranks its share of --test, rank 0 reports the
    /// metrics of all. Ranking metrics of a model on an interaction table.
    #[arg(long)]
    pub distributed: bool,
}

pub fn run(a: Args) -> towers::Result<()> {
    let options = EvalOptions {
        exclude_seen: a.exclude_seen,
        post: a.post.overrides()?,
        retrieve: a.post.retrieve,
        ..EvalOptions::default()
    };
    if a.distributed {
        return crate::mpi::as_rank(|comm| distributed(comm, &a, &options));
    }
    let served = Served::load(&a.model)?;
    let test = served.read_test(&a.test, a.test_format, &a.table.format()?)?;
    let report = served.evaluate(&test, &options)?;
    if a.json { print_json(&report) } else { print_report(&report) }
}

/// One rank of `towers evaluate --distributed`.
fn distributed(comm: &dyn Collective, a: &Args, options: &EvalOptions) -> towers::Result<()> {
    let loaded = Served::load(&a.model).and_then(|served| {
        if served.describe().kind == "pipeline" || served.sequence_format().is_some() || a.test_format.is_some() {
            return Err(Error::Config(
                "--distributed evaluates a model (not a pipeline) on an interaction table (not sequences)".into(),
            ));
        }
        let share = Share { rank: comm.rank(), ranks: comm.size() };
        Ok((Interactions::read_share(&a.test, &a.table.format()?, share)?, served))
    });
    let (share, served) = agree(comm, loaded)?;
    let evaluation = Evaluation::distributed(comm, served.retriever().artifact(), &share, options)?;
    let report = Report::Model(evaluation);
    match (comm.rank(), a.json) {
        (0, true) => print_json(&report),
        (0, false) => print_report(&report),
        _ => Ok(()),
    }
}
