//! Training a feature model: the in-batch softmax of retrieval through feature towers.

use super::epochs::{Dedup, Run};
use super::optimizer::{Optimizer, Slots};
use super::rating::MlpSlots;
use super::state::{Part, State};
use crate::artifact::History;
use crate::config::OptimizerConfig;
use crate::data::Dataset;
use crate::data::features::AttributeTable;
use crate::kernels::dense::MlpCache;
use crate::model::{Entities, FeatureConfig, FeatureModel, FeatureTower, Instances};
use crate::rng::Rng;
use crate::{Error, Result};

/// The attribute tables of a feature model's two towers.
#[derive(Debug, Clone, Copy, Default)]
pub(crate) struct Attributes<'a> {
    pub users: Option<&'a AttributeTable>,
    pub items: Option<&'a AttributeTable>,
}

/// A fresh feature model for `data`: user attributes and the training period (when the query
/// tower reads time) on the query side, item attributes on the candidate side. Items of the
/// catalogue that never occur in training get the OOV id embedding and their own features
/// (cold start).
pub(crate) fn build(
    config: &FeatureConfig,
    data: &Dataset,
    attributes: Attributes,
    times: Option<&[i64]>,
    seed: u64,
) -> Result<FeatureModel> {
    let time = match (config.query.time, times) {
        (None, _) => None,
        (Some(_), Some(ts)) => Some((*ts.iter().min().unwrap_or(&0), *ts.iter().max().unwrap_or(&0))),
        (Some(_), None) => {
            return Err(Error::Data("the time feature needs a timestamp column in the training table".into()));
        }
    };
    let mut rng = Rng::new(seed);
    let user_ids: Vec<Option<&str>> = (0..data.query_vocab.rows() as u32).map(|r| data.query_vocab.key(r)).collect();
    let user_rows: Vec<u32> = (0..user_ids.len() as u32).collect();
    let user_fit: Vec<bool> = user_rows.iter().map(|&r| r > 0).collect();
    let users = Entities { ids: &user_ids, id_rows: &user_rows, fit: &user_fit, attributes: attributes.users };
    let query = FeatureTower::build(&config.query, &config.layers, &users, time, &mut rng)?;
    let item_ids: Vec<Option<&str>> =
        data.items.ids.iter().enumerate().map(|(r, id)| (r > 0).then_some(id.as_str())).collect();
    let item_fit: Vec<bool> = data.counts.iter().map(|&c| c > 0.0).collect();
    let item_rows: Vec<u32> = (0..item_ids.len() as u32).map(|r| if item_fit[r as usize] { r } else { 0 }).collect();
    let items = Entities { ids: &item_ids, id_rows: &item_rows, fit: &item_fit, attributes: attributes.items };
    let candidate = FeatureTower::build(&config.candidate, &config.layers, &items, None, &mut rng)?;
    if query.dim() != candidate.dim() {
        return Err(Error::Config(format!(
            "the towers' outputs differ in width: query {}, candidate {}",
            query.dim(),
            candidate.dim()
        )));
    }
    Ok(FeatureModel { query, candidate, config: config.clone() })
}

/// Optimizer state of a feature tower.
pub(crate) struct TowerSlots {
    pub(crate) tables: Vec<Slots>,
    pub(crate) mlp: MlpSlots,
}

impl TowerSlots {
    pub(crate) fn new(opt: &OptimizerConfig, t: &FeatureTower) -> Self {
        TowerSlots {
            tables: t.tables.iter().map(|t| Slots::new(opt, t.rows, t.dim)).collect(),
            mlp: MlpSlots::new(opt, &t.mlp),
        }
    }
}

