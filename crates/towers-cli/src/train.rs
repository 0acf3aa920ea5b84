//! `towers train`.

use crate::common::{Report, TableArgs, print_json, read_histories, read_sequences};
use clap::{Args as ClapArgs, ValueEnum};
use std::path::PathBuf;
use towers::data::features::{AttributeTable, FeatureConfig};
use towers::data::movielens::MovieLens;
use towers::data::{CandidateKey, Catalog, Positions, RetailRocketPrep, Split};
use towers::model::Normalization;
use towers::task::Reduction;
use towers::train::{OptimizerConfig, OptimizerKind, Recipe, SequenceConfig, SequenceFormat};
use towers::{Artifact, Error, TrainConfig};

#[derive(Clone, Copy, Debug, ValueEnum)]
pub enum Task {
    /// User → item (two towers of id embeddings).
    Retrieval,
    /// Item history → next item (GRU query tower).
    Sequential,
    /// Explicit feedback: the towers' dot product predicts the rating scaled to [0, 1] (MSE).
    Rating,
    /// Ranking model: user and item embeddings → MLP → rating (MSE); RMSE and NDCG.
    Ranking,
}

#[derive(Clone, Copy, Debug, ValueEnum)]
pub enum TrainFormat {
    /// An interaction table (CSV/TSV): user → item.
    Interactions,
    /// One session per line (sequential).
    Sessions,
    /// `query<TAB>context ids (0 = padding)<TAB>target` per line (sequential).
    Examples,
    /// GRU4Rec's `SessionId<TAB>ItemId<TAB>Time` table (sequential).
    Gru4rec,
    /// RetailRocket's raw events.csv (sequential): GRU4Rec's preprocessing; trains on its
    /// training sessions and, without --test, evaluates on its test sessions (the last 7 days).
    RetailrocketEvents,
}

#[derive(Clone, Copy, Debug, ValueEnum)]
pub enum RecipeArg {
    /// towers' defaults: user → item: Adam 0.01, logQ-corrected in-batch softmax, L2 0.1, dim 32, batch 4096,
    /// 10 epochs; sequential: Adagrad 0.1, logQ, dim 64, 5 epochs, shared embeddings, last-item skip.
    Towers,
    /// TFRS's tutorials: Adagrad 0.1, plain in-batch softmax, dim 32, batch 8192, 3 epochs; a plain GRU.
    Tfrs,
}

#[derive(Clone, Copy, Debug, ValueEnum)]
pub enum Key {
    Id,
    Title,
}

#[derive(Clone, Copy, Debug, ValueEnum)]
pub enum Opt {
    Adagrad,
    Adam,
}

#[derive(Clone, Copy, Debug, ValueEnum)]
pub enum Normalize {
    None,
    L2,
    BatchNorm,
}

#[derive(Clone, Copy, Debug, ValueEnum)]
pub enum Red {
    Sum,
    Mean,
}

/// Options of `towers train`. Unset options take the value of `--config`, else of the recipe:
/// `--recipe`, or `tfrs` when `--optimizer adagrad` is given, else `towers` (see the README).
#[derive(ClapArgs, Debug)]
pub struct Args {
    /// What the model predicts.
    #[arg(long, value_enum, default_value = "retrieval")]
    pub task: Task,
    /// Training data: interactions (CSV/TSV), or sequences for --task sequential.
    #[arg(long)]
    pub train: PathBuf,
    /// Layout of --train (and --test): interactions (with --task sequential: per-user histories in
    /// time order), or sessions / examples / gru4rec / retailrocket-events for --task sequential.
    #[arg(long, value_enum, default_value = "interactions")]
    pub train_format: TrainFormat,
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
    pub recipe: Option<RecipeArg>,
    /// Key candidates by item id or by title (TFRS's tutorial keys by title).
    #[arg(long, value_enum)]
    pub key: Option<Key>,
    /// Embedding width.
    #[arg(long)]
    pub dim: Option<usize>,
    /// Optimizer.
    #[arg(long, value_enum)]
    pub optimizer: Option<Opt>,
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
    pub normalize: Option<Normalize>,
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
    pub reduction: Option<Red>,
    #[command(flatten)]
    pub table: TableArgs,
    /// Print one JSON object with the training figures (and test metrics) as the last line.
    #[arg(long)]
    pub json: bool,
}

