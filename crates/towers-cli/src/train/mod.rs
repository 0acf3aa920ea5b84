//! `towers train`: the options, the model spec and training configuration they give, and the
//! runner for each kind of training data.

mod interactions;
mod pipeline;
mod sequences;

use crate::common::{TableArgs, print_evaluation, print_json};
use clap::Args as ClapArgs;
use std::path::PathBuf;
use towers::config::{OptimizerConfig, OptimizerKind};
use towers::data::{CandidateKey, Catalog, InputFormat};
use towers::model::{FeatureConfig, Normalization, RankerKind, SequenceConfig, Structure};
use towers::task::{RankingLoss, Reduction};
use towers::{Artifact, Error, Evaluation, ModelKind, ModelSpec, Recipe, Task, TrainConfig};

/// Options of `towers train`. Unset options take the value of `--config`, else of the recipe:
/// `--recipe`, or `tfrs` when `--optimizer adagrad` is given, else `towers` (see the README).
#[derive(ClapArgs, Debug)]
pub struct Args {
    /// What the model is (with --features, retrieval trains a feature model); `pipeline`: a
    /// retriever, a ranker on its hard negatives and post-ranking rules in one directory.
    #[arg(long, value_enum, default_value = "retrieval")]
    pub task: Task,
    /// Ranking: the network, an MLP or a deep & cross network (DCN-v2).
    #[arg(long, value_enum)]
    pub ranker: Option<RankerKind>,
    /// DCN: number of cross layers (default 1).
    #[arg(long)]
    pub cross_layers: Option<usize>,
    /// DCN: low-rank cross matrices of this rank (TFRS projection_dim; default: full rank).
    #[arg(long)]
    pub projection_dim: Option<usize>,
    /// DCN: the dense layers after the cross layers (stacked) or beside them (parallel).
    #[arg(long, value_enum)]
    pub structure: Option<Structure>,
    /// Ranking: the loss: mse (pointwise), hinge or logistic (pairwise), listmle or approx-ndcg
    /// (listwise, over lists of each user's rated items).
    #[arg(long, value_enum)]
    pub loss: Option<RankingLoss>,
    /// Ranking with a pairwise or listwise loss: items per list (default 10).
    #[arg(long)]
    pub list_size: Option<usize>,
    /// Multitask: weight of the retrieval loss (default 1).
    #[arg(long)]
    pub retrieval_weight: Option<f32>,
    /// Multitask: weight of the rating loss (default 1).
    #[arg(long)]
    pub rating_weight: Option<f32>,
    /// Pipeline: candidates the retriever hands to the ranker (default 100).
    #[arg(long)]
    pub retrieve: Option<usize>,
    /// Pipeline: the diversity (MMR λ in [0, 1]) served by default (default 0).
    #[arg(long)]
    pub diversity: Option<f32>,
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
        let Task::Model(task) = self.task else {
            return Err(Error::Config("--task pipeline trains two models: it has no one model kind".into()));
        };
        match (task, &self.features) {
            (ModelKind::Retrieval | ModelKind::Features, Some(_)) => Ok(ModelKind::Features),
            (ModelKind::Features, None) => Err(Error::Config("--task features needs --features".into())),
            (ModelKind::Ranking, Some(_)) => Ok(ModelKind::Ranking),
            (_, Some(_)) => Err(Error::Config("--features is for --task retrieval, ranking and pipeline".into())),
            (kind, None) => Ok(kind),
        }
    }

    /// Options that only some tasks read, given to another: an error naming the option.
    fn check_task_options(&self) -> towers::Result<()> {
        let kind = match self.task {
            Task::Pipeline => None,
            Task::Model(_) => Some(self.kind()?),
        };
        let ranking = [
            ("--ranker", self.ranker.is_some()),
            ("--cross-layers", self.cross_layers.is_some()),
            ("--projection-dim", self.projection_dim.is_some()),
            ("--structure", self.structure.is_some()),
            ("--loss", self.loss.is_some()),
            ("--list-size", self.list_size.is_some()),
        ];
        let multitask = [
            ("--retrieval-weight", self.retrieval_weight.is_some()),
            ("--rating-weight", self.rating_weight.is_some()),
        ];
        let pipeline = [("--retrieve", self.retrieve.is_some()), ("--diversity", self.diversity.is_some())];
        for (group, task, options) in
            [("ranking", ModelKind::Ranking, &ranking[..]), ("multitask", ModelKind::Multitask, &multitask[..])]
        {
            if let Some((name, _)) = options.iter().find(|o| o.1).filter(|_| kind != Some(task)) {
                return Err(Error::Config(format!("{name} is for --task {group}")));
            }
        }
        if let Some((name, _)) = pipeline.iter().find(|o| o.1).filter(|_| kind.is_some()) {
            return Err(Error::Config(format!("{name} is for --task pipeline")));
        }
        let dcn = self.cross_layers.is_some() || self.projection_dim.is_some() || self.structure.is_some();
        if dcn && self.ranker != Some(RankerKind::Dcn) {
            return Err(Error::Config("--cross-layers, --projection-dim and --structure are for --ranker dcn".into()));
        }
        Ok(())
    }

    /// The model's kind and settings: the recipe's, then the options given.
    pub fn spec(&self, features: Option<FeatureConfig>) -> towers::Result<ModelSpec> {
        self.check_task_options()?;
        let mut spec = match features {
            Some(f) if self.kind()? == ModelKind::Ranking => {
                let mut s = towers::model::RankingSpec::default();
                s.features = Some(f.attributes_only());
                ModelSpec::Ranking(s)
            }
            Some(f) => ModelSpec::Features(f),
            None => ModelSpec::defaults(self.kind()?, self.recipe()),
        };
        if let ModelSpec::Ranking(r) = &mut spec {
            set(&mut r.ranker, self.ranker);
            set(&mut r.cross.layers, self.cross_layers);
            if self.projection_dim.is_some() {
                r.cross.projection_dim = self.projection_dim;
            }
            set(&mut r.cross.structure, self.structure);
            set(&mut r.loss, self.loss);
            set(&mut r.list_size, self.list_size);
        }
        if let ModelSpec::Multitask(m) = &mut spec {
            set(&mut m.retrieval_weight, self.retrieval_weight);
            set(&mut m.rating_weight, self.rating_weight);
        }
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
    if a.task == Task::Pipeline {
        a.check_task_options()?;
        return pipeline::train(&a);
    }
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
