//! `towers.Pipeline`: a retriever, a ranker and post-ranking rules (the library's [`Pipeline`]),
//! trained by `towers.train(task="pipeline")` or loaded by `towers.load`, with the CLI's
//! pipeline queries: evaluate and recommend with per-call post-ranking overrides, and save.

use crate::errors::{IntoPy, config};
use crate::inputs::{ReadOptions, catalog, interactions};
use crate::model::{as_list, request, to_python, warn_cold_start};
use crate::progress::Progress;
use pyo3::prelude::*;
use pyo3::types::PyDict;
use std::path::PathBuf;
use towers::data::{InputFormat, TableFormat};
use towers::recommend::{Cap, Pipeline as Inner, PostOverrides};
use towers::train::PipelineTrainer;
use towers::{Error, Query, TrainOptions, evaluate_pipeline};

/// A pipeline: `towers.train(…, task="pipeline")` or `towers.load(dir)` of a pipeline directory.
#[pyclass(frozen, module = "towers", name = "Pipeline")]
pub struct Pipeline {
    inner: Inner,
}

impl Pipeline {
    /// Serves `pipeline`.
    pub fn new(inner: Inner) -> Self {
        Pipeline { inner }
    }

    /// The post-ranking rules of a call: the pipeline's with the overrides given; `None` when
    /// none was given.
    fn post(&self, py: Python<'_>, o: PostOverrides) -> PyResult<Option<towers::recommend::PostRanking>> {
        o.apply(&self.inner.settings().post).py_err(py)
    }
}

/// `caps={"genres": 3}`: at most 3 items per genre (in the dict's order).
fn caps_of(py: Python<'_>, v: &Bound<'_, PyAny>) -> PyResult<Vec<Cap>> {
    let bad = || config(py, "caps: expected a dict of attribute → max items per value, e.g. {\"genres\": 3}");
    let d = v.cast::<PyDict>().map_err(|_| bad())?;
    d.iter()
        .map(|(k, m)| -> PyResult<Cap> {
            Ok(Cap { attribute: k.extract().map_err(|_| bad())?, max: m.extract().map_err(|_| bad())? })
        })
        .collect()
}

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
        (Ok(p), _) => Ok(Pipeline::new(p)),
        (Err(Error::Interrupted), Some(e)) => Err(e),
        (Err(e), _) => Err(crate::errors::to_py(py, e)),
    }
}

