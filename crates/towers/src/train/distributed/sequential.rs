//! A distributed run of the sequential kind (the GRU): every rank reads its share of a sessions
//! or examples file, the item rows are built together, and the global batch is the union of the
//! ranks' examples. The model is replicated: each rank runs the GRU over its own examples and
//! scores them against all the global batch's targets (and the sampled negatives, drawn alike
//! on every rank); the candidates' gradient, the GRU's and the projection's are all-reduced, and
//! the item rows of each rank's histories are summed over the ranks, so every rank applies the
//! same update and N ranks train the model one process trains, within float rounding.

use super::data::merge;
use super::tables::{self, Placement, Update};
use crate::artifact::{Artifact, TrainSummary};
use crate::config::TrainConfig;
use crate::data::{CandidateKey, Catalog, Items, Positions, SequenceExamples, Sessions, Vocabulary, counts};
use crate::dist::Counted;
use crate::eval::Encoded;
use crate::kernels::dense::MlpGrads;
use crate::model::{SequenceConfig, SequentialModel};
use crate::train::Optimizer;
use crate::train::continuing::Continuing;
use crate::train::epochs::{Batch, Dedup, Run};
use crate::train::sequential::{Sampler, SeqState, SparseGrad, apply_dense_grads, fresh_state};
use crate::{Error, Result};

/// This rank's examples, encoded against the job's item rows.
struct Shared {
    items: Items,
    data: SequenceExamples,
    /// How often each item row is a target, over every rank.
    counts: Vec<f32>,
    /// The job's index of this rank's first example, and the job's examples.
    offset: usize,
    total: usize,
}

/// The examples a sequence file gives the GRU: an examples file's lines as they are, every
/// position of the other formats' sequences.
fn positions(seq: &SequenceConfig) -> Positions {
    match seq.format {
        crate::data::InputFormat::Examples => Positions::Last,
        _ => Positions::All,
    }
}

fn build(
    comm: &Counted,
    share: &Sessions,
    catalog: Option<&Catalog>,
    seq: &SequenceConfig,
    from: &Continuing,
) -> Result<Shared> {
    // item ids in order of first appearance, merged in rank order: one process's rows
    let mut ids = Vocabulary::default();
    for i in share.items.iter().flatten() {
        ids.insert(i);
    }
    let (ids, _) = merge(comm, &ids, None);
    let (items, _) = Items::build_on(from.prior.map(|p| &p.items), catalog, CandidateKey::Id, ids.iter())?;
    let row = |id: &str| items.rows.get(id).copied().unwrap_or(0);
    let data = SequenceExamples::build(share, row, seq.steps, positions(seq));
    let mut all: Vec<f64> = counts(&data.targets, items.len()).into_iter().map(f64::from).collect();
    comm.all_reduce_f64(&mut all);
    let lens: Vec<usize> = comm.all_gather(&[data.len() as u64]).iter().map(|l| l[0] as usize).collect();
    let (offset, total) = (lens[..comm.rank()].iter().sum(), lens.iter().sum());
    if total == 0 {
        return Err(Error::Data("the training set has no examples".into()));
    }
    let mut counts: Vec<f32> = all.into_iter().map(|c| c as f32).collect();
    if let Some(p) = from.prior {
        crate::train::continuing::earlier(p, from.decay).add_counts(&mut counts);
    }
    Ok(Shared { items, data, counts, offset, total })
}

