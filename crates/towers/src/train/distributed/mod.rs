//! Distributed training ([`Trainer::fit_distributed`](crate::Trainer::fit_distributed)): data
//! parallel over the ranks of a [`Collective`] (MPI), each reading its share of the data, with
//! id tables replicated or sharded row-wise ([`Sharding`]). The objective is one process's at
//! the same global batch: N ranks train the model one process trains, within float rounding.
//! Rank 0 ends with the whole model, the ordinary one.

mod data;
mod features;
mod ranking;
mod retrieval;
mod sequential;
mod tables;
mod write;

use super::checkpoint::Checkpoints;
use super::continuing::Continuing;
use super::epochs::{Batch, Dedup, Run};
use super::features::Attributes;
use super::optimizer::{Optimizer, Slots};
use super::ranking::ListSource;
use super::rating::MlpSlots;
use super::retrieval::TowerSlots;
use super::state::{Reload, State};
use crate::artifact::{Artifact, DirLock, History, Manifest, RankSummary, TrainSummary};
use crate::artifact::{CANDIDATES_FILE, OPTIMIZER_FILE, WEIGHTS_FILE};
use crate::config::TrainConfig;
use crate::data::{Catalog, Data, Interactions, Seen, SequenceExamples, Sessions, Share};
use crate::dist::{Collective, Counted};
use crate::eval::Encoded;
use crate::kernels::dense::MlpGrads;
use crate::kernels::softmax::{InBatchSoftmax, SoftmaxGrads};
use crate::metrics::TopKMetrics;
use crate::model::{Encoder, Model, ModelSpec, Normalization, RankingModel};
use crate::progress::Observer;
use crate::task::RatingScale;
use crate::task::Reduction;
use crate::{Error, Result};
use serde::{Deserialize, Serialize};
use tables::Placement;

/// How a distributed run places its id tables: tables of at least `min_rows` rows are sharded
/// row-wise across the ranks (row `r` and its optimizer state on rank `r mod N`), smaller ones
/// replicated. Without it every table is replicated.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Sharding {
    /// The smallest table that is sharded, in rows.
    pub min_rows: usize,
}

impl Default for Sharding {
    /// Tables of 100,000 rows and more are sharded.
    fn default() -> Self {
        Sharding { min_rows: 100_000 }
    }
}

/// What rank 0 of a distributed run wrote
/// ([`Trainer::fit_distributed_into`](crate::Trainer::fit_distributed_into)).
#[derive(Debug, Clone)]
pub struct Written {
    /// The manifest of the model directory (without its checksums).
    pub manifest: Manifest,
    /// Every epoch's loss, time and validation metrics.
    pub history: History,
}

/// Where a distributed run's model goes.
pub(crate) enum Output<'a> {
    /// Whole on rank 0, in memory: sharded tables gathered there.
    Memory,
    /// Written to the directory rank 0 holds (`None` on the others), with no rank holding a
    /// whole sharded table: their rows streamed from their ranks as rank 0 writes.
    Dir(Option<&'a DirLock>),
}

/// What a distributed run trains, and with what.
pub(crate) struct Job<'a> {
    pub spec: ModelSpec,
    pub config: TrainConfig,
    pub catalog: Option<&'a Catalog>,
    pub observer: &'a mut dyn Observer,
    pub sharding: Option<Sharding>,
    pub validation: Option<Data<'a>>,
    /// The model continued (its vocabularies, counts, seen items and parameters), and where the
    /// optimizer state goes at the end.
    pub from: Continuing<'a>,
    pub attributes: Attributes<'a>,
    pub out: Output<'a>,
}

/// Options of a run that every rank must share, with the columns of its data.
#[derive(Serialize)]
struct Fingerprint<'a> {
    spec: &'a ModelSpec,
    config: &'a TrainConfig,
    sharding: Option<Sharding>,
    columns: [bool; 3],
    validation: bool,
    /// The version of the model continued.
    prior: Option<String>,
}

/// Refuses a run whose ranks were given different options or data columns.
fn check_same(comm: &Counted, f: &Fingerprint) -> Result<()> {
    let mine = serde_json::to_string(f).map_err(Error::internal)?;
    let all = comm.all_gather_bytes(mine.as_bytes());
    match all.iter().position(|b| b != &all[0]) {
        None => Ok(()),
        Some(r) => Err(Error::Config(format!(
            "rank {r}'s options or data columns differ from rank 0's: every rank must run the same command on data \
             of the same columns (rank 0: {}; rank {r}: {})",
            String::from_utf8_lossy(&all[0]),
            String::from_utf8_lossy(&all[r])
        ))),
    }
}

