//! `towers train`: the options, the model spec and training configuration they give, and the
//! runner for each kind of training data.

mod interactions;
mod sequences;

use crate::common::{TableArgs, print_evaluation, print_json};
use clap::Args as ClapArgs;
use std::path::PathBuf;
use towers::config::{OptimizerConfig, OptimizerKind};
use towers::data::{CandidateKey, Catalog, InputFormat};
use towers::kernels::softmax::Precision;
use towers::model::{FeatureConfig, Normalization, SequenceConfig};
use towers::task::Reduction;
use towers::{Artifact, Error, Evaluation, ModelKind, ModelSpec, Recipe, TrainConfig};

/// Options of `towers train`. Unset options take the value of `--config`, else of the recipe:
/// `--recipe`, or `tfrs` when `--optimizer adagrad` is given, else `towers` (see the README).
#[derive(ClapArgs, Debug)]
pub struct Args {
    /// What the model is (with --features, retrieval trains a feature model).
    #[arg(long, value_enum, default_value = "retrieval")]
    pub task: ModelKind,
    /// Training data: interactions (CSV/TSV), or sequences for --task sequential.
    #[arg(long)]
    pub train: PathBuf,
    /// Layout of --train (and --test): interactions (with --task sequential: per-user histories in
    /// time order), or sessions / examples / gru4rec / retailrocket-events for --task sequential.
    #[arg(long, value_enum, default_value = "interactions")]
    pub train_format: InputFormat,
    /// Sequential: items of history the GRU reads.
    #[arg(long, default_value_t = 10)]
    pub steps: usize,
    /// Sequential: one item table for the history and the candidates: true or false
    /// (default: true, false with the tfrs recipe).
    #[arg(long)]
    pub share_embeddings: Option<bool>,
    /// Sequential: add the last item's embedding to the GRU's state: true or false
    /// (default: true, false with the tfrs recipe).
    #[arg(long)]
    pub add_last_item: Option<bool>,
    /// Sequential: a dense dim → dim projection of the GRU's state: true or false (default false).
    #[arg(long)]
    pub projection: Option<bool>,
    /// Sequential: extra shared negatives per batch, sampled by training popularity
    /// (logQ-corrected with --logq true; default 0).
    #[arg(long)]
    pub sampled_negatives: Option<usize>,
    /// Item catalogue: id and title per line (movies.tsv, u.item, movies.csv).
    #[arg(long)]
    pub items: Option<PathBuf>,
    /// Test data (same layout as --train): evaluated after every epoch and at the end.
    #[arg(long)]
    pub test: Option<PathBuf>,
    /// Split the training file instead: random:FRACTION[:SEED], time:FRACTION, cutoff:TS or last
    /// (--task sequential with an interaction table: last only, each user's last item).
    #[arg(long, conflicts_with = "test")]
    pub split: Option<String>,
    /// Write the model directory here (atomically).
    #[arg(long)]
    pub out: Option<PathBuf>,
    /// A TOML file with a training configuration (keys as in the manifest's "config").
    #[arg(long, conflicts_with = "recipe")]
    pub config: Option<PathBuf>,
    /// The settings every unset option takes (per task). Default: tfrs with --optimizer adagrad, else towers.
    #[arg(long, value_enum)]
    pub recipe: Option<Recipe>,
    /// Key candidates by item id or by title (TFRS's tutorial keys by title).
    #[arg(long, value_enum)]
    pub key: Option<CandidateKey>,
    /// Embedding width.
    #[arg(long)]
    pub dim: Option<usize>,
    /// Optimizer.
    #[arg(long, value_enum)]
    pub optimizer: Option<OptimizerKind>,
    /// Learning rate.
    #[arg(long)]
    pub lr: Option<f32>,
    /// Batch size (in-batch negatives per example + 1).
    #[arg(long)]
    pub batch_size: Option<usize>,
    /// Epochs.
    #[arg(long)]
    pub epochs: Option<usize>,
    /// Seed of initialisation and shuffling.
    #[arg(long)]
    pub seed: Option<u64>,
    /// Softmax temperature.
    #[arg(long)]
    pub temperature: Option<f32>,
    /// logQ correction of in-batch negatives: true or false.
    #[arg(long)]
    pub logq: Option<bool>,
    /// Remove accidental hits (repeats of the positive among the negatives): true or false.
    #[arg(long)]
    pub remove_accidental_hits: Option<bool>,
    /// Hard-negative mining: each example's softmax keeps only the N best-scoring in-batch negatives.
    #[arg(long)]
    pub hard_negatives: Option<usize>,
    /// L2 regularisation of the embeddings (per example).
    #[arg(long)]
    pub l2: Option<f32>,
    /// Normalisation of both towers' outputs.
    #[arg(long, value_enum)]
    pub normalize: Option<Normalization>,
    /// Features beyond ids: `movielens` (user age, gender, occupation, zip prefix, time; movie
    /// genres, year, title words; see --movielens-dir) or a TOML feature configuration.
    #[arg(long)]
    pub features: Option<String>,
    /// MovieLens 100K directory (u.user, u.item) for --features movielens (default: found under ../shared/data).
    #[arg(long)]
    pub movielens_dir: Option<PathBuf>,
    /// Widths of the dense layers (ranking model: after the concatenated embeddings; feature
    /// model: after each tower's concatenation), e.g. 256,64.
    #[arg(long, value_delimiter = ',')]
    pub layers: Option<Vec<usize>>,
    /// Sum or mean the batch's losses.
    #[arg(long, value_enum)]
    pub reduction: Option<Reduction>,
    /// Arithmetic of the in-batch softmax's products: bf16 operands with f32 sums (where the
    /// CPU has avx512_bf16; f32 elsewhere) or f32 throughout.
    #[arg(long, value_enum)]
    pub precision: Option<Precision>,
    #[command(flatten)]
    pub table: TableArgs,
    /// Print one JSON object with the training figures (and test metrics) as the last line.
    #[arg(long)]
    pub json: bool,
}

