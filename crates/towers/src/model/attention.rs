//! The self-attention sequence model (SASRec, Kang & McAuley 2018, with pre-layer-norm blocks):
//! item embeddings plus learned positional embeddings, causal self-attention blocks, a final
//! layer norm; the output at a position is the query that scores the next item, against the
//! same item table.
//!
//! Sequences are packed (`offsets`, no padding): position `t` of a sequence is its `t`-th item,
//! oldest first, and attends to the items before it.

use super::{Model, ModelSpec, Queries, QueryKind, SequenceConfig, Shape, put_table, read_table};
use crate::kernels::attention::{self, AttentionCache, Heads};
use crate::kernels::linear::{LayerNorm, Linear, NormCache, apply_mask, dropout_mask};
use crate::kernels::table::Table;
use crate::rng::Rng;
use crate::tensors::{TensorReader, TensorWriter};
use crate::{Error, Result};
use serde::{Deserialize, Serialize};

/// Settings of the attention encoder.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct AttentionConfig {
    /// Self-attention blocks.
    pub blocks: usize,
    /// Attention heads; divides the width.
    pub heads: usize,
    /// Dropout rate of the embeddings, the attention probabilities and each block's two outputs.
    pub dropout: f32,
    /// With `n > 0`, trained with gBCE over `n` negatives sampled uniformly per position
    /// (gSASRec, [`crate::kernels::gbce`]) instead of the in-batch softmax.
    pub gbce_negatives: usize,
    /// gBCE's calibration `t` (gSASRec's default 0.75).
    pub gbce_t: f32,
}

impl Default for AttentionConfig {
    fn default() -> Self {
        AttentionConfig { blocks: 2, heads: 1, dropout: 0.2, gbce_negatives: 0, gbce_t: 0.75 }
    }
}

impl AttentionConfig {
    /// Checks the values against the width `dim`.
    pub fn validate(&self, dim: usize) -> Result<()> {
        if !(1..=16).contains(&self.blocks) {
            return Err(Error::Config(format!("blocks must be in 1..=16, got {}", self.blocks)));
        }
        if self.heads == 0 || !dim.is_multiple_of(self.heads) {
            return Err(Error::Config(format!("heads ({}) must divide the width ({dim})", self.heads)));
        }
        if !(0.0..0.9).contains(&self.dropout) {
            return Err(Error::Config(format!("dropout must be in [0, 0.9), got {}", self.dropout)));
        }
        if self.gbce_negatives > 100_000 || !(0.0..=1.0).contains(&self.gbce_t) {
            return Err(Error::Config(format!(
                "gbce_negatives must be at most 100000 and gbce_t in [0, 1], got {} and {}",
                self.gbce_negatives, self.gbce_t
            )));
        }
        Ok(())
    }
}

/// One pre-layer-norm block: `h = x + Wo·attn(LN₁(x))`, `x' = h + W₂·relu(W₁·LN₂(h))`.
#[derive(Debug, Clone, PartialEq)]
pub struct Block {
    norm1: LayerNorm,
    qkv: Linear,
    out: Linear,
    norm2: LayerNorm,
    ff1: Linear,
    ff2: Linear,
}

impl Block {
    fn new(d: usize, rng: &mut Rng) -> Self {
        Block {
            norm1: LayerNorm::new(d),
            qkv: Linear::new(d, 3 * d, rng),
            out: Linear::new(d, d, rng),
            norm2: LayerNorm::new(d),
            ff1: Linear::new(d, d, rng),
            ff2: Linear::new(d, d, rng),
        }
    }

