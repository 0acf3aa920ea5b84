//! The configuration of a training run, shared by every model kind (what the manifest records
//! as `config`, and `towers train --config` reads), and its defaults per kind and recipe.

pub mod post;

pub use post::{Cap, PostOverrides, PostRanking};

use crate::data::CandidateKey;
use crate::model::{Encoder, ModelKind, ModelSpec, Normalization, Recipe};
use crate::task::{RankingLoss, RetrievalConfig};
use crate::{Error, Result};
use serde::{Deserialize, Serialize};

/// The largest batch size accepted (a batch's logits are `batch_size²` floats).
pub const MAX_BATCH_SIZE: usize = 1 << 16;
/// The most epochs accepted.
pub const MAX_EPOCHS: usize = 1_000_000;

/// Everything that defines a training run besides the model's kind and settings
/// ([`ModelSpec`]). `Default` gives towers' defaults for retrieval;
/// [`TrainConfig::defaults`] those of each kind and recipe.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct TrainConfig {
    /// Embedding width of both towers (feature models: set by their layers).
    pub dim: usize,
    /// Normalisation of both towers' outputs (id towers).
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
    /// Options of the in-batch softmax.
    pub retrieval: RetrievalConfig,
    /// L2 regularisation of the embeddings: adds `l2/2·‖e‖²` per example for the query and the
    /// candidate embedding it uses (so frequent rows are held back as often as they are used).
    pub l2: f32,
    /// Ranking models: the trained parameters are the mean of those at the end of each of the
    /// last N epochs (all of them when there are fewer; stochastic weight averaging); none: the
    /// last epoch's.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub average_last: Option<usize>,
}

impl Default for TrainConfig {
    /// towers' defaults for retrieval, chosen on a validation split of the MovieLens 100K
    /// training data (see the book's retrieval guide): Adam 0.01, the logQ-corrected in-batch softmax without
    /// accidental hits, L2 0.1, dim 32, batch 4096, 10 epochs.
    fn default() -> Self {
        TrainConfig {
            dim: 32,
            normalization: Normalization::None,
            key: CandidateKey::Id,
            optimizer: OptimizerConfig::default(),
            batch_size: 4096,
            epochs: 10,
            seed: 42,
            retrieval: RetrievalConfig::default(),
            l2: 0.1,
            average_last: None,
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
            optimizer: OptimizerConfig::adagrad(),
            batch_size: 8192,
            epochs: 3,
            retrieval: RetrievalConfig::tfrs(),
            l2: 0.0,
            ..TrainConfig::default()
        }
    }

    /// The defaults of a model kind and recipe. The `tfrs` recipe is TFRS's tutorial settings
    /// ([`TrainConfig::tfrs`]) for every kind; towers' own (see the book's retrieval guide for how they were
    /// chosen) are, beside [`TrainConfig::default`]:
    /// - features: L2 0.05 (the feature layers regularise too);
    /// - sequential: dim 64, Adagrad 0.1, no L2, 5 epochs; with the sasrec encoder Adam 0.03,
    ///   batch 32768 targets (positions; at most the catalogue's size rounded up to a power of
    ///   two, and at least 4096), 14 epochs ([`TrainConfig::for_spec`]);
    /// - rating: batch 1024, L2 0.05;
    /// - ranking: Adam 0.001, batch 1024, 8 epochs (ListMLE: 7, [`TrainConfig::for_spec`]), no
    ///   L2, the weights averaged over the last 5 epochs;
    /// - multitask: retrieval's ([`TrainConfig::default`]).
    pub fn defaults(kind: ModelKind, recipe: Recipe) -> Self {
        match (recipe, kind) {
            (Recipe::Tfrs, _) => TrainConfig::tfrs(),
            (Recipe::Towers, ModelKind::Retrieval | ModelKind::Multitask) => TrainConfig::default(),
            (Recipe::Towers, ModelKind::Features) => TrainConfig { l2: 0.05, ..TrainConfig::default() },
            (Recipe::Towers, ModelKind::Sequential) => TrainConfig {
                dim: 64,
                optimizer: OptimizerConfig::adagrad(),
                epochs: 5,
                l2: 0.0,
                ..TrainConfig::default()
            },
            (Recipe::Towers, ModelKind::Rating) => TrainConfig { batch_size: 1024, l2: 0.05, ..TrainConfig::default() },
            (Recipe::Towers, ModelKind::Ranking) => TrainConfig {
                optimizer: OptimizerConfig { learning_rate: 0.001, ..OptimizerConfig::default() },
                batch_size: 1024,
                epochs: RankingLoss::default().default_epochs(),
                l2: 0.0,
                average_last: Some(5),
                ..TrainConfig::default()
            },
        }
    }