fn set<T>(slot: &mut T, v: Option<T>) {
    if let Some(v) = v {
        *slot = v;
    }
}

impl Args {
    /// The recipe: `--recipe`, else `tfrs` when `--optimizer adagrad` is given, else `towers`.
    fn recipe(&self) -> Recipe {
        match (self.recipe, self.optimizer) {
            (Some(r), _) => r,
            (None, Some(OptimizerKind::Adagrad)) => Recipe::Tfrs,
            _ => Recipe::Towers,
        }
    }

    /// The model kind: `--task`, a feature model when `--features` is given.
    fn kind(&self) -> towers::Result<ModelKind> {
        match (self.task, &self.features) {
            (ModelKind::Retrieval | ModelKind::Features, Some(_)) => Ok(ModelKind::Features),
            (ModelKind::Features, None) => Err(Error::Config("--task features needs --features".into())),
            (_, Some(_)) => Err(Error::Config("--features is for --task retrieval".into())),
            (kind, None) => Ok(kind),
        }
    }

    /// The model's kind and settings: the recipe's, then the options given.
    pub fn spec(&self, features: Option<FeatureConfig>) -> towers::Result<ModelSpec> {
        let mut spec = match features {
            Some(f) => ModelSpec::Features(f),
            None => ModelSpec::defaults(self.kind()?, self.recipe()),
        };
        if let ModelSpec::Sequential(s) = &mut spec {
            *s = SequenceConfig { format: self.train_format, steps: self.steps, ..*s };
            set(&mut s.share_embeddings, self.share_embeddings);
            set(&mut s.add_last_item, self.add_last_item);
            set(&mut s.projection, self.projection);
            set(&mut s.sampled_negatives, self.sampled_negatives);
        }
        if let Some(l) = &self.layers {
            spec.set_layers(l.clone())?;
        }
        Ok(spec)
    }