    /// Its parameters in a fixed order, with their names and shapes.
    fn params(&mut self) -> [(&'static str, Vec<usize>, &mut Vec<f32>); 12] {
        let d = self.norm1.gamma.len();
        [
            ("norm1.gamma", vec![d], &mut self.norm1.gamma),
            ("norm1.beta", vec![d], &mut self.norm1.beta),
            ("qkv.weight", vec![d, 3 * d], &mut self.qkv.w),
            ("qkv.bias", vec![3 * d], &mut self.qkv.b),
            ("out.weight", vec![d, d], &mut self.out.w),
            ("out.bias", vec![d], &mut self.out.b),
            ("norm2.gamma", vec![d], &mut self.norm2.gamma),
            ("norm2.beta", vec![d], &mut self.norm2.beta),
            ("ff1.weight", vec![d, d], &mut self.ff1.w),
            ("ff1.bias", vec![d], &mut self.ff1.b),
            ("ff2.weight", vec![d, d], &mut self.ff2.w),
            ("ff2.bias", vec![d], &mut self.ff2.b),
        ]
    }
}

/// SASRec's query tower over item histories; the candidates are the item table.
#[derive(Debug, Clone, PartialEq)]
pub struct AttentionModel {
    /// Item embeddings, read by the encoder and scored as candidates (`items × dim`, row 0 = OOV).
    pub item_embedding: Table,
    /// Learned positional embeddings (`steps × dim`).
    pub positions: Table,
    blocks: Vec<Block>,
    norm: LayerNorm,
    /// Repeat scores (`steps`): added to the score of an item for each time it occurs `a` steps
    /// before the query (`a = 0`: the last item). Fitted after the rest (`train::repeat`);
    /// zeros in models saved without them.
    pub repeat: Vec<f32>,
    /// Its settings.
    pub config: SequenceConfig,
}

/// What one block's backward pass needs.
#[derive(Debug, Clone)]
struct BlockCache {
    n1: NormCache,
    a: Vec<f32>,
    qkv: Vec<f32>,
    attention: AttentionCache,
    heads: Vec<f32>,
    drop1: Option<Vec<f32>>,
    n2: NormCache,
    b: Vec<f32>,
    f: Vec<f32>,
    drop2: Option<Vec<f32>>,
}

/// What [`AttentionModel::backward`] needs.
#[derive(Debug, Clone)]
pub struct EncoderCache {
    offsets: Vec<usize>,
    drop0: Option<Vec<f32>>,
    blocks: Vec<BlockCache>,
    norm: NormCache,
    dropout: f32,
}

/// Gradients of the encoder: every dense parameter in [`AttentionModel::params`]'s order, and
/// each position's input embedding.
#[derive(Debug, Clone)]
pub struct EncoderGrads {
    /// One per dense parameter, the positional table first.
    pub dense: Vec<Vec<f32>>,
    /// `rows × dim`: scatter onto the item rows of the inputs.
    pub inputs: Vec<f32>,
}

/// A dropout mask when training.
fn draw(rng: &mut Option<&mut Rng>, len: usize, p: f32) -> Option<Vec<f32>> {
    rng.as_deref_mut().and_then(|r| dropout_mask(len, p, r))
}

/// Position of each packed row in its sequence.
fn position_of(offsets: &[usize]) -> impl Iterator<Item = usize> + '_ {
    offsets.windows(2).flat_map(|w| 0..w[1] - w[0])
}

impl AttentionModel {
    /// A freshly initialised model over `items` rows (OOV included).
    pub fn new(items: usize, dim: usize, config: SequenceConfig, seed: u64) -> Self {
        let mut rng = Rng::new(seed);
        let item_embedding = Table::uniform(items, dim, 0.05, &mut rng);
        let positions = Table::uniform(config.steps, dim, 0.05, &mut rng);
        let blocks = (0..config.attention.blocks).map(|_| Block::new(dim, &mut rng)).collect();
        let repeat = vec![0.0; config.steps];
        AttentionModel { item_embedding, positions, blocks, norm: LayerNorm::new(dim), repeat, config }
    }

    /// Reads the tables and blocks `config` says it has.
    pub fn load(r: &TensorReader, shape: Shape, config: SequenceConfig) -> Result<Self> {
        let mut m = AttentionModel::new(0, shape.dim, config, 0);
        m.item_embedding = read_table(r, "items.embedding", shape.candidates, shape.dim)?;
        for (name, dims, p) in m.named() {
            *p = r.f32(&name, &dims)?;
        }
        if r.has(REPEAT) {
            m.repeat = r.f32(REPEAT, &[config.steps])?;
        }
        Ok(m)
    }

    /// Embedding width.
    pub fn width(&self) -> usize {
        self.item_embedding.dim
    }

    /// Every dense parameter, named as saved: the positional table, the blocks, the final norm.
    fn named(&mut self) -> Vec<(String, Vec<usize>, &mut Vec<f32>)> {
        let (d, steps) = (self.width(), self.positions.rows);
        let mut out = vec![("attention.positions".to_string(), vec![steps, d], &mut self.positions.data)];
        for (b, block) in self.blocks.iter_mut().enumerate() {
            out.extend(block.params().into_iter().map(|(n, s, p)| (format!("attention.{b}.{n}"), s, p)));
        }
        out.push(("attention.norm.gamma".into(), vec![d], &mut self.norm.gamma));
        out.push(("attention.norm.beta".into(), vec![d], &mut self.norm.beta));
        out
    }

    /// Every dense parameter, in the order of [`EncoderGrads::dense`].
    pub fn params(&mut self) -> Vec<&mut Vec<f32>> {
        self.named().into_iter().map(|(_, _, p)| p).collect()
    }

