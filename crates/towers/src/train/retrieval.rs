//! Training two towers of id embeddings with the in-batch softmax (the retrieval kind).

use super::epochs::{Dedup, Run};
use super::optimizer::{Optimizer, Slots};
use super::state::{Part, State};
use crate::Result;
use crate::artifact::History;
use crate::config::OptimizerConfig;
use crate::data::Dataset;
use crate::model::{Tower, TowerCache, TwoTower};

/// Optimizer state of one id tower.
pub(crate) struct TowerSlots {
    pub(crate) embedding: Slots,
    pub(crate) gamma: Slots,
    pub(crate) beta: Slots,
}

impl TowerSlots {
    pub(crate) fn new(opt: &OptimizerConfig, t: &Tower) -> Self {
        TowerSlots {
            embedding: Slots::new(opt, t.embedding.rows, t.dim()),
            gamma: Slots::new(opt, 1, t.dim()),
            beta: Slots::new(opt, 1, t.dim()),
        }
    }
}

impl State for TowerSlots {
    fn visit(&mut self, f: &mut dyn FnMut(Part<'_>)) {
        self.embedding.visit(f);
        self.gamma.visit(f);
        self.beta.visit(f);
    }
}

/// Backward pass and update of an id tower from the gradient of its outputs on the batch's
/// distinct rows; `l2` per use of a row.
pub(crate) fn update_tower(
    opt: &Optimizer,
    l2: f32,
    tower: &mut Tower,
    slots: &mut TowerSlots,
    batch: &Dedup,
    cache: &TowerCache,
    d_out: &[f32],
) {
    let grads = tower.backward(cache, d_out);
    let mut d_emb = grads.embedding;
    opt.apply_regularized(&mut tower.embedding, &mut slots.embedding, &batch.rows, &batch.weights, &mut d_emb, l2);
    if let (Some((dg, db)), Some(bn)) = (grads.batch_norm, tower.batch_norm.as_mut()) {
        opt.apply(&mut bn.gamma, &mut slots.gamma, &[0], &dg);
        opt.apply(&mut bn.beta, &mut slots.beta, &[0], &db);
    }
}

/// Trains a two-tower model on `data` with the in-batch softmax: each batch's distinct users
/// and items go through their towers once, the fused loss gives their gradients.
pub(crate) fn fit(run: &mut Run, data: &Dataset) -> Result<(TwoTower, History)> {
    let cfg = run.config;
    let mut model = TwoTower::new(data.query_vocab.rows(), data.items.len(), cfg.dim, cfg.normalization, cfg.seed);
    let mut slots = (TowerSlots::new(&cfg.optimizer, &model.query), TowerSlots::new(&cfg.optimizer, &model.candidate));
    let log_q = cfg.retrieval.log_q(&data.counts);
    let mut q_dedup = Dedup::new(model.query.embedding.rows);
    let mut c_dedup = Dedup::new(model.candidate.embedding.rows);
    let mut pairs = Vec::with_capacity(cfg.batch_size.min(data.len()));
    let history = run.epochs(data.len(), &mut model, &mut slots, |model, (q_slots, c_slots), b| {
        let (batch, opt) = (b.rows, b.opt);
        pairs.clear();
        for &i in batch {
            pairs.push((q_dedup.index(data.queries[i as usize]), c_dedup.index(data.candidates[i as usize])));
        }
        // the two towers are independent: their gathers and updates (random rows of large
        // tables, bound by memory latency) run side by side
        let (query, candidate) = (&mut model.query, &mut model.candidate);
        let (q_cache, c_cache) = rayon::join(
            || query.forward_train(&q_dedup.rows, &q_dedup.weights),
            || candidate.forward_train(&c_dedup.rows, &c_dedup.weights),
        );
        let lq: Option<Vec<f32>> = log_q.as_ref().map(|l| c_dedup.rows.iter().map(|&c| l[c as usize]).collect());
        let weights: Option<Vec<f32>> = data.weights.as_ref().map(|w| batch.iter().map(|&i| w[i as usize]).collect());
        let (q, c) = (Tower::outputs(&q_cache), Tower::outputs(&c_cache));
        let grads = cfg.retrieval.loss(q, c, cfg.dim, &pairs, lq.as_deref(), weights.as_deref()).forward_backward();
        rayon::join(
            || update_tower(opt, cfg.l2, query, q_slots, &q_dedup, &q_cache, &grads.d_queries),
            || update_tower(opt, cfg.l2, candidate, c_slots, &c_dedup, &c_cache, &grads.d_candidates),
        );
        q_dedup.clear();
        c_dedup.clear();
        grads.loss
    })?;
    Ok((model, history))
}
