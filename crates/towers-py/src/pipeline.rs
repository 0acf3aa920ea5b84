//! Training a pipeline (`towers.train(task="pipeline")`): a retriever, a ranker and
//! post-ranking rules, served as any other `towers.Model`.

use crate::errors::{IntoPy, config};
use crate::inputs::{catalog, interactions};
use crate::progress::Progress;
use pyo3::prelude::*;
use towers::data::{InputFormat, TableFormat};
use towers::train::PipelineTrainer;
use towers::{Error, Pipeline, TrainOptions};

/// Trains a pipeline (`towers.train(…, task="pipeline")`): the configuration from `config`
/// or the defaults with `seed`, `retrieve` and `diversity`, item attributes from `features`.
pub fn train(
    py: Python<'_>,
    ratings: &Bound<'_, PyAny>,
    items: Option<&Bound<'_, PyAny>>,
    test: Option<&Bound<'_, PyAny>>,
    opts: &TrainOptions,
    table: &TableFormat,
    reporter: Option<Py<PyAny>>,
) -> PyResult<Pipeline> {
    opts.check_task_options().py_err(py)?;
    let settings = opts.pipeline_config().py_err(py)?;
    if test.is_some() {
        return Err(config(py, "test: a pipeline is not measured while it trains; call Pipeline.evaluate(test)"));
    }
    if opts.train_format != InputFormat::Interactions {
        return Err(config(py, "train_format: a pipeline trains on an interaction table"));
    }
    let catalog = items.map(catalog).transpose()?;
    let train = interactions(ratings, table)?;
    let features = crate::features(py, opts)?;
    let mut progress = Progress::new(reporter);
    let fitted = py.detach(|| {
        let mut trainer = PipelineTrainer::new(settings).observer(&mut progress);
        if let Some(c) = &catalog {
            trainer = trainer.catalog(c);
        }
        if let Some(f) = &features
            && let Some(items) = &f.items
        {
            trainer = trainer.item_attributes(items, &f.config);
        }
        trainer.fit(&train)
    });
    match (fitted, progress.error) {
        (Ok(p), _) => Ok(p),
        (Err(Error::Interrupted), Some(e)) => Err(e),
        (Err(e), _) => Err(crate::errors::to_py(py, e)),
    }
}
