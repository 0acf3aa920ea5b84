//! Training the self-attention sequence model (SASRec) on every position of packed sequences,
//! with the in-batch softmax over the batch's distinct targets (logQ, accidental hits).

use super::epochs::{Dedup, Run};
use super::optimizer::Slots;
use super::sequential::{Sampler, SparseGrad, apply_dense};
use crate::Result;
use crate::artifact::History;
use crate::data::{NO_TARGET, Sequences};
use crate::model::{AttentionModel, SequenceConfig};
use crate::rng::Rng;

/// One batch of sequences, packed.
#[derive(Default)]
struct Packed {
    items: Vec<u32>,
    offsets: Vec<usize>,
    targets: Vec<u32>,
}

impl Packed {
    fn gather(&mut self, data: &Sequences, rows: &[u32]) {
        self.items.clear();
        self.targets.clear();
        self.offsets.clear();
        self.offsets.push(0);
        for &s in rows {
            let (a, b) = (data.offsets[s as usize], data.offsets[s as usize + 1]);
            self.items.extend_from_slice(&data.items[a..b]);
            self.targets.extend_from_slice(&data.targets[a..b]);
            self.offsets.push(self.items.len());
        }
    }
}

/// Trains a SASRec model on `data`, over item rows (OOV included) that occurred `counts` times
/// as targets (logQ).
pub(crate) fn fit(
    run: &mut Run,
    seq: SequenceConfig,
    data: &Sequences,
    counts: &[f32],
) -> Result<(AttentionModel, History)> {
    let (cfg, items) = (run.config, counts.len());
    let d = cfg.dim;
    seq.attention.validate(d)?;
    let mut model = AttentionModel::new(items, d, seq, cfg.seed);
    let opt = &cfg.optimizer;
    let dense: Vec<Slots> = model.params().iter().map(|p| Slots::new(opt, 1, p.len())).collect();
    let mut state =
        (Slots::new(opt, items, d), dense, Rng::new(cfg.seed ^ 0xA77E_4710), Rng::new(cfg.seed ^ 0x05A3_B1E5));
    let sampler = (seq.sampled_negatives > 0).then(|| Sampler::new(counts));
    let mut extra: Vec<f32> = Vec::new();
    let log_q = cfg.retrieval.log_q(counts);
    let mut cands = Dedup::new(items);
    let mut item_grads = SparseGrad::new(items, d);
    let mut batch = Packed::default();
    let (mut q, mut pairs, mut scored) = (Vec::new(), Vec::new(), Vec::new());
    // the batch size counts targets (positions), whatever the sequences' lengths: as many
    // sequences per batch as hold that many on average
    let targets = data.real_targets().count().max(1);
    run.batch_size = ((cfg.batch_size * data.len()) as f64 / targets as f64).round().max(1.0) as usize;
    let history = run.epochs(data.len(), &mut model, &mut state, |model, state, b| {
        let (item_slots, dense_slots, rng, sample_rng) = state;
        batch.gather(data, b.rows);
        let (y, cache) = model.forward(&batch.items, &batch.offsets, Some(rng));
        q.clear();
        pairs.clear();
        scored.clear();
        for (p, &t) in batch.targets.iter().enumerate() {
            if t != NO_TARGET {
                pairs.push((scored.len() as u32, cands.index(t)));
                scored.push(p);
                q.extend_from_slice(&y[p * d..(p + 1) * d]);
            }
        }
        if let Some(sampler) = &sampler {
            sampler.negatives(seq.sampled_negatives, sample_rng, &mut cands, &mut extra);
        }
        let c = model.item_embedding.gather(&cands.rows);
        let lq: Option<Vec<f32>> = log_q.as_ref().map(|l| cands.rows.iter().map(|&r| l[r as usize]).collect());
        let mut loss = cfg.retrieval.loss(&q, &c, d, &pairs, lq.as_deref(), None);
        loss.extra_counts = sampler.as_ref().map(|_| &extra[..]);
        let grads = loss.forward_backward();
        let mut d_y = vec![0f32; y.len()];
        for (k, &p) in scored.iter().enumerate() {
            d_y[p * d..(p + 1) * d].copy_from_slice(&grads.d_queries[k * d..(k + 1) * d]);
        }
        let g = model.backward(&cache, &d_y);
        for (&row, gi) in batch.items.iter().zip(g.inputs.chunks_exact(d)) {
            item_grads.add(row, gi);
        }
        for (j, &row) in cands.rows.iter().enumerate() {
            item_grads.add(row, &grads.d_candidates[j * d..(j + 1) * d]);
        }
        item_grads.apply(b.opt, &mut model.item_embedding, item_slots, cfg.l2);
        for ((p, slots), grad) in model.params().into_iter().zip(dense_slots.iter_mut()).zip(&g.dense) {
            apply_dense(b.opt, p, slots, grad);
        }
        cands.clear();
        grads.loss
    })?;
    Ok((model, history))
}
