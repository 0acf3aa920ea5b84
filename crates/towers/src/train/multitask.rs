//! Training the multi-task model: each batch's in-batch softmax (retrieval) and squared error
//! of its ratings (rating), weighted and summed, their gradients meeting in the shared
//! embeddings (TFRS multitask tutorial).

use super::epochs::{Dedup, Run};
use super::rating::MlpSlots;
use super::retrieval::{TowerSlots, update_tower};
use crate::Result;
use crate::artifact::History;
use crate::data::Dataset;
use crate::model::{MultitaskModel, MultitaskSpec, Tower};
use crate::task::{RatingScale, mse};

/// Trains a multi-task model on `data` with its `ratings`.
pub(crate) fn fit(
    run: &mut Run,
    spec: &MultitaskSpec,
    data: &Dataset,
    (ratings, scale): (&[f32], RatingScale),
) -> Result<(MultitaskModel, History)> {
    let cfg = run.config;
    let d = cfg.dim;
    let mut model = MultitaskModel::new(spec, (data.query_vocab.rows(), data.items.len()), d, scale, cfg.seed);
    let mut slots = (
        TowerSlots::new(&cfg.optimizer, &model.towers.query),
        TowerSlots::new(&cfg.optimizer, &model.towers.candidate),
        MlpSlots::new(&cfg.optimizer, &model.rating),
    );
    let log_q = cfg.retrieval.log_q(&data.counts);
    let (mut q_dedup, mut c_dedup) = (Dedup::new(data.query_vocab.rows()), Dedup::new(data.items.len()));
    let (rw, tw) = (spec.retrieval_weight, spec.rating_weight);
    let history = run.epochs(data.len(), &mut model, &mut slots, |model, (q_slots, c_slots, mlp_slots), b| {
        let (batch, opt) = (b.rows, b.opt);
        let pairs: Vec<(u32, u32)> = batch
            .iter()
            .map(|&i| (q_dedup.index(data.queries[i as usize]), c_dedup.index(data.candidates[i as usize])))
            .collect();
        let q_cache = model.towers.query.forward_train(&q_dedup.rows, &q_dedup.weights);
        let c_cache = model.towers.candidate.forward_train(&c_dedup.rows, &c_dedup.weights);
        let (q, c) = (Tower::outputs(&q_cache), Tower::outputs(&c_cache));
        let (mut dq, mut dc) = (vec![0f32; q.len()], vec![0f32; c.len()]);
        let mut loss = 0f64;
        if rw > 0.0 {
            let lq: Option<Vec<f32>> = log_q.as_ref().map(|l| c_dedup.rows.iter().map(|&r| l[r as usize]).collect());
            let weights: Option<Vec<f32>> =
                data.weights.as_ref().map(|w| batch.iter().map(|&i| w[i as usize]).collect());
            let g = cfg.retrieval.loss(q, c, d, &pairs, lq.as_deref(), weights.as_deref()).forward_backward();
            dq.iter_mut().zip(&g.d_queries).for_each(|(a, b)| *a += rw * b);
            dc.iter_mut().zip(&g.d_candidates).for_each(|(a, b)| *a += rw * b);
            loss += rw as f64 * g.loss;
        }
        if tw > 0.0 {
            let mut x = Vec::with_capacity(pairs.len() * 2 * d);
            for &(qs, cs) in &pairs {
                x.extend_from_slice(&q[qs as usize * d..(qs as usize + 1) * d]);
                x.extend_from_slice(&c[cs as usize * d..(cs as usize + 1) * d]);
            }
            let (preds, cache) = model.rating.forward_train(x, pairs.len());
            let targets: Vec<f32> = batch.iter().map(|&i| ratings[i as usize]).collect();
            let mut g = vec![0f32; pairs.len()];
            loss += tw as f64 * mse(&preds, &targets, &mut g);
            g.iter_mut().for_each(|v| *v *= tw);
            let (grads, dx) = model.rating.backward(&cache, &g);
            for (&(qs, cs), r) in pairs.iter().zip(dx.chunks_exact(2 * d)) {
                let (qr, cr) = (qs as usize * d, cs as usize * d);
                dq[qr..qr + d].iter_mut().zip(&r[..d]).for_each(|(a, b)| *a += b);
                dc[cr..cr + d].iter_mut().zip(&r[d..]).for_each(|(a, b)| *a += b);
            }
            mlp_slots.apply(opt, &mut model.rating, &grads);
        }
        update_tower(opt, cfg.l2, &mut model.towers.query, q_slots, &q_dedup, &q_cache, &dq);
        update_tower(opt, cfg.l2, &mut model.towers.candidate, c_slots, &c_dedup, &c_cache, &dc);
        q_dedup.clear();
        c_dedup.clear();
        loss
    })?;
    Ok((model, history))
}