    fn heads(&self, training: bool) -> Heads {
        let a = self.config.attention;
        Heads { dim: self.width(), heads: a.heads, dropout: if training { a.dropout } else { 0.0 } }
    }

    /// The output at every position of packed sequences (`items`, `offsets`), with what the
    /// backward pass needs. `rng` turns dropout on (training).
    pub fn forward(&self, items: &[u32], offsets: &[usize], mut rng: Option<&mut Rng>) -> (Vec<f32>, EncoderCache) {
        let d = self.width();
        let p = if rng.is_some() { self.config.attention.dropout } else { 0.0 };
        let mut x = vec![0f32; items.len() * d];
        for ((out, &item), t) in x.chunks_exact_mut(d).zip(items).zip(position_of(offsets)) {
            let (e, pos) = (self.item_embedding.row(item as usize), self.positions.row(t));
            out.iter_mut().zip(e.iter().zip(pos)).for_each(|(o, (a, b))| *o = a + b);
        }
        let drop0 = draw(&mut rng, x.len(), p);
        apply_mask(&mut x, drop0.as_deref());
        let mut blocks = Vec::with_capacity(self.blocks.len());
        for blk in &self.blocks {
            let (a, n1) = blk.norm1.forward(&x);
            let qkv = blk.qkv.forward(&a);
            let seed = rng.as_deref_mut().map(|r| r.next_u64());
            let (heads, attention) = attention::forward(&qkv, offsets, self.heads(seed.is_some()), seed);
            let mut o = blk.out.forward(&heads);
            let drop1 = draw(&mut rng, o.len(), p);
            apply_mask(&mut o, drop1.as_deref());
            let h: Vec<f32> = x.iter().zip(&o).map(|(a, b)| a + b).collect();
            let (b, n2) = blk.norm2.forward(&h);
            let mut f = blk.ff1.forward(&b);
            f.iter_mut().for_each(|v| *v = v.max(0.0));
            let mut g = blk.ff2.forward(&f);
            let drop2 = draw(&mut rng, g.len(), p);
            apply_mask(&mut g, drop2.as_deref());
            x = h.iter().zip(&g).map(|(a, b)| a + b).collect();
            blocks.push(BlockCache { n1, a, qkv, attention, heads, drop1, n2, b, f, drop2 });
        }
        let (mut y, norm) = self.norm.forward(&x);
        if self.config.add_last_item {
            // the skip connection of the GRU's: the item at a position added to its query
            for (out, &item) in y.chunks_exact_mut(d).zip(items) {
                out.iter_mut().zip(self.item_embedding.row(item as usize)).for_each(|(a, b)| *a += b);
            }
        }
        (y, EncoderCache { offsets: offsets.to_vec(), drop0, blocks, norm, dropout: p })
    }

    /// Gradients from the outputs' gradient `d_y` (`rows × dim`, zero where nothing was scored).
    pub fn backward(&self, cache: &EncoderCache, d_y: &[f32]) -> EncoderGrads {
        let d = self.width();
        let heads = Heads { dropout: cache.dropout, ..self.heads(false) };
        let (dg, db, mut dx) = self.norm.backward(&cache.norm, d_y);
        let mut block_grads = Vec::with_capacity(self.blocks.len());
        for (blk, c) in self.blocks.iter().zip(&cache.blocks).rev() {
            // x' = h + drop2 ⊙ ff2(relu(ff1(LN₂(h))))
            let mut dgo = dx.clone();
            apply_mask(&mut dgo, c.drop2.as_deref());
            let (w2, b2, mut df) = blk.ff2.backward(&c.f, &dgo);
            df.iter_mut().zip(&c.f).for_each(|(g, &v)| {
                if v <= 0.0 {
                    *g = 0.0
                }
            });
            let (w1, b1, dbn) = blk.ff1.backward(&c.b, &df);
            let (g2, be2, dh_n) = blk.norm2.backward(&c.n2, &dbn);
            let dh: Vec<f32> = dx.iter().zip(&dh_n).map(|(a, b)| a + b).collect();
            // h = x + drop1 ⊙ out(attn(qkv(LN₁(x))))
            let mut doo = dh.clone();
            apply_mask(&mut doo, c.drop1.as_deref());
            let (wo, bo, dheads) = blk.out.backward(&c.heads, &doo);
            let dqkv = attention::backward(&c.qkv, &cache.offsets, heads, &c.attention, &dheads);
            let (wq, bq, da) = blk.qkv.backward(&c.a, &dqkv);
            let (g1, be1, dx_n) = blk.norm1.backward(&c.n1, &da);
            dx = dh.iter().zip(&dx_n).map(|(a, b)| a + b).collect();
            block_grads.push([g1, be1, wq, bq, wo, bo, g2, be2, w1, b1, w2, b2]);
        }
        apply_mask(&mut dx, cache.drop0.as_deref());
        let mut d_pos = vec![0f32; self.positions.data.len()];
        for (g, t) in dx.chunks_exact(d).zip(position_of(&cache.offsets)) {
            d_pos[t * d..(t + 1) * d].iter_mut().zip(g).for_each(|(a, b)| *a += b);
        }
        // the skip connection reaches the item rows only
        if self.config.add_last_item {
            dx.iter_mut().zip(d_y).for_each(|(a, b)| *a += b);
        }
        let mut dense = vec![d_pos];
        dense.extend(block_grads.into_iter().rev().flatten());
        dense.extend([dg, db]);
        EncoderGrads { dense, inputs: dx }
    }

