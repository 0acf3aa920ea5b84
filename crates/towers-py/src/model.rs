//! `towers.Model`: a trained model (the library's `Recommender` over an `Artifact`) with the
//! CLI's queries — evaluate, recommend, similar, rank — its embeddings as numpy arrays, and save.

use crate::errors::{IntoPy, config, input};
use crate::inputs::{ReadOptions, interactions, test_sequences};
use numpy::PyArray2;
use numpy::ndarray::{Array2, ArrayView2};
use pyo3::prelude::*;
use pyo3::types::{IntoPyDict, PyDict, PyList};
use std::path::PathBuf;
use std::sync::Arc;
use towers::model::{At, ModelSpec, Queries, QueryKind};
use towers::{Artifact, Error, Query, Recommendation, Recommender, Request, evaluate};

/// A trained model: `towers.train(…)` or `towers.load(dir)`.
#[pyclass(frozen, module = "towers", name = "Model")]
pub struct Model {
    recommender: Recommender,
    /// The candidate embeddings (`items × dim`, row 0 the unknown item), which the arrays of
    /// `candidate_embeddings()` view without copying: kept here so that they outlive them.
    candidates: Arc<[f32]>,
}

impl Model {
    /// Serves `artifact`.
    pub fn new(artifact: Artifact) -> Self {
        let candidates = artifact.candidates.clone();
        Model { recommender: Recommender::new(artifact), candidates }
    }

    fn artifact(&self) -> &Artifact {
        self.recommender.artifact()
    }
}

/// A Python value from anything serde writes (through `json.loads`, so that it is plain
/// dicts, lists, floats and strings).
pub fn to_python<'py>(py: Python<'py>, v: &impl serde::Serialize) -> PyResult<Bound<'py, PyAny>> {
    let text = serde_json::to_string(v).map_err(Error::internal).py_err(py)?;
    py.import("json")?.call_method1("loads", (text,))
}

pub fn as_list<'py>(py: Python<'py>, recs: Vec<Recommendation>) -> PyResult<Bound<'py, PyList>> {
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

pub fn request(
    py: Python<'_>,
    k: usize,
    exclude_seen: bool,
    exclude: Option<Vec<String>>,
    allow: Option<Vec<String>>,
) -> PyResult<Request> {
    if !(1..=100_000).contains(&k) {
        return Err(config(py, format!("k must be in 1..=100000, got {k}")));
    }
    let mut r = Request::top(k).exclude_seen(exclude_seen).exclude(exclude.unwrap_or_default());
    if let Some(a) = allow {
        r = r.allow(a);
    }
    Ok(r)
}

pub fn warn_cold_start(py: Python<'_>, what: &str) -> PyResult<()> {
    let warning = py.import("towers._errors")?.getattr("ColdStartWarning")?;
    py.import("warnings")?.call_method1("warn", (format!("{what}: the most popular items instead"), warning, 3))?;
    Ok(())
}

