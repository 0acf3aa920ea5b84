//! Top-k search over candidate embeddings. Needs only embeddings, never the model.
//!
//! Two indexes behind one trait: [`BruteForceIndex`] (exact) and [`IvfIndex`] (approximate:
//! an inverted file over k-means lists of 4-bit codes, its best candidates re-scored exactly).

mod brute_force;
mod ivf;

pub use crate::kernels::topk::Scored;
pub use brute_force::{BruteForceIndex, Metric};
pub use ivf::{IVF_FORMAT_VERSION, IvfIndex, IvfParams, recall_at_k};

/// Which candidates one query may return: never those in `exclude`; with `allow`, only those.
/// Both lists hold candidate ids, sorted ascending.
#[derive(Debug, Clone, Copy, Default)]
pub struct Filter<'a> {
    /// Candidates removed from the results (e.g. items already seen).
    pub exclude: &'a [u32],
    /// If given, the only candidates the results may hold.
    pub allow: Option<&'a [u32]>,
}

impl Filter<'_> {
    #[inline]
    pub(crate) fn skips(&self, id: u32) -> bool {
        self.exclude.binary_search(&id).is_ok() || self.allow.is_some_and(|a| a.binary_search(&id).is_err())
    }
}

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

/// The `k` best of precomputed scores (one per candidate id), best first, ties by lower id: for
/// rankings that are not inner products (popularity, a ranking model's predictions).
pub fn best_scores(scores: &[f32], k: usize, filter: &Filter) -> Vec<Scored> {
    // the scores are a 1-wide candidate table, scored by the query [1]: no copy, no index
    crate::kernels::topk::top_k(&[1.0], scores, 1, k, |_, c| filter.skips(c)).pop().unwrap_or_default()
}
