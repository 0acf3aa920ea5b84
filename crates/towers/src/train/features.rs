//! Training a feature model: the retrieval loss of [`super::Trainer`] through feature towers.

use super::optimizer::Slots;
use super::rating::MlpSlots;
use super::trainer::{Dedup, run_epochs};
use super::{History, Optimizer, TrainConfig};
use crate::data::features::FeatureConfig;
use crate::data::{Dataset, counts};
use crate::model::{FeatureModel, FeatureTower};
use crate::rng::Rng;
use crate::{Error, Result};

/// Optimizer state of a feature tower.
struct TowerSlots {
    tables: Vec<Slots>,
    mlp: MlpSlots,
}

impl TowerSlots {
    fn new(opt: &Optimizer, t: &FeatureTower) -> Self {
        TowerSlots {
            tables: t.tables.iter().map(|t| opt.slots(t.rows, t.dim)).collect(),
            mlp: MlpSlots::new(opt, &t.mlp),
        }
    }
}

/// Backward pass and update of one tower from the gradient of its outputs; `l2` per use of
/// an embedding row, as in [`super::Trainer`].
#[allow(clippy::too_many_arguments)]
fn update(
    opt: &Optimizer,
    l2: f32,
    tower: &mut FeatureTower,
    slots: &mut TowerSlots,
    cache: &crate::kernels::dense::MlpCache,
    entities: &[u32],
    times: Option<&[i64]>,
    drop_id: Option<&[bool]>,
    d_out: &[f32],
) {
    let (mlp_grads, d_x) = tower.mlp.backward(cache, d_out);
    let grads = tower.table_grads(entities, times, drop_id, &d_x);
    slots.mlp.apply(opt, &mut tower.mlp, &mlp_grads);
    for ((table, s), mut g) in tower.tables.iter_mut().zip(&mut slots.tables).zip(grads) {
        opt.apply_regularized(table, s, &g.rows, &g.uses, &mut g.grads, l2);
    }
}

/// Trains a feature model on `data` (`features` gives the id dropout of each tower; query rows are the query tower's entities, candidate rows
/// the candidate tower's), with each example's timestamp when the query tower reads them.
pub fn fit_features(
    cfg: &TrainConfig,
    features: &FeatureConfig,
    mut model: FeatureModel,
    data: &Dataset,
    times: Option<&[i64]>,
    progress: bool,
) -> Result<(FeatureModel, History)> {
    if data.is_empty() {
        return Err(Error::Invalid("the training set is empty".into()));
    }
    let opt0 = Optimizer::new(cfg.optimizer);
    let (mut q_slots, mut c_slots) = (TowerSlots::new(&opt0, &model.query), TowerSlots::new(&opt0, &model.candidate));
    let log_q = cfg.retrieval.log_q(&counts(&data.candidates, data.items.len()));
    let mut c_dedup = Dedup::new(data.items.len());
    let dim = model.dim();
    let times = times.filter(|_| model.query.time.is_some());
    let mut rng = Rng::new(cfg.seed ^ 0xD80F);
    let mut drops =
        |n: usize, p: f32| -> Option<Vec<bool>> { (p > 0.0).then(|| (0..n).map(|_| rng.next_f32() < p).collect()) };
    let history = run_epochs(
        cfg,
        data.len(),
        progress,
        &mut model,
        |model, batch, opt| {
            let users: Vec<u32> = batch.iter().map(|&i| data.queries[i as usize]).collect();
            let ts: Option<Vec<i64>> = times.map(|t| batch.iter().map(|&i| t[i as usize]).collect());
            let pairs: Vec<(u32, u32)> = batch
                .iter()
                .enumerate()
                .map(|(k, &i)| (k as u32, c_dedup.index(data.candidates[i as usize])))
                .collect();
            let q_drop = drops(users.len(), features.query.id_dropout);
            let q_in = model.query.inputs_dropping(&users, ts.as_deref(), q_drop.as_deref());
            let (q, q_cache) = model.query.mlp.forward_train(q_in, users.len());
            let c_rows = c_dedup.rows.clone();
            let c_drop = drops(c_rows.len(), features.candidate.id_dropout);
            let c_in = model.candidate.inputs_dropping(&c_rows, None, c_drop.as_deref());
            let (c, c_cache) = model.candidate.mlp.forward_train(c_in, c_rows.len());
            let lq: Option<Vec<f32>> = log_q.as_ref().map(|l| c_rows.iter().map(|&r| l[r as usize]).collect());
            let weights: Option<Vec<f32>> =
                data.weights.as_ref().map(|w| batch.iter().map(|&i| w[i as usize]).collect());
            let grads = cfg.retrieval.loss(&q, &c, dim, &pairs, lq.as_deref(), weights.as_deref()).forward_backward();
            let (query, candidate) = (&mut model.query, &mut model.candidate);
            update(
                opt,
                cfg.l2,
                query,
                &mut q_slots,
                &q_cache,
                &users,
                ts.as_deref(),
                q_drop.as_deref(),
                &grads.d_queries,
            );
            update(
                opt,
                cfg.l2,
                candidate,
                &mut c_slots,
                &c_cache,
                &c_rows,
                None,
                c_drop.as_deref(),
                &grads.d_candidates,
            );
            c_dedup.clear();
            grads.loss
        },
        |_| None,
    )?;
    Ok((model, history))
}
