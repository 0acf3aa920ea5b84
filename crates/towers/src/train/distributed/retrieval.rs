//! A distributed step of the retrieval kind: the global batch is the union of the ranks' local
//! batches, and every rank's queries are scored against all its candidates, so the objective
//! is one process's at the same batch size.
//!
//! Per step: the ranks all-gather their examples' candidate rows; every rank dedups them alike
//! (rank order) and gets their embeddings (from their owners when the candidate table is
//! sharded); each rank looks its own queries up (all-to-all when sharded), runs the fused loss
//! over its queries and all the columns (each column counted as often as the global batch holds
//! it), all-reduces the candidates' gradient and the loss, updates the candidate rows it holds,
//! and sends its queries' gradients to their rows' holders. A multi-task model adds its rating
//! network over each rank's pairs, its gradients all-reduced.

use super::data::Shared;
use super::tables::{self, Placement, Update};
use super::write::Sharded;
use crate::Result;
use crate::artifact::History;
use crate::dist::Counted;
use crate::eval::Encoded;
use crate::kernels::dense::{Mlp, MlpGrads};
use crate::kernels::table::Table;
use crate::metrics::TopKMetrics;
use crate::model::{MultitaskModel, MultitaskSpec, Normalization, Tower, TwoTower};
use crate::rng::Rng;
use crate::task::{RatingScale, mse};
use crate::train::Slots;
use crate::train::epochs::{Batch, Dedup, Run};
use crate::train::rating::MlpSlots;
use crate::train::rating::dot_mse;
use crate::train::retrieval::TowerSlots;
use crate::train::state::{Reload, State};

/// Where the two tables live.
pub(crate) struct Layout {
    pub queries: Placement,
    pub candidates: Placement,
}

/// A run's model and optimizer state on this rank (of a sharded table, this rank's rows), and
/// its history.
pub(crate) struct Local<M, S> {
    pub model: M,
    pub slots: S,
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

/// The rating task of a multi-task model in a step: its network over `[query, candidate]`, its
/// optimizer state, this rank's ratings and the two tasks' weights.
pub(crate) struct Head<'a> {
    pub mlp: &'a mut Mlp,
    pub slots: &'a mut MlpSlots,
    pub targets: &'a [f32],
    /// (retrieval, rating).
    pub weights: (f32, f32),
}

/// What every step of a run keeps.
struct Step<'a> {
    comm: &'a Counted<'a>,
    shared: &'a Shared,
    layout: &'a Layout,
    cfg: &'a crate::config::TrainConfig,
    log_q: Option<Vec<f32>>,
    q_dedup: Dedup,
    c_dedup: Dedup,
}

fn iota(n: usize) -> Vec<u32> {
    (0..n as u32).collect()
}

