//! `towers evaluate`.

use crate::common::{PostArgs, TableArgs, print_json, print_report};
use clap::Args as ClapArgs;
use std::path::PathBuf;
use towers::data::InputFormat;
use towers::{EvalOptions, Served};

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
}

pub fn run(a: Args) -> towers::Result<()> {
    let options = EvalOptions {
        exclude_seen: a.exclude_seen,
        post: a.post.overrides()?,
        retrieve: a.post.retrieve,
        ..EvalOptions::default()
    };
    let served = Served::load(&a.model)?;
    let test = served.read_test(&a.test, a.test_format, &a.table.format()?)?;
    let report = served.evaluate(&test, &options)?;
    if a.json { print_json(&report) } else { print_report(&report) }
}