/// This rank's share of validation pairs or examples (`None` when it has none).
fn share_of(comm: &Counted, v: &Encoded) -> Option<Encoded> {
    let share = Share { rank: comm.rank(), ranks: comm.size() };
    let part = |n: usize| share.part(n as u64) as usize..share.part_end(n as u64) as usize;
    let mine = match v {
        Encoded::Pairs { pairs, .. } => Encoded::Pairs { pairs: pairs[part(pairs.len())].to_vec(), times: None },
        Encoded::Sequences(e) => {
            let (r, steps) = (part(e.len()), e.steps);
            let (c, m) = (&e.contexts[r.start * steps..r.end * steps], &e.mask[r.start * steps..r.end * steps]);
            let targets = e.targets[r].to_vec();
            Encoded::Sequences(SequenceExamples { steps, contexts: c.to_vec(), mask: m.to_vec(), targets })
        }
    };
    let empty = match &mine {
        Encoded::Pairs { pairs, .. } => pairs.is_empty(),
        Encoded::Sequences(e) => e.targets.is_empty(),
    };
    (!empty).then_some(mine)
}

/// Every rank's metrics on its share, combined (on every rank). Every rank takes part, whatever
/// its own outcome; its error is its result.
fn combine(comm: &Counted, mine: Result<Option<TopKMetrics>>) -> Result<Option<TopKMetrics>> {
    let sent = mine.as_ref().ok().copied().flatten();
    let parts = comm.all_gather_bytes(&serde_json::to_vec(&sent).map_err(Error::internal)?);
    let mut all = Vec::new();
    for p in parts {
        all.extend(serde_json::from_slice::<Option<TopKMetrics>>(&p).map_err(Error::internal)?);
    }
    mine?;
    Ok((!all.is_empty()).then(|| TopKMetrics::combine(&all)))
}

/// Runs the epochs over the job's `total` examples with `step`, and after each epoch's last
/// step `measure` (every rank together; its time kept out of the epoch's).
fn epochs<M: Reload, S: State>(
    run: &mut Run,
    total: usize,
    (model, state): (&mut M, &mut S),
    mut measure: Option<impl FnMut(&M) -> Result<Option<TopKMetrics>>>,
    mut step: impl FnMut(&mut M, &mut S, Batch) -> f64,
) -> Result<History> {
    let per_epoch = total.div_ceil(run.config.batch_size);
    let mut measured: Vec<(Result<Option<TopKMetrics>>, f64)> = Vec::new();
    let mut history = run.epochs(total, model, state, |model, state, b| {
        let index = b.index;
        let loss = step(model, state, b);
        if let Some(m) = measure.as_mut().filter(|_| (index + 1) % per_epoch == 0) {
            let start = std::time::Instant::now();
            measured.push((m(model), start.elapsed().as_secs_f64()));
        }
        loss
    })?;
    // the epochs run now are the last (a resumed run's first came from its checkpoint)
    for (epoch, (metrics, seconds)) in history.epochs.iter_mut().rev().zip(measured.into_iter().rev()) {
        (epoch.validation, epoch.seconds) = (metrics?, epoch.seconds - seconds);
    }
    Ok(history)
}

/// `loss`, this rank's pairs against every column of the global batch of `batch` examples, as
/// one process computes it over the whole batch: each column counted as often as the batch
/// holds it (`uses`; the other ranks' occurrences are extra negatives here), a mean over the
/// whole batch. `None` when the rank has no example in the batch.
fn over_global_batch(loss: InBatchSoftmax, uses: &[f32], batch: usize, reduction: Reduction) -> Option<SoftmaxGrads> {
    if loss.pairs.is_empty() {
        return None;
    }
    let mut extra = uses.to_vec();
    loss.pairs.iter().for_each(|&(_, k)| extra[k as usize] -= 1.0);
    let mut loss = InBatchSoftmax { extra_counts: Some(&extra), ..loss };
    if reduction == Reduction::Mean {
        loss.grad_scale = 1.0 / batch as f32;
    }
    Some(loss.forward_backward())
}