    /// The defaults for `spec`: its kind's ([`TrainConfig::defaults`]), and with towers' recipe
    /// a ranking loss's own number of epochs ([`RankingLoss::default_epochs`]).
    pub fn for_spec(spec: &ModelSpec, recipe: Recipe) -> Self {
        let mut c = TrainConfig::defaults(spec.kind(), recipe);
        match (spec, recipe) {
            (ModelSpec::Ranking(r), Recipe::Towers) => c.epochs = r.loss.default_epochs(),
            (ModelSpec::Sequential(s), Recipe::Towers) if s.encoder == Encoder::Sasrec => {
                c = TrainConfig {
                    optimizer: OptimizerConfig { learning_rate: 0.03, ..OptimizerConfig::default() },
                    batch_size: 32768,
                    epochs: 14,
                    ..c
                }
            }
            _ => {}
        }
        c
    }

    /// Checks every value, with a message naming the bad one.
    pub fn validate(&self) -> Result<()> {
        if self.dim == 0 || self.dim > 4096 {
            return Err(Error::Config(format!("dim must be in 1..=4096, got {}", self.dim)));
        }
        if !(2..=MAX_BATCH_SIZE).contains(&self.batch_size) {
            return Err(Error::Config(format!(
                "batch size must be in 2..={MAX_BATCH_SIZE} (in-batch negatives), got {}",
                self.batch_size
            )));
        }
        if !(self.l2.is_finite() && self.l2 >= 0.0) {
            return Err(Error::Config(format!("l2 must be >= 0, got {}", self.l2)));
        }
        if !(1..=MAX_EPOCHS).contains(&self.epochs) {
            return Err(Error::Config(format!("epochs must be in 1..={MAX_EPOCHS}, got {}", self.epochs)));
        }
        if self.average_last == Some(0) {
            return Err(Error::Config("average_last must be at least 1 (or absent: no averaging)".into()));
        }
        self.optimizer.validate()?;
        self.retrieval.validate()
    }
}

/// Which optimizer.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[cfg_attr(feature = "clap", derive(clap::ValueEnum))]
#[serde(rename_all = "snake_case")]
pub enum OptimizerKind {
    /// Adagrad (TFRS's tutorials).
    Adagrad,
    /// Adam, lazy on embedding rows.
    #[default]
    Adam,
}

/// Optimizer settings. The default is towers' (Adam, learning rate 0.01); the other values are
/// Keras' defaults. [`OptimizerConfig::adagrad`] is TFRS's tutorial optimizer.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct OptimizerConfig {
    /// Which optimizer.
    pub kind: OptimizerKind,
    /// Learning rate.
    pub learning_rate: f32,
    /// Adagrad's initial accumulator (Keras: 0.1).
    pub initial_accumulator: f32,
    /// Adam's β₁.
    pub beta1: f32,
    /// Adam's β₂.
    pub beta2: f32,
    /// ε added to the denominator (Keras: 1e-7).
    pub epsilon: f32,
}

impl Default for OptimizerConfig {
    fn default() -> Self {
        OptimizerConfig {
            kind: OptimizerKind::Adam,
            learning_rate: 0.01,
            initial_accumulator: 0.1,
            beta1: 0.9,
            beta2: 0.999,
            epsilon: 1e-7,
        }
    }
}

impl OptimizerConfig {
    /// Adagrad with a learning rate of 0.1 (TFRS's tutorials; Keras' initial accumulator 0.1).
    pub fn adagrad() -> Self {
        OptimizerConfig { kind: OptimizerKind::Adagrad, learning_rate: 0.1, ..Default::default() }
    }

    /// Checks the values.
    pub fn validate(&self) -> Result<()> {
        let ok = self.learning_rate.is_finite()
            && self.learning_rate > 0.0
            && self.initial_accumulator >= 0.0
            && (0.0..1.0).contains(&self.beta1)
            && (0.0..1.0).contains(&self.beta2)
            && self.epsilon >= 0.0;
        if !ok {
            return Err(Error::Config(format!(
                "optimizer settings out of range: {self:?} (learning rate > 0, betas in [0, 1))"
            )));
        }
        Ok(())
    }
}
