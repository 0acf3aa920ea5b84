//! `towers train --task pipeline`: a retriever, a ranker trained on its hard negatives, and the
//! post-ranking rules served by default, written as one pipeline directory.

use super::Args;
use crate::common::print_json;
use crate::progress::Bar;
use towers::data::Catalog;
use towers::recommend::Pipeline;
use towers::train::{PipelineConfig, PipelineTrainer};
use towers::{Error, evaluate_pipeline};

/// The pipeline's configuration: `--config` (a TOML `PipelineConfig`) or the defaults, then
/// the options given.
fn config(a: &Args) -> towers::Result<PipelineConfig> {
    let mut c: PipelineConfig = match &a.options.config {
        Some(p) => {
            let text = std::fs::read_to_string(p).map_err(|e| Error::io(p, e))?;
            toml::from_str(&text).map_err(|e| {
                Error::Config(format!("{}: {}", p.display(), e.to_string().trim_end().replace('\n', " ")))
            })?
        }
        None => PipelineConfig::default(),
    };
    let other = [
        ("--dim", a.options.dim.is_some()),
        ("--lr", a.options.lr.is_some()),
        ("--epochs", a.options.epochs.is_some()),
        ("--batch-size", a.options.batch_size.is_some()),
        ("--optimizer", a.options.optimizer.is_some()),
        ("--layers", a.options.layers.is_some()),
        ("--split", a.split.is_some()),
        ("--recipe", a.options.recipe.is_some()),
    ];
    if let Some((name, _)) = other.iter().find(|o| o.1) {
        return Err(Error::Config(format!(
            "{name}: --task pipeline takes its models' settings from --config (a TOML file with [retriever] and \
             [ranker] tables, see the README)"
        )));
    }
    if let Some(s) = a.options.seed {
        c.retriever.seed = s;
        c.ranker.seed = s;
    }
    if let Some(r) = a.options.retrieve {
        c.retrieve = r;
    }
    if let Some(d) = a.options.diversity {
        c.post.diversity = d;
    }
    c.validate()?;
    Ok(c)
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
        Some(t) => Some(evaluate_pipeline(&pipeline, &a.table.read(t)?, false, None, None)?),
        None => None,
    };
    if a.json {
        return print_json(&serde_json::json!({ "test": evaluation }));
    }
    if let Some(e) = &evaluation {
        crate::common::print_pipeline_evaluation(e)?;
    }
    if let Some(out) = &a.out {
        crate::outln!("pipeline written to {} (pipeline.toml, retriever/, ranker/)", out.display())?;
    }
    Ok(())
}