#[pymethods]
impl Model {
    /// Evaluates on test data beside the popularity baseline: every test item ranked against
    /// all candidates. Returns the CLI's `evaluate --json` object: top_1 … top_100 (recall@k),
    /// mrr, mrr_1 … mrr_100, ndcg_10, n, baseline, …; rating models add rmse and more.
    /// `test` is a path, a pandas.DataFrame, a pyarrow.Table or a dict of arrays (sequential
    /// models: a path in `test_format`, default the training file's, or a list of item lists);
    /// `columns`, `delimiter` and `header` say how a file is read, as the CLI's options.
    #[pyo3(signature = (test, exclude_seen=false, **read))]
    fn evaluate<'py>(
        &self,
        py: Python<'py>,
        test: &Bound<'py, PyAny>,
        exclude_seen: bool,
        read: Option<&Bound<'py, PyDict>>,
    ) -> PyResult<Bound<'py, PyAny>> {
        let ReadOptions { table, test_format } = ReadOptions::from_kwargs(py, read)?;
        let a = self.artifact();
        let evaluation = match (a.model.query_kind(), a.model.spec()) {
            (QueryKind::History, ModelSpec::Sequential(seq)) => {
                let sessions = test_sequences(test, test_format.unwrap_or(seq.format), &table)?;
                py.detach(|| evaluate(a, &sessions, exclude_seen)).py_err(py)?
            }
            _ => {
                let t = interactions(test, &table)?;
                py.detach(|| evaluate(a, &t, exclude_seen)).py_err(py)?
            }
        };
        to_python(py, &evaluation)
    }

    /// The `k` best items for a user: a list of {"id", "title", "score"}, best first. An unknown
    /// user gets the most popular items (with a `towers.ColdStartWarning`).
    #[pyo3(signature = (user, k=10, exclude_seen=true, *, exclude=None, allow=None))]
    fn recommend<'py>(
        &self,
        py: Python<'py>,
        user: &str,
        k: usize,
        exclude_seen: bool,
        exclude: Option<Vec<String>>,
        allow: Option<Vec<String>>,
    ) -> PyResult<Bound<'py, PyList>> {
        let r = request(py, k, exclude_seen, exclude, allow)?;
        let recs = py.detach(|| self.recommender.recommend(Query::User(user), &r)).py_err(py)?;
        if recs.cold_start {
            warn_cold_start(py, &format!("user '{user}' is not in the training data"))?;
        }
        as_list(py, recs.items)
    }

    /// The `k` best next items after a history of items (oldest first, by id or title), for
    /// sequential models: a list of {"id", "title", "score"}.
    #[pyo3(signature = (history, k=10, exclude_seen=true, *, exclude=None, allow=None))]
    fn recommend_history<'py>(
        &self,
        py: Python<'py>,
        history: Vec<String>,
        k: usize,
        exclude_seen: bool,
        exclude: Option<Vec<String>>,
        allow: Option<Vec<String>>,
    ) -> PyResult<Bound<'py, PyList>> {
        let r = request(py, k, exclude_seen, exclude, allow)?;
        let recs = py.detach(|| self.recommender.recommend(Query::History(&history), &r)).py_err(py)?;
        if recs.cold_start {
            warn_cold_start(py, "no item of the history is known")?;
        }
        as_list(py, recs.items)
    }

    /// The `k` items most similar to an item (cosine similarity of candidate embeddings).
    #[pyo3(signature = (item, k=10, *, exclude=None, allow=None))]
    fn similar<'py>(
        &self,
        py: Python<'py>,
        item: &str,
        k: usize,
        exclude: Option<Vec<String>>,
        allow: Option<Vec<String>>,
    ) -> PyResult<Bound<'py, PyList>> {
        let r = request(py, k, false, exclude, allow)?;
        as_list(py, py.detach(|| self.recommender.similar(item, &r)).py_err(py)?)
    }

    /// Re-scores items for a user by predicted rating (rating and ranking models), best first.
    fn rank<'py>(&self, py: Python<'py>, user: &str, items: Vec<String>) -> PyResult<Bound<'py, PyList>> {
        as_list(py, py.detach(|| self.recommender.rank(user, &items)).py_err(py)?)
    }

    /// Two stages, as `towers rank --retriever`: `retriever` (a retrieval model) finds
    /// `candidates` items for the user, this rating or ranking model re-scores them by predicted
    /// rating, and the best `k` are returned. An unknown user gets the retriever's popular items.
    #[pyo3(signature = (retriever, user, candidates=100, k=10, exclude_seen=true))]
    fn rerank<'py>(
        &self,
        py: Python<'py>,
        retriever: &Bound<'py, Model>,
        user: &str,
        candidates: usize,
        k: usize,
        exclude_seen: bool,
    ) -> PyResult<Bound<'py, PyList>> {
        let r = request(py, k, exclude_seen, None, None)?;
        let retriever = &retriever.get().recommender;
        let recs = py.detach(|| self.recommender.rerank(retriever, user, candidates, &r)).py_err(py)?;
        if recs.cold_start {
            warn_cold_start(py, &format!("user '{user}' is not in the training data"))?;
        }
        as_list(py, recs.items)
    }

    /// `(ids, embeddings)`: the item ids and their candidate embeddings, a read-only float32
    /// array of shape `(len(ids), dim)` (C order) that views the model's memory without copying.
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

    /// Writes the model directory (the CLI's format; atomically).
    fn save(&self, py: Python<'_>, path: PathBuf) -> PyResult<()> {
        py.detach(|| self.artifact().save(&path)).py_err(py)
    }

    /// The model kind: retrieval, rating, ranking, features or sequential.
    #[getter]
    fn kind(&self) -> String {
        self.artifact().model.spec().kind().to_string()
    }

    /// Embedding width.
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

    /// The model's settings and training configuration, as in the manifest.
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

    /// The index recommendations come from: `exact`, or `ivf` when the model holds one.
    #[getter]
    fn index(&self) -> &'static str {
        self.recommender.index_kind()
    }

    fn __repr__(&self) -> String {
        let a = self.artifact();
        format!(
            "towers.Model(kind='{}', users={}, items={}, dim={})",
            self.kind(),
            a.query_vocab.rows().saturating_sub(1),
            a.items.len().saturating_sub(1),
            a.dim()
        )
    }
}