/// This rank's examples of the global batch `b`: indices into its share, the job's examples
/// `offset..offset + len`.
fn local_examples(b: &Batch, offset: usize, len: usize) -> Vec<usize> {
    let (first, end) = (offset as u32, (offset + len) as u32);
    b.rows.iter().filter(|&&g| g >= first && g < end).map(|&g| (g - first) as usize).collect()
}

/// The global batch's candidates: every rank's `rows`, in rank order, counted in `columns`
/// (the batch's distinct rows); returns the columns of this rank's rows.
fn gather_columns(comm: &Counted, rows: &[u32], columns: &mut Dedup) -> Vec<u32> {
    let mut mine = Vec::with_capacity(rows.len());
    for (rank, rows) in comm.all_gather(rows).iter().enumerate() {
        for &c in rows {
            let k = columns.index(c);
            if rank == comm.rank() {
                mine.push(k);
            }
        }
    }
    mine
}

/// Sums a replicated network's gradients over the ranks.
fn sum_over_ranks(comm: &Counted, grads: &mut MlpGrads) {
    grads.weights.iter_mut().chain(grads.biases.iter_mut()).for_each(|g| comm.all_reduce_f32(g));
}

/// The first and last timestamps of every rank's share.
fn time_span(comm: &Counted, times: Option<&[i64]>) -> Option<[i64; 2]> {
    let (lo, hi) = times.map_or((i64::MAX, i64::MIN), |t| {
        (t.iter().copied().min().unwrap_or(i64::MAX), t.iter().copied().max().unwrap_or(i64::MIN))
    });
    let all = comm.all_gather(&[lo as u64, hi as u64]);
    let lo = all.iter().map(|v| v[0] as i64).min()?;
    let hi = all.iter().map(|v| v[1] as i64).max()?;
    (lo <= hi).then_some([lo, hi])
}

/// This rank's ratings, and the scale of every rank's (as `RatingScale::of` all of them).
fn rated<'a>(comm: &Counted, spec: &ModelSpec, share: &'a Interactions) -> Result<(&'a [f32], RatingScale)> {
    let ratings = share.ratings.as_deref().ok_or_else(|| {
        Error::Data(format!("a {} model needs ratings: the training table has no rating column", spec.kind()))
    })?;
    let lo = ratings.iter().copied().fold(f32::INFINITY, f32::min);
    let hi = ratings.iter().copied().fold(f32::NEG_INFINITY, f32::max);
    let sum: f64 = ratings.iter().map(|&r| r as f64).sum();
    let all = comm.all_gather(&[lo as f64, hi as f64, sum, ratings.len() as f64]);
    let (min, max) = (
        all.iter().map(|v| v[0]).fold(f64::INFINITY, f64::min),
        all.iter().map(|v| v[1]).fold(f64::NEG_INFINITY, f64::max),
    );
    let (sum, n): (f64, f64) = (all.iter().map(|v| v[2]).sum(), all.iter().map(|v| v[3]).sum());
    let scale = RatingScale { min: min as f32, max: max as f32, mean: (sum / n.max(1.0)) as f32 };
    (scale.max > scale.min)
        .then_some((ratings, scale))
        .ok_or_else(|| Error::Data("the training ratings are all equal: nothing to learn".into()))
}

/// Peak resident memory of this process, in MB.
fn peak_rss_mb() -> f64 {
    // SAFETY: getrusage writes into the struct it is given.
    let mut usage: libc::rusage = unsafe { std::mem::zeroed() };
    match unsafe { libc::getrusage(libc::RUSAGE_SELF, &mut usage) } {
        0 => usage.ru_maxrss as f64 / 1024.0,
        _ => f64::NAN,
    }
}

