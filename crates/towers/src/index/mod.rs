//! Top-k search over candidate embeddings. Needs only embeddings, never the model.
//!
//! Two indexes behind one trait: [`BruteForceIndex`] (exact) and [`IvfIndex`] (approximate:
//! an inverted file over k-means lists of 4-bit codes, its best candidates re-scored exactly).

mod brute_force;
mod ivf;

pub use crate::kernels::topk::Scored;
pub use brute_force::{BruteForceIndex, Filter, Metric};
pub use ivf::{IvfIndex, IvfParams, recall_at_k};

/// A top-k index over `len × dim` vectors, dot-product scores; results best first, ties by
/// lower id.
pub trait Index: Send + Sync {
    /// Number of vectors.
    fn len(&self) -> usize;

    /// Whether the index holds no vector.
    fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Vector width.
    fn dim(&self) -> usize;

    /// The `k` best candidates for each of `queries` (`n × dim`). `filters` holds one filter
    /// per query, or a single one for all, or none.
    fn search_batch(&self, queries: &[f32], k: usize, filters: &[Filter]) -> Vec<Vec<Scored>>;

    /// The `k` best candidates for one query.
    fn search(&self, query: &[f32], k: usize, filter: &Filter) -> Vec<Scored> {
        self.search_batch(query, k, std::slice::from_ref(filter)).pop().unwrap_or_default()
    }
}
