//! [`PgStore`]: a [`Reader`] as the library's [`CandidateStore`], so that any model directory
//! served by `towers::Served` (the HTTP server, the Python package) can take its top k from
//! PostgreSQL + pgvector.

use crate::{Error, Hit, Reader};
use serde_json::{Value, json};
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use tokio::runtime::{Handle, Runtime};
use towers::Recommendation;
use towers::recommend::{CandidateStore, StoreFuture};

/// A catalogue exported by [`crate::Exporter`], read through a [`Reader`]. Its queries run on the
/// tokio runtime it was made in, or, made outside any (a Python process), on a small runtime
/// of its own; their answers can be awaited from any executor.
#[derive(Debug)]
pub struct PgStore {
    reader: Arc<Reader>,
    handle: Handle,
    /// The runtime of its own, when it was made outside one.
    _runtime: Option<Runtime>,
}

impl PgStore {
    /// Reads through `reader`.
    pub fn new(reader: Reader) -> crate::Result<PgStore> {
        let (handle, runtime) = match Handle::try_current() {
            Ok(h) => (h, None),
            Err(_) => {
                let rt = tokio::runtime::Builder::new_multi_thread()
                    .worker_threads(2)
                    .thread_name("towers-postgres")
                    .enable_all()
                    .build()
                    .map_err(|e| Error::Unavailable(format!("cannot start the database client's runtime: {e}")))?;
                (rt.handle().clone(), Some(rt))
            }
        };
        Ok(PgStore { reader: Arc::new(reader), handle, _runtime: runtime })
    }

    /// The reader.
    pub fn reader(&self) -> &Reader {
        &self.reader
    }

    /// Runs `query` on the store's runtime; the answer as the library's.
    fn run<F>(&self, query: impl FnOnce(Arc<Reader>) -> F) -> StoreFuture<'static, Vec<Recommendation>>
    where
        F: Future<Output = crate::Result<Vec<Hit>>> + Send + 'static,
    {
        let task = self.handle.spawn(query(self.reader.clone()));
        Box::pin(async move {
            let hits = task.await.map_err(|e| towers::Error::Internal(format!("database query task: {e}")))??;
            Ok(hits.into_iter().map(|h| Recommendation { id: h.id, title: h.title, score: h.score }).collect())
        })
    }
}

impl From<Error> for towers::Error {
    /// A catalogue never exported or of another dimension is not ready to serve (503), as a
    /// server that cannot be reached.
    fn from(e: Error) -> towers::Error {
        match e {
            Error::Config { .. } => towers::Error::Config(e.to_string()),
            Error::Data(m) => towers::Error::Data(m),
            Error::Unavailable(_) | Error::Schema(_) => towers::Error::Unavailable(e.to_string()),
            Error::Database(m) => towers::Error::Internal(m),
        }
    }
}

impl CandidateStore for PgStore {
    fn kind(&self) -> &'static str {
        "postgres"
    }

    fn search<'a>(&'a self, query: &'a [f32], k: usize, exclude: &'a [String]) -> StoreFuture<'a, Vec<Recommendation>> {
        let (query, exclude) = (query.to_vec(), exclude.to_vec());
        self.run(move |r| async move { r.search(&query, k, &exclude).await })
    }

    fn popular<'a>(&'a self, k: usize, exclude: &'a [String]) -> StoreFuture<'a, Vec<Recommendation>> {
        let exclude = exclude.to_vec();
        self.run(move |r| async move { r.popular(k, &exclude).await })
    }

    fn describe(&self) -> Pin<Box<dyn Future<Output = Value> + Send + '_>> {
        let reader = self.reader.clone();
        let task = self.handle.spawn(async move { reader.version().await.map_err(|e| e.to_string()) });
        Box::pin(async move {
            let r = &self.reader;
            let servers: Vec<Value> =
                r.servers().into_iter().map(|(role, address)| json!({ "role": role, "address": address })).collect();
            let mut d = json!({
                "kind": "postgres",
                "table": r.table().as_str(),
                "ef_search": r.config().ef_search,
                "servers": servers,
            });
            match task.await {
                Ok(Ok(v)) => d["catalog"] = json!(v),
                Ok(Err(e)) => d["error"] = json!(e),
                Err(e) => d["error"] = json!(format!("database query task: {e}")),
            }
            d
        })
    }
}
