//! `towers.Model`: any model directory — a model or a pipeline — as the library's [`Served`],
//! with the CLI's queries (evaluate, recommend, similar, rank), its embeddings as numpy arrays,
//! and save. Keyword options are read by the library's own rules ([`Request`], [`EvalOptions`]).

use crate::errors::{IntoPy, config, input};
use crate::inputs::{ReadOptions, interactions, test_sequences};
use crate::options::from_kwargs;
use numpy::PyArray2;
use numpy::ndarray::{Array2, ArrayView2};
use pyo3::prelude::*;
use pyo3::types::{IntoPyDict, PyDict, PyList};
use std::path::PathBuf;
use std::sync::Arc;
use towers::data::OwnedData;
use towers::model::{At, Queries, QueryKind};
use towers::{Artifact, Error, EvalOptions, Query, Recommendation, Recommendations, Request, Served};

/// A model or a pipeline: `towers.train(…)` or `towers.load(dir)`.
#[pyclass(frozen, module = "towers", name = "Model")]
pub struct Model {
    served: Served,
    /// The candidate embeddings (`items × dim`, row 0 the unknown item), which the arrays of
    /// `candidate_embeddings()` view without copying: kept here so that they outlive them.
    candidates: Arc<[f32]>,
}

impl Model {
    /// The model served.
    pub fn served(&self) -> &Served {
        &self.served
    }

    /// Serves `served`.
    pub fn new(served: Served) -> Self {
        let candidates = served.retriever().artifact().candidates.clone();
        Model { served, candidates }
    }

    fn artifact(&self) -> &Artifact {
        self.served.retriever().artifact()
    }

    /// Answers a request: the items, or with `debug=True` the whole answer as a dict.
    fn answer<'py>(&self, py: Python<'py>, query: Query, request: &Request, who: &str) -> PyResult<Bound<'py, PyAny>> {
        let recs: Recommendations = py.detach(|| self.served.recommend(query, request)).py_err(py)?;
        if recs.cold_start {
            warn_cold_start(py, who)?;
        }
        if request.debug { to_python(py, &recs) } else { Ok(as_list(py, recs.items)?.into_any()) }
    }
}

/// A Python value from anything serde writes (through `json.loads`, so that it is plain
/// dicts, lists, floats and strings).
pub fn to_python<'py>(py: Python<'py>, v: &impl serde::Serialize) -> PyResult<Bound<'py, PyAny>> {
    let text = serde_json::to_string(v).map_err(Error::internal).py_err(py)?;
    py.import("json")?.call_method1("loads", (text,))
}

fn as_list<'py>(py: Python<'py>, recs: Vec<Recommendation>) -> PyResult<Bound<'py, PyList>> {
    let list = PyList::empty(py);
    for r in recs {
        let d = PyDict::new(py);
        d.set_item("id", r.id)?;
        d.set_item("title", r.title)?;
        d.set_item("score", r.score)?;
        list.append(d)?;
    }
    Ok(list)
}

/// The library's request from a call's `k`, `exclude_seen` and other keywords.
fn request(py: Python<'_>, k: usize, exclude_seen: bool, options: Option<&Bound<'_, PyDict>>) -> PyResult<Request> {
    let all = PyDict::new(py);
    if let Some(o) = options {
        all.update(o.as_mapping())?;
    }
    all.set_item("k", k)?;
    all.set_item("exclude_seen", exclude_seen)?;
    from_kwargs(py, Some(&all))
}

fn warn_cold_start(py: Python<'_>, what: &str) -> PyResult<()> {
    let warning = py.import("towers._errors")?.getattr("ColdStartWarning")?;
    py.import("warnings")?.call_method1("warn", (format!("{what}: the most popular items instead"), warning, 3))?;
    Ok(())
}

/// The keywords that say how a file is read, apart from the others.
fn split_read<'py>(
    py: Python<'py>,
    options: Option<&Bound<'py, PyDict>>,
) -> PyResult<(Bound<'py, PyDict>, Bound<'py, PyDict>)> {
    let (read, rest) = (PyDict::new(py), PyDict::new(py));
    for (k, v) in options.into_iter().flat_map(|d| d.iter()) {
        let key: String = k.extract()?;
        let to = if ["columns", "delimiter", "header", "test_format"].contains(&key.as_str()) { &read } else { &rest };
        to.set_item(k, v)?;
    }
    Ok((read, rest))
}