impl Step<'_> {
    /// This rank's examples of the global batch `b` (indices into its share).
    fn local(&self, b: &Batch) -> Vec<usize> {
        super::local_examples(b, self.shared.offset, self.shared.dataset.len())
    }

    /// One step of the rating kind over the global batch `b`: each rank predicts its own pairs
    /// (dot products), the squared error is a mean over the whole batch, and both tables' rows
    /// are asked of their holders and their gradients sent back, summed over the ranks.
    fn rating(
        &mut self,
        towers: &mut TwoTower,
        slots: (&mut TowerSlots, &mut TowerSlots),
        targets: &[f32],
        b: Batch,
    ) -> f64 {
        let (comm, layout, data, d) = (self.comm, self.layout, &self.shared.dataset, self.cfg.dim);
        let local = self.local(&b);
        let (q_dedup, c_dedup) = (&mut self.q_dedup, &mut self.c_dedup);
        let pairs: Vec<(u32, u32)> =
            local.iter().map(|&i| (q_dedup.index(data.queries[i]), c_dedup.index(data.candidates[i]))).collect();
        let mut q_tower =
            batch_tower(&towers.query, tables::fetch(comm, &layout.queries, &towers.query.embedding, &q_dedup.rows));
        let mut c_tower = batch_tower(
            &towers.candidate,
            tables::fetch(comm, &layout.candidates, &towers.candidate.embedding, &c_dedup.rows),
        );
        let q_cache = q_tower.forward_train(&iota(q_dedup.rows.len()), &q_dedup.weights);
        let c_cache = c_tower.forward_train(&iota(c_dedup.rows.len()), &c_dedup.weights);
        let (q, c) = (Tower::outputs(&q_cache), Tower::outputs(&c_cache));
        let local_targets: Vec<f32> = local.iter().map(|&i| targets[i]).collect();
        // this rank's share of the mean over the global batch
        let share = local.len() as f32 / b.rows.len() as f32;
        let (loss, dq, dc) = dot_mse((q, c, d), &pairs, &local_targets, share);
        let mut total = [loss];
        comm.all_reduce_f64(&mut total);
        // L2 per use, scaled like the loss (a mean over the global batch)
        let (opt, l2) = (b.opt, self.cfg.l2 / b.rows.len() as f32);
        let some = !pairs.is_empty();
        let grads = if some { q_tower.backward(&q_cache, &dq).embedding } else { Vec::new() };
        let update = Update { opt, l2, rows: &q_dedup.rows, uses: &q_dedup.weights, grads };
        tables::apply_exchanged(
            comm,
            &layout.queries,
            &mut towers.query.embedding,
            &mut slots.0.embedding,
            update,
            None,
        );
        let grads = if some { c_tower.backward(&c_cache, &dc).embedding } else { Vec::new() };
        let update = Update { opt, l2, rows: &c_dedup.rows, uses: &c_dedup.weights, grads };
        let (table, s) = (&mut towers.candidate.embedding, &mut slots.1.embedding);
        tables::apply_exchanged(comm, &layout.candidates, table, s, update, None);
        self.q_dedup.clear();
        self.c_dedup.clear();
        total[0]
    }

    /// One step over the global batch `b`; returns its loss (every rank's, summed).
    fn run(
        &mut self,
        towers: &mut TwoTower,
        (q_slots, c_slots): (&mut TowerSlots, &mut TowerSlots),
        head: Option<Head>,
        b: Batch,
    ) -> f64 {
        let (comm, layout, cfg, data, dim) = (self.comm, self.layout, self.cfg, &self.shared.dataset, self.cfg.dim);
        let local = self.local(&b);
        let (q_dedup, c_dedup) = (&mut self.q_dedup, &mut self.c_dedup);
        let rows: Vec<u32> = local.iter().map(|&i| data.candidates[i]).collect();
        let mine = super::gather_columns(comm, &rows, c_dedup);
        let pairs: Vec<(u32, u32)> =
            local.iter().zip(&mine).map(|(&i, &k)| (q_dedup.index(data.queries[i]), k)).collect();
        let mut q_tower =
            batch_tower(&towers.query, tables::fetch(comm, &layout.queries, &towers.query.embedding, &q_dedup.rows));
        let mut c_tower = batch_tower(
            &towers.candidate,
            tables::share(comm, &layout.candidates, &towers.candidate.embedding, &c_dedup.rows),
        );
        let q_cache = q_tower.forward_train(&iota(q_dedup.rows.len()), &q_dedup.weights);
        let c_cache = c_tower.forward_train(&iota(c_dedup.rows.len()), &c_dedup.weights);
        let (q, c) = (Tower::outputs(&q_cache), Tower::outputs(&c_cache));
        let (rw, tw) = head.as_ref().map_or((1.0, 0.0), |h| h.weights);
        let (mut total, mut dq, mut dc) = ([0.0], vec![0f32; q.len()], vec![0f32; c.len()]);
        if rw > 0.0 {
            let lq: Option<Vec<f32>> =
                self.log_q.as_ref().map(|l| c_dedup.rows.iter().map(|&c| l[c as usize]).collect());
            let weights: Option<Vec<f32>> = data.weights.as_ref().map(|w| local.iter().map(|&i| w[i]).collect());
            let loss = cfg.retrieval.loss(q, c, dim, &pairs, lq.as_deref(), weights.as_deref());
            if let Some(g) = super::over_global_batch(loss, &c_dedup.weights, b.rows.len(), cfg.retrieval.reduction) {
                dq.iter_mut().zip(&g.d_queries).for_each(|(a, b)| *a += rw * b);
                dc.iter_mut().zip(&g.d_candidates).for_each(|(a, b)| *a += rw * b);
                total[0] += rw as f64 * g.loss;
            }
        }
        if let Some(h) = head.filter(|_| tw > 0.0) {
            // the squared error is a mean over the global batch: this rank's share of it
            let share = local.len() as f32 / b.rows.len() as f32;
            let mut grads = MlpGrads::zeros(h.mlp);
            if !pairs.is_empty() {
                let mut x = Vec::with_capacity(pairs.len() * 2 * dim);
                for &(qs, cs) in &pairs {
                    x.extend_from_slice(&q[qs as usize * dim..(qs as usize + 1) * dim]);
                    x.extend_from_slice(&c[cs as usize * dim..(cs as usize + 1) * dim]);
                }
                let (preds, cache) = h.mlp.forward_train(x, pairs.len());
                let targets: Vec<f32> = local.iter().map(|&i| h.targets[i]).collect();
                let mut g = vec![0f32; pairs.len()];
                total[0] += (tw * share) as f64 * mse(&preds, &targets, &mut g);
                g.iter_mut().for_each(|v| *v *= tw * share);
                let dx;
                (grads, dx) = h.mlp.backward(&cache, &g);
                for (&(qs, cs), r) in pairs.iter().zip(dx.chunks_exact(2 * dim)) {
                    let (qr, cr) = (qs as usize * dim, cs as usize * dim);
                    dq[qr..qr + dim].iter_mut().zip(&r[..dim]).for_each(|(a, b)| *a += b);
                    dc[cr..cr + dim].iter_mut().zip(&r[dim..]).for_each(|(a, b)| *a += b);
                }
            }
            super::sum_over_ranks(comm, &mut grads);
            h.slots.apply(b.opt, h.mlp, &grads);
        }
        comm.all_reduce_f32(&mut dc);
        comm.all_reduce_f64(&mut total);
        let (l2, opt) = (cfg.l2, b.opt);
        let grads = c_tower.backward(&c_cache, &dc).embedding;
        let update = Update { opt, l2, rows: &c_dedup.rows, uses: &c_dedup.weights, grads };
        tables::apply_owned(&layout.candidates, &mut towers.candidate.embedding, &mut c_slots.embedding, update);
        let grads = if pairs.is_empty() { Vec::new() } else { q_tower.backward(&q_cache, &dq).embedding };
        let update = Update { opt, l2, rows: &q_dedup.rows, uses: &q_dedup.weights, grads };
        tables::apply_exchanged(
            comm,
            &layout.queries,
            &mut towers.query.embedding,
            &mut q_slots.embedding,
            update,
            None,
        );
        q_dedup.clear();
        c_dedup.clear();
        total[0]
    }
}

