//! The training loop: seeded shuffling, batches, the fused loss, sparse updates, history.

use super::optimizer::Slots;
use super::{EpochRecord, History, Optimizer, OptimizerConfig};
use crate::data::{CandidateKey, Dataset, counts};
use crate::eval::{TopKMetrics, distinct_queries, evaluate};
use crate::model::{Normalization, Tower, TwoTower};
use crate::rng::Rng;
use crate::task::{RetrievalConfig, Task};
use crate::{Error, Result};
use serde::{Deserialize, Serialize};
use std::time::Instant;

/// Everything that defines a training run. `Default` gives towers' defaults (chosen by
/// experiment on MovieLens 100K, see the README); [`TrainConfig::tfrs`] gives the settings of
/// TFRS's basic-retrieval tutorial.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct TrainConfig {
    /// What the model learns: retrieval (default), ratings, or a ranking model.
    pub task: Task,
    /// Widths of the dense layers after the embeddings (ranking model; feature towers).
    pub layers: Vec<usize>,
    /// Embedding width of both towers.
    pub dim: usize,
    /// Normalisation of both towers' outputs.
    pub normalization: Normalization,
    /// How candidates are keyed.
    pub key: CandidateKey,
    /// Optimizer.
    pub optimizer: OptimizerConfig,
    /// Examples per batch (also the number of in-batch negatives + 1).
    pub batch_size: usize,
    /// Passes over the training data.
    pub epochs: usize,
    /// Seed of the initialisation and of every epoch's shuffle.
    pub seed: u64,
    /// Loss options.
    pub retrieval: RetrievalConfig,
    /// L2 regularisation of the embeddings: adds `l2/2·‖e‖²` per example for the query and the
    /// candidate embedding it uses (so frequent rows are held back as often as they are used).
    pub l2: f32,
}

impl Default for TrainConfig {
    /// towers' defaults, chosen on a validation split carved out of the MovieLens 100K training
    /// data (see the README): logQ-corrected in-batch softmax without accidental hits, L2
    /// regularisation, Adam — test top-100 0.41 where TFRS's tutorial settings reach 0.235.
    fn default() -> Self {
        TrainConfig {
            task: Task::Retrieval,
            layers: Vec::new(),
            dim: 32,
            normalization: Normalization::None,
            key: CandidateKey::Id,
            optimizer: OptimizerConfig::default(),
            batch_size: 4096,
            epochs: 10,
            seed: 42,
            retrieval: RetrievalConfig::default(),
            l2: 0.1,
        }
    }
}

impl TrainConfig {
    /// TFRS's recipe, as in its basic-retrieval tutorial: dim 32, Adagrad 0.1 (initial
    /// accumulator 0.1), batch 8192, 3 epochs, plain in-batch softmax summed over the batch
    /// (no logQ correction, accidental hits kept, no regularisation). The tutorial keys
    /// candidates by title: set `key` to [`CandidateKey::Title`] for that.
    pub fn tfrs() -> Self {
        TrainConfig {
            task: Task::Retrieval,
            layers: Vec::new(),
            dim: 32,
            normalization: Normalization::None,
            key: CandidateKey::Id,
            optimizer: OptimizerConfig::adagrad(),
            batch_size: 8192,
            epochs: 3,
            seed: 42,
            retrieval: RetrievalConfig::tfrs(),
            l2: 0.0,
        }
    }

    /// towers' defaults for sequential retrieval ([`super::fit_sequential`]), chosen on
    /// RetailRocket sessions and MovieLens histories (see the README): dim 64, Adagrad 0.1,
    /// logQ-corrected in-batch softmax without accidental hits, no L2, batch 4096, 5 epochs
    /// (with [`super::SequenceConfig::default`]: shared embeddings and the last item's skip connection).
    pub fn sequential() -> Self {
        TrainConfig { dim: 64, optimizer: OptimizerConfig::adagrad(), epochs: 5, l2: 0.0, ..TrainConfig::default() }
    }

    /// towers' defaults for explicit-feedback retrieval ([`Task::Rating`]): dim 32, Adam 0.01,
    /// batch 1024, L2 0.05, 10 epochs (chosen on a validation split of MovieLens' training data).
    pub fn rating() -> Self {
        TrainConfig { task: Task::Rating, batch_size: 1024, l2: 0.05, ..TrainConfig::default() }
    }

    /// towers' defaults for the ranking model ([`Task::Ranking`]): TFRS's basic-ranking
    /// architecture (dim 32, dense 256 → 64 → 1), Adam 0.001, batch 1024, 5 epochs.
    pub fn ranking() -> Self {
        TrainConfig {
            task: Task::Ranking,
            layers: vec![256, 64],
            optimizer: OptimizerConfig { learning_rate: 0.001, ..OptimizerConfig::default() },
            batch_size: 1024,
            epochs: 5,
            l2: 0.0,
            ..TrainConfig::default()
        }
    }

