//! Candidate stores outside the process ([`CandidateStore`]): the query tower runs here
//! ([`Served::resolve`](super::Served::resolve)), the store finds the top `k` among the candidate
//! embeddings it holds. `towers-postgres` implements it on PostgreSQL + pgvector; a sharded
//! engine (Qdrant, Milvus) would be another implementation of the same four methods. The library
//! has no database or network code: only this interface.

use super::Recommendation;
use crate::Result;
use std::future::Future;
use std::pin::Pin;

/// What a store's searches return: a future that any executor can drive (the server's, or
/// [`Served::recommend`](super::Served::recommend)'s wait where none runs).
pub type StoreFuture<'a, T> = Pin<Box<dyn Future<Output = Result<T>> + Send + 'a>>;

/// A store of candidate embeddings outside the model. A store that cannot be reached answers
/// [`crate::Error::Unavailable`] (HTTP 503), never panics.
pub trait CandidateStore: Send + Sync + std::fmt::Debug {
    /// Its name in `describe()` and the metrics (`postgres`).
    fn kind(&self) -> &'static str;
    /// The `k` candidates with the largest inner product with `query`, best first, none of
    /// `exclude` (item ids).
    fn search<'a>(&'a self, query: &'a [f32], k: usize, exclude: &'a [String]) -> StoreFuture<'a, Vec<Recommendation>>;
    /// The `k` most popular candidates, none of `exclude`: the cold start.
    fn popular<'a>(&'a self, k: usize, exclude: &'a [String]) -> StoreFuture<'a, Vec<Recommendation>>;
    /// What the store says of itself (servers, the catalogue's version, or why it cannot be
    /// read now), as JSON.
    fn describe(&self) -> Pin<Box<dyn Future<Output = serde_json::Value> + Send + '_>>;
}