/// A model's towers, each rank's rows (initialised as one process initialises the whole).
fn towers(cfg: &crate::config::TrainConfig, layout: &Layout, normalization: Normalization) -> TwoTower {
    let mut rng = Rng::new(cfg.seed);
    let mut tower =
        |p: &Placement| Tower { embedding: p.init(cfg.dim, 0.05, &mut rng), normalization, batch_norm: None };
    let query = tower(&layout.queries);
    TwoTower { query, candidate: tower(&layout.candidates), rating_scale: None }
}

/// Runs the epochs: `step` per batch with a [`Step`], validation on `validation` after each
/// epoch.
fn epochs<M: Reload, S: State>(
    run: &mut Run,
    comm: &Counted,
    (shared, layout): (&Shared, &Layout),
    parts: (&mut M, &mut S),
    validation: Option<&Encoded>,
    towers_of: impl Fn(&M) -> &TwoTower,
    mut step: impl FnMut(&mut Step, &mut M, &mut S, Batch) -> f64,
) -> Result<History> {
    let cfg = run.config;
    let mut s = Step {
        comm,
        shared,
        layout,
        cfg,
        log_q: cfg.retrieval.log_q(&shared.dataset.counts),
        q_dedup: Dedup::new(layout.queries.rows),
        c_dedup: Dedup::new(layout.candidates.rows),
    };
    let measure = validation.map(|v| move |m: &M| validate(comm, layout, towers_of(m), v));
    super::epochs(run, shared.total, parts, measure, |m, st, b| step(&mut s, m, st, b))
}

/// This rank's optimizer state of the two tables.
fn slots(layout: &Layout, opt: &crate::config::OptimizerConfig, dim: usize) -> (TowerSlots, TowerSlots) {
    (tower_slots(&layout.queries, opt, dim), tower_slots(&layout.candidates, opt, dim))
}

/// Trains this rank's part of a two-tower model, measured on `validation` after every epoch.
pub(crate) fn fit(
    run: &mut Run,
    comm: &Counted,
    shared: &Shared,
    layout: &Layout,
    validation: Option<&Encoded>,
) -> Result<Local<TwoTower, (TowerSlots, TowerSlots)>> {
    let cfg = run.config;
    let mut model = towers(cfg, layout, cfg.normalization);
    let mut slots = slots(layout, &cfg.optimizer, cfg.dim);
    let history = epochs(
        run,
        comm,
        (shared, layout),
        (&mut model, &mut slots),
        validation,
        |m| m,
        |s, m, (qs, cs), b| s.run(m, (qs, cs), None, b),
    )?;
    Ok(Local { model, slots, history })
}

