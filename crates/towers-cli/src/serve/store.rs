//! Where top-k comes from. The HTTP API is the same whatever the store: the query tower runs in
//! this process ([`towers::Recommender::resolve`]) and a store finds the candidates.
//!
//! - [`Store::Index`]: the model's own index (exact, or IVF when the directory holds one), in
//!   process; exclusions go by row.
//! - [`Store::External`]: any [`VectorStore`], which takes a query vector, `k` and the ids to
//!   leave out. PostgreSQL + pgvector is the one implemented; a sharded engine (Qdrant,
//!   Milvus) would be another implementation of the same three methods (README, "Scaling out").

use super::state::Loaded;
use serde_json::{Value, json};
use std::future::Future;
use std::pin::Pin;
use towers::recommend::{Query, Request};
use towers::{Error, Recommendation, Recommendations, Served};
use towers_postgres::Reader;

/// A boxed future: what the methods of a [`VectorStore`] return.
pub type StoreFuture<'a, T> = Pin<Box<dyn Future<Output = towers::Result<T>> + Send + 'a>>;

/// A store of candidate embeddings outside the model. A store that cannot be reached answers
/// [`Error::Unavailable`] (the server says 503), never panics.
pub trait VectorStore: Send + Sync {
    /// Its name in `/v1/model` and the metrics (`postgres`).
    fn kind(&self) -> &'static str;
    /// The `k` candidates with the largest inner product with `query`, best first, none of
    /// `exclude` (item ids).
    fn search<'a>(&'a self, query: &'a [f32], k: usize, exclude: &'a [String]) -> StoreFuture<'a, Vec<Recommendation>>;
    /// The `k` most popular candidates, none of `exclude`: the cold start.
    fn popular<'a>(&'a self, k: usize, exclude: &'a [String]) -> StoreFuture<'a, Vec<Recommendation>>;
    /// What `/v1/model` shows of the store (servers, the catalogue's version, or why it
    /// cannot be read now).
    fn describe(&self) -> Pin<Box<dyn Future<Output = Value> + Send + '_>>;
}

/// Where top-k comes from.
pub enum Store {
    /// The model's own index, in process.
    Index,
    /// A store outside the process.
    External(Box<dyn VectorStore>),
}

impl Store {
    /// PostgreSQL + pgvector.
    pub fn postgres(reader: Reader) -> Store {
        Store::External(Box::new(Postgres(reader)))
    }

    /// `exact`, `ivf` or the external store's kind.
    pub fn kind(&self, model: &Loaded) -> &'static str {
        match self {
            Store::Index => model.served.retriever().index_kind(),
            Store::External(s) => s.kind(),
        }
    }

    /// Whether this store can answer for `served` (a pipeline answers from its own index).
    pub fn check_model(&self, served: &Served) -> towers::Result<()> {
        match self {
            Store::Index => Ok(()),
            Store::External(_) => served.check_external_store(),
        }
    }

    /// Recommendations for a query: the model's index, or the query tower here and top-k there.
    pub async fn recommend(
        &self,
        model: &Loaded,
        query: Query<'_>,
        request: &Request,
    ) -> towers::Result<Recommendations> {
        let Store::External(store) = self else { return model.served.recommend(query, request) };
        if request.allow.is_some() {
            return Err(Error::Unsupported(format!("allow lists are not supported with the {} store", store.kind())));
        }
        let resolved = model.served.resolve(query, request)?;
        let ids = &model.served.retriever().artifact().items.ids;
        let exclude: Vec<String> =
            resolved.exclude.iter().filter(|&&r| r > 0).filter_map(|&r| ids.get(r as usize).cloned()).collect();
        let (items, cold_start) = match resolved.vector {
            None => (store.popular(request.k, &exclude).await?, true),
            Some(q) => (store.search(&q, request.k, &exclude).await?, false),
        };
        Ok(Recommendations { items, cold_start, timings: None })
    }

    /// `/v1/model`'s `store` object.
    pub async fn describe(&self, model: &Loaded) -> Value {
        match self {
            Store::Index => json!({ "kind": self.kind(model) }),
            Store::External(s) => s.describe().await,
        }
    }

    /// Logs whether the store holds a catalogue of this model; a store that is down is not an
    /// error at start-up (requests answer 503 until it is back).
    pub async fn check(&self, model: &Loaded) {
        if let Store::External(s) = self {
            let d = s.describe().await;
            match d.get("catalog") {
                Some(Value::Object(c)) => {
                    let dim = c.get("dim").and_then(Value::as_u64).unwrap_or(0) as usize;
                    if dim != model.served.retriever().artifact().dim() {
                        tracing::warn!(
                            "the exported catalogue has dimension {dim}, the model {}: export this model",
                            model.served.retriever().artifact().dim()
                        );
                    } else if c.get("model").and_then(Value::as_str) != Some(model.served.version()) {
                        tracing::warn!(
                            "the exported catalogue comes from another model version than {}: export this model",
                            model.served.version()
                        );
                    }
                }
                _ => {
                    let why = d.get("error").map(|e| e.to_string()).unwrap_or_else(|| "never exported".into());
                    tracing::warn!("no catalogue readable in the store now: {why}");
                }
            }
        }
    }
}

/// The library's errors for this crate's.
pub fn pg_error(e: towers_postgres::Error) -> Error {
    use towers_postgres::Error as P;
    match e {
        P::Config { .. } => Error::Config(e.to_string()),
        P::Data(m) => Error::Data(m),
        // a catalogue never exported or of another dimension: not ready to serve
        P::Unavailable(_) | P::Schema(_) => Error::Unavailable(e.to_string()),
        P::Database(m) => Error::Internal(m),
    }
}

struct Postgres(Reader);

fn described(hits: Vec<towers_postgres::Hit>) -> Vec<Recommendation> {
    hits.into_iter().map(|h| Recommendation { id: h.id, title: h.title, score: h.score }).collect()
}

impl VectorStore for Postgres {
    fn kind(&self) -> &'static str {
        "postgres"
    }

    fn search<'a>(&'a self, query: &'a [f32], k: usize, exclude: &'a [String]) -> StoreFuture<'a, Vec<Recommendation>> {
        Box::pin(async move { self.0.search(query, k, exclude).await.map(described).map_err(pg_error) })
    }

    fn popular<'a>(&'a self, k: usize, exclude: &'a [String]) -> StoreFuture<'a, Vec<Recommendation>> {
        Box::pin(async move { self.0.popular(k, exclude).await.map(described).map_err(pg_error) })
    }

    fn describe(&self) -> Pin<Box<dyn Future<Output = Value> + Send + '_>> {
        Box::pin(async move {
            let servers: Vec<Value> = self
                .0
                .servers()
                .into_iter()
                .map(|(role, address)| json!({ "role": role, "address": address }))
                .collect();
            let mut d = json!({
                "kind": "postgres",
                "table": self.0.table().as_str(),
                "ef_search": self.0.config().ef_search,
                "servers": servers,
            });
            match self.0.version().await {
                Ok(v) => d["catalog"] = json!(v),
                Err(e) => d["error"] = json!(e.to_string()),
            }
            d
        })
    }
}
