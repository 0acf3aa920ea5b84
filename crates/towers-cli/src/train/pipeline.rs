//! `towers train --task pipeline`: a retriever, a ranker trained on its hard negatives, and the
//! post-ranking rules served by default, written as one pipeline directory.

use super::Args;
use crate::common::print_json;
use crate::progress::Bar;
use towers::EvalOptions;
use towers::data::Catalog;
use towers::recommend::Pipeline;
use towers::train::{PipelineConfig, PipelineTrainer};

/// The pipeline's configuration ([`towers::TrainOptions::pipeline_config`]); `--split` is
/// refused as the single models' options are.
fn config(a: &Args) -> towers::Result<PipelineConfig> {
    if a.split.is_some() {
        return Err(towers::train::not_for_pipelines("--split"));
    }
    a.options.pipeline_config()
}

/// Trains and writes the pipeline, evaluates it on `--test` when given.
pub fn train(a: &Args) -> towers::Result<()> {
    let config = config(a)?;
    let catalog = a.items.as_ref().map(Catalog::read).transpose()?;
    let train = a.table.read(&a.train)?;
    let features = a.options.read_features(crate::common::movielens_dir(None))?;
    let mut bar = Bar::new(!a.json);
    let mut trainer = PipelineTrainer::new(config).observer(&mut bar);
    if let Some(c) = &catalog {
        trainer = trainer.catalog(c);
    }
    if let Some(f) = &features
        && let Some(items) = &f.items
    {
        trainer = trainer.item_attributes(items, &f.config);
    }
    let pipeline: Pipeline = trainer.fit(&train)?;
    if let Some(out) = &a.out {
        pipeline.save(out)?;
    }
    let evaluation = match &a.test {
        Some(t) => Some(pipeline.evaluate(&a.table.read(t)?, &EvalOptions::new())?),
        None => None,
    };
    if a.json {
        return print_json(&serde_json::json!({ "test": evaluation }));
    }
    if let Some(e) = &evaluation {
        crate::common::print_report(&towers::Report::Pipeline(e.clone()))?;
    }
    if let Some(out) = &a.out {
        crate::outln!("pipeline written to {} (pipeline.toml, retriever/, ranker/)", out.display())?;
    }
    Ok(())
}