/// Trains `job` on this rank's `share`: on rank 0 the model in memory, or (written to a
/// directory) the model rank 0 wrote, with its sharded tables' rows left out; `None` on the
/// others.
pub(crate) fn fit(job: Job, comm: &dyn Collective, share: Data) -> Result<Option<Artifact>> {
    let comm = Counted::new(comm);
    let columns = match share {
        Data::Interactions(t) => [t.ratings.is_some(), t.timestamps.is_some(), t.weights.is_some()],
        Data::Sequences(s) => [s.ids.is_some(), false, false],
    };
    let Job { spec, config, sharding, validation, from, .. } = &job;
    let (validation, prior) = (validation.is_some(), from.prior.map(Artifact::version));
    let fingerprint = Fingerprint { spec, config, sharding: *sharding, columns, validation, prior };
    check_same(&comm, &fingerprint)?;
    if from.prior.is_some() && sharding.is_some() {
        return Err(Error::Config(
            "continuing a model (`init_from`) is built for replicated tables: every rank reads the old model whole, \
             which sharded tables are there to avoid"
                .into(),
        ));
    }
    if from.checkpoints.is_some() && sharding.is_some() {
        return Err(Error::Config(
            "checkpoints are built for replicated tables (rank 0's state is every rank's): sharded tables take none"
                .into(),
        ));
    }
    let gru = matches!(spec, ModelSpec::Sequential(s) if s.encoder == Encoder::Gru);
    let ranker = matches!(spec, ModelSpec::Ranking(r) if r.context.is_empty());
    let kinds =
        matches!(spec, ModelSpec::Retrieval | ModelSpec::Rating | ModelSpec::Features(_) | ModelSpec::Multitask(_));
    if !(gru || ranker || kinds) {
        let what = match spec {
            ModelSpec::Sequential(_) => "a sequential model with the SASRec encoder".to_string(),
            ModelSpec::Ranking(_) => "a ranker over context features (a pipeline's)".to_string(),
            other => format!("a {} model", other.kind()),
        };
        return Err(Error::Config(format!(
            "distributed training is built for the retrieval, rating, feature, multitask, ranking and sequential \
             (GRU) kinds; {what} trains in one process"
        )));
    }
    if sharding.is_some() && (gru || ranker) {
        return Err(Error::Config(format!(
            "a distributed {} model's tables are replicated on every rank: table sharding is for the retrieval, \
             rating and multitask kinds",
            spec.kind()
        )));
    }
    if config.normalization == Normalization::BatchNorm || config.retrieval.hard_negatives.is_some() {
        return Err(Error::Config(
            "distributed training takes no batch normalisation and no hard-negative mining (both need the whole \
             batch's statistics)"
                .into(),
        ));
    }
    match share {
        Data::Interactions(t) => interactions(job, &comm, t),
        Data::Sequences(s) => sequences(job, &comm, s),
    }
}

/// A sequential model's run: replicated, so rank 0 writes it as one process does.
fn sequences(job: Job, comm: &Counted, share: &Sessions) -> Result<Option<Artifact>> {
    let Job { spec, config, catalog, observer, validation, from, out, .. } = job;
    let ModelSpec::Sequential(seq) = spec else { return Err(Error::internal("sequences for a sequential model")) };
    let validation = match validation {
        Some(Data::Sequences(v)) => Some(v),
        _ => None,
    };
    let mut run = Run::new(&config, observer, None);
    let mine = own_checkpoints(comm, from.checkpoints);
    let from = Continuing { checkpoints: mine.as_ref(), ..from };
    let model = sequential::fit(&mut run, comm, (seq, catalog, from), share, validation)?;
    finish(comm, out, model, Vec::new())
}