/// Trains this rank's part of a rating model (the dot product of the two towers predicts the
/// scaled rating), measured on `validation` after every epoch.
pub(crate) fn fit_rating(
    run: &mut Run,
    comm: &Counted,
    (shared, layout): (&Shared, &Layout),
    (ratings, scale): (&[f32], RatingScale),
    validation: Option<&Encoded>,
) -> Result<Local<TwoTower, (TowerSlots, TowerSlots)>> {
    let cfg = run.config;
    let mut model = TwoTower { rating_scale: Some(scale), ..towers(cfg, layout, cfg.normalization) };
    let mut slots = slots(layout, &cfg.optimizer, cfg.dim);
    let targets: Vec<f32> = ratings.iter().map(|&r| scale.scale(r)).collect();
    let parts = (&mut model, &mut slots);
    let history = epochs(
        run,
        comm,
        (shared, layout),
        parts,
        validation,
        |m| m,
        |s, m, (qs, cs), b| s.rating(m, (qs, cs), &targets, b),
    )?;
    Ok(Local { model, slots, history })
}

/// Trains this rank's part of a multi-task model (retrieval and rating on shared embeddings;
/// the rating network replicated, its gradients all-reduced).
pub(crate) fn fit_multitask(
    run: &mut Run,
    comm: &Counted,
    (shared, layout): (&Shared, &Layout),
    spec: &MultitaskSpec,
    (ratings, scale): (&[f32], RatingScale),
    validation: Option<&Encoded>,
) -> Result<Local<MultitaskModel, (TowerSlots, TowerSlots, MlpSlots)>> {
    let cfg = run.config;
    // as `MultitaskModel::new`: the towers, then the rating network from its own seed
    let fresh = MultitaskModel::new(spec, (1, 1), cfg.dim, scale, cfg.seed);
    let mut model = MultitaskModel { towers: towers(cfg, layout, Normalization::None), ..fresh };
    let opt = &cfg.optimizer;
    let (qs, cs) = slots(layout, opt, cfg.dim);
    let mut slots = (qs, cs, MlpSlots::new(opt, &model.rating));
    let weights = (spec.retrieval_weight, spec.rating_weight);
    let history = epochs(
        run,
        comm,
        (shared, layout),
        (&mut model, &mut slots),
        validation,
        |m| &m.towers,
        |s, m, (qs, cs, ms), b| {
            let head = Head { mlp: &mut m.rating, slots: ms, targets: ratings, weights };
            s.run(&mut m.towers, (qs, cs), Some(head), b)
        },
    )?;
    Ok(Local { model, slots, history })
}

/// The two tables and their optimizer state gathered whole on rank 0, in place (the other ranks
/// keep their rows).
pub(crate) fn collect(comm: &Counted, layout: &Layout, towers: &mut TwoTower, slots: [&mut Slots; 2]) {
    let take = std::mem::take;
    let tables =
        [(&layout.queries, &mut towers.query.embedding), (&layout.candidates, &mut towers.candidate.embedding)];
    for ((p, table), s) in tables.into_iter().zip(slots) {
        if let Some(whole) = tables::collect(comm, p, take(table)) {
            *table = whole;
        }
        let (first, second) = (take(&mut s.first), s.second.take());
        let first = tables::collect(comm, p, first);
        let second = second.and_then(|t| tables::collect(comm, p, t));
        if let Some(first) = first {
            *s = Slots { first, second };
        }
    }
}

/// The sharded tables, the candidate embeddings of a sharded candidate table and their
/// optimizer state (`slots`, kept under `names`), moved out to be written by rank 0.
pub(crate) fn sharded(layout: &Layout, towers: &mut TwoTower, slots: [(&mut Slots, [String; 2]); 2]) -> Vec<Sharded> {
    use crate::artifact::{CANDIDATES_FILE, OPTIMIZER_FILE, WEIGHTS_FILE};
    let mut out = Vec::new();
    let normalization = towers.candidate.normalization;
    let tables = [
        (&layout.queries, "query", &mut towers.query.embedding),
        (&layout.candidates, "candidate", &mut towers.candidate.embedding),
    ];
    for ((p, tower, table), (s, [first, second])) in tables.into_iter().zip(slots) {
        if !p.sharded {
            continue;
        }
        let weights = Sharded::take(WEIGHTS_FILE, format!("{tower}.embedding"), *p, table);
        if tower == "candidate" {
            out.push(weights.outputs(CANDIDATES_FILE, "embeddings".into(), normalization));
        }
        out.push(weights);
        out.push(Sharded::take(OPTIMIZER_FILE, first, *p, &mut s.first));
        if let Some(t) = s.second.as_mut() {
            out.push(Sharded::take(OPTIMIZER_FILE, second, *p, t));
        }
    }
    out
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
    super::combine(comm, metrics)
}
