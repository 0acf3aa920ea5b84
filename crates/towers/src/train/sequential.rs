//! Training the sequential model (a GRU query tower over item histories).

use super::epochs::{Dedup, Run};
use super::optimizer::{Optimizer, Slots, Update};
use super::rating::MlpSlots;
use crate::Result;
use crate::artifact::History;
use crate::config::TrainConfig;
use crate::data::SequenceExamples;
use crate::kernels::dense::MlpGrads;
use crate::kernels::table::Table;
use crate::model::{SequenceConfig, SequentialModel};
use crate::rng::Rng;

/// Gradient rows of an embedding table gathered over a batch, summed per distinct row.
pub(super) struct SparseGrad {
    rows: Dedup,
    grads: Vec<f32>,
    dim: usize,
}

impl SparseGrad {
    pub(super) fn new(table_rows: usize, dim: usize) -> Self {
        SparseGrad { rows: Dedup::new(table_rows), grads: Vec::new(), dim }
    }

    pub(super) fn add(&mut self, row: u32, g: &[f32]) {
        let i = self.rows.index(row) as usize;
        if i * self.dim == self.grads.len() {
            self.grads.resize((i + 1) * self.dim, 0.0);
        }
        self.grads[i * self.dim..(i + 1) * self.dim].iter_mut().zip(g).for_each(|(a, b)| *a += b);
    }

    /// Adds L2 regularisation and applies the optimizer to the touched rows, then forgets them.
    pub(super) fn apply(&mut self, opt: &Optimizer, table: &mut Table, slots: &mut Slots, l2: f32) {
        opt.apply_regularized(table, slots, &self.rows.rows, &self.rows.weights, &mut self.grads, l2);
        self.clear();
    }

    /// The touched rows' update, their gradients moved into it ([`SparseGrad::clear`] once
    /// it is applied).
    pub(super) fn update<'s>(&'s mut self, opt: &'s Optimizer, l2: f32) -> Update<'s> {
        let grads = std::mem::take(&mut self.grads);
        Update { opt, l2, rows: &self.rows.rows, uses: &self.rows.weights, grads }
    }

    /// Forgets the touched rows.
    pub(super) fn clear(&mut self) {
        self.rows.clear();
        self.grads.clear();
    }
}

/// What a GRU model trains with beside its parameters: the optimizer state of the item and
/// candidate tables, of the GRU and of the projection, and the sampled negatives' generator.
pub(super) type SeqState = ([Slots; 2], [Slots; 4], Option<MlpSlots>, Rng);

/// A fresh [`SeqState`] for `model`, trained as `cfg` says.
pub(super) fn fresh_state(cfg: &TrainConfig, model: &SequentialModel) -> SeqState {
    let (opt, g, t) = (&cfg.optimizer, &model.gru, &model.item_embedding);
    (
        [Slots::new(opt, t.rows, t.dim), Slots::new(opt, t.rows, t.dim)],
        [g.w.len(), g.u.len(), g.b_in.len(), g.b_rec.len()].map(|n| Slots::new(opt, 1, n)),
        model.projection.as_ref().map(|p| MlpSlots::new(opt, p)),
        Rng::new(cfg.seed ^ 0x05A3_B1E5),
    )
}

/// Applies the gradients of the GRU (`w`, `u`, `b_in`, `b_rec`) and of the projection.
pub(super) fn apply_dense_grads(
    opt: &Optimizer,
    model: &mut SequentialModel,
    (gru_slots, proj_slots): (&mut [Slots; 4], &mut Option<MlpSlots>),
    [w, u, b_in, b_rec]: [&[f32]; 4],
    projection: Option<&MlpGrads>,
) {
    let [sw, su, sbi, sbr] = gru_slots;
    apply_dense(opt, &mut model.gru.w, sw, w);
    apply_dense(opt, &mut model.gru.u, su, u);
    apply_dense(opt, &mut model.gru.b_in, sbi, b_in);
    apply_dense(opt, &mut model.gru.b_rec, sbr, b_rec);
    if let (Some(p), Some(slots), Some(pg)) = (model.projection.as_mut(), proj_slots.as_mut(), projection) {
        slots.apply(opt, p, pg);
    }
}

/// Draws item rows with probability proportional to their counts (inverse CDF by binary search).
pub(super) struct Sampler {
    cumulative: Vec<f64>,
}

impl Sampler {
    pub(super) fn new(counts: &[f32]) -> Self {
        let cumulative = counts
            .iter()
            .scan(0f64, |total, &c| {
                *total += c as f64;
                Some(*total)
            })
            .collect();
        Sampler { cumulative }
    }

    /// Draws `n` shared negatives: their rows are added to `cands`, and `extra` (one per
    /// column of `cands`) counts how often each was drawn.
    pub(super) fn negatives(&self, n: usize, rng: &mut Rng, cands: &mut Dedup, extra: &mut Vec<f32>) {
        extra.clear();
        for _ in 0..n {
            let j = cands.index(self.draw(rng)) as usize;
            if j >= extra.len() {
                extra.resize(j + 1, 0.0);
            }
            extra[j] += 1.0;
        }
        extra.resize(cands.rows.len(), 0.0);
    }

