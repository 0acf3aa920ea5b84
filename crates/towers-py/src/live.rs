//! `towers.Live`: users' live events, in memory or in a durable log (the library's
//! `recommend::Live`, as `towers serve --events FILE` keeps them).

use crate::errors::to_py;
use pyo3::prelude::*;
use std::path::PathBuf;
use towers::recommend::{Event, LiveConfig};

/// What users did since the model was trained: `append` events, then recommend with
/// `model.recommend(user, recent=live.recent(user))` — a sequential model follows the user's
/// training history with them (and leaves them out with `exclude_seen=True`). With a `path` the
/// events are appended to that log as they come, synced within a second, replayed when it is
/// opened again and compacted; at most `per_user` events per user and `users` users are kept.
#[pyclass(module = "towers")]
pub struct Live {
    inner: towers::recommend::Live,
}

#[pymethods]
impl Live {
    #[new]
    #[pyo3(signature = (path=None, per_user=100, users=1_000_000))]
    fn new(py: Python<'_>, path: Option<PathBuf>, per_user: usize, users: usize) -> PyResult<Self> {
        let config = LiveConfig { per_user, users, ..LiveConfig::default() };
        let inner = match path {
            Some(p) => towers::recommend::Live::open(p, config).map_err(|e| to_py(py, e))?,
            None => towers::recommend::Live::in_memory(config),
        };
        Ok(Live { inner })
    }

    /// Adds one event (a user and an item id; the timestamp, Unix seconds, is optional).
    #[pyo3(signature = (user, item, timestamp=None))]
    fn append(&self, py: Python<'_>, user: String, item: String, timestamp: Option<i64>) -> PyResult<()> {
        self.inner.append(&[Event { user, item, timestamp }]).map_err(|e| to_py(py, e))
    }

    /// A user's events kept, oldest first (item ids).
    fn recent(&self, user: &str) -> Vec<String> {
        self.inner.recent(user)
    }

    /// Syncs the log now.
    fn sync(&self, py: Python<'_>) -> PyResult<()> {
        self.inner.sync().map_err(|e| to_py(py, e))
    }

    /// Events kept.
    fn __len__(&self) -> usize {
        self.inner.len().1
    }
}
