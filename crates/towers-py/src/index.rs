//! `towers.build_index`: an approximate index built in a model directory, as `towers index build`.

use crate::errors::{config, to_py};
use crate::model::to_python;
use crate::progress::Progress;
use pyo3::prelude::*;
use pyo3::types::PyDict;
use serde_json::json;
use std::path::PathBuf;
use towers::index::{Index, IvfParams};
use towers::recommend::build_index as build;
use towers::{Artifact, Error};

/// Builds an IVF index over a saved model's candidates (`kind="ivf"`) or removes it
/// (`kind="exact"`), rewrites the directory and returns the figures of `towers index build --json`.
#[pyfunction]
#[pyo3(signature = (path, kind, params, reporter))]
pub fn build_index<'py>(
    py: Python<'py>,
    path: PathBuf,
    kind: &str,
    params: &Bound<'py, PyDict>,
    reporter: Option<Py<PyAny>>,
) -> PyResult<Bound<'py, PyAny>> {
    let mut p = IvfParams::default();
    for (k, v) in params.iter() {
        if v.is_none() {
            continue;
        }
        match k.extract::<String>()?.as_str() {
            "nlist" => p.nlist = v.extract()?,
            "nprobe" => p.nprobe = v.extract()?,
            "reorder" => p.reorder = v.extract()?,
            "iterations" => p.iterations = v.extract()?,
            "seed" => p.seed = v.extract()?,
            other => return Err(config(py, format!("unknown option `{other}` of build_index"))),
        }
    }
    let exact = match kind {
        "ivf" => false,
        "exact" => true,
        other => return Err(config(py, format!("kind '{other}': expected ivf or exact"))),
    };
    let mut progress = Progress::new(reporter);
    let figures = py.detach(|| -> towers::Result<serde_json::Value> {
        let mut model = Artifact::load(&path)?;
        if exact {
            let had = model.approximate.take().is_some();
            model.save(&path)?;
            return Ok(json!({ "kind": "exact", "removed": had }));
        }
        let built = build(&mut model, &p, &mut progress)?.clone();
        model.save(&path)?;
        let ix = &built.index;
        Ok(json!({
            "kind": "ivf", "n": ix.len(), "dim": model.dim(), "nlist": ix.nlist(), "nprobe": ix.nprobe(),
            "reorder": ix.reorder(), "build_s": built.build_s, "recall_10": built.recall_10,
            "recall_queries": built.recall_queries,
        }))
    });
    match (figures, progress.error) {
        (Ok(v), _) => to_python(py, &v),
        (Err(Error::Interrupted), Some(e)) => Err(e),
        (Err(e), _) => Err(to_py(py, e)),
    }
}
