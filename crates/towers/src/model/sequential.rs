//! The sequential retrieval model: item embeddings → GRU → last state (→ optional dense
//! projection) as the query; the candidate tower is an item embedding, separate or shared with
//! the query side.

use crate::kernels::dense::{Mlp, MlpCache, MlpGrads};
use crate::kernels::gru::{GruCache, GruGrads, GruWeights};
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
    /// Optional dense projection of the GRU's last state (one linear `dim → dim` layer), before
    /// the skip connection.
    pub projection: Option<Mlp>,
    /// Add the last item's embedding to the query (a skip connection that makes repeated and
    /// follow-up items easy to score).
    pub add_last_item: bool,
}

/// What backpropagation through [`SequentialModel::queries`] needs.
#[derive(Debug, Clone)]
pub struct QueryCache {
    /// The GRU's inputs (`n × steps × dim`, zeros at masked steps).
    pub x: Vec<f32>,
    gru: GruCache,
    /// The projection's activations, when there is one.
    projection: Option<MlpCache>,
}

/// Gradients of a batch of queries with respect to the query tower.
#[derive(Debug, Clone)]
pub struct SequentialGrads {
    /// The GRU's; `gru.x` is the gradient of every input vector (`n × steps × dim`),
    /// the skip connection's included: scatter it onto the item rows of the contexts.
    pub gru: GruGrads,
    /// The projection's kernel and bias, when there is one.
    pub projection: Option<MlpGrads>,
}

impl SequentialModel {
    /// A freshly initialised model over `items` rows (OOV included).
    pub fn new(items: usize, dim: usize, share_embeddings: bool, add_last_item: bool, seed: u64) -> Self {
        let mut rng = Rng::new(seed);
        let item_embedding = Table::uniform(items, dim, 0.05, &mut rng);
        let candidate_embedding = (!share_embeddings).then(|| Table::uniform(items, dim, 0.05, &mut rng));
        let gru = GruWeights::new(dim, dim, &mut rng);
        SequentialModel { item_embedding, candidate_embedding, gru, projection: None, add_last_item }
    }

    /// Adds a freshly initialised `dim → dim` projection after the GRU (drawn after the
    /// other parameters, so that they are initialised as without it).
    pub fn with_projection(mut self, seed: u64) -> Self {
        let d = self.dim();
        self.projection = Some(Mlp::new(d, &[d], &mut Rng::new(seed ^ 0x9E37_79B9_7F4A_7C15)));
        self
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
    pub fn queries(&self, contexts: &[u32], mask: &[bool], steps: usize) -> (Vec<f32>, QueryCache) {
        let x = self.inputs(contexts, mask);
        let n = contexts.len() / steps;
        let (h, gru) = self.gru.forward(&x, mask, n, steps);
        let (mut q, projection) = match &self.projection {
            Some(p) => {
                let (q, cache) = p.forward_train(h, n);
                (q, Some(cache))
            }
            None => (h, None),
        };
        if self.add_last_item {
            let d = self.dim();
            for (i, qi) in q.chunks_exact_mut(d).enumerate() {
                if let Some(p) = last_position(&mask[i * steps..(i + 1) * steps]) {
                    qi.iter_mut().zip(&x[(i * steps + p) * d..(i * steps + p + 1) * d]).for_each(|(a, b)| *a += b);
                }
            }
        }
        (q, QueryCache { x, gru, projection })
    }

    /// Gradients of the query tower from the queries' gradient `d_q` (`n × dim`).
    pub fn backward(&self, mask: &[bool], steps: usize, cache: &QueryCache, d_q: &[f32]) -> SequentialGrads {
        let d = self.dim();
        let (d_h, projection) = match (&self.projection, &cache.projection) {
            (Some(p), Some(c)) => {
                let (g, d_h) = p.backward(c, d_q);
                (d_h, Some(g))
            }
            _ => (d_q.to_vec(), None),
        };
        let mut gru = self.gru.backward(&cache.x, mask, &cache.gru, &d_h);
        if self.add_last_item {
            for (i, dq) in d_q.chunks_exact(d).enumerate() {
                if let Some(p) = last_position(&mask[i * steps..(i + 1) * steps]) {
                    let at = (i * steps + p) * d;
                    gru.x[at..at + d].iter_mut().zip(dq).for_each(|(a, b)| *a += b);
                }
            }
        }
        SequentialGrads { gru, projection }
    }
}

/// The position of the last real item of one context.
pub fn last_position(mask: &[bool]) -> Option<usize> {
    mask.iter().rposition(|&m| m)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Σ q ⊙ c over a batch, in f64.
    fn loss(m: &SequentialModel, ctx: &[u32], mask: &[bool], steps: usize, c: &[f32]) -> f64 {
        m.queries(ctx, mask, steps).0.iter().zip(c).map(|(a, b)| (a * b) as f64).sum()
    }

    #[test]
    fn projection_and_skip_gradients_match_finite_differences() {
        let (items, d, steps) = (5, 3, 3);
        let mut m = SequentialModel::new(items, d, true, true, 7).with_projection(7);
        let mut rng = Rng::new(3);
        m.projection.as_mut().unwrap().biases[0].data.iter_mut().for_each(|b| *b = rng.next_f32() - 0.5);
        m.item_embedding.data.iter_mut().for_each(|v| *v = rng.next_f32() - 0.5);
        let ctx = [1, 2, 0, 3, 3, 4, 2, 0, 0];
        let mask = [true, true, false, true, true, true, true, false, false];
        let c: Vec<f32> = (0..3 * d).map(|_| rng.next_f32() * 2.0 - 1.0).collect();
        let (_, cache) = m.queries(&ctx, &mask, steps);
        let g = m.backward(&mask, steps, &cache, &c);
        let p = g.projection.as_ref().unwrap();
        let h = 1e-3f32;
        let check = |name: &str, analytic: &[f32], perturb: &dyn Fn(usize, f32) -> f64| {
            for (i, &a) in analytic.iter().enumerate() {
                let fd = (perturb(i, h) - perturb(i, -h)) / (2.0 * h as f64);
                assert!((fd - a as f64).abs() < 2e-3 * fd.abs().max(1.0), "{name}[{i}]: fd {fd} vs {a}");
            }
        };
        check("projection.w", &p.weights[0], &|i, e| {
            let mut m2 = m.clone();
            m2.projection.as_mut().unwrap().weights[0].data[i] += e;
            loss(&m2, &ctx, &mask, steps, &c)
        });
        check("projection.b", &p.biases[0], &|i, e| {
            let mut m2 = m.clone();
            m2.projection.as_mut().unwrap().biases[0].data[i] += e;
            loss(&m2, &ctx, &mask, steps, &c)
        });
        check("gru.u", &g.gru.u, &|i, e| {
            let mut m2 = m.clone();
            m2.gru.u[i] += e;
            loss(&m2, &ctx, &mask, steps, &c)
        });
        // item rows: the input gradients (skip connection included) scattered as the trainer does
        let mut rows = vec![0f32; items * d];
        for (pos, (&r, &on)) in ctx.iter().zip(&mask).enumerate() {
            if on {
                rows[r as usize * d..(r as usize + 1) * d]
                    .iter_mut()
                    .zip(&g.gru.x[pos * d..(pos + 1) * d])
                    .for_each(|(a, b)| *a += b);
            }
        }
        check("items", &rows, &|i, e| {
            let mut m2 = m.clone();
            m2.item_embedding.data[i] += e;
            loss(&m2, &ctx, &mask, steps, &c)
        });
    }
}
