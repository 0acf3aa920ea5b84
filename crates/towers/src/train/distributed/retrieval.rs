//! A distributed step of the retrieval kind: the global batch is the union of the ranks' local
//! batches, and every rank's queries are scored against all its candidates, so the objective
//! is one process's at the same batch size.
//!
//! Per step: the ranks all-gather their examples' candidate rows; every rank dedups them alike
//! (rank order) and gets their embeddings (from their owners when the candidate table is
//! sharded); each rank looks its own queries up (all-to-all when sharded), runs the fused loss
//! over its queries and all the columns (each column counted as often as the global batch holds
//! it), all-reduces the candidates' gradient and the loss, updates the candidate rows it holds,
//! and sends its queries' gradients to their rows' holders.

use super::data::Shared;
use super::tables::{self, Placement, Update};
use crate::Result;
use crate::artifact::History;
use crate::dist::Counted;
use crate::eval::Encoded;
use crate::kernels::table::Table;
use crate::metrics::TopKMetrics;
use crate::model::{Tower, TwoTower};
use crate::task::Reduction;
use crate::train::Slots;
use crate::train::epochs::{Dedup, Run};
use crate::train::retrieval::TowerSlots;

/// Where the two tables live.
pub(crate) struct Layout {
    pub queries: Placement,
    pub candidates: Placement,
}

/// The model and optimizer state after training: whole on rank 0.
pub(crate) struct Trained {
    pub model: TwoTower,
    pub slots: (TowerSlots, TowerSlots),
    pub history: History,
}

fn tower_slots(p: &Placement, opt: &crate::config::OptimizerConfig, dim: usize) -> TowerSlots {
    TowerSlots { embedding: p.slots(opt, dim), gamma: Slots::new(opt, 1, dim), beta: Slots::new(opt, 1, dim) }
}

/// A tower over the rows of one batch (row `i` of `data` is the batch's `i`-th distinct row).
fn batch_tower(t: &Tower, data: Vec<f32>) -> Tower {
    let dim = t.dim();
    Tower { embedding: Table { rows: data.len() / dim, dim, data }, normalization: t.normalization, batch_norm: None }
}