    fn clone_dense(&self) -> Self {
        let item_embedding = Table::zeros(0, self.width());
        let (positions, blocks, norm) = (self.positions.clone(), self.blocks.clone(), self.norm.clone());
        AttentionModel { item_embedding, positions, blocks, norm, repeat: self.repeat.clone(), config: self.config }
    }

    /// Packs fixed-width histories (`n × steps`, padding after the real items) into sequences;
    /// an empty history becomes the one OOV item.
    fn pack(contexts: &[u32], mask: &[bool], steps: usize) -> (Vec<u32>, Vec<usize>) {
        let (mut items, mut offsets) = (Vec::new(), vec![0]);
        for (c, m) in contexts.chunks_exact(steps).zip(mask.chunks_exact(steps)) {
            let before = items.len();
            items.extend(c.iter().zip(m).filter(|(_, m)| **m).map(|(i, _)| *i));
            if items.len() == before {
                items.push(0);
            }
            offsets.push(items.len());
        }
        (items, offsets)
    }
}

impl Model for AttentionModel {
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
        self.item_embedding.data.clone()
    }

    fn queries(&self, queries: &Queries) -> Result<Vec<f32>> {
        let Queries::Histories { contexts, mask } = queries else {
            return Err(Error::Unsupported("this is a sequential model: recommend from a history of items".into()));
        };
        let (items, offsets) = Self::pack(contexts, mask, self.config.steps);
        let (y, _) = self.forward(&items, &offsets, None);
        let d = self.width();
        Ok(offsets[1..].iter().flat_map(|&end| y[(end - 1) * d..end * d].iter().copied()).collect())
    }

    fn save(&self, w: &mut TensorWriter) -> Result<()> {
        put_table(w, "items.embedding", &self.item_embedding);
        // the dense parameters (small) borrowed mutably from a copy without the item table
        let mut m = self.clone_dense();
        for (name, dims, p) in m.named() {
            w.f32(&name, &dims, p);
        }
        w.f32(REPEAT, &[self.repeat.len()], &self.repeat);
        Ok(())
    }

    fn repeat_scores(&self, context: &[u32], mask: &[bool]) -> Vec<(u32, f32)> {
        if self.repeat.iter().all(|&b| b == 0.0) {
            return Vec::new();
        }
        let real = mask.iter().take_while(|&&m| m).count();
        let mut out: Vec<(u32, f32)> = context[..real]
            .iter()
            .enumerate()
            .filter(|&(_, &row)| row > 0)
            .map(|(j, &row)| (row, self.repeat[real - 1 - j]))
            .collect();
        out.sort_by_key(|&(row, _)| row);
        // an item seen several times: its repeat scores added, in age order
        out.dedup_by(|later, first| {
            let same = later.0 == first.0;
            if same {
                first.1 += later.1;
            }
            same
        });
        out
    }
}

/// The saved name of the repeat scores.
const REPEAT: &str = "attention.repeat";

#[cfg(test)]
mod tests {
    use super::*;

    fn model(dropout: f32, add_last_item: bool) -> AttentionModel {
        let attention = AttentionConfig { blocks: 2, heads: 2, dropout, ..Default::default() };
        let encoder = super::super::Encoder::Sasrec;
        let config = SequenceConfig { steps: 4, encoder, attention, add_last_item, ..Default::default() };
        let mut m = AttentionModel::new(6, 4, config, 3);
        // non-trivial norms and biases, so that their gradients are tested
        let mut rng = Rng::new(8);
        for p in m.params() {
            p.iter_mut().for_each(|v| *v += (rng.next_f32() - 0.5) * 0.4);
        }
        // inputs of unit scale, so that finite differences see the layer norms' smooth side
        m.item_embedding.data.iter_mut().for_each(|v| *v = rng.next_f32() * 2.0 - 1.0);
        m.positions.data.iter_mut().for_each(|v| *v = rng.next_f32() * 2.0 - 1.0);
        m
    }