    /// The defaults of a task (retrieval: [`TrainConfig::default`]).
    pub fn for_task(task: Task) -> Self {
        match task {
            Task::Retrieval => TrainConfig::default(),
            Task::Rating => TrainConfig::rating(),
            Task::Ranking => TrainConfig::ranking(),
        }
    }

    /// The configuration of a named recipe.
    pub fn recipe(recipe: Recipe) -> Self {
        match recipe {
            Recipe::Towers => TrainConfig::default(),
            Recipe::Tfrs => TrainConfig::tfrs(),
        }
    }

    /// Checks every value, with a message naming the bad one.
    pub fn validate(&self) -> Result<()> {
        if self.dim == 0 || self.dim > 4096 {
            return Err(Error::Config(format!("dim must be in 1..=4096, got {}", self.dim)));
        }
        if self.batch_size < 2 {
            return Err(Error::Config(format!(
                "batch size must be at least 2 (in-batch negatives), got {}",
                self.batch_size
            )));
        }
        if !(self.l2.is_finite() && self.l2 >= 0.0) {
            return Err(Error::Config(format!("l2 must be >= 0, got {}", self.l2)));
        }
        if let Some(w) = self.layers.iter().find(|&&w| w == 0 || w > 4096) {
            return Err(Error::Config(format!("layer widths must be in 1..=4096, got {w}")));
        }
        if self.epochs == 0 {
            return Err(Error::Config("epochs must be at least 1".into()));
        }
        self.optimizer.validate()?;
        self.retrieval.validate()
    }
}

/// A named set of training settings.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Recipe {
    /// towers' defaults ([`TrainConfig::default`]).
    #[default]
    Towers,
    /// TensorFlow Recommenders' tutorial settings ([`TrainConfig::tfrs`]).
    Tfrs,
}

/// Validation data for per-epoch metrics: (query row, candidate row) pairs.
pub type Validation<'a> = &'a [(u32, u32)];

/// Trains two-tower models.
#[derive(Debug, Clone)]
pub struct Trainer {
    config: TrainConfig,
    progress: bool,
}

/// Optimizer state of one tower.
pub(crate) struct TowerSlots {
    embedding: Slots,
    gamma: Slots,
    beta: Slots,
}

impl TowerSlots {
    pub(crate) fn new(opt: &Optimizer, t: &Tower) -> Self {
        TowerSlots {
            embedding: opt.slots(t.embedding.rows, t.dim()),
            gamma: opt.slots(1, t.dim()),
            beta: opt.slots(1, t.dim()),
        }
    }
}

/// Distinct rows of a batch and each example's index among them.
pub(crate) struct Dedup {
    slot: Vec<u32>,
    pub(crate) rows: Vec<u32>,
    pub(crate) weights: Vec<f32>,
}

impl Dedup {
    pub(crate) fn new(table_rows: usize) -> Self {
        Dedup { slot: vec![u32::MAX; table_rows], rows: Vec::new(), weights: Vec::new() }
    }

    /// The position of `row` among the distinct rows, counting one more occurrence.
    pub(crate) fn index(&mut self, row: u32) -> u32 {
        let s = &mut self.slot[row as usize];
        if *s == u32::MAX {
            *s = self.rows.len() as u32;
            self.rows.push(row);
            self.weights.push(0.0);
        }
        self.weights[*s as usize] += 1.0;
        *s
    }

    /// The position of a row already added.
    pub(crate) fn position(&self, row: u32) -> usize {
        self.slot[row as usize] as usize
    }

    pub(crate) fn clear(&mut self) {
        for &r in &self.rows {
            self.slot[r as usize] = u32::MAX;
        }
        self.rows.clear();
        self.weights.clear();
    }
}

impl Trainer {
    /// A trainer; the configuration is validated.
    pub fn new(config: TrainConfig) -> Result<Self> {
        config.validate()?;
        Ok(Trainer { config, progress: false })
    }

    /// Shows a progress bar on standard error (hidden when it is not a terminal).
    pub fn with_progress(mut self, on: bool) -> Self {
        self.progress = on;
        self
    }

    /// The configuration.
    pub fn config(&self) -> &TrainConfig {
        &self.config
    }