impl Args {
    /// The recipe: `--recipe`, else `tfrs` when `--optimizer adagrad` is given, else `towers`.
    fn recipe(&self) -> Recipe {
        match (self.recipe, self.optimizer) {
            (Some(RecipeArg::Tfrs), _) | (None, Some(Opt::Adagrad)) => Recipe::Tfrs,
            _ => Recipe::Towers,
        }
    }

    /// Sequential settings: the recipe's, then the options given.
    fn sequence(&self, format: SequenceFormat) -> SequenceConfig {
        let mut s = match self.recipe() {
            Recipe::Towers => SequenceConfig::default(),
            Recipe::Tfrs => SequenceConfig::tfrs(),
        };
        s.format = format;
        s.steps = self.steps;
        set(&mut s.share_embeddings, self.share_embeddings);
        set(&mut s.add_last_item, self.add_last_item);
        set(&mut s.projection, self.projection);
        set(&mut s.sampled_negatives, self.sampled_negatives);
        s
    }

    /// The configuration: `--config` or the defaults, then every option given.
    pub fn config(&self) -> towers::Result<TrainConfig> {
        let mut c: TrainConfig = match &self.config {
            Some(p) => {
                let text = std::fs::read_to_string(p).map_err(|e| Error::io(p, e))?;
                toml::from_str(&text).map_err(|e| Error::Config(format!("{}: {e}", p.display())))?
            }
            None => match (self.recipe(), self.task) {
                (Recipe::Towers, Task::Sequential) => TrainConfig::sequential(),
                (Recipe::Towers, Task::Rating) => TrainConfig::rating(),
                (Recipe::Towers, Task::Ranking) => TrainConfig::ranking(),
                (recipe, _) => TrainConfig::recipe(recipe),
            },
        };
        c.task = match self.task {
            Task::Rating => towers::task::Task::Rating,
            Task::Ranking => towers::task::Task::Ranking,
            Task::Retrieval | Task::Sequential => towers::task::Task::Retrieval,
        };
        if let Some(l) = &self.layers {
            c.layers = l.clone();
        }
        if let Some(k) = self.key {
            c.key = match k {
                Key::Id => CandidateKey::Id,
                Key::Title => CandidateKey::Title,
            };
        }
        if let Some(o) = self.optimizer {
            let kind = match o {
                Opt::Adagrad => OptimizerKind::Adagrad,
                Opt::Adam => OptimizerKind::Adam,
            };
            if kind != c.optimizer.kind {
                c.optimizer = match kind {
                    OptimizerKind::Adam => OptimizerConfig::default(),
                    OptimizerKind::Adagrad => OptimizerConfig::adagrad(),
                };
            }
        }
        if let Some(n) = self.normalize {
            c.normalization = match n {
                Normalize::None => Normalization::None,
                Normalize::L2 => Normalization::L2,
                Normalize::BatchNorm => Normalization::BatchNorm,
            };
        }
        if let Some(r) = self.reduction {
            c.retrieval.reduction = match r {
                Red::Sum => Reduction::Sum,
                Red::Mean => Reduction::Mean,
            };
        }
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

/// The feature configuration and attribute tables (users, items) named by `--features`.
fn read_features(
    name: &str,
    movielens: Option<PathBuf>,
) -> towers::Result<(FeatureConfig, Option<AttributeTable>, Option<AttributeTable>)> {
    if name == "movielens" {
        let dir = match movielens {
            Some(d) => d,
            None => crate::common::movielens_dir(None).ok_or_else(|| {
                Error::Config("--features movielens needs --movielens-dir (the folder with u.user and u.item)".into())
            })?,
        };
        if !dir.join("u.user").is_file() || !dir.join("u.item").is_file() {
            return Err(Error::Config(format!("{}: no u.user and u.item here (--movielens-dir)", dir.display())));
        }
        let ml = MovieLens::load(&dir)?;
        return Ok((
            FeatureConfig::movielens(),
            Some(AttributeTable::movielens_users(&ml)),
            Some(AttributeTable::movielens_items(&ml)),
        ));
    }
    let config = FeatureConfig::load(name)?;
    let users = config.query.table.as_ref().map(AttributeTable::read).transpose()?;
    let items = config.candidate.table.as_ref().map(AttributeTable::read).transpose()?;
    Ok((config, users, items))
}

fn set<T: Copy>(slot: &mut T, v: Option<T>) {
    if let Some(v) = v {
        *slot = v;
    }
}

pub fn run(a: Args) -> towers::Result<()> {
    let config = a.config()?;
    let catalog = a.items.as_ref().map(Catalog::read).transpose()?;
    let show = !a.json;
    let (model, evaluation) = match a.task {
        Task::Retrieval | Task::Rating | Task::Ranking => {
            if !matches!(a.train_format, TrainFormat::Interactions) {
                return Err(Error::Config(
                    "--train-format other than interactions is for sequences: add --task sequential".into(),
                ));
            }
            let data = a.table.read(&a.train)?;
            let (train, test) = match (&a.split, &a.test) {
                (Some(s), _) => {
                    let (tr, te) = Split::parse(s, config.seed)?.apply(&data)?;
                    (tr, Some(te))
                }
                (None, Some(t)) => (data, Some(a.table.read(t)?)),
                (None, None) => (data, None),
            };
            let model = match &a.features {
                None => Artifact::train(config, &train, catalog.as_ref(), test.as_ref(), show)?,
                Some(f) => {
                    if !matches!(a.task, Task::Retrieval) {
                        return Err(Error::Config("--features is for --task retrieval".into()));
                    }
                    let (mut features, users, items) = read_features(f, a.movielens_dir.clone())?;
                    if let Some(l) = &a.layers {
                        features.layers = l.clone();
                    }
                    Artifact::train_features(
                        config,
                        &features,
                        &train,
                        catalog.as_ref(),
                        users.as_ref(),
                        items.as_ref(),
                        show,
                    )?
                }
            };
            let evaluation = test.as_ref().map(|t| Report::of(&model, t, false)).transpose()?;
            (model, evaluation)
        }
        Task::Sequential => {
            let format = match a.train_format {
                TrainFormat::Interactions => SequenceFormat::Interactions,
                TrainFormat::Sessions => SequenceFormat::Sessions,
                TrainFormat::Examples => SequenceFormat::Examples,
                TrainFormat::Gru4rec => SequenceFormat::Gru4rec,
                TrainFormat::RetailrocketEvents => SequenceFormat::RetailrocketEvents,
            };
            let sequence = a.sequence(format);
            let (train, held_out) = match (format, a.split.as_deref()) {
                (SequenceFormat::Interactions, Some("last")) => {
                    let (train, test) = read_histories(&a.train, &a.table)?.hold_out_last();
                    (train, Some(test))
                }
                (_, Some(_)) => {
                    return Err(Error::Config(
                        "--task sequential splits only an interaction table, with --split last (each user's \
                         last item); otherwise give a test file with --test"
                            .into(),
                    ));
                }
                (SequenceFormat::RetailrocketEvents, None) => {
                    let (train, test) = RetailRocketPrep::default().apply(&a.train)?;
                    (train, Some(test))
                }
                (SequenceFormat::Interactions, None) => (read_histories(&a.train, &a.table)?, None),
                (_, None) => (read_sequences(&a.train, format, &a.table)?, None),
            };
            let test = match &a.test {
                Some(t) => Some(read_sequences(t, format, &a.table)?),
                None => held_out,
            };
            let positions = match format {
                SequenceFormat::Examples => Positions::Last,
                _ => Positions::All,
            };
            let model =
                Artifact::train_sequential(config, sequence, &train, positions, catalog.as_ref(), test.as_ref(), show)?;
            let evaluation = test
                .as_ref()
                .map(|t| model.evaluate_sequences(t, false))
                .transpose()?
                .map(|e| Report::TopK(Box::new(e)));
            (model, evaluation)
        }
    };
    if let Some(out) = &a.out {
        model.save(out)?;
    }
    if a.json {
        let mut v = serde_json::to_value(&model.summary).map_err(|e| Error::Invalid(e.to_string()))?;
        if let (Some(e), Some(obj)) = (&evaluation, v.as_object_mut()) {
            obj.insert("test".into(), serde_json::to_value(e).map_err(|e| Error::Invalid(e.to_string()))?);
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
    println!("trained on {} examples in {:.2} s ({:.0} examples/s)", s.n_train, s.train_s, s.examples_per_s);
    if let Some(e) = &evaluation {
        e.print();
    }
    if let Some(out) = &a.out {
        println!("model written to {} (training curve: history.svg)", out.display());
    }
    Ok(())
}
