//! `towers evaluate`.

use crate::common::{Report, SeqFormat, TableArgs, print_json, read_sequences};
use clap::Args as ClapArgs;
use std::path::PathBuf;
use towers::Artifact;

/// Options of `towers evaluate`.
#[derive(ClapArgs, Debug)]
pub struct Args {
    /// Model directory written by `towers train --out`.
    #[arg(long)]
    pub model: PathBuf,
    /// Test interactions (CSV/TSV).
    #[arg(long)]
    pub test: PathBuf,
    /// Remove each user's training items (sequential models: the history's items) from the
    /// ranking, except the test item.
    #[arg(long)]
    pub exclude_seen: bool,
    /// Layout of a sequential model's test file (default: that of its training file).
    #[arg(long, value_enum)]
    pub test_format: Option<SeqFormat>,
    #[command(flatten)]
    pub table: TableArgs,
    /// Print one JSON object: top_1 … top_100 (recall@k), mrr, mrr_1 … mrr_100 (MRR@k), ndcg_10, n,
    /// baseline (popularity), repeat_last (sequential models), eval_s; rating models add rmse,
    /// rmse_mean_baseline, ndcg_10_rated, …; ranking models have only those.
    #[arg(long)]
    pub json: bool,
}

pub fn run(a: Args) -> towers::Result<()> {
    let model = Artifact::load(&a.model)?;
    let report = match &model.sequence {
        None => Report::of(&model, &a.table.read(&a.test)?, a.exclude_seen)?,
        Some(seq) => {
            let test = read_sequences(&a.test, a.test_format.map_or(seq.format, Into::into), &a.table)?;
            Report::TopK(Box::new(model.evaluate_sequences(&test, a.exclude_seen)?))
        }
    };
    if a.json {
        print_json(&report)
    } else {
        report.print();
        Ok(())
    }
}
