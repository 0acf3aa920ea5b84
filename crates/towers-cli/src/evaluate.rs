//! `towers evaluate`.

use crate::common::{TableArgs, print_evaluation, print_json};
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
    /// Remove each user's training items (except the test item) from the ranking.
    #[arg(long)]
    pub exclude_seen: bool,
    #[command(flatten)]
    pub table: TableArgs,
    /// Print one JSON object: top_1 … top_100, mrr, mrr_20, ndcg_10, n, baseline, eval_s.
    #[arg(long)]
    pub json: bool,
}

pub fn run(a: Args) -> towers::Result<()> {
    let model = Artifact::load(&a.model)?;
    let test = a.table.read(&a.test)?;
    let e = model.evaluate(&test, a.exclude_seen);
    if a.json {
        print_json(&e)
    } else {
        print_evaluation(&e);
        Ok(())
    }
}