/// Trains a GRU model on this rank's `share` of sequences (validated on `validation` after
/// every epoch); the model on rank 0, `None` on the others.
pub(crate) fn fit<'a>(
    run: &mut Run<'a>,
    comm: &Counted,
    (seq, catalog, from): (SequenceConfig, Option<&Catalog>, Continuing<'a>),
    share: &Sessions,
    validation: Option<&Sessions>,
) -> Result<Option<Artifact>> {
    let cfg = run.config;
    let shared = build(comm, share, catalog, &seq, &from)?;
    let (items, d) = (shared.items.len(), cfg.dim);
    let examples = super::digest(comm, &[&shared.data.targets, &shared.data.contexts]);
    from.prepare(run, (from.prior.map_or(1, |p| p.query_vocab.rows()), items), || examples)?;
    let mut model = SequentialModel::new(items, d, seq, cfg.seed);
    let mut state = fresh_state(cfg, &model);
    let row = |id: &str| shared.items.rows.get(id).copied().unwrap_or(0);
    let val = validation.map(|v| Encoded::Sequences(SequenceExamples::build(v, row, seq.steps, Positions::Last)));
    let measure = val.as_ref().map(|v| {
        move |m: &SequentialModel| {
            let mine = super::share_of(comm, v).map_or(Ok(None), |mine| crate::eval::validate(m, &mine));
            super::combine(comm, mine)
        }
    });
    let mut step = Step::new(comm, cfg, &seq, &shared);
    let history = super::epochs(run, shared.total, (&mut model, &mut state), measure, |m, s, b| step.run(m, s, b))?;
    let whole = gathered(comm, share)?;
    let Some(whole) = whole else { return Ok(None) };
    let (query_vocab, seen, histories) = whole.user_histories(row, seq.steps);
    let summary = TrainSummary::new(shared.total, &history, run.seconds);
    Ok(Some(Artifact {
        candidates: crate::model::Model::candidates(&model).into(),
        model: Box::new(model),
        config: cfg.clone(),
        query_vocab,
        items: shared.items,
        approximate: None,
        seen,
        histories,
        popularity: shared.counts,
        history,
        summary,
        optimizer: run.optimizer.take(),
        origin: Default::default(),
    }))
}

/// What each step keeps.
struct Step<'a> {
    comm: &'a Counted<'a>,
    cfg: &'a TrainConfig,
    seq: &'a SequenceConfig,
    shared: &'a Shared,
    log_q: Option<Vec<f32>>,
    sampler: Option<Sampler>,
    cands: Dedup,
    /// The gradients of this rank's history rows.
    inputs: SparseGrad,
    /// The item table, replicated.
    place: Placement,
}

impl<'a> Step<'a> {
    fn new(comm: &'a Counted<'a>, cfg: &'a TrainConfig, seq: &'a SequenceConfig, shared: &'a Shared) -> Self {
        let items = shared.items.len();
        Step {
            comm,
            cfg,
            seq,
            shared,
            log_q: cfg.retrieval.log_q(&shared.counts),
            sampler: (seq.sampled_negatives > 0).then(|| Sampler::new(&shared.counts)),
            cands: Dedup::new(items),
            inputs: SparseGrad::new(items, cfg.dim),
            place: Placement { rank: comm.rank(), ranks: comm.size(), rows: items, sharded: false },
        }
    }