    /// The configuration: `--config` or the recipe's defaults for the kind, then every option given.
    pub fn config(&self) -> towers::Result<TrainConfig> {
        let mut c: TrainConfig = match &self.config {
            Some(p) => {
                let text = std::fs::read_to_string(p).map_err(|e| Error::io(p, e))?;
                toml::from_str(&text).map_err(|e| Error::Config(format!("{}: {e}", p.display())))?
            }
            None => TrainConfig::defaults(self.kind()?, self.recipe()),
        };
        if let Some(kind) = self.optimizer.filter(|&k| k != c.optimizer.kind) {
            c.optimizer = match kind {
                OptimizerKind::Adam => OptimizerConfig::default(),
                OptimizerKind::Adagrad => OptimizerConfig::adagrad(),
            };
        }
        set(&mut c.key, self.key);
        set(&mut c.normalization, self.normalize);
        set(&mut c.retrieval.reduction, self.reduction);
        set(&mut c.retrieval.precision, self.precision);
        set(&mut c.optimizer.learning_rate, self.lr);
        set(&mut c.dim, self.dim);
        set(&mut c.l2, self.l2);
        set(&mut c.batch_size, self.batch_size);
        set(&mut c.epochs, self.epochs);
        set(&mut c.seed, self.seed);
        set(&mut c.retrieval.temperature, self.temperature);
        set(&mut c.retrieval.logq_correction, self.logq);
        set(&mut c.retrieval.remove_accidental_hits, self.remove_accidental_hits);
        if self.hard_negatives.is_some() {
            c.retrieval.hard_negatives = self.hard_negatives;
        }
        c.validate()?;
        Ok(c)
    }
}

pub fn run(a: Args) -> towers::Result<()> {
    let config = a.config()?;
    let catalog = a.items.as_ref().map(Catalog::read).transpose()?;
    let (model, evaluation) = match a.kind()? {
        ModelKind::Sequential => sequences::train(&a, config, catalog.as_ref())?,
        _ if a.train_format != InputFormat::Interactions => {
            return Err(Error::Config(
                "--train-format other than interactions is for sequences: add --task sequential".into(),
            ));
        }
        _ => interactions::train(&a, config, catalog.as_ref())?,
    };
    if let Some(out) = &a.out {
        model.save(out)?;
    }
    report(&a, &model, evaluation.as_ref())
}

/// Prints the training figures, the evaluation on the test data, and where the model went.
fn report(a: &Args, model: &Artifact, evaluation: Option<&Evaluation>) -> towers::Result<()> {
    if a.json {
        let mut v = serde_json::to_value(&model.summary).map_err(Error::internal)?;
        if let Some(obj) = v.as_object_mut() {
            obj.insert("max_rss_mb".into(), serde_json::json!(crate::common::max_rss_mb()));
            if let Some(e) = evaluation {
                obj.insert("test".into(), serde_json::to_value(e).map_err(Error::internal)?);
            }
        }
        return print_json(&v);
    }
    for e in &model.history.epochs {
        let val = e
            .validation
            .map(|m| format!("  test top-10 {:.4} top-100 {:.4} MRR@20 {:.4}", m.top_10, m.top_100, m.mrr_20))
            .unwrap_or_default();
        println!("epoch {:>3}  loss {:>12.4}  {:>7.3} s{val}", e.epoch, e.loss, e.seconds);
    }
    let s = &model.summary;
    println!(
        "trained on {} examples in {:.2} s ({:.0} examples/s; peak memory {:.0} MB)",
        s.n_train,
        s.train_s,
        s.examples_per_s,
        crate::common::max_rss_mb()
    );
    if let Some(e) = evaluation {
        print_evaluation(e);
    }
    if let Some(out) = &a.out {
        println!("model written to {} (training curve: history.svg)", out.display());
    }
    Ok(())
}
