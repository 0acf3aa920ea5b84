//! A distributed step of the feature kind: retrieval's global batch ([`super::retrieval`]) through
//! feature towers, every table and layer replicated. The candidate tower runs over the global
//! batch's candidates on every rank (in the batch's order, with the same id dropout as one
//! process), so every rank computes the same candidate gradients and updates its copy alike; the
//! query tower runs over the rank's own examples, its layers' gradients all-reduced and its
//! tables' rows exchanged (each rank applies every rank's, summed in rank order).

use super::data::Shared;
use super::tables::{self, Placement, Update};
use crate::Result;
use crate::artifact::History;
use crate::dist::Counted;
use crate::eval::Encoded;
use crate::kernels::dense::MlpGrads;
use crate::model::{FeatureModel, Instances};
use crate::train::epochs::{Dedup, Run};
use crate::train::features::{drops, loop_state, update};

/// Trains this rank's copy of a feature model (the same on every rank), measured on
/// `validation` after every epoch.
pub(crate) fn fit(
    run: &mut Run,
    comm: &Counted,
    shared: &Shared,
    mut model: FeatureModel,
    times: Option<&[i64]>,
    validation: Option<&Encoded>,
) -> Result<(FeatureModel, History)> {
    let (cfg, data) = (run.config, &shared.dataset);
    let features = model.config.clone();
    let mut state = loop_state(cfg, &model);
    let log_q = cfg.retrieval.log_q(&data.counts);
    let mut c_dedup = Dedup::new(data.items.len());
    let dim = model.candidate.dim();
    let times = times.filter(|_| model.query.time.is_some());
    let (first, end) = (shared.offset as u32, (shared.offset + data.len()) as u32);
    // every rank holds the whole model: it ranks its share of the pairs with it
    let measure = validation.map(|v| {
        move |model: &FeatureModel| {
            let mine = super::share_of(comm, v).map_or(Ok(None), |mine| crate::eval::validate(model, &mine));
            super::combine(comm, mine)
        }
    });
    let history =
        super::epochs(run, shared.total, (&mut model, &mut state), measure, |model, (q_slots, c_slots, rng), b| {
            let opt = b.opt;
            // this rank's examples and their places in the global batch
            let (at, local): (Vec<usize>, Vec<usize>) = (b.rows.iter().enumerate())
                .filter(|&(_, &g)| g >= first && g < end)
                .map(|(k, &g)| (k, (g - first) as usize))
                .unzip();
            let mine: Vec<u32> = at.iter().zip(&local).flat_map(|(&k, &i)| [k as u32, data.candidates[i]]).collect();
            let mut in_batch = vec![0u32; b.rows.len()];
            for pairs in comm.all_gather(&mine) {
                pairs.chunks_exact(2).for_each(|p| in_batch[p[0] as usize] = p[1]);
            }
            // the batch's distinct candidates in its own order, as one process has them
            let columns: Vec<u32> = in_batch.iter().map(|&c| c_dedup.index(c)).collect();
            let pairs: Vec<(u32, u32)> = at.iter().enumerate().map(|(j, &k)| (j as u32, columns[k])).collect();
            let users: Vec<u32> = local.iter().map(|&i| data.queries[i]).collect();
            let ts: Option<Vec<i64>> = times.map(|t| local.iter().map(|&i| t[i]).collect());
            let q_drop: Option<Vec<bool>> =
                drops(rng, b.rows.len(), features.query.id_dropout).map(|d| at.iter().map(|&k| d[k]).collect());
            let q_batch: Instances<'_> =
                Instances { entities: &users, times: ts.as_deref(), drop_id: q_drop.as_deref(), uses: None };
            let (q, q_cache) = model.query.mlp.forward_train(model.query.inputs_dropping(&q_batch), users.len());
            let c_rows = &c_dedup.rows;
            let c_drop = drops(rng, c_rows.len(), features.candidate.id_dropout);
            let c_batch =
                Instances { entities: c_rows, times: None, drop_id: c_drop.as_deref(), uses: Some(&c_dedup.weights) };
            let (c, c_cache) =
                model.candidate.mlp.forward_train(model.candidate.inputs_dropping(&c_batch), c_rows.len());
            let lq: Option<Vec<f32>> = log_q.as_ref().map(|l| c_rows.iter().map(|&r| l[r as usize]).collect());
            let weights: Option<Vec<f32>> = data.weights.as_ref().map(|w| local.iter().map(|&i| w[i]).collect());
            let loss = cfg.retrieval.loss(&q, &c, dim, &pairs, lq.as_deref(), weights.as_deref());
            let (mut total, d_queries, mut d_candidates) =
                match super::over_global_batch(loss, &c_dedup.weights, b.rows.len(), cfg.retrieval.reduction) {
                    None => ([0.0], Vec::new(), vec![0.0; c.len()]),
                    Some(g) => ([g.loss], g.d_queries, g.d_candidates),
                };
            comm.all_reduce_f32(&mut d_candidates);
            comm.all_reduce_f64(&mut total);
            update(opt, cfg.l2, &mut model.candidate, c_slots, &c_cache, &c_batch, &d_candidates);
            // the query tower: every rank's layer gradients summed, every rank's table rows applied
            let tower = &mut model.query;
            let (mut grads, table_grads) = match d_queries.is_empty() {
                true => (MlpGrads::zeros(&tower.mlp), vec![Default::default(); tower.tables.len()]),
                false => {
                    let (g, d_x) = tower.mlp.backward(&q_cache, &d_queries);
                    (g, tower.table_grads(&q_batch, &d_x))
                }
            };
            super::sum_over_ranks(comm, &mut grads);
            q_slots.mlp.apply(opt, &mut tower.mlp, &grads);
            for ((table, slots), g) in tower.tables.iter_mut().zip(&mut q_slots.tables).zip(table_grads) {
                let p = Placement { rank: comm.rank(), ranks: comm.size(), rows: table.rows, sharded: false };
                let update = Update { opt, l2: cfg.l2, rows: &g.rows, uses: &g.uses, grads: g.grads };
                tables::apply_exchanged(comm, &p, table, slots, update, None);
            }
            c_dedup.clear();
            total[0]
        })?;
    Ok((model, history))
}