    pub(super) fn draw(&self, rng: &mut Rng) -> u32 {
        let total = self.cumulative.last().copied().unwrap_or(0.0);
        let u = (rng.next_u64() >> 11) as f64 / (1u64 << 53) as f64 * total;
        self.cumulative.partition_point(|&c| c <= u).min(self.cumulative.len() - 1) as u32
    }
}

/// Applies the optimizer to a dense parameter vector.
pub(super) fn apply_dense(opt: &Optimizer, param: &mut Vec<f32>, slots: &mut Slots, grad: &[f32]) {
    let mut t = Table { rows: 1, dim: param.len(), data: std::mem::take(param) };
    opt.apply(&mut t, slots, &[0], grad);
    *param = t.data;
}

/// Trains a sequential model on `data`, over item rows (OOV included) that occurred `counts`
/// times as targets (logQ, sampled negatives).
pub(crate) fn fit(
    run: &mut Run,
    seq: SequenceConfig,
    data: &SequenceExamples,
    counts: &[f32],
) -> Result<(SequentialModel, History)> {
    let (cfg, items) = (run.config, counts.len());
    let (d, steps) = (cfg.dim, data.steps);
    let mut model = SequentialModel::new(items, d, seq, cfg.seed);
    let mut state = fresh_state(cfg, &model);
    let log_q = cfg.retrieval.log_q(counts);
    let sampler = (seq.sampled_negatives > 0).then(|| Sampler::new(counts));
    let mut extra: Vec<f32> = Vec::new();
    let mut cands = Dedup::new(items);
    let mut item_grads = SparseGrad::new(items, d);
    let mut cand_grads = SparseGrad::new(items, d);
    let history = run.epochs(data.len(), &mut model, &mut state, |model, state, b| {
        let ([item_slots, cand_slots], gru_slots, proj_slots, sample_rng) = state;
        let (batch, opt) = (b.rows, b.opt);
        let mut ctx = Vec::with_capacity(batch.len() * steps);
        let mut mask = Vec::with_capacity(batch.len() * steps);
        let mut pairs = Vec::with_capacity(batch.len());
        for (k, &i) in batch.iter().enumerate() {
            let i = i as usize;
            ctx.extend_from_slice(&data.contexts[i * steps..(i + 1) * steps]);
            mask.extend_from_slice(&data.mask[i * steps..(i + 1) * steps]);
            pairs.push((k as u32, cands.index(data.targets[i])));
        }
        if let Some(sampler) = &sampler {
            sampler.negatives(seq.sampled_negatives, sample_rng, &mut cands, &mut extra);
        }
        let (q, cache) = model.forward(&ctx, &mask, steps);
        let c = model.candidate_table().gather(&cands.rows);
        let lq: Option<Vec<f32>> = log_q.as_ref().map(|l| cands.rows.iter().map(|&r| l[r as usize]).collect());
        let mut loss = cfg.retrieval.loss(&q, &c, d, &pairs, lq.as_deref(), None);
        loss.extra_counts = sampler.as_ref().map(|_| &extra[..]);
        let grads = loss.forward_backward();
        let sg = model.backward(&mask, steps, &cache, &grads.d_queries);
        let g = &sg.gru;
        for (p, (&row, &m)) in ctx.iter().zip(&mask).enumerate() {
            if m {
                item_grads.add(row, &g.x[p * d..(p + 1) * d]);
            }
        }
        let cand_target = if model.candidate_embedding.is_some() { &mut cand_grads } else { &mut item_grads };
        for (j, &row) in cands.rows.iter().enumerate() {
            cand_target.add(row, &grads.d_candidates[j * d..(j + 1) * d]);
        }
        item_grads.apply(opt, &mut model.item_embedding, item_slots, cfg.l2);
        if let Some(table) = model.candidate_embedding.as_mut() {
            cand_grads.apply(opt, table, cand_slots, cfg.l2);
        }
        let gru = [&g.w[..], &g.u, &g.b_in, &g.b_rec];
        apply_dense_grads(opt, model, (gru_slots, proj_slots), gru, sg.projection.as_ref());
        cands.clear();
        grads.loss
    })?;
    Ok((model, history))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sampler_follows_the_counts_and_never_draws_zero_counts() {
        let s = Sampler::new(&[0.0, 3.0, 0.0, 1.0]);
        let mut rng = Rng::new(1);
        let mut seen = [0usize; 4];
        (0..4000).for_each(|_| seen[s.draw(&mut rng) as usize] += 1);
        assert_eq!((seen[0], seen[2]), (0, 0));
        assert!((seen[1] as f64 / 4000.0 - 0.75).abs() < 0.03, "{seen:?}");
        let again: Vec<u32> = {
            let mut rng = Rng::new(1);
            (0..10).map(|_| s.draw(&mut rng)).collect()
        };
        let mut rng = Rng::new(1);
        assert_eq!(again, (0..10).map(|_| s.draw(&mut rng)).collect::<Vec<_>>());
    }
}