/// An interaction table's run.
fn interactions(job: Job, comm: &Counted, share: &Interactions) -> Result<Option<Artifact>> {
    let Job { spec, config, catalog, observer, sharding, validation, from, attributes, out } = job;
    let validation = match validation {
        Some(Data::Interactions(v)) => Some(v),
        _ => None,
    };
    let earlier = from.prior.map(|p| super::continuing::earlier(p, from.decay));
    let shared = data::build(comm, share, catalog, config.key, earlier)?;
    let d = &shared.dataset;
    let place = |rows: usize| Placement {
        rank: comm.rank(),
        ranks: comm.size(),
        rows,
        sharded: sharding.is_some_and(|s| rows >= s.min_rows) && comm.size() > 1,
    };
    let layout = retrieval::Layout { queries: place(d.query_vocab.rows()), candidates: place(d.items.len()) };
    let val = validation.map(|v| Encoded::interactions(&d.query_vocab, &d.items, v));
    let mut run = Run::new(&config, observer, None);
    let mine = own_checkpoints(comm, from.checkpoints);
    let from = Continuing { checkpoints: mine.as_ref(), ..from };
    let examples = digest(comm, &[&d.queries, &d.candidates]);
    from.prepare(&mut run, (d.query_vocab.rows(), d.items.len()), || examples)?;
    let streamed = matches!(out, Output::Dir(_));
    // a streamed optimizer state is written from memory
    run.spill = from.spill.filter(|_| !streamed);
    let steps = (config.epochs * shared.total.div_ceil(config.batch_size)) as u64;
    let mut opt = Optimizer::new(config.optimizer);
    opt.set_step(steps);
    let root = comm.rank() == 0;
    let mut sharded = Vec::new();
    let trained: Option<(Box<dyn Model>, History)> = match &spec {
        ModelSpec::Features(f) => {
            // every table and layer replicated: rank 0's copy is the model
            let span = time_span(comm, share.timestamps.as_deref());
            let model = super::features::build(f, d, attributes, span.as_ref().map(|s| &s[..]), config.seed)?;
            let (model, history) =
                features::fit(&mut run, comm, &shared, model, share.timestamps.as_deref(), val.as_ref())?;
            Some((Box::new(model), history))
        }
        ModelSpec::Ranking(r) => {
            let (ratings, scale) = rated(comm, &spec, share)?;
            let by_user = ranking::ByUser::new(comm, &shared, ratings, r.loss);
            let (loss, size, seed) = (r.loss, r.list_size(), config.seed);
            let lists = |e: usize| by_user.lists(loss, size, seed.wrapping_add(e as u64));
            let source = ListSource::Spread { lists: &lists, reshuffled: loss != crate::task::RankingLoss::Mse };
            let mut rng = crate::rng::Rng::new(config.seed ^ 0xFEA7);
            let inputs = super::ranking::feature_towers(r, (d, &d.counts), attributes, &mut rng)?;
            let rows = (d.query_vocab.rows(), d.items.len());
            let mut model = RankingModel::new(r, rows, config.dim, inputs, scale, config.seed);
            let history = super::ranking::fit_lists(&mut run, &mut model, source, &ranking::Spread { comm })?;
            root.then(|| (Box::new(model) as Box<dyn Model>, history))
        }
        ModelSpec::Multitask(m) => {
            run.keep_optimizer = false;
            let (ratings, scale) = rated(comm, &spec, share)?;
            let fitted = (&shared, &layout);
            let mut t = retrieval::fit_multitask(&mut run, comm, fitted, m, (ratings, scale), val.as_ref())?;
            fn tables(s: &mut (TowerSlots, TowerSlots, MlpSlots)) -> [&mut Slots; 2] {
                [&mut s.0.embedding, &mut s.1.embedding]
            }
            sharded = end(comm, &layout, &mut t.model.towers, &mut t.slots, tables, streamed)?;
            if root {
                run.keep_optimizer_state(&mut t.slots, &opt)?;
            }
            root.then(|| (Box::new(t.model) as Box<dyn Model>, t.history))
        }
        _ => {
            run.keep_optimizer = false;
            let mut t = match spec {
                ModelSpec::Rating => {
                    let rated = rated(comm, &spec, share)?;
                    retrieval::fit_rating(&mut run, comm, (&shared, &layout), rated, val.as_ref())?
                }
                _ => retrieval::fit(&mut run, comm, &shared, &layout, val.as_ref())?,
            };
            fn tables(s: &mut (TowerSlots, TowerSlots)) -> [&mut Slots; 2] {
                [&mut s.0.embedding, &mut s.1.embedding]
            }
            sharded = end(comm, &layout, &mut t.model, &mut t.slots, tables, streamed)?;
            if root {
                run.keep_optimizer_state(&mut t.slots, &opt)?;
            }
            root.then(|| (Box::new(t.model) as Box<dyn Model>, t.history))
        }
    };
    let pairs = data::pairs_on_root(comm, d);
    let ranks = summaries(comm, &layout, steps)?;
    let finished = match (trained, pairs) {
        (Some((model, history)), Some(pairs)) => {
            let done = Finished { model, history, ranks, seconds: run.seconds, optimizer: run.optimizer.take() };
            let candidates = !layout.candidates.sharded || !streamed;
            let seen = super::continuing::seen_after(from.prior, d.query_vocab.rows(), pairs.into_iter());
            Some(artifact(done, config, shared, seen, candidates))
        }
        _ => None,
    };
    finish(comm, out, finished, sharded)
}