    /// `Σ y ⊙ c` over every position.
    fn loss(m: &AttentionModel, items: &[u32], offsets: &[usize], c: &[f32], seed: Option<u64>) -> f64 {
        let mut rng = seed.map(Rng::new);
        m.forward(items, offsets, rng.as_mut()).0.iter().zip(c).map(|(a, b)| (a * b) as f64).sum()
    }

    #[test]
    fn encoder_gradients_match_finite_differences() {
        for (dropout, seed, skip) in [(0.0, None, true), (0.3, Some(5), false)] {
            let m = model(dropout, skip);
            let (items, offsets) = ([1u32, 2, 3, 5, 4, 4, 1], [0usize, 3, 4, 7]);
            let mut rng = Rng::new(2);
            let c: Vec<f32> = (0..7 * 4).map(|_| rng.next_f32() - 0.5).collect();
            let mut r = seed.map(Rng::new);
            let (_, cache) = m.forward(&items, &offsets, r.as_mut());
            let g = m.backward(&cache, &c);
            let h = 2e-3f32;
            let mut m2 = m.clone();
            let n = m2.params().len();
            for k in 0..n {
                for i in 0..g.dense[k].len() {
                    let mut at = |e: f32| {
                        m2.params()[k][i] += e;
                        let l = loss(&m2, &items, &offsets, &c, seed);
                        m2.params()[k][i] -= e;
                        l
                    };
                    let fd = (at(h) - at(-h)) / (2.0 * h as f64);
                    let a = g.dense[k][i] as f64;
                    assert!(
                        (fd - a).abs() < 5e-3 * fd.abs().max(1.0),
                        "param {k}[{i}] (dropout {dropout}): fd {fd} vs {a}"
                    );
                }
            }
            // the inputs' gradient, scattered onto item rows as the trainer does
            let mut rows = vec![0f32; m.item_embedding.data.len()];
            for (&it, gi) in items.iter().zip(g.inputs.chunks_exact(4)) {
                rows[it as usize * 4..][..4].iter_mut().zip(gi).for_each(|(a, b)| *a += b);
            }
            for (i, &a) in rows.iter().enumerate() {
                let mut at = |e: f32| {
                    m2.item_embedding.data[i] += e;
                    let l = loss(&m2, &items, &offsets, &c, seed);
                    m2.item_embedding.data[i] -= e;
                    l
                };
                let fd = (at(h) - at(-h)) / (2.0 * h as f64);
                assert!((fd - a as f64).abs() < 5e-3 * fd.abs().max(1.0), "item {i}: fd {fd} vs {a}");
            }
        }
    }

    #[test]
    fn causal_queries_ignore_later_items_and_padding() {
        let m = model(0.0, true);
        let (y, _) = m.forward(&[1, 2, 3], &[0, 3], None);
        let (y2, _) = m.forward(&[1, 2], &[0, 2], None);
        assert_eq!(&y[..8], &y2[..]);
        let q = m.queries(&Queries::Histories { contexts: &[1, 2, 0, 0], mask: &[true, true, false, false] }).unwrap();
        assert_eq!(q, &y2[4..]);
    }

    #[test]
    fn repeat_scores_add_up_by_age() {
        let mut m = model(0.0, false);
        let (context, mask) = ([5u32, 3, 5, 0], [true, true, true, false]);
        assert!(m.repeat_scores(&context, &mask).is_empty(), "no repeat scores, nothing added");
        m.repeat = vec![1.0, 10.0, 100.0, 1000.0];
        // 5 was seen 2 steps and 0 steps ago, 3 one step ago; the padding adds nothing
        assert_eq!(m.repeat_scores(&context, &mask), vec![(3, 10.0), (5, 101.0)]);
        // the OOV row 0 is no item
        assert_eq!(m.repeat_scores(&[0, 4, 0, 0], &[true, true, false, false]), vec![(4, 1.0)]);
    }

    #[test]
    fn saved_and_loaded_unchanged() {
        let mut m = model(0.1, false);
        m.repeat = vec![0.5, -1.0, 0.0, 2.0];
        let mut w = TensorWriter::default();
        m.save(&mut w).unwrap();
        let bytes = w.to_bytes().unwrap();
        let r = TensorReader::parse(std::path::Path::new("t"), &bytes).unwrap();
        let back = AttentionModel::load(&r, Shape { queries: 0, candidates: 6, dim: 4 }, m.config).unwrap();
        assert_eq!(back, m);
    }
}