#[pymethods]
impl Pipeline {
    /// Evaluates the pipeline's answers on test interactions. Returns the CLI's
    /// `evaluate --model PIPELINE --json` object: top_1 … top_100 (recall@k of the answers),
    /// mrr, ndcg_10, n, retriever (the same metrics of the retriever's own order), ild_10 and
    /// retriever_ild_10 (intra-list diversity), coverage_10, retrieve, diversity, eval_s, ….
    /// The keyword arguments override the pipeline's post-ranking rules for this call:
    /// `diversity` (MMR λ in [0, 1]), `caps` (a dict, e.g. {"genres": 3}), `boost` (item ids),
    /// `dedupe` (an attribute), `retrieve` (candidates for the ranker); `exclude` adds item ids
    /// never returned. `columns`, `delimiter` and `header` say how a file is read.
    #[pyo3(signature = (
        test, exclude_seen=false, *, diversity=None, caps=None, boost=None, exclude=None, dedupe=None, retrieve=None,
        **read
    ))]
    #[allow(clippy::too_many_arguments)]
    fn evaluate<'py>(
        &self,
        py: Python<'py>,
        test: &Bound<'py, PyAny>,
        exclude_seen: bool,
        diversity: Option<f32>,
        caps: Option<&Bound<'py, PyAny>>,
        boost: Option<Vec<String>>,
        exclude: Option<Vec<String>>,
        dedupe: Option<String>,
        retrieve: Option<usize>,
        read: Option<&Bound<'py, PyDict>>,
    ) -> PyResult<Bound<'py, PyAny>> {
        let ReadOptions { table, test_format } = ReadOptions::from_kwargs(py, read)?;
        if test_format.is_some() {
            return Err(config(py, "test_format is for sequential models: a pipeline is tested on interactions"));
        }
        let caps = caps.map(|c| caps_of(py, c)).transpose()?;
        let exclude = exclude.unwrap_or_default();
        let post = self.post(py, PostOverrides { diversity, caps, boost, dedupe, exclude })?;
        let t = interactions(test, &table)?;
        let e = py.detach(|| evaluate_pipeline(&self.inner, &t, exclude_seen, post.as_ref(), retrieve)).py_err(py)?;
        to_python(py, &e)
    }

    /// The `k` best items for a user: a list of {"id", "title", "score"} (ranker scores), best
    /// first. An unknown user gets the most popular items (with a `towers.ColdStartWarning`).
    /// `exclude` and `allow` restrict the items; `diversity`, `caps`, `boost`, `dedupe` and
    /// `retrieve` override the pipeline's rules as in `evaluate`. With `debug=True` the answer
    /// is a dict {"items": [...], "cold_start": bool, "timings": {"retrieve_ms", "rank_ms",
    /// "post_rank_ms", "total_ms"}} (the CLI's `recommend --json --debug`).
    #[pyo3(signature = (
        user, k=10, exclude_seen=false, *, diversity=None, caps=None, boost=None, exclude=None, dedupe=None,
        retrieve=None, allow=None, debug=false
    ))]
    #[allow(clippy::too_many_arguments)]
    fn recommend<'py>(
        &self,
        py: Python<'py>,
        user: &str,
        k: usize,
        exclude_seen: bool,
        diversity: Option<f32>,
        caps: Option<&Bound<'py, PyAny>>,
        boost: Option<Vec<String>>,
        exclude: Option<Vec<String>>,
        dedupe: Option<String>,
        retrieve: Option<usize>,
        allow: Option<Vec<String>>,
        debug: bool,
    ) -> PyResult<Bound<'py, PyAny>> {
        let mut r = request(py, k, exclude_seen, exclude, allow)?;
        let caps = caps.map(|c| caps_of(py, c)).transpose()?;
        if let Some(p) = self.post(py, PostOverrides { diversity, caps, boost, dedupe, exclude: Vec::new() })? {
            r = r.post(p);
        }
        if let Some(n) = retrieve {
            r = r.retrieve(n);
        }
        let answer = py.detach(|| self.inner.recommend(Query::User(user), &r)).py_err(py)?;
        let recs = answer.recommendations;
        if recs.cold_start {
            warn_cold_start(py, &format!("user '{user}' is not in the training data"))?;
        }
        let items = as_list(py, recs.items)?;
        if !debug {
            return Ok(items.into_any());
        }
        let d = PyDict::new(py);
        d.set_item("items", items)?;
        d.set_item("cold_start", recs.cold_start)?;
        d.set_item("timings", to_python(py, &answer.timings)?)?;
        Ok(d.into_any())
    }

    /// Writes the pipeline directory (pipeline.toml, retriever/, ranker/, items.tsv when
    /// post-ranking reads item attributes), atomically: `towers.load` and the CLI read it.
    fn save(&self, py: Python<'_>, path: PathBuf) -> PyResult<()> {
        py.detach(|| self.inner.save(&path)).py_err(py)
    }

    /// The pipeline's settings, as in pipeline.toml: retrieve, post (diversity, caps, exclude,
    /// boost, boost_weight, dedupe), the model directories' names and, once saved or loaded,
    /// the attribute table's (`attributes`).
    #[getter]
    fn settings<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyAny>> {
        to_python(py, self.inner.settings())
    }

    /// Candidates the retriever hands to the ranker.
    #[getter]
    fn retrieve(&self) -> usize {
        self.inner.settings().retrieve
    }

    /// The item attributes post-ranking can read (caps, dedupe), `title` included.
    #[getter]
    fn attributes(&self) -> Vec<String> {
        self.inner.attributes().columns().to_vec()
    }

    /// Users known to the pipeline (without the unknown row).
    #[getter]
    fn users(&self) -> Vec<String> {
        self.inner.retriever().artifact().query_vocab.iter().map(str::to_owned).collect()
    }

    /// Item ids of the candidates (without the unknown row).
    #[getter]
    fn items(&self) -> Vec<String> {
        self.inner.retriever().artifact().items.ids.iter().skip(1).cloned().collect()
    }

    fn __repr__(&self) -> String {
        let a = self.inner.retriever().artifact();
        let s = self.inner.settings();
        format!(
            "towers.Pipeline(retriever='{}', users={}, items={}, retrieve={}, diversity={})",
            a.model.spec().kind(),
            a.query_vocab.rows().saturating_sub(1),
            a.items.len().saturating_sub(1),
            s.retrieve,
            s.post.diversity
        )
    }
}
