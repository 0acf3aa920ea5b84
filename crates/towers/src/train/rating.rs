//! Training on explicit ratings (mean squared error): two towers whose dot product predicts the
//! scaled rating; and the optimizer state of dense layers, which every kind with an MLP shares.

use super::epochs::{Dedup, Run};
use super::optimizer::{Optimizer, Slots};
use super::retrieval::{TowerSlots, update_tower};
use super::state::{Part, State};
use crate::Result;
use crate::artifact::History;
use crate::config::OptimizerConfig;
use crate::data::Dataset;
use crate::kernels::dense::{Mlp, MlpGrads};
use crate::model::{Tower, TwoTower};
use crate::task::{RatingScale, mse};

/// Explicit-feedback retrieval: trains two towers so that the dot product of a user's and an
/// item's embedding predicts the rating scaled to `[0, 1]` by `scale` (MSE, L2 per use).
pub(crate) fn fit_rating(
    run: &mut Run,
    data: &Dataset,
    ratings: &[f32],
    scale: RatingScale,
) -> Result<(TwoTower, History)> {
    let cfg = run.config;
    let mut model = TwoTower::new(data.query_vocab.rows(), data.items.len(), cfg.dim, cfg.normalization, cfg.seed);
    model.rating_scale = Some(scale);
    let mut slots = (TowerSlots::new(&cfg.optimizer, &model.query), TowerSlots::new(&cfg.optimizer, &model.candidate));
    let (mut q_dedup, mut c_dedup) =
        (Dedup::new(model.query.embedding.rows), Dedup::new(model.candidate.embedding.rows));
    let targets: Vec<f32> = ratings.iter().map(|&r| scale.scale(r)).collect();
    let d = cfg.dim;
    let history = run.epochs(data.len(), &mut model, &mut slots, |model, (q_slots, c_slots), b| {
        let (batch, opt) = (b.rows, b.opt);
        let slots: Vec<(u32, u32)> = batch
            .iter()
            .map(|&i| (q_dedup.index(data.queries[i as usize]), c_dedup.index(data.candidates[i as usize])))
            .collect();
        let q_cache = model.query.forward_train(&q_dedup.rows, &q_dedup.weights);
        let c_cache = model.candidate.forward_train(&c_dedup.rows, &c_dedup.weights);
        let (q, c) = (Tower::outputs(&q_cache), Tower::outputs(&c_cache));
        let batch_targets: Vec<f32> = batch.iter().map(|&i| targets[i as usize]).collect();
        let (loss, dq, dc) = dot_mse((q, c, d), &slots, &batch_targets, 1.0);
        // L2 per use, scaled like the loss (a mean over the batch)
        let l2 = cfg.l2 / batch.len() as f32;
        update_tower(opt, l2, &mut model.query, q_slots, &q_dedup, &q_cache, &dq);
        update_tower(opt, l2, &mut model.candidate, c_slots, &c_dedup, &c_cache, &dc);
        q_dedup.clear();
        c_dedup.clear();
        loss
    })?;
    Ok((model, history))
}

/// The squared error of `pairs`' dot products (rows of `q` and `c`, `d` wide) against
/// `targets`, a mean over the pairs times `weight`, and its gradients of `q` and `c`.
pub(crate) fn dot_mse(
    (q, c, d): (&[f32], &[f32], usize),
    pairs: &[(u32, u32)],
    targets: &[f32],
    weight: f32,
) -> (f64, Vec<f32>, Vec<f32>) {
    let row = |s: u32| s as usize * d..(s as usize + 1) * d;
    let preds: Vec<f32> =
        pairs.iter().map(|&(qs, cs)| q[row(qs)].iter().zip(&c[row(cs)]).map(|(a, b)| a * b).sum()).collect();
    let mut g = vec![0f32; pairs.len()];
    let loss = weight as f64 * mse(&preds, targets, &mut g);
    let (mut dq, mut dc) = (vec![0f32; q.len()], vec![0f32; c.len()]);
    for (&(qs, cs), &ge) in pairs.iter().zip(&g) {
        let (qr, cr, ge) = (row(qs), row(cs), ge * weight);
        for j in 0..d {
            dq[qr.start + j] += ge * c[cr.start + j];
            dc[cr.start + j] += ge * q[qr.start + j];
        }
    }
    (loss, dq, dc)
}

/// Optimizer state of an MLP.
pub(crate) struct MlpSlots {
    weights: Vec<Slots>,
    biases: Vec<Slots>,
}

impl MlpSlots {
    pub(crate) fn new(opt: &OptimizerConfig, mlp: &Mlp) -> Self {
        MlpSlots {
            weights: mlp.weights.iter().map(|w| Slots::new(opt, w.rows, w.dim)).collect(),
            biases: mlp.biases.iter().map(|b| Slots::new(opt, 1, b.dim)).collect(),
        }
    }

    pub(crate) fn apply(&mut self, opt: &Optimizer, mlp: &mut Mlp, grads: &MlpGrads) {
        for l in 0..mlp.weights.len() {
            opt.apply_dense(&mut mlp.weights[l], &mut self.weights[l], &grads.weights[l]);
            opt.apply_dense(&mut mlp.biases[l], &mut self.biases[l], &grads.biases[l]);
        }
    }
}

impl State for MlpSlots {
    fn visit(&mut self, f: &mut dyn FnMut(Part<'_>)) {
        self.weights.visit(f);
        self.biases.visit(f);
    }
}
