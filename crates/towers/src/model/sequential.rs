//! The sequential retrieval model: item embeddings → GRU → last state as the query; the
//! candidate tower is an item embedding, separate or shared with the query side.

use crate::kernels::gru::{GruCache, GruWeights};
use crate::kernels::table::Table;
use crate::rng::Rng;

/// A GRU query tower over item histories and an item-embedding candidate tower.
#[derive(Debug, Clone, PartialEq)]
pub struct SequentialModel {
    /// Item embeddings read by the GRU (`items × dim`, row 0 = OOV).
    pub item_embedding: Table,
    /// Candidate embeddings; `None` when shared with `item_embedding` (GRU4Rec's usual best).
    pub candidate_embedding: Option<Table>,
    /// The recurrent layer (hidden width = `dim`).
    pub gru: GruWeights,
    /// Add the last item's embedding to the GRU's state (a skip connection that makes
    /// repeated and follow-up items easy to score).
    pub add_last_item: bool,
}

impl SequentialModel {
    /// A freshly initialised model over `items` rows (OOV included).
    pub fn new(items: usize, dim: usize, share_embeddings: bool, add_last_item: bool, seed: u64) -> Self {
        let mut rng = Rng::new(seed);
        let item_embedding = Table::uniform(items, dim, 0.05, &mut rng);
        let candidate_embedding = (!share_embeddings).then(|| Table::uniform(items, dim, 0.05, &mut rng));
        SequentialModel { item_embedding, candidate_embedding, gru: GruWeights::new(dim, dim, &mut rng), add_last_item }
    }

    /// Embedding width.
    pub fn dim(&self) -> usize {
        self.item_embedding.dim
    }

    /// The candidate table.
    pub fn candidates(&self) -> &Table {
        self.candidate_embedding.as_ref().unwrap_or(&self.item_embedding)
    }

    /// The GRU's input for `contexts` (`n × steps` rows): embeddings, zeros at masked steps.
    pub fn inputs(&self, contexts: &[u32], mask: &[bool]) -> Vec<f32> {
        let d = self.dim();
        let mut x = vec![0f32; contexts.len() * d];
        for ((row, &m), out) in contexts.iter().zip(mask).zip(x.chunks_exact_mut(d)) {
            if m {
                out.copy_from_slice(self.item_embedding.row(*row as usize));
            }
        }
        x
    }

    /// Query embeddings of `n` contexts, with what backpropagation needs.
    pub fn queries(&self, contexts: &[u32], mask: &[bool], steps: usize) -> (Vec<f32>, Vec<f32>, GruCache) {
        let x = self.inputs(contexts, mask);
        let (mut q, cache) = self.gru.forward(&x, mask, contexts.len() / steps, steps);
        if self.add_last_item {
            let d = self.dim();
            for (i, qi) in q.chunks_exact_mut(d).enumerate() {
                if let Some(p) = last_position(&mask[i * steps..(i + 1) * steps]) {
                    qi.iter_mut().zip(&x[(i * steps + p) * d..(i * steps + p + 1) * d]).for_each(|(a, b)| *a += b);
                }
            }
        }
        (q, x, cache)
    }
}

/// The position of the last real item of one context.
pub fn last_position(mask: &[bool]) -> Option<usize> {
    mask.iter().rposition(|&m| m)
}

impl SequentialModel {}
