//! Building a model's approximate index, and measuring it against the exact one.

use crate::Result;
use crate::artifact::{Approximate, Artifact};
use crate::index::{BruteForceIndex, Index, IvfIndex, IvfParams, Metric, recall_at_k};
use crate::model::{At, Queries, QueryKind};
use crate::progress::Observer;
use std::time::Instant;

/// Builds an approximate (IVF) index over a model's candidate embeddings, keeps it in
/// [`Artifact::approximate`] (saved with the model) and measures its recall@10 against the
/// exact index on up to 1,000 queries: query-tower outputs of evenly spaced users, or, for
/// sequential and ranking models, candidate embeddings (item → item).
///
/// ```no_run
/// # fn main() -> towers::Result<()> {
/// use towers::Artifact;
/// use towers::index::IvfParams;
/// use towers::recommend::build_index;
/// let mut model = Artifact::load("/tmp/d")?;
/// let built = build_index(&mut model, &IvfParams::default(), &mut towers::progress::quiet())?;
/// println!("recall@10 {:.4} against the exact index", built.recall_10);
/// model.save("/tmp/d")?; // recommend and serve now answer from the index
/// # Ok(()) }
/// ```
pub fn build_index<'a>(
    artifact: &'a mut Artifact,
    params: &IvfParams,
    observer: &mut dyn Observer,
) -> Result<&'a Approximate> {
    let d = artifact.dim();
    let start = Instant::now();
    let index = IvfIndex::build(&artifact.candidates, d, params, observer)?;
    let build_s = start.elapsed().as_secs_f64();
    let spaced = |n: usize| -> Vec<u32> { (0..n.min(1000)).map(|i| (i * n / n.min(1000)) as u32).collect() };
    let queries = match artifact.model.query_kind() {
        QueryKind::User | QueryKind::UserAtTime => {
            let rows = spaced(artifact.query_vocab.rows());
            artifact.model.queries(&Queries::Users { rows: &rows, at: At::TrainingEnd })?
        }
        QueryKind::History | QueryKind::Pairs => spaced(artifact.items.len())
            .iter()
            .flat_map(|&i| artifact.candidates[i as usize * d..(i as usize + 1) * d].to_vec())
            .collect(),
    };
    let exact = BruteForceIndex::new(artifact.candidates.clone(), d, Metric::Dot).search_batch(&queries, 10, &[]);
    let approx = index.search_batch(&queries, 10, &[]);
    let recall_10 = recall_at_k(&approx, &exact);
    tracing::info!(recall_10, build_s, "approximate index built");
    Ok(artifact.approximate.insert(Approximate { index, recall_10, recall_queries: exact.len(), build_s }))
}