    /// One step over the global batch `b`; returns its loss (every rank's, summed).
    fn run(&mut self, model: &mut SequentialModel, state: &mut SeqState, b: Batch) -> f64 {
        let ([item_slots, cand_slots], gru_slots, proj_slots, sample_rng) = state;
        let (comm, cfg, data, d, steps) =
            (self.comm, self.cfg, &self.shared.data, self.cfg.dim, self.shared.data.steps);
        let local = super::local_examples(&b, self.shared.offset, data.len());
        // the global batch's targets, every rank's in rank order, then the shared negatives
        let batch_targets: Vec<u32> = local.iter().map(|&i| data.targets[i]).collect();
        let mine = super::gather_columns(comm, &batch_targets, &mut self.cands);
        if let Some(sampler) = &self.sampler {
            sampler.negatives(self.seq.sampled_negatives, sample_rng, &mut self.cands, &mut Vec::new());
        }
        let (mut ctx, mut mask) = (Vec::with_capacity(local.len() * steps), Vec::with_capacity(local.len() * steps));
        for &i in &local {
            ctx.extend_from_slice(&data.contexts[i * steps..(i + 1) * steps]);
            mask.extend_from_slice(&data.mask[i * steps..(i + 1) * steps]);
        }
        let pairs: Vec<(u32, u32)> = mine.iter().enumerate().map(|(k, &c)| (k as u32, c)).collect();
        let cands = &self.cands;
        let (q, cache) = model.forward(&ctx, &mask, steps);
        let c = model.candidate_table().gather(&cands.rows);
        let lq: Option<Vec<f32>> = self.log_q.as_ref().map(|l| cands.rows.iter().map(|&r| l[r as usize]).collect());
        let loss = cfg.retrieval.loss(&q, &c, d, &pairs, lq.as_deref(), None);
        let grads = super::over_global_batch(loss, &cands.weights, b.rows.len(), cfg.retrieval.reduction);
        let (mut total, mut d_cands) = ([0.0], vec![0f32; c.len()]);
        let mut gru =
            [model.gru.w.len(), model.gru.u.len(), model.gru.b_in.len(), model.gru.b_rec.len()].map(|n| vec![0f32; n]);
        let mut proj = model.projection.as_ref().map(MlpGrads::zeros);
        if let Some(g) = grads {
            (total[0], d_cands) = (g.loss, g.d_candidates);
            let sg = model.backward(&mask, steps, &cache, &g.d_queries);
            // the history rows' gradients, summed per distinct row (each position one use)
            for (p, (&row, &m)) in ctx.iter().zip(&mask).enumerate() {
                if m {
                    self.inputs.add(row, &sg.gru.x[p * d..(p + 1) * d]);
                }
            }
            let s = sg.gru;
            gru = [s.w, s.u, s.b_in, s.b_rec];
            proj = sg.projection.or(proj);
        }
        comm.all_reduce_f64(&mut total);
        comm.all_reduce_f32(&mut d_cands);
        gru.iter_mut().for_each(|g| comm.all_reduce_f32(g));
        if let Some(p) = proj.as_mut() {
            super::sum_over_ranks(comm, p);
        }
        let (opt, l2): (&Optimizer, f32) = (b.opt, cfg.l2);
        let inputs = self.inputs.update(opt, l2);
        let targets = Update { opt, l2, rows: &cands.rows, uses: &vec![1.0; cands.rows.len()], grads: d_cands };
        match model.candidate_embedding.as_mut() {
            Some(table) => {
                tables::apply_exchanged(comm, &self.place, &mut model.item_embedding, item_slots, inputs, None);
                tables::apply_owned(&self.place, table, cand_slots, targets);
            }
            None => {
                let (table, slots) = (&mut model.item_embedding, item_slots);
                tables::apply_exchanged(comm, &self.place, table, slots, inputs, Some(targets));
            }
        }
        let [w, u, b_in, b_rec] = &gru;
        apply_dense_grads(opt, model, (gru_slots, proj_slots), [w, u, b_in, b_rec], proj.as_ref());
        self.inputs.clear();
        self.cands.clear();
        total[0]
    }
}

/// Every rank's sequences with their ids, on rank 0 (what the model keeps of its users: what
/// each saw, and their last items); `None` elsewhere, and for sequences without ids.
fn gathered(comm: &Counted, share: &Sessions) -> Result<Option<Sessions>> {
    let Some(ids) = &share.ids else {
        return Ok((comm.rank() == 0).then(|| Sessions { items: Vec::new(), ids: None }));
    };
    // per sequence: its id, its length, its items
    let keys = ids
        .iter()
        .zip(&share.items)
        .flat_map(|(id, s)| [id.clone(), s.len().to_string()].into_iter().chain(s.iter().cloned()));
    let Some(parts) = comm.gather(&super::data::encode(keys)) else { return Ok(None) };
    let mut whole = Sessions { items: Vec::new(), ids: Some(Vec::new()) };
    for part in &parts {
        let mut keys = super::data::decode(part);
        while let Some(id) = keys.next() {
            let n: usize =
                keys.next().and_then(|n| n.parse().ok()).ok_or_else(|| Error::internal("a sequence's length"))?;
            whole.items.push(keys.by_ref().take(n).map(String::from).collect());
            whole.ids.get_or_insert_default().push(id.to_string());
        }
    }
    Ok(Some(whole))
}
