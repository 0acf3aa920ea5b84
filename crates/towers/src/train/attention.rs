//! Training the self-attention sequence model (SASRec) on every position of packed sequences,
//! with the in-batch softmax over the batch's distinct targets (logQ, accidental hits).

use super::epochs::{Dedup, Run};
use super::optimizer::Slots;
use super::sequential::{Sampler, SparseGrad, apply_dense};
use crate::Result;
use crate::artifact::History;
use crate::data::Sequences;
use crate::kernels::gbce;
use crate::kernels::table::Table;
use crate::model::{AttentionModel, SequenceConfig};
use crate::rng::Rng;

/// With at least this many sequences, every [`HELD_OUT_EVERY`]-th is held out of training and
/// fits the repeat scores on positions the model has not learned (fitted on trained positions,
/// they say less than the model already remembers). With fewer, the model has none.
const HELD_OUT_FROM: usize = 2000;
const HELD_OUT_EVERY: usize = 50;

/// The most target positions a batch holds for a catalogue of `items` rows: their number
/// rounded up to a power of two, at least 4,096. Past the catalogue's size a bigger batch adds
/// no negatives (its distinct targets are most of the catalogue already), only fewer steps: on
/// MovieLens (1,679 rows) 4,096 targets beat 8,192 and 32,768 on the validation split. A capped
/// batch scales the learning rate by the square root of the ratio (Adam's rule: 0.03 at 32,768
/// targets is ~0.011 at 4,096, where 0.01 beat 0.02 and 0.03 on that split).
pub(crate) fn batch_cap(items: usize) -> usize {
    items.next_power_of_two().max(4096)
}

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
    // every 50th sequence is kept out of training, for the repeat scores (with enough data)
    let (data, held) = match data.len() >= HELD_OUT_FROM {
        true => {
            let (train, held) = data.split_every(HELD_OUT_EVERY);
            (std::borrow::Cow::Owned(train), Some(held))
        }
        false => (std::borrow::Cow::Borrowed(data), None),
    };
    let data = &*data;
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
    let mut pairs = Vec::new();
    // the batch size counts targets (positions), whatever the sequences' lengths: as many
    // sequences per batch as hold that many on average
    let per_batch = cfg.batch_size.min(batch_cap(items));
    if per_batch < cfg.batch_size {
        // Adam's square-root rule: the learning rate scaled by the batch's
        run.learning_rate *= (per_batch as f32 / cfg.batch_size as f32).sqrt();
        tracing::info!(
            "a batch of {} targets capped at {per_batch} for a catalogue of {items} rows, learning rate {}",
            cfg.batch_size,
            run.learning_rate
        );
    }
    let targets = data.targets.len().max(1);
    run.batch_size = ((per_batch * data.len()) as f64 / targets as f64).round().max(1.0) as usize;
    let history = run.epochs(data.len(), &mut model, &mut state, |model, state, b| {
        let (item_slots, dense_slots, rng, sample_rng) = state;
        batch.gather(data, b.rows);
        let (y, cache) = model.forward(&batch.items, &batch.offsets, Some(rng));
        let (loss, d_y, rows) = match seq.attention.gbce_negatives {
            0 => {
                // every position is a query, its target a candidate
                pairs.clear();
                pairs.extend(batch.targets.iter().enumerate().map(|(p, &t)| (p as u32, cands.index(t))));
                if let Some(sampler) = &sampler {
                    sampler.negatives(seq.sampled_negatives, sample_rng, &mut cands, &mut extra);
                }
                let c = model.item_embedding.gather(&cands.rows);
                let lq: Option<Vec<f32>> = log_q.as_ref().map(|l| cands.rows.iter().map(|&r| l[r as usize]).collect());
                let mut loss = cfg.retrieval.loss(&y, &c, d, &pairs, lq.as_deref(), None);
                loss.extra_counts = sampler.as_ref().map(|_| &extra[..]);
                let grads = loss.forward_backward();
                (grads.loss, grads.d_queries, RowGrads::Candidates(grads.d_candidates))
            }
            k => {
                let beta = gbce::beta(k, items - 1, seq.attention.gbce_t);
                let (loss, d_y, rows, d_scores) =
                    gbce_step(&y, &batch.targets, &model.item_embedding, (k, beta), sample_rng);
                (loss, d_y, RowGrads::Sampled(rows, d_scores))
            }
        };
        let g = model.backward(&cache, &d_y);
        // the input rows' gradients first, then the scored rows' (a fixed order of sums)
        for (&row, gi) in batch.items.iter().zip(g.inputs.chunks_exact(d)) {
            item_grads.add(row, gi);
        }
        match rows {
            RowGrads::Candidates(d_c) => {
                for (j, &row) in cands.rows.iter().enumerate() {
                    item_grads.add(row, &d_c[j * d..(j + 1) * d]);
                }
                cands.clear();
            }
            RowGrads::Sampled(rows, d_scores) => add_sampled(&y, &rows, &d_scores, d, &mut item_grads),
        }
        item_grads.apply(b.opt, &mut model.item_embedding, item_slots, cfg.l2);
        for ((p, slots), grad) in model.params().into_iter().zip(dense_slots.iter_mut()).zip(&g.dense) {
            apply_dense(b.opt, p, slots, grad);
        }
        loss
    })?;
    if let Some(held) = held {
        super::repeat::fit(&mut model, &held);
    }
    Ok((model, history))
}

/// The scored item rows' gradients of one batch: the in-batch softmax's distinct candidates
/// (`Dedup::rows` order), or gBCE's rows of each position (`(k + 1)` per position, the target
/// first) with the gradient of each score.
enum RowGrads {
    Candidates(Vec<f32>),
    Sampled(Vec<u32>, Vec<f32>),
}

/// gBCE's loss and query gradients for one batch (`y`: each position's output, `targets` its
/// next item) over `k` negatives per position drawn uniformly from the item rows (the OOV row
/// 0 aside), with the rows and their scores' gradients ([`add_sampled`]).
fn gbce_step(
    y: &[f32],
    targets: &[u32],
    table: &Table,
    (k, beta): (usize, f32),
    rng: &mut Rng,
) -> (f64, Vec<f32>, Vec<u32>, Vec<f32>) {
    let mut rows = Vec::with_capacity(targets.len() * (k + 1));
    for &t in targets {
        rows.push(t);
        rows.extend((0..k).map(|_| 1 + rng.below((table.rows - 1).max(1)) as u32));
    }
    let (loss, d_queries, d_scores) = gbce::forward_backward(y, &table.data, table.dim, &rows, beta);
    (loss, d_queries, rows, d_scores)
}

/// Adds each sampled row's gradient (its score's gradient times its position's query) to
/// `item_grads`.
fn add_sampled(y: &[f32], rows: &[u32], d_scores: &[f32], d: usize, item_grads: &mut SparseGrad) {
    let per = rows.len() / (y.len() / d).max(1);
    let mut g = vec![0f32; d];
    for (p, (r, s)) in rows.chunks_exact(per).zip(d_scores.chunks_exact(per)).enumerate() {
        for (&row, &s) in r.iter().zip(s).filter(|(_, s)| **s != 0.0) {
            g.iter_mut().zip(&y[p * d..(p + 1) * d]).for_each(|(a, &q)| *a = s * q);
            item_grads.add(row, &g);
        }
    }
}
