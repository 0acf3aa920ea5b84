//! The sequential retrieval model: item embeddings → GRU → last state (→ optional dense
//! projection) as the query; the candidate tower is an item embedding, separate or shared with
//! the query side.

use super::attention::AttentionConfig;
use super::{Model, ModelSpec, Queries, QueryKind, Shape, put_mlp, put_table, read_mlp, read_table};
use crate::data::InputFormat;
use crate::kernels::dense::{Mlp, MlpCache, MlpGrads};
use crate::kernels::gru::{GruCache, GruGrads, GruWeights};
use crate::kernels::table::Table;
use crate::rng::Rng;
use crate::tensors::{TensorReader, TensorWriter};
use crate::{Error, Result};
use serde::{Deserialize, Serialize};

/// Settings of sequential retrieval. `Default` gives towers' (shared embeddings and the last
/// item's skip connection, chosen on RetailRocket: see the book's sequential guide); [`SequenceConfig::tfrs`] is
/// TFRS's model.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct SequenceConfig {
    /// Items of history the GRU reads.
    pub steps: usize,
    /// One item table for the GRU's inputs and the candidates.
    pub share_embeddings: bool,
    /// The training file's format; test files of the model are read the same way.
    pub format: InputFormat,
    /// Add the last item's embedding to the GRU's state.
    pub add_last_item: bool,
    /// A dense `dim → dim` projection of the GRU's last state (before the skip connection).
    pub projection: bool,
    /// Extra shared negatives per batch, drawn (with replacement, seeded) from the training
    /// targets' frequency distribution and appended to every row of the in-batch softmax;
    /// logQ-corrected like the batch's own candidates when `logq_correction` is on.
    pub sampled_negatives: usize,
    /// The history encoder: TFRS's GRU, or SASRec's self-attention.
    pub encoder: Encoder,
    /// The attention encoder's settings (with `encoder = "sasrec"`).
    pub attention: AttentionConfig,
}

/// The encoder of a sequential model's histories.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize, strum::EnumString, strum::Display)]
#[cfg_attr(feature = "clap", derive(clap::ValueEnum))]
#[serde(rename_all = "lowercase")]
#[strum(serialize_all = "lowercase")]
pub enum Encoder {
    /// A GRU over the last `steps` items; its last state is the query (TFRS's tutorial).
    #[default]
    Gru,
    /// Causal self-attention blocks over the last `steps` items, trained on every position
    /// ([`crate::model::AttentionModel`]).
    Sasrec,
}

impl Default for SequenceConfig {
    fn default() -> Self {
        SequenceConfig {
            steps: 10,
            share_embeddings: true,
            format: InputFormat::Sessions,
            add_last_item: true,
            projection: false,
            sampled_negatives: 0,
            encoder: Encoder::Gru,
            attention: AttentionConfig::default(),
        }
    }
}

impl SequenceConfig {
    /// TFRS's sequential tutorial: the GRU reads item embeddings of its own, and its last state
    /// alone is the query.
    pub fn tfrs() -> Self {
        SequenceConfig { share_embeddings: false, add_last_item: false, ..Default::default() }
    }

    /// towers' SASRec (chosen on a validation split of RetailRocket's training sessions: see the
    /// book's sequential guide): the attention encoder over the last 30 items, with the last
    /// item's skip connection.
    pub fn sasrec() -> Self {
        SequenceConfig { steps: 30, encoder: Encoder::Sasrec, ..Default::default() }
    }

    /// Checks the values.
    pub fn validate(&self) -> Result<()> {
        if !(1..=1000).contains(&self.steps) {
            return Err(Error::Config(format!("steps must be in 1..=1000, got {}", self.steps)));
        }
        if self.encoder == Encoder::Sasrec && !self.share_embeddings {
            return Err(Error::Config("the sasrec encoder shares its item table with the candidates".into()));
        }
        if self.sampled_negatives > 1_000_000 {
            return Err(Error::Config(format!(
                "sampled_negatives must be at most 1000000, got {}",
                self.sampled_negatives
            )));
        }
        Ok(())
    }
}

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
    /// Its settings: history length, shared embeddings, the last item's skip connection (its
    /// embedding added to the query, which makes repeated and follow-up items easy to score).
    pub config: SequenceConfig,
}

