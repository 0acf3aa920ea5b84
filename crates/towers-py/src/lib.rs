//! The native part of the `towers` Python package (`towers._towers`): training, loading (models
//! and pipelines) and the MovieLens download, over the `towers` library. The public API, its
//! signatures and docstrings are in `python/towers/__init__.py`, which calls these.

mod arrow;
mod columns;
mod errors;
mod index;
mod inputs;
mod live;
mod model;
mod options;
mod progress;

use errors::IntoPy;
use inputs::{ReadOptions, catalog, interactions, sequences, test_sequences};
use model::Model;
use progress::Progress;
use pyo3::prelude::*;
use pyo3::types::PyDict;
use std::path::PathBuf;
use towers::data::movielens::Download;
use towers::data::{InputFormat, OwnedData};
use towers::train::{Checkpoints, FeatureData};
use towers::{Error, Served, TrainOptions};

/// Trains a model (see `towers.train`): `options` are the CLI's training options by name,
/// `read` says how files are read (`columns`, `delimiter`, `header`), `run` how the run goes:
/// `reporter` (receives progress), `init_from` (a model to continue), `count_decay`,
/// `checkpoint`, `checkpoint_every`, `resume`.
#[pyfunction]
#[pyo3(signature = (ratings, items, test, options, read, run))]
fn train(
    py: Python<'_>,
    ratings: &Bound<'_, PyAny>,
    items: Option<&Bound<'_, PyAny>>,
    test: Option<&Bound<'_, PyAny>>,
    options: &Bound<'_, PyDict>,
    read: &Bound<'_, PyDict>,
    run: &Bound<'_, PyDict>,
) -> PyResult<Py<PyAny>> {
    // the objects among the run's keys, before the rest is read by name
    let take = |key: &str| -> PyResult<Option<Bound<'_, PyAny>>> {
        let v = run.get_item(key)?;
        if v.is_some() {
            run.del_item(key)?;
        }
        Ok(v.filter(|v| !v.is_none()))
    };
    let reporter: Option<Py<PyAny>> = take("reporter")?.map(Bound::unbind);
    let prior_model = take("init_from")?;
    let init_from: Option<PyRef<'_, Model>> = prior_model.as_ref().map(|m| m.extract()).transpose()?;
    let opts = options::train_options(py, options)?;
    let run: RunOptions = options::from_kwargs(py, Some(run))?;
    let checkpoints = match (&run.checkpoint, run.checkpoint_every) {
        (Some(path), every) => Some(Checkpoints { path: path.clone(), every: every.unwrap_or(0), resume: run.resume }),
        (None, None) if !run.resume => None,
        (None, _) => {
            return Err(errors::config(py, "checkpoint_every and resume need a checkpoint path (checkpoint=…)"));
        }
    };
    let prior = init_from.as_ref().map(|m| m.served());
    let table = ReadOptions::from_kwargs(py, Some(read))?.table;
    let features = features(py, &opts)?;
    // checked before the data are read (the trainer itself is made where training runs)
    opts.trainer(features.as_ref()).py_err(py)?;
    let catalog = items.map(catalog).transpose()?;
    let (train, test) = if opts.reads_sequences() {
        let read = sequences(ratings, opts.train_format, &table)?;
        let test = match test {
            Some(t) => Some(test_sequences(t, opts.train_format, &table)?),
            None => read.held_out,
        };
        (OwnedData::Sequences(Box::new(read.sequences)), test.map(|t| OwnedData::Sequences(Box::new(t))))
    } else {
        if opts.train_format != InputFormat::Interactions {
            return Err(errors::config(
                py,
                "train_format other than interactions is for sequences: add task=\"sequential\"",
            ));
        }
        let test = test.map(|t| interactions(t, &table)).transpose()?;
        (
            OwnedData::Interactions(Box::new(interactions(ratings, &table)?)),
            test.map(|t| OwnedData::Interactions(Box::new(t))),
        )
    };
    let mut progress = Progress::new(reporter);
    let fitted = py.detach(|| {
        let trainer = opts.trainer(features.as_ref())?;
        let mut trainer = trainer.catalog(catalog.as_ref()).observer(&mut progress);
        if let Some(t) = &test {
            trainer = trainer.validation(t);
        }
        if let Some(p) = prior {
            trainer = trainer.init_from(p).count_decay(run.count_decay.unwrap_or(1.0));
        }
        if let Some(c) = &checkpoints {
            trainer = trainer.checkpoints(c);
        }
        trainer.fit_served(&train)
    });
    match (fitted, progress.error) {
        (Ok(served), _) => Ok(Bound::new(py, Model::new(served))?.into_any().unbind()),
        (Err(Error::Interrupted), Some(e)) => Err(e),
        (Err(e), _) => Err(errors::to_py(py, e)),
    }
}