#[pymethods]
impl Model {
    /// Evaluates on test data. A model: every test item ranked against all candidates beside
    /// the popularity baseline — the CLI's `evaluate --json` object (top_1 … top_100, mrr,
    /// ndcg_10, n, baseline, …; rating models add rmse). A pipeline: its answers beside its
    /// retriever's order (top_k, retriever, ild_10, coverage_10, …), with post-ranking overrides
    /// (`diversity`, `caps`, `boost`, `dedupe`, `exclude`, `retrieve`). `test` is a path, a
    /// pandas.DataFrame, a pyarrow.Table or a dict of arrays (sequential models: a path in
    /// `test_format`, default the training file's, or a list of item lists); `columns`,
    /// `delimiter` and `header` say how a file is read, as the CLI's options.
    #[pyo3(signature = (test, exclude_seen=false, **options))]
    fn evaluate<'py>(
        &self,
        py: Python<'py>,
        test: &Bound<'py, PyAny>,
        exclude_seen: bool,
        options: Option<&Bound<'py, PyDict>>,
    ) -> PyResult<Bound<'py, PyAny>> {
        let (read, rest) = split_read(py, options)?;
        rest.set_item("exclude_seen", exclude_seen)?;
        let eval: EvalOptions = from_kwargs(py, Some(&rest))?;
        let ReadOptions { table, test_format } = ReadOptions::from_kwargs(py, Some(&read))?;
        let data = match self.served.sequence_format() {
            Some(own) => OwnedData::Sequences(Box::new(test_sequences(test, test_format.unwrap_or(own), &table)?)),
            None if test_format.is_some() => {
                return Err(config(py, "test_format is for sequential models: this model is tested on interactions"));
            }
            None => OwnedData::Interactions(Box::new(interactions(test, &table)?)),
        };
        let report = py.detach(|| self.served.evaluate(&data, &eval)).py_err(py)?;
        to_python(py, &report)
    }

    /// The `k` best items for a user: a list of {"id", "title", "score"}, best first. An unknown
    /// user gets the most popular items (with a `towers.ColdStartWarning`). Options, as the
    /// CLI's and HTTP's: `exclude` and `allow` (item ids); pipelines: `diversity` (MMR λ in
    /// [0, 1]), `caps` (e.g. {"genres": 3}), `boost` (item ids), `dedupe` (an attribute),
    /// `retrieve` (candidates for the ranker). With `debug=True` the answer is a dict
    /// {"items": [...], "cold_start": bool, "timings": {"retrieve_ms", "rank_ms",
    /// "post_rank_ms", "total_ms"}} (the CLI's `recommend --json --debug`).
    #[pyo3(signature = (user, k=towers::recommend::DEFAULT_K, exclude_seen=false, **options))]
    fn recommend<'py>(
        &self,
        py: Python<'py>,
        user: &str,
        k: usize,
        exclude_seen: bool,
        options: Option<&Bound<'py, PyDict>>,
    ) -> PyResult<Bound<'py, PyAny>> {
        let r = request(py, k, exclude_seen, options)?;
        self.answer(py, Query::User(user), &r, &format!("user '{user}' is not in the training data"))
    }

    /// The `k` best next items after a history of items (oldest first, by id or title), for
    /// sequential models: a list of {"id", "title", "score"}; options as `recommend`'s.
    #[pyo3(signature = (history, k=towers::recommend::DEFAULT_K, exclude_seen=false, **options))]
    fn recommend_history<'py>(
        &self,
        py: Python<'py>,
        history: Vec<String>,
        k: usize,
        exclude_seen: bool,
        options: Option<&Bound<'py, PyDict>>,
    ) -> PyResult<Bound<'py, PyAny>> {
        let r = request(py, k, exclude_seen, options)?;
        self.answer(py, Query::History(&history), &r, "no item of the history is known")
    }

    /// The lists `recommend` gives for many users (`users`, default: every user the model
    /// knows), as a pyarrow.Table with one row per user and rank: user, rank (1 the best), item,
    /// score. Options as `recommend`'s; computed in blocks with every core, the GIL released.
    #[pyo3(signature = (users=None, k=towers::recommend::DEFAULT_K, exclude_seen=false, **options))]
    fn recommend_batch<'py>(
        &self,
        py: Python<'py>,
        users: Option<Vec<String>>,
        k: usize,
        exclude_seen: bool,
        options: Option<&Bound<'py, PyDict>>,
    ) -> PyResult<Bound<'py, PyAny>> {
        let r = request(py, k, exclude_seen, options)?;
        let users = users.unwrap_or_else(|| self.served.users());
        let mut all = towers::data::RecommendationRows::default();
        py.detach(|| {
            self.served.recommend_users(&users, &r, &mut towers::progress::quiet(), &mut |rows| {
                all.users.extend_from_slice(&rows.users);
                all.ranks.extend_from_slice(&rows.ranks);
                all.items.extend_from_slice(&rows.items);
                all.scores.extend_from_slice(&rows.scores);
                Ok(())
            })
        })
        .py_err(py)?;
        let columns = PyDict::new(py);
        columns.set_item("user", all.users)?;
        columns.set_item("rank", all.ranks)?;
        columns.set_item("item", all.items)?;
        columns.set_item("score", all.scores)?;
        py.import("pyarrow")?.call_method1("table", (columns,))
    }

    /// The `k` items most similar to an item (cosine similarity of candidate embeddings);
    /// `exclude` and `allow` restrict them.
    #[pyo3(signature = (item, k=towers::recommend::DEFAULT_K, **options))]
    fn similar<'py>(
        &self,
        py: Python<'py>,
        item: &str,
        k: usize,
        options: Option<&Bound<'py, PyDict>>,
    ) -> PyResult<Bound<'py, PyList>> {
        let r = request(py, k, false, options)?;
        as_list(py, py.detach(|| self.served.similar(item, &r)).py_err(py)?.items)
    }

    /// Re-scores items for a user, best first: a rating or ranking model's predicted ratings, a
    /// pipeline's ranker's scores.
    fn rank<'py>(&self, py: Python<'py>, user: &str, items: Vec<String>) -> PyResult<Bound<'py, PyList>> {
        as_list(py, py.detach(|| self.served.rank(user, &items)).py_err(py)?)
    }

    /// Two stages, as `towers rank --retriever`: `retriever` finds `candidates` items for the
    /// user, this model re-scores them, and the best `k` are returned. An unknown user gets the
    /// retriever's popular items.
    #[pyo3(signature = (retriever, user, candidates=100, k=towers::recommend::DEFAULT_K, exclude_seen=false))]
    fn rerank<'py>(
        &self,
        py: Python<'py>,
        retriever: &Bound<'py, Model>,
        user: &str,
        candidates: usize,
        k: usize,
        exclude_seen: bool,
    ) -> PyResult<Bound<'py, PyList>> {
        let r = Request::top(k).exclude_seen(exclude_seen);
        let retriever = &retriever.get().served;
        let recs = py.detach(|| self.served.rerank(retriever, user, candidates, &r)).py_err(py)?;
        if recs.cold_start {
            warn_cold_start(py, &format!("user '{user}' is not in the training data"))?;
        }
        as_list(py, recs.items)
    }

    /// `(ids, embeddings)`: the item ids and their candidate embeddings (a pipeline's
    /// retriever's), a read-only float32 array of shape `(len(ids), dim)` (C order) that views
    /// the model's memory without copying.
    fn candidate_embeddings<'py>(slf: &Bound<'py, Self>) -> PyResult<(Vec<String>, Bound<'py, PyArray2<f32>>)> {
        let py = slf.py();
        let m = slf.get();
        let a = m.artifact();
        let (n, d) = (a.items.len(), a.dim());
        if n == 0 || m.candidates.len() != n * d {
            return Err(config(py, "this model has no candidate embeddings"));
        }
        let view = ArrayView2::from_shape((n - 1, d), &m.candidates[d..])
            .map_err(|e| Error::internal(e.to_string()))
            .py_err(py)?;
        // SAFETY: `candidates` is an immutable `Arc` slice owned by the model object, which the
        // array holds as its base: the memory stays valid and unchanged while the array lives.
        let array = unsafe { PyArray2::borrow_from_array(&view, slf.clone().into_any()) };
        array.call_method("setflags", (), Some(&[("write", false)].into_py_dict(py)?))?;
        Ok((a.items.ids[1..].to_vec(), array))
    }

    /// The query embeddings of users, a float32 array of shape `(len(users), dim)`; an unknown
    /// user is an error.
    fn query_embeddings<'py>(&self, py: Python<'py>, users: Vec<String>) -> PyResult<Bound<'py, PyArray2<f32>>> {
        let a = self.artifact();
        match a.model.query_kind() {
            QueryKind::User | QueryKind::UserAtTime => {}
            QueryKind::History => {
                return Err(config(py, "a sequential model embeds histories, not users: use recommend_history"));
            }
            QueryKind::Pairs => return Err(config(py, "a ranking model has no query tower")),
        }
        let rows = users
            .iter()
            .map(|u| a.query_vocab.get(u).ok_or_else(|| input(py, format!("user '{u}' is not in the model"))))
            .collect::<PyResult<Vec<u32>>>()?;
        let q = py.detach(|| a.model.queries(&Queries::Users { rows: &rows, at: At::TrainingEnd })).py_err(py)?;
        let array = Array2::from_shape_vec((rows.len(), a.dim()), q).map_err(Error::internal).py_err(py)?;
        Ok(PyArray2::from_owned_array(py, array))
    }

    /// Writes the model or pipeline directory (the CLI's format; atomically).
    fn save(&self, py: Python<'_>, path: PathBuf) -> PyResult<()> {
        py.detach(|| self.served.save(&path)).py_err(py)
    }

    /// What this is, as `/v1/model` says it: kind, dim, users, items, index, version,
    /// config, training, and a pipeline's stages and rules (`pipeline`).
    fn describe<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyAny>> {
        to_python(py, &self.served.describe())
    }

    /// The kind: retrieval, rating, ranking, features, multitask, sequential or pipeline.
    #[getter]
    fn kind(&self) -> String {
        self.served.describe().kind
    }

    /// Embedding width (a pipeline's retriever's).
    #[getter]
    fn dim(&self) -> usize {
        self.artifact().dim()
    }

    /// Users known to the model (the query vocabulary, without the unknown row).
    #[getter]
    fn users(&self) -> Vec<String> {
        self.artifact().query_vocab.iter().map(str::to_owned).collect()
    }

    /// Item ids of the candidates (without the unknown row).
    #[getter]
    fn items(&self) -> Vec<String> {
        self.artifact().items.ids.iter().skip(1).cloned().collect()
    }

    /// The model's settings and training configuration, as in the manifest (a pipeline's
    /// retriever's).
    #[getter]
    fn config<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyAny>> {
        let a = self.artifact();
        to_python(py, &serde_json::json!({ "model": a.model.spec(), "config": a.config }))
    }

    /// Per-epoch records: loss, seconds and, with test data, its metrics.
    #[getter]
    fn history<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyAny>> {
        to_python(py, &self.artifact().history.epochs)
    }

    /// Training figures: examples, seconds per epoch, examples per second, final loss.
    #[getter]
    fn summary<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyAny>> {
        to_python(py, &self.artifact().summary)
    }

    /// Where recommendations come from: `exact`, `ivf` when the model holds an approximate
    /// index, or `postgres` when loaded with `postgres=`.
    #[getter]
    fn index(&self) -> &'static str {
        self.served.describe().index
    }

    /// A pipeline's stages and rules (retriever, ranker, retrieve, post, attributes); `None`
    /// for a single model.
    #[getter]
    fn settings<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyAny>> {
        to_python(py, &self.served.describe().pipeline)
    }

    /// Candidates a pipeline's retriever hands to its ranker; `None` for a single model.
    #[getter]
    fn retrieve(&self) -> Option<usize> {
        self.served.describe().pipeline.map(|p| p.retrieve)
    }

    /// The item attributes a pipeline's post-ranking can read (caps, dedupe), `title`
    /// included; empty for a single model.
    #[getter]
    fn attributes(&self) -> Vec<String> {
        self.served.describe().pipeline.map(|p| p.attributes).unwrap_or_default()
    }

    fn __repr__(&self) -> String {
        format!("towers.{}", self.served.describe())
    }
}