/// What backpropagation through [`SequentialModel::forward`] needs.
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
    /// A freshly initialised model over `items` rows (OOV included). The projection, if any,
    /// is drawn from its own seed, so that the other parameters are initialised as without it.
    pub fn new(items: usize, dim: usize, config: SequenceConfig, seed: u64) -> Self {
        let mut rng = Rng::new(seed);
        let item_embedding = Table::uniform(items, dim, 0.05, &mut rng);
        let candidate_embedding = (!config.share_embeddings).then(|| Table::uniform(items, dim, 0.05, &mut rng));
        let gru = GruWeights::new(dim, dim, &mut rng);
        let projection = config.projection.then(|| Mlp::new(dim, &[dim], &mut Rng::new(seed ^ 0x9E37_79B9_7F4A_7C15)));
        SequentialModel { item_embedding, candidate_embedding, gru, projection, config }
    }

    /// Reads the item tables, the GRU and the projection `config` says it has.
    pub fn load(r: &TensorReader, shape: Shape, config: SequenceConfig) -> Result<Self> {
        let (d, cr) = (shape.dim, shape.candidates);
        let candidate_embedding = match r.has("candidates.embedding") {
            true => Some(read_table(r, "candidates.embedding", cr, d)?),
            false => None,
        };
        let gru = GruWeights {
            input: d,
            hidden: d,
            w: r.f32("gru.w", &[d, 3 * d])?,
            u: r.f32("gru.u", &[d, 3 * d])?,
            b_in: r.f32("gru.b_in", &[3 * d])?,
            b_rec: r.f32("gru.b_rec", &[3 * d])?,
        };
        let projection = if config.projection { Some(read_mlp(r, "projection", d, &[d])?) } else { None };
        let item_embedding = read_table(r, "items.embedding", cr, d)?;
        Ok(SequentialModel { item_embedding, candidate_embedding, gru, projection, config })
    }

    /// Embedding width.
    pub fn width(&self) -> usize {
        self.item_embedding.dim
    }

    /// The candidate table.
    pub fn candidate_table(&self) -> &Table {
        self.candidate_embedding.as_ref().unwrap_or(&self.item_embedding)
    }

    /// The GRU's input for `contexts` (`n × steps` rows): embeddings, zeros at masked steps.
    pub fn inputs(&self, contexts: &[u32], mask: &[bool]) -> Vec<f32> {
        let d = self.width();
        let mut x = vec![0f32; contexts.len() * d];
        for ((row, &m), out) in contexts.iter().zip(mask).zip(x.chunks_exact_mut(d)) {
            if m {
                out.copy_from_slice(self.item_embedding.row(*row as usize));
            }
        }
        x
    }

    /// Query embeddings of `n` contexts, with what backpropagation needs.
    pub fn forward(&self, contexts: &[u32], mask: &[bool], steps: usize) -> (Vec<f32>, QueryCache) {
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
        if self.config.add_last_item {
            let d = self.width();
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
        let d = self.width();
        let (d_h, projection) = match (&self.projection, &cache.projection) {
            (Some(p), Some(c)) => {
                let (g, d_h) = p.backward(c, d_q);
                (d_h, Some(g))
            }
            _ => (d_q.to_vec(), None),
        };
        let mut gru = self.gru.backward(&cache.x, mask, &cache.gru, &d_h);
        if self.config.add_last_item {
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

impl Model for SequentialModel {
    fn spec(&self) -> ModelSpec {
        ModelSpec::Sequential(self.config)
    }

    fn dim(&self) -> usize {
        self.width()
    }

    fn query_kind(&self) -> QueryKind {
        QueryKind::History
    }

    fn candidates(&self) -> Vec<f32> {
        self.candidate_table().data.clone()
    }

    fn queries(&self, queries: &Queries) -> Result<Vec<f32>> {
        match queries {
            Queries::Histories { contexts, mask } => Ok(self.forward(contexts, mask, self.config.steps).0),
            Queries::Users { .. } => {
                Err(Error::Unsupported("this is a sequential model: recommend from a history of items".into()))
            }
        }
    }

    fn save(&self, w: &mut TensorWriter) -> Result<()> {
        let (e, g) = (&self.item_embedding, &self.gru);
        put_table(w, "items.embedding", e);
        if let Some(c) = &self.candidate_embedding {
            put_table(w, "candidates.embedding", c);
        }
        w.f32("gru.w", &[g.input, 3 * g.hidden], &g.w);
        w.f32("gru.u", &[g.hidden, 3 * g.hidden], &g.u);
        w.f32("gru.b_in", &[3 * g.hidden], &g.b_in);
        w.f32("gru.b_rec", &[3 * g.hidden], &g.b_rec);
        if let Some(p) = &self.projection {
            put_mlp(w, "projection", p);
        }
        Ok(())
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
        m.forward(ctx, mask, steps).0.iter().zip(c).map(|(a, b)| (a * b) as f64).sum()
    }

    #[test]
    fn projection_and_skip_gradients_match_finite_differences() {
        let (items, d, steps) = (5, 3, 3);
        let mut m = SequentialModel::new(items, d, SequenceConfig { projection: true, ..Default::default() }, 7);
        let mut rng = Rng::new(3);
        m.projection.as_mut().unwrap().biases[0].data.iter_mut().for_each(|b| *b = rng.next_f32() - 0.5);
        m.item_embedding.data.iter_mut().for_each(|v| *v = rng.next_f32() - 0.5);
        let ctx = [1, 2, 0, 3, 3, 4, 2, 0, 0];
        let mask = [true, true, false, true, true, true, true, false, false];
        let c: Vec<f32> = (0..3 * d).map(|_| rng.next_f32() * 2.0 - 1.0).collect();
        let (_, cache) = m.forward(&ctx, &mask, steps);
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