/// How a training run starts and keeps its place (`towers.train`'s keywords beside the options).
#[derive(serde::Deserialize)]
#[serde(deny_unknown_fields)]
struct RunOptions {
    count_decay: Option<f32>,
    checkpoint: Option<PathBuf>,
    checkpoint_every: Option<usize>,
    #[serde(default)]
    resume: bool,
}

/// The feature data `features` names (`features="movielens"` without `movielens_dir`: the
/// copy `towers.datasets` downloaded).
fn features(py: Python<'_>, opts: &TrainOptions) -> PyResult<Option<FeatureData>> {
    py.detach(|| {
        let wants_default = opts.features.as_deref() == Some("movielens") && opts.movielens_dir.is_none();
        let cached = Download::from_env().ok().filter(|d| wants_default && d.is_cached()).map(|d| d.dir());
        opts.read_features(cached)
    })
    .py_err(py)
}

/// Loads a model directory written by `Model.save` or `towers train --out`, a pipeline
/// directory or its `pipeline.toml`, as a `Model`; with `postgres` (a URL), a single model's
/// top k comes from the catalogue `towers export` wrote there (`table`, read replicas first).
#[pyfunction]
#[pyo3(signature = (path, postgres=None, replicas=None, table=None, ef_search=None))]
fn load(
    py: Python<'_>,
    path: PathBuf,
    postgres: Option<String>,
    replicas: Option<Vec<String>>,
    table: Option<String>,
    ef_search: Option<u32>,
) -> PyResult<Model> {
    let served = py.detach(|| -> towers::Result<Served> {
        let served = Served::load(&path)?;
        let Some(url) = postgres else { return Ok(served) };
        let table = towers_postgres::TableName::new(table.as_deref().unwrap_or("towers_items"))?;
        let mut config = towers_postgres::ReaderConfig::default();
        if let Some(ef) = ef_search {
            config.ef_search = ef;
        }
        let reader = replicas
            .iter()
            .flatten()
            .fold(towers_postgres::Reader::builder(url).table(table).config(config), |b, r| b.replica(r))
            .build()?;
        served.with_store(std::sync::Arc::new(towers_postgres::PgStore::new(reader)?))
    });
    Ok(Model::new(served.py_err(py)?))
}

/// Where MovieLens 100K is kept and whether it is there: (directory, cached, source address).
#[pyfunction]
#[pyo3(signature = (cache_dir=None, url=None))]
fn movielens_100k_status(
    py: Python<'_>,
    cache_dir: Option<PathBuf>,
    url: Option<String>,
) -> PyResult<(PathBuf, bool, String)> {
    let d = download(py, cache_dir, url)?;
    Ok((d.dir(), d.is_cached(), d.source().to_string()))
}

/// MovieLens 100K's directory: the cache, downloaded there and verified on first use.
#[pyfunction]
#[pyo3(signature = (cache_dir=None, url=None))]
fn movielens_100k(py: Python<'_>, cache_dir: Option<PathBuf>, url: Option<String>) -> PyResult<PathBuf> {
    let d = download(py, cache_dir, url)?;
    py.detach(|| d.fetch()).py_err(py)
}

fn download(py: Python<'_>, cache_dir: Option<PathBuf>, url: Option<String>) -> PyResult<Download> {
    let mut d = Download::from_env().py_err(py)?;
    if let Some(c) = cache_dir {
        d = d.cache_dir(c);
    }
    if let Some(u) = url {
        d = d.url(u);
    }
    Ok(d)
}

/// Two-tower recommenders: the native module of the `towers` package.
#[pymodule(name = "_towers")]
mod towers_native {
    #[pymodule_export]
    use super::{Model, load, movielens_100k, movielens_100k_status, train};
    #[pymodule_export]
    use crate::index::build_index;
    #[pymodule_export]
    use crate::live::Live;

    #[pymodule_init]
    fn init(m: &pyo3::Bound<'_, pyo3::types::PyModule>) -> pyo3::PyResult<()> {
        use pyo3::types::PyModuleMethods;
        m.add("__version__", env!("CARGO_PKG_VERSION"))
    }
}