/// This rank's checkpoints of a run's: every rank resumes from the one checkpoint, rank 0's,
/// which only rank 0 writes (the state is every rank's, replicated).
fn own_checkpoints(comm: &Counted, c: Option<&Checkpoints>) -> Option<Checkpoints> {
    c.map(|c| Checkpoints { every: if comm.rank() == 0 { c.every } else { 0 }, ..c.clone() })
}

/// The digest of every rank's examples (each rank's `parts`), the same on every rank: what a
/// checkpoint says it was made on.
fn digest(comm: &Counted, parts: &[&[u32]]) -> String {
    let all = comm.all_gather_bytes(super::checkpoint::digest(parts).as_bytes());
    crate::artifact::sha256_hex(&all.concat())
}

/// The end of every run: rank 0's model (`finished`) kept in memory, or written to the
/// directory with the `sharded` tensors streamed from their ranks.
fn finish(
    comm: &Counted,
    out: Output,
    finished: Option<Artifact>,
    sharded: Vec<write::Sharded>,
) -> Result<Option<Artifact>> {
    let Output::Dir(lock) = out else { return Ok(finished) };
    let mut streams = write::Streamed::new(comm, sharded, &[WEIGHTS_FILE, CANDIDATES_FILE, OPTIMIZER_FILE]);
    let Some(model) = finished else {
        streams.finish();
        return crate::dist::agree(comm.inner, Ok(None));
    };
    let lock = lock.ok_or_else(|| Error::internal("rank 0 writes the model: it holds the directory's lock"));
    let written = lock.and_then(|lock| model.save_streamed(lock, &mut streams));
    streams.finish();
    crate::dist::agree(comm.inner, written.map(|_| Some(model)))
}

/// The end of an id-tower kind's run: the two tables and their optimizer state (in `slots`,
/// the tables' own picked by `tables`) whole on rank 0 (`streamed` false), or the sharded ones'
/// rows moved out, for rank 0 to write them streamed.
fn end<S: State>(
    comm: &Counted,
    layout: &retrieval::Layout,
    towers: &mut crate::model::TwoTower,
    slots: &mut S,
    tables: impl Fn(&mut S) -> [&mut Slots; 2],
    streamed: bool,
) -> Result<Vec<write::Sharded>> {
    if !streamed {
        retrieval::collect(comm, layout, towers, tables(slots));
        return Ok(Vec::new());
    }
    let [q, c] = tables(slots).map(|s| s as *const Slots);
    let mut name = |p| super::state::names_of(slots, p).ok_or_else(|| Error::internal("a table's optimizer slots"));
    let (q, c) = (name(q)?, name(c)?);
    let [qs, cs] = tables(slots);
    Ok(retrieval::sharded(layout, towers, [(qs, q), (cs, c)]))
}

/// Every rank's figures, on every rank.
fn summaries(comm: &Counted, layout: &retrieval::Layout, steps: u64) -> Result<Vec<RankSummary>> {
    let me = RankSummary {
        rank: comm.rank(),
        user_rows: layout.queries.local_rows(),
        item_rows: layout.candidates.local_rows(),
        peak_rss_mb: peak_rss_mb(),
        bytes_sent: comm.sent(),
        steps,
    };
    let all = comm.all_gather_bytes(&serde_json::to_vec(&me).map_err(Error::internal)?);
    all.iter().map(|b| serde_json::from_slice(b).map_err(Error::internal)).collect()
}

/// What rank 0 has at the end of training.
struct Finished {
    model: Box<dyn Model>,
    history: History,
    ranks: Vec<RankSummary>,
    seconds: f64,
    optimizer: Option<crate::artifact::OptimizerState>,
}

/// The model rank 0 writes: what it trained, the job's vocabularies and counts, and what every
/// user has seen; its candidate embeddings when `candidates` (not when they are streamed).
fn artifact(done: Finished, config: TrainConfig, shared: data::Shared, seen: Seen, candidates: bool) -> Artifact {
    let Finished { model, history, ranks, seconds, optimizer } = done;
    let summary = TrainSummary { ranks, ..TrainSummary::new(shared.total, &history, seconds) };
    let d = shared.dataset;
    Artifact {
        candidates: if candidates { model.candidates().into() } else { Vec::new().into() },
        model,
        config,
        seen,
        query_vocab: d.query_vocab,
        items: d.items,
        approximate: None,
        popularity: d.counts,
        history,
        summary,
        optimizer,
        histories: Default::default(),
        origin: Default::default(),
    }
}