    /// Trains a model on `data`; with `validation`, evaluates after every epoch.
    pub fn fit(&self, data: &Dataset, validation: Option<Validation>) -> Result<(TwoTower, History)> {
        if data.is_empty() {
            return Err(Error::Invalid("the training set is empty".into()));
        }
        let cfg = &self.config;
        let mut model = TwoTower::new(data.query_vocab.rows(), data.items.len(), cfg.dim, cfg.normalization, cfg.seed);
        let opt = Optimizer::new(cfg.optimizer);
        let mut q_slots = TowerSlots::new(&opt, &model.query);
        let mut c_slots = TowerSlots::new(&opt, &model.candidate);
        let log_q = cfg.retrieval.log_q(&counts(&data.candidates, data.items.len()));
        let mut q_dedup = Dedup::new(model.query.embedding.rows);
        let mut c_dedup = Dedup::new(model.candidate.embedding.rows);
        let mut pairs = Vec::with_capacity(cfg.batch_size);
        let history = run_epochs(
            cfg,
            data.len(),
            self.progress,
            &mut model,
            |model, batch, opt| {
                pairs.clear();
                for &i in batch {
                    pairs.push((q_dedup.index(data.queries[i as usize]), c_dedup.index(data.candidates[i as usize])));
                }
                let q_cache = model.query.forward_train(&q_dedup.rows, &q_dedup.weights);
                let c_cache = model.candidate.forward_train(&c_dedup.rows, &c_dedup.weights);
                let lq: Option<Vec<f32>> =
                    log_q.as_ref().map(|l| c_dedup.rows.iter().map(|&c| l[c as usize]).collect());
                let weights: Option<Vec<f32>> =
                    data.weights.as_ref().map(|w| batch.iter().map(|&i| w[i as usize]).collect());
                let (q, c) = (Tower::outputs(&q_cache), Tower::outputs(&c_cache));
                let grads =
                    cfg.retrieval.loss(q, c, cfg.dim, &pairs, lq.as_deref(), weights.as_deref()).forward_backward();
                update_tower(opt, cfg.l2, &mut model.query, &mut q_slots, &q_dedup, &q_cache, &grads.d_queries);
                update_tower(opt, cfg.l2, &mut model.candidate, &mut c_slots, &c_dedup, &c_cache, &grads.d_candidates);
                q_dedup.clear();
                c_dedup.clear();
                grads.loss
            },
            |model| validation.map(|v| validate(model, v)),
        )?;
        Ok((model, history))
    }
}

/// Runs the epochs of a training loop: a seeded shuffle per epoch, one optimizer step per batch
/// (`step` updates `state` and returns the batch's loss), `validate` after every epoch, the
/// history and the progress bar.
pub(crate) fn run_epochs<S>(
    cfg: &TrainConfig,
    n: usize,
    progress: bool,
    state: &mut S,
    mut step: impl FnMut(&mut S, &[u32], &Optimizer) -> f64,
    validate: impl Fn(&S) -> Option<TopKMetrics>,
) -> Result<History> {
    let mut opt = Optimizer::new(cfg.optimizer);
    let mut rng = Rng::new(cfg.seed ^ 0x5EED_5EED);
    let mut order: Vec<u32> = (0..n as u32).collect();
    let bar = progress_bar(progress, (n.div_ceil(cfg.batch_size) * cfg.epochs) as u64);
    let mut history = History::default();
    for epoch in 1..=cfg.epochs {
        let start = Instant::now();
        rng.shuffle(&mut order);
        let mut loss_sum = 0f64;
        for batch in order.chunks(cfg.batch_size) {
            opt.next_step();
            let loss = step(state, batch, &opt);
            if !loss.is_finite() {
                return Err(Error::Invalid(format!(
                    "training diverged at epoch {epoch} (loss {loss}); lower the learning rate"
                )));
            }
            loss_sum += loss * batch.len() as f64;
            bar.inc(1);
        }
        let (loss, seconds) = (loss_sum / n as f64, start.elapsed().as_secs_f64());
        let validation = validate(state);
        bar.set_message(format!("epoch {epoch} loss {loss:.4}"));
        tracing::info!(epoch, loss, seconds, top_100 = validation.map(|m| m.top_100), "epoch done");
        history.epochs.push(EpochRecord { epoch, loss, seconds, validation });
    }
    bar.finish_and_clear();
    Ok(history)
}

pub(crate) fn update_tower(
    opt: &Optimizer,
    l2: f32,
    tower: &mut Tower,
    slots: &mut TowerSlots,
    batch: &Dedup,
    cache: &crate::model::TowerCache,
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

/// Metrics of the current model on (query row, candidate row) pairs.
pub(crate) fn validate(model: &TwoTower, pairs: &[(u32, u32)]) -> TopKMetrics {
    let (users, local) = distinct_queries(pairs);
    let queries = model.query.embed(&users);
    let candidates = model.candidate.embed_all();
    evaluate(&queries, &candidates, model.dim(), &local, &[])
}

pub(crate) fn progress_bar(on: bool, len: u64) -> indicatif::ProgressBar {
    if !on {
        return indicatif::ProgressBar::hidden();
    }
    let bar = indicatif::ProgressBar::new(len);
    if let Ok(style) =
        indicatif::ProgressStyle::with_template("{spinner} training [{bar:30}] {pos}/{len} steps {msg} ({elapsed})")
    {
        bar.set_style(style.progress_chars("=> "));
    }
    bar
}