impl State for TowerSlots {
    fn visit(&mut self, f: &mut dyn FnMut(Part<'_>)) {
        self.tables.visit(f);
        self.mlp.visit(f);
    }
}

/// Backward pass and update of one tower from the gradient of its outputs; `l2` per use of
/// an embedding row, as for id towers.
pub(crate) fn update(
    opt: &Optimizer,
    l2: f32,
    tower: &mut FeatureTower,
    slots: &mut TowerSlots,
    cache: &MlpCache,
    batch: &Instances,
    d_out: &[f32],
) {
    let (mlp_grads, d_x) = tower.mlp.backward(cache, d_out);
    let grads = tower.table_grads(batch, &d_x);
    slots.mlp.apply(opt, &mut tower.mlp, &mlp_grads);
    for ((table, s), mut g) in tower.tables.iter_mut().zip(&mut slots.tables).zip(grads) {
        opt.apply_regularized(table, s, &g.rows, &g.uses, &mut g.grads, l2);
    }
}

/// A feature model's loop state: both towers' optimizer slots and the id dropout's generator.
pub(crate) fn loop_state(cfg: &crate::config::TrainConfig, model: &FeatureModel) -> (TowerSlots, TowerSlots, Rng) {
    (
        TowerSlots::new(&cfg.optimizer, &model.query),
        TowerSlots::new(&cfg.optimizer, &model.candidate),
        Rng::new(cfg.seed ^ 0xD80F),
    )
}

/// Which of `n` instances use the OOV id (id dropout at rate `p`; `None` when 0).
pub(crate) fn drops(rng: &mut Rng, n: usize, p: f32) -> Option<Vec<bool>> {
    (p > 0.0).then(|| (0..n).map(|_| rng.next_f32() < p).collect())
}

/// Trains a feature model on `data` (query rows are the query tower's entities, candidate rows
/// the candidate tower's), with each example's timestamp when the query tower reads them.
pub(crate) fn fit(
    run: &mut Run,
    mut model: FeatureModel,
    data: &Dataset,
    times: Option<&[i64]>,
) -> Result<(FeatureModel, History)> {
    let cfg = run.config;
    let features = model.config.clone();
    let mut state = loop_state(cfg, &model);
    let log_q = cfg.retrieval.log_q(&data.counts);
    let mut c_dedup = Dedup::new(data.items.len());
    let dim = model.candidate.dim();
    let times = times.filter(|_| model.query.time.is_some());
    let history = run.epochs(data.len(), &mut model, &mut state, |model, (q_slots, c_slots, rng), b| {
        let (batch, opt) = (b.rows, b.opt);
        let users: Vec<u32> = batch.iter().map(|&i| data.queries[i as usize]).collect();
        let ts: Option<Vec<i64>> = times.map(|t| batch.iter().map(|&i| t[i as usize]).collect());
        let pairs: Vec<(u32, u32)> =
            batch.iter().enumerate().map(|(k, &i)| (k as u32, c_dedup.index(data.candidates[i as usize]))).collect();
        let q_drop = drops(rng, users.len(), features.query.id_dropout);
        let q_batch = Instances { entities: &users, times: ts.as_deref(), drop_id: q_drop.as_deref(), uses: None };
        let (q, q_cache) = model.query.mlp.forward_train(model.query.inputs_dropping(&q_batch), users.len());
        let c_rows = &c_dedup.rows;
        let c_drop = drops(rng, c_rows.len(), features.candidate.id_dropout);
        let c_batch =
            Instances { entities: c_rows, times: None, drop_id: c_drop.as_deref(), uses: Some(&c_dedup.weights) };
        let (c, c_cache) = model.candidate.mlp.forward_train(model.candidate.inputs_dropping(&c_batch), c_rows.len());
        let lq: Option<Vec<f32>> = log_q.as_ref().map(|l| c_rows.iter().map(|&r| l[r as usize]).collect());
        let weights: Option<Vec<f32>> = data.weights.as_ref().map(|w| batch.iter().map(|&i| w[i as usize]).collect());
        let grads = cfg.retrieval.loss(&q, &c, dim, &pairs, lq.as_deref(), weights.as_deref()).forward_backward();
        update(opt, cfg.l2, &mut model.query, q_slots, &q_cache, &q_batch, &grads.d_queries);
        update(opt, cfg.l2, &mut model.candidate, c_slots, &c_cache, &c_batch, &grads.d_candidates);
        c_dedup.clear();
        grads.loss
    })?;
    Ok((model, history))
}
