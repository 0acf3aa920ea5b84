//! `towers evaluate`.

use crate::common::{PostArgs, TableArgs, print_evaluation, print_json, print_pipeline_evaluation};
use clap::Args as ClapArgs;
use std::path::PathBuf;
use towers::data::InputFormat;
use towers::model::{ModelSpec, QueryKind};
use towers::recommend::{Pipeline, is_pipeline};
use towers::{Artifact, evaluate, evaluate_pipeline};

/// Options of `towers evaluate`.
#[derive(ClapArgs, Debug)]
pub struct Args {
    /// Model directory written by `towers train --out`.
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
    if is_pipeline(&a.model) {
        let pipeline = Pipeline::load(&a.model)?;
        let mut post = a.post.apply(&pipeline.settings().post)?;
        if let Some(r) = a.post.retrieve {
            pipeline.check_retrieve(r)?;
            post.get_or_insert_with(|| pipeline.settings().post.clone());
        }
        let e = evaluate_pipeline(&pipeline, &a.table.read(&a.test)?, a.exclude_seen, post.as_ref(), a.post.retrieve)?;
        if a.json {
            return print_json(&e);
        }
        return print_pipeline_evaluation(&e);
    }
    a.post.refuse()?;
    let model = Artifact::load(&a.model)?;
    let evaluation = match (model.model.query_kind(), model.model.spec()) {
        (QueryKind::History, ModelSpec::Sequential(seq)) => {
            let format = a.test_format.unwrap_or(seq.format);
            let test = format.read_test_sequences(&a.test, &a.table.format()?)?;
            evaluate(&model, &test, a.exclude_seen)?
        }
        _ => evaluate(&model, &a.table.read(&a.test)?, a.exclude_seen)?,
    };
    if a.json { print_json(&evaluation) } else { print_evaluation(&evaluation) }
}