/// Trains this rank's part of a two-tower model, measured on `validation` after every epoch;
/// returns the whole model on rank 0.
pub(crate) fn fit(
    run: &mut Run,
    comm: &Counted,
    shared: &Shared,
    layout: &Layout,
    validation: Option<&Encoded>,
) -> Result<Option<Trained>> {
    let (cfg, data, dim) = (run.config, &shared.dataset, run.config.dim);
    let mut rng = crate::rng::Rng::new(cfg.seed);
    let tower = |p: &Placement, rng: &mut crate::rng::Rng| Tower {
        embedding: p.init(dim, 0.05, rng),
        normalization: cfg.normalization,
        batch_norm: None,
    };
    let query = tower(&layout.queries, &mut rng);
    let candidate = tower(&layout.candidates, &mut rng);
    let mut model = TwoTower { query, candidate, rating_scale: None };
    let mut slots =
        (tower_slots(&layout.queries, &cfg.optimizer, dim), tower_slots(&layout.candidates, &cfg.optimizer, dim));
    let log_q = cfg.retrieval.log_q(&data.counts);
    let mut q_dedup = Dedup::new(layout.queries.rows);
    let mut c_dedup = Dedup::new(layout.candidates.rows);
    let (first, end) = (shared.offset as u32, (shared.offset + data.len()) as u32);
    let per_epoch = shared.total.div_ceil(cfg.batch_size);
    // measured by every rank together after each epoch's last step (and its time kept out of
    // the epoch's), then put in the history
    let mut measured: Vec<(Result<Option<TopKMetrics>>, f64)> = Vec::new();
    let mut history = run.epochs(shared.total, &mut model, &mut slots, |model, (q_slots, c_slots), b| {
        let local: Vec<usize> =
            b.rows.iter().filter(|&&g| g >= first && g < end).map(|&g| (g - first) as usize).collect();
        // the global batch's candidates, every rank's in rank order
        let every = comm.all_gather(&local.iter().map(|&i| data.candidates[i]).collect::<Vec<u32>>());
        let mut mine = Vec::with_capacity(local.len());
        for (rank, rows) in every.iter().enumerate() {
            for &c in rows {
                let k = c_dedup.index(c);
                if rank == comm.rank() {
                    mine.push(k);
                }
            }
        }
        let pairs: Vec<(u32, u32)> =
            local.iter().zip(&mine).map(|(&i, &k)| (q_dedup.index(data.queries[i]), k)).collect();
        let mut q_tower =
            batch_tower(&model.query, tables::fetch(comm, &layout.queries, &model.query.embedding, &q_dedup.rows));
        let mut c_tower = batch_tower(
            &model.candidate,
            tables::share(comm, &layout.candidates, &model.candidate.embedding, &c_dedup.rows),
        );
        let iota = |n: usize| (0..n as u32).collect::<Vec<u32>>();
        let q_cache = q_tower.forward_train(&iota(q_dedup.rows.len()), &q_dedup.weights);
        let c_cache = c_tower.forward_train(&iota(c_dedup.rows.len()), &c_dedup.weights);
        // each column as often as the global batch holds it: the other ranks' occurrences are
        // extra negatives here
        let mut extra = c_dedup.weights.clone();
        mine.iter().for_each(|&k| extra[k as usize] -= 1.0);
        let lq: Option<Vec<f32>> = log_q.as_ref().map(|l| c_dedup.rows.iter().map(|&c| l[c as usize]).collect());
        let weights: Option<Vec<f32>> = data.weights.as_ref().map(|w| local.iter().map(|&i| w[i]).collect());
        let (q, c) = (Tower::outputs(&q_cache), Tower::outputs(&c_cache));
        let mut loss = cfg.retrieval.loss(q, c, dim, &pairs, lq.as_deref(), weights.as_deref());
        loss.extra_counts = Some(&extra);
        if cfg.retrieval.reduction == Reduction::Mean {
            loss.grad_scale = 1.0 / b.rows.len() as f32;
        }
        let (mut total, d_queries, mut d_candidates) = match pairs.is_empty() {
            true => ([0.0], Vec::new(), vec![0.0; c.len()]),
            false => {
                let g = loss.forward_backward();
                ([g.loss], g.d_queries, g.d_candidates)
            }
        };
        comm.all_reduce_f32(&mut d_candidates);
        comm.all_reduce_f64(&mut total);
        let (l2, opt) = (cfg.l2, b.opt);
        let grads = c_tower.backward(&c_cache, &d_candidates).embedding;
        let update = Update { opt, l2, rows: &c_dedup.rows, uses: &c_dedup.weights, grads };
        tables::apply_owned(&layout.candidates, &mut model.candidate.embedding, &mut c_slots.embedding, update);
        let grads = if d_queries.is_empty() { Vec::new() } else { q_tower.backward(&q_cache, &d_queries).embedding };
        let update = Update { opt, l2, rows: &q_dedup.rows, uses: &q_dedup.weights, grads };
        tables::apply_exchanged(comm, &layout.queries, &mut model.query.embedding, &mut q_slots.embedding, update);
        q_dedup.clear();
        c_dedup.clear();
        if let Some(v) = validation.filter(|_| (b.index + 1) % per_epoch == 0) {
            let start = std::time::Instant::now();
            measured.push((validate(comm, layout, model, v), start.elapsed().as_secs_f64()));
        }
        total[0]
    })?;
    for (epoch, (metrics, seconds)) in history.epochs.iter_mut().zip(measured) {
        (epoch.validation, epoch.seconds) = (metrics?, epoch.seconds - seconds);
    }
    let TwoTower { query, candidate, .. } = model;
    let (normalization, (q_slots, c_slots)) = (query.normalization, slots);
    let q_table = tables::collect(comm, &layout.queries, query.embedding);
    let c_table = tables::collect(comm, &layout.candidates, candidate.embedding);
    let q_slots = collect_tower_slots(comm, &layout.queries, q_slots);
    let c_slots = collect_tower_slots(comm, &layout.candidates, c_slots);
    let (Some(q), Some(c), Some(qs), Some(cs)) = (q_table, c_table, q_slots, c_slots) else { return Ok(None) };
    let tower = |embedding| Tower { embedding, normalization, batch_norm: None };
    Ok(Some(Trained {
        model: TwoTower { query: tower(q), candidate: tower(c), rating_scale: None },
        slots: (qs, cs),
        history,
    }))
}

/// Metrics of the model on `v`: each rank ranks its share of the pairs, its queries' rows asked
/// of their owners, against every candidate (the whole candidate table on every rank); the
/// ranks' metrics are combined.
fn validate(comm: &Counted, layout: &Layout, model: &TwoTower, v: &Encoded) -> Result<Option<TopKMetrics>> {
    let mine = super::share_of(comm, v);
    let mut dedup = Dedup::new(layout.queries.rows);
    let renumbered: Vec<(u32, u32)> = match &mine {
        Some(Encoded::Pairs { pairs, .. }) => pairs.iter().map(|&(q, c)| (dedup.index(q), c)).collect(),
        _ => Vec::new(),
    };
    let queries = tables::fetch(comm, &layout.queries, &model.query.embedding, &dedup.rows);
    let every: Vec<u32> = (0..layout.candidates.rows as u32).collect();
    let candidates = tables::share(comm, &layout.candidates, &model.candidate.embedding, &every);
    let whole = TwoTower {
        query: batch_tower(&model.query, queries),
        candidate: batch_tower(&model.candidate, candidates),
        rating_scale: None,
    };
    let metrics = match renumbered.is_empty() {
        true => Ok(None),
        false => crate::eval::validate(&whole, &Encoded::Pairs { pairs: renumbered, times: None }),
    };
    // every rank combines, whatever its own outcome
    let all = super::combine(comm, metrics.as_ref().ok().copied().flatten());
    metrics.and(all)
}

fn collect_tower_slots(comm: &Counted, p: &Placement, s: TowerSlots) -> Option<TowerSlots> {
    let embedding = tables::collect_slots(comm, p, s.embedding)?;
    Some(TowerSlots { embedding, gamma: s.gamma, beta: s.beta })
}
