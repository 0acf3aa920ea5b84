//! [`TrainOptions`]: the options of a training run as a user names them — the flags of
//! `towers train` and the keyword arguments of the Python package's `train` — and the model
//! spec, training configuration and feature data they give. One place, so that both front
//! ends take the same options with the same meaning.

use super::{PipelineConfig, Trainer};
use crate::config::{OptimizerConfig, OptimizerKind, TrainConfig};
use crate::data::features::AttributeTable;
use crate::data::movielens::MovieLens;
use crate::data::text::read_toml;
use crate::data::{CandidateKey, InputFormat};
use crate::kernels::softmax::Precision;
use crate::model::{
    Encoder, FeatureConfig, ModelKind, ModelSpec, Normalization, RankerKind, RankingSpec, Recipe, SequenceConfig,
    Structure, Task,
};
use crate::task::{RankingLoss, Reduction};
use crate::{Error, Result};
use serde::{Deserialize, Serialize};
use std::path::{Path, PathBuf};

/// The options of a training run. Unset options take the value of `config` (a TOML file), else
/// of the recipe: `recipe`, or `tfrs` when `optimizer` is `adagrad`, else `towers` (see the
/// book's retrieval guide). Field names are the CLI's flags with `_` for `-`; deserialising rejects
/// unknown names.
///
/// ```
/// use towers::TrainOptions;
/// let o: TrainOptions = serde_json::from_value(serde_json::json!({"task": "ranking", "epochs": 3}))?;
/// let trainer = o.trainer(None)?; // a ranking model's trainer, the recipe's defaults but 3 epochs
/// assert!(serde_json::from_value::<TrainOptions>(serde_json::json!({"epoch": 3})).is_err());
/// # let _ = trainer;
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "clap", derive(clap::Args))]
#[serde(default, deny_unknown_fields)]
pub struct TrainOptions {
    /// What the model is (with --features, retrieval trains a feature model); `pipeline`: a
    /// retriever, a ranker on its hard negatives and post-ranking rules in one directory.
    #[cfg_attr(feature = "clap", arg(long, value_enum, default_value = "retrieval"))]
    pub task: Task,
    /// Ranking: the network, an MLP or a deep & cross network (DCN-v2).
    #[cfg_attr(feature = "clap", arg(long, value_enum))]
    pub ranker: Option<RankerKind>,
    /// DCN: number of cross layers (default 1).
    #[cfg_attr(feature = "clap", arg(long))]
    pub cross_layers: Option<usize>,
    /// DCN: low-rank cross matrices of this rank (TFRS projection_dim; default: full rank).
    #[cfg_attr(feature = "clap", arg(long))]
    pub projection_dim: Option<usize>,
    /// DCN: the dense layers after the cross layers (stacked) or beside them (parallel).
    #[cfg_attr(feature = "clap", arg(long, value_enum))]
    pub structure: Option<Structure>,
    /// Ranking: the loss: mse (pointwise), hinge or logistic (pairwise), listmle or approx-ndcg
    /// (listwise, over lists of each user's rated items).
    #[cfg_attr(feature = "clap", arg(long, value_enum))]
    pub loss: Option<RankingLoss>,
    /// Ranking with a pairwise or listwise loss: items per list (default: 10 pairwise, 5
    /// ListMLE, 50 ApproxNDCG).
    #[cfg_attr(feature = "clap", arg(long))]
    pub list_size: Option<usize>,
    /// Multitask: weight of the retrieval loss (default 1).
    #[cfg_attr(feature = "clap", arg(long))]
    pub retrieval_weight: Option<f32>,
    /// Multitask: weight of the rating loss (default 1).
    #[cfg_attr(feature = "clap", arg(long))]
    pub rating_weight: Option<f32>,
    /// Pipeline: candidates the retriever hands to the ranker (default 100).
    #[cfg_attr(feature = "clap", arg(long))]
    pub retrieve: Option<usize>,
    /// Pipeline: the diversity (MMR λ in [0, 1]) served by default (default 0).
    #[cfg_attr(feature = "clap", arg(long))]
    pub diversity: Option<f32>,
    /// Layout of --train (and --test): interactions (with --task sequential: per-user histories in
    /// time order), or sessions / examples / gru4rec / retailrocket-events for --task sequential.
    #[cfg_attr(feature = "clap", arg(long, value_enum, default_value = "interactions"))]
    pub train_format: InputFormat,
    /// Sequential: items of history the encoder reads (default: 10 for gru, 30 for sasrec).
    #[cfg_attr(feature = "clap", arg(long))]
    pub steps: Option<usize>,
    /// Sequential: one item table for the history and the candidates: true or false
    /// (default: true, false with the tfrs recipe).
    #[cfg_attr(feature = "clap", arg(long))]
    pub share_embeddings: Option<bool>,
    /// Sequential: add the last item's embedding to the GRU's state: true or false
    /// (default: true, false with the tfrs recipe).
    #[cfg_attr(feature = "clap", arg(long))]
    pub add_last_item: Option<bool>,
    /// Sequential: a dense dim → dim projection of the GRU's state: true or false (default false).
    #[cfg_attr(feature = "clap", arg(long))]
    pub projection: Option<bool>,
    /// Sequential: extra shared negatives per batch, sampled by training popularity
    /// (logQ-corrected with --logq true; default 0).
    #[cfg_attr(feature = "clap", arg(long))]
    pub sampled_negatives: Option<usize>,
    /// Sequential: the history encoder, gru (TFRS's) or sasrec (self-attention, trained on every
    /// position; default gru).
    #[cfg_attr(feature = "clap", arg(long, value_enum))]
    pub encoder: Option<Encoder>,
    /// Sequential, sasrec: self-attention blocks (default 2).
    #[cfg_attr(feature = "clap", arg(long))]
    pub blocks: Option<usize>,
    /// Sequential, sasrec: attention heads (default 1).
    #[cfg_attr(feature = "clap", arg(long))]
    pub heads: Option<usize>,
    /// Sequential, sasrec: dropout rate (default 0.2).
    #[cfg_attr(feature = "clap", arg(long))]
    pub dropout: Option<f32>,
    /// Sequential, sasrec: gBCE over this many sampled negatives per position (default: off).
    #[cfg_attr(feature = "clap", arg(long))]
    pub gbce_negatives: Option<usize>,
    /// A TOML file with a training configuration (keys as in the manifest's "config").
    #[cfg_attr(feature = "clap", arg(long, conflicts_with = "recipe"))]
    pub config: Option<PathBuf>,
    /// The settings every unset option takes (per task). Default: tfrs with --optimizer adagrad, else towers.
    #[cfg_attr(feature = "clap", arg(long, value_enum))]
    pub recipe: Option<Recipe>,
    /// Key candidates by item id or by title (TFRS's tutorial keys by title).
    #[cfg_attr(feature = "clap", arg(long, value_enum))]
    pub key: Option<CandidateKey>,
    /// Embedding width.
    #[cfg_attr(feature = "clap", arg(long))]
    pub dim: Option<usize>,
    /// Optimizer.
    #[cfg_attr(feature = "clap", arg(long, value_enum))]
    pub optimizer: Option<OptimizerKind>,
    /// Learning rate.
    #[cfg_attr(feature = "clap", arg(long))]
    pub lr: Option<f32>,
    /// Batch size (in-batch negatives per example + 1; sasrec: target positions per batch, at
    /// most the catalogue's size rounded up to a power of two, and at least 4096).
    #[cfg_attr(feature = "clap", arg(long))]
    pub batch_size: Option<usize>,
    /// Epochs.
    #[cfg_attr(feature = "clap", arg(long))]
    pub epochs: Option<usize>,
    /// Seed of initialisation and shuffling.
    #[cfg_attr(feature = "clap", arg(long))]
    pub seed: Option<u64>,
    /// Softmax temperature.
    #[cfg_attr(feature = "clap", arg(long))]
    pub temperature: Option<f32>,
    /// logQ correction of in-batch negatives: true or false.
    #[cfg_attr(feature = "clap", arg(long))]
    pub logq: Option<bool>,
    /// Remove accidental hits (repeats of the positive among the negatives): true or false.
    #[cfg_attr(feature = "clap", arg(long))]
    pub remove_accidental_hits: Option<bool>,
    /// Hard-negative mining: each example's softmax keeps only the N best-scoring in-batch negatives.
    #[cfg_attr(feature = "clap", arg(long))]
    pub hard_negatives: Option<usize>,
    /// L2 regularisation of the embeddings (per example).
    #[cfg_attr(feature = "clap", arg(long))]
    pub l2: Option<f32>,
    /// Ranking: average the parameters over the last N epochs (stochastic weight averaging;
    /// 0: keep the last epoch's).
    #[cfg_attr(feature = "clap", arg(long))]
    pub average_last: Option<usize>,
    /// Normalisation of both towers' outputs.
    #[cfg_attr(feature = "clap", arg(long, value_enum))]
    pub normalize: Option<Normalization>,
    /// Features beyond ids: `movielens` (user age, gender, occupation, zip prefix, time; movie
    /// genres, year, title words; see --movielens-dir) or a TOML feature configuration.
    #[cfg_attr(feature = "clap", arg(long))]
    pub features: Option<String>,
    /// MovieLens 100K directory (u.user, u.item) for --features movielens (default: found under ../shared/data).
    #[cfg_attr(feature = "clap", arg(long))]
    pub movielens_dir: Option<PathBuf>,
    /// Widths of the dense layers (ranking model: after the concatenated embeddings; feature
    /// model: after each tower's concatenation), e.g. 256,64.
    #[cfg_attr(feature = "clap", arg(long, value_delimiter = ','))]
    pub layers: Option<Vec<usize>>,
    /// Sum or mean the batch's losses.
    #[cfg_attr(feature = "clap", arg(long, value_enum))]
    pub reduction: Option<Reduction>,
    /// Arithmetic of the in-batch softmax's products: bf16 operands with f32 sums (where the
    /// CPU has avx512_bf16; f32 elsewhere) or f32 throughout.
    #[cfg_attr(feature = "clap", arg(long, value_enum))]
    pub precision: Option<Precision>,
}

impl Default for TrainOptions {
    /// Nothing set: a retrieval model on an interaction table, with the recipe's settings.
    fn default() -> Self {
        TrainOptions {
            task: Task::Model(ModelKind::Retrieval),
            ranker: None,
            cross_layers: None,
            projection_dim: None,
            structure: None,
            loss: None,
            list_size: None,
            retrieval_weight: None,
            rating_weight: None,
            retrieve: None,
            diversity: None,
            train_format: InputFormat::Interactions,
            steps: None,
            share_embeddings: None,
            add_last_item: None,
            projection: None,
            sampled_negatives: None,
            encoder: None,
            blocks: None,
            heads: None,
            dropout: None,
            gbce_negatives: None,
            config: None,
            recipe: None,
            key: None,
            dim: None,
            optimizer: None,
            lr: None,
            batch_size: None,
            epochs: None,
            seed: None,
            temperature: None,
            logq: None,
            remove_accidental_hits: None,
            hard_negatives: None,
            l2: None,
            average_last: None,
            normalize: None,
            features: None,
            movielens_dir: None,
            layers: None,
            reduction: None,
            precision: None,
        }
    }
}

/// The feature configuration of a feature model and the attribute tables its towers read.
#[derive(Debug, Clone)]
pub struct FeatureData {
    /// The towers' features and layers.
    pub config: FeatureConfig,
    /// User attributes (query tower).
    pub users: Option<AttributeTable>,
    /// Item attributes (candidate tower).
    pub items: Option<AttributeTable>,
}

fn set<T>(slot: &mut T, v: Option<T>) {
    if let Some(v) = v {
        *slot = v;
    }
}

impl TrainOptions {
    /// The trainer these options describe — one model kind, or a pipeline — with the feature
    /// data given (`features`, from [`TrainOptions::read_features`]) wired in; every option
    /// checked here, once.
    pub fn trainer<'a>(&self, features: Option<&'a FeatureData>) -> Result<Trainer<'a>> {
        let mut trainer = match self.task {
            Task::Pipeline => {
                self.check_task_options()?;
                let t = Trainer::pipeline(self.pipeline_config()?);
                // a pipeline reads the items' attributes (its ranker's affinities, post-ranking)
                return Ok(match features {
                    Some(FeatureData { config, items: Some(items), .. }) => {
                        t.feature_config(config).item_attributes(items)
                    }
                    _ => t,
                });
            }
            Task::Model(_) => Trainer::new(self.spec(features.map(|f| f.config.clone()))?).config(self.config()?),
        };
        if let Some(f) = features {
            if let Some(u) = &f.users {
                trainer = trainer.user_attributes(u);
            }
            if let Some(i) = &f.items {
                trainer = trainer.item_attributes(i);
            }
        }
        Ok(trainer)
    }

    /// Whether the training data are item sequences (a sequential model) rather than an
    /// interaction table.
    pub fn reads_sequences(&self) -> bool {
        self.task == Task::Model(ModelKind::Sequential)
    }

    /// The recipe: `recipe`, else `tfrs` when `optimizer` is `adagrad`, else `towers`.
    pub fn recipe(&self) -> Recipe {
        match (self.recipe, self.optimizer) {
            (Some(r), _) => r,
            (None, Some(OptimizerKind::Adagrad)) => Recipe::Tfrs,
            _ => Recipe::Towers,
        }
    }

    /// The model kind: `task`, a feature model when `features` is given (a ranking model with
    /// `features` reads them too).
    pub fn kind(&self) -> Result<ModelKind> {
        let Task::Model(task) = self.task else {
            return Err(Error::Config("`task` pipeline trains two models: it has no one model kind".into()));
        };
        match (task, &self.features) {
            (ModelKind::Retrieval | ModelKind::Features, Some(_)) => Ok(ModelKind::Features),
            (ModelKind::Features, None) => Err(Error::Config("`task` features needs `features`".into())),
            (ModelKind::Ranking, Some(_)) => Ok(ModelKind::Ranking),
            (_, Some(_)) => Err(Error::Config("`features` is for `task` retrieval, ranking and pipeline".into())),
            (kind, None) => Ok(kind),
        }
    }

    /// Options that only some tasks read, given to another: an error naming the option.
    pub fn check_task_options(&self) -> Result<()> {
        let kind = match self.task {
            Task::Pipeline => None,
            Task::Model(_) => Some(self.kind()?),
        };
        let ranking = [
            ("ranker", self.ranker.is_some()),
            ("cross_layers", self.cross_layers.is_some()),
            ("projection_dim", self.projection_dim.is_some()),
            ("structure", self.structure.is_some()),
            ("loss", self.loss.is_some()),
            ("list_size", self.list_size.is_some()),
            ("average_last", self.average_last.is_some()),
        ];
        let multitask =
            [("retrieval_weight", self.retrieval_weight.is_some()), ("rating_weight", self.rating_weight.is_some())];
        for (group, task, options) in
            [("ranking", ModelKind::Ranking, &ranking[..]), ("multitask", ModelKind::Multitask, &multitask[..])]
        {
            if let Some((name, _)) = options.iter().find(|o| o.1).filter(|_| kind != Some(task)) {
                return Err(Error::Config(format!("`{name}` is for `task` {group}")));
            }
        }
        let pipeline = [("retrieve", self.retrieve.is_some()), ("diversity", self.diversity.is_some())];
        if let Some((name, _)) = pipeline.iter().find(|o| o.1).filter(|_| kind.is_some()) {
            return Err(Error::Config(format!("`{name}` is for `task` pipeline")));
        }
        let attention = [
            ("blocks", self.blocks.is_some()),
            ("heads", self.heads.is_some()),
            ("dropout", self.dropout.is_some()),
            ("gbce_negatives", self.gbce_negatives.is_some()),
        ];
        if let Some((name, _)) = attention.iter().find(|o| o.1).filter(|_| self.encoder != Some(Encoder::Sasrec)) {
            return Err(Error::Config(format!("`{name}` is for `encoder` sasrec")));
        }
        if self.encoder.is_some() && kind != Some(ModelKind::Sequential) {
            return Err(Error::Config("`encoder` is for `task` sequential".into()));
        }
        let dcn = self.cross_layers.is_some() || self.projection_dim.is_some() || self.structure.is_some();
        if dcn && self.ranker != Some(RankerKind::Dcn) {
            return Err(Error::Config("`cross_layers`, `projection_dim` and `structure` are for `ranker` dcn".into()));
        }
        Ok(())
    }

    /// The model's kind and settings: the recipe's, then the options given; `features` is the
    /// feature configuration of a feature or ranking model ([`TrainOptions::read_features`]).
    pub fn spec(&self, features: Option<FeatureConfig>) -> Result<ModelSpec> {
        self.check_task_options()?;
        let mut spec = match features {
            Some(f) if self.kind()? == ModelKind::Ranking => {
                ModelSpec::Ranking(RankingSpec { features: Some(f.attributes_only()), ..RankingSpec::default() })
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
            if self.list_size.is_some() {
                r.list_size = self.list_size;
            }
        }
        if let ModelSpec::Multitask(m) = &mut spec {
            set(&mut m.retrieval_weight, self.retrieval_weight);
            set(&mut m.rating_weight, self.rating_weight);
        }
        if let ModelSpec::Sequential(s) = &mut spec {
            if self.encoder == Some(Encoder::Sasrec) {
                *s = SequenceConfig::sasrec();
            }
            *s = SequenceConfig { format: self.train_format, steps: self.steps.unwrap_or(s.steps), ..*s };
            set(&mut s.share_embeddings, self.share_embeddings);
            set(&mut s.add_last_item, self.add_last_item);
            set(&mut s.projection, self.projection);
            set(&mut s.sampled_negatives, self.sampled_negatives);
            set(&mut s.attention.blocks, self.blocks);
            set(&mut s.attention.heads, self.heads);
            set(&mut s.attention.dropout, self.dropout);
            set(&mut s.attention.gbce_negatives, self.gbce_negatives);
        }
        if let Some(l) = &self.layers {
            spec.set_layers(l.clone())?;
        }
        Ok(spec)
    }

    /// The configuration: `config` or the recipe's defaults for the spec ([`TrainConfig::for_spec`]),
    /// then every option given.
    pub fn config(&self) -> Result<TrainConfig> {
        let mut c: TrainConfig = match &self.config {
            Some(p) => read_toml(p)?,
            None => {
                // only the kind, the loss and the encoder matter here (the rest of the spec is checked by `spec`)
                let mut spec = ModelSpec::defaults(self.kind()?, self.recipe());
                if let ModelSpec::Ranking(r) = &mut spec {
                    set(&mut r.loss, self.loss);
                }
                if let ModelSpec::Sequential(s) = &mut spec {
                    set(&mut s.encoder, self.encoder);
                }
                TrainConfig::for_spec(&spec, self.recipe())
            }
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
        if let Some(n) = self.average_last {
            c.average_last = (n > 0).then_some(n);
        }
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

    /// The configuration of `--task pipeline`: `config` (a TOML [`PipelineConfig`]) or the
    /// defaults, then `seed`, `retrieve` and `diversity`. The single models' options (`dim`,
    /// `lr`, …) are errors: a pipeline takes its models' settings from `config`.
    pub fn pipeline_config(&self) -> Result<PipelineConfig> {
        let mut c: PipelineConfig = match &self.config {
            Some(p) => read_toml(p)?,
            None => PipelineConfig::default(),
        };
        // every option `config` and `spec` apply to one model, but the seed
        let other = [
            ("dim", self.dim.is_some()),
            ("lr", self.lr.is_some()),
            ("epochs", self.epochs.is_some()),
            ("batch_size", self.batch_size.is_some()),
            ("optimizer", self.optimizer.is_some()),
            ("layers", self.layers.is_some()),
            ("recipe", self.recipe.is_some()),
            ("key", self.key.is_some()),
            ("normalize", self.normalize.is_some()),
            ("reduction", self.reduction.is_some()),
            ("precision", self.precision.is_some()),
            ("l2", self.l2.is_some()),
            ("average_last", self.average_last.is_some()),
            ("temperature", self.temperature.is_some()),
            ("logq", self.logq.is_some()),
            ("remove_accidental_hits", self.remove_accidental_hits.is_some()),
            ("hard_negatives", self.hard_negatives.is_some()),
        ];
        if let Some((name, _)) = other.iter().find(|o| o.1) {
            return Err(not_for_pipelines(name));
        }
        if let Some(s) = self.seed {
            c.retriever.seed = s;
            c.ranker.seed = s;
        }
        set(&mut c.retrieve, self.retrieve);
        set(&mut c.post.diversity, self.diversity);
        c.validate()?;
        Ok(c)
    }

    /// The feature data `features` names, if any: `movielens` (read from `movielens_dir`, else
    /// from `default_movielens`) or a TOML feature configuration and the tables it names.
    pub fn read_features(&self, default_movielens: Option<PathBuf>) -> Result<Option<FeatureData>> {
        let Some(name) = &self.features else { return Ok(None) };
        if name == "movielens" {
            let dir = self.movielens_dir.clone().or(default_movielens).ok_or_else(|| {
                Error::Config("`features` movielens needs `movielens_dir` (the folder with u.user and u.item)".into())
            })?;
            if !is_movielens(&dir) {
                return Err(Error::Config(format!("{}: no u.user and u.item here (`movielens_dir`)", dir.display())));
            }
            let ml = MovieLens::load(&dir)?;
            return Ok(Some(FeatureData {
                config: FeatureConfig::movielens(),
                users: Some(AttributeTable::movielens_users(&ml)),
                items: Some(AttributeTable::movielens_items(&ml)),
            }));
        }
        let config = FeatureConfig::load(name)?;
        let users = config.query.table.as_ref().map(AttributeTable::read).transpose()?;
        let items = config.candidate.table.as_ref().map(AttributeTable::read).transpose()?;
        Ok(Some(FeatureData { config, users, items }))
    }
}

fn is_movielens(dir: &Path) -> bool {
    dir.join("u.user").is_file() && dir.join("u.item").is_file()
}

/// The error for a single model's option (`dim`, `lr`, …) given to a pipeline.
fn not_for_pipelines(option: &str) -> Error {
    Error::Config(format!(
        "`{option}`: `task` pipeline takes its models' settings from `config` (a TOML file with [retriever] and \
         [ranker] tables, see the book's configuration reference)"
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_and_values_as_the_cli_gives_them() {
        let o: TrainOptions = serde_json::from_str(
            r#"{"task": "sequential", "train_format": "retailrocket-events", "optimizer": "adagrad", "epochs": 2,
                "normalize": "batch-norm", "layers": [8]}"#,
        )
        .unwrap();
        assert_eq!(
            (o.task, o.train_format, o.recipe()),
            (Task::Model(ModelKind::Sequential), InputFormat::RetailrocketEvents, Recipe::Tfrs)
        );
        assert_eq!(o.normalize, Some(Normalization::BatchNorm));
        assert_eq!(o.config().unwrap().epochs, 2);
        assert!(o.spec(None).is_err(), "layers are not for sequential models");
        let e = serde_json::from_str::<TrainOptions>(r#"{"epoch": 2}"#).unwrap_err().to_string();
        assert!(e.contains("unknown field `epoch`") && e.contains("epochs"), "{e}");
        let d = TrainOptions::default();
        assert_eq!((d.kind().unwrap(), d.config().unwrap()), (ModelKind::Retrieval, TrainConfig::default()));
        let f = TrainOptions { task: Task::Model(ModelKind::Features), ..Default::default() };
        assert!(f.kind().is_err() && f.read_features(None).unwrap().is_none());
    }

    #[test]
    fn weight_averaging_and_list_sizes() {
        let ranking = |json: &str| serde_json::from_str::<TrainOptions>(json).unwrap();
        let r = ranking(r#"{"task": "ranking"}"#);
        assert_eq!((r.config().unwrap().epochs, r.config().unwrap().average_last), (8, Some(5)));
        assert_eq!(ranking(r#"{"task": "ranking", "average_last": 0}"#).config().unwrap().average_last, None);
        let bad = TrainConfig { average_last: Some(0), ..TrainConfig::default() };
        assert!(bad.validate().unwrap_err().to_string().contains("average_last must be at least 1"));
        let e = ranking(r#"{"average_last": 3}"#).spec(None).unwrap_err().to_string();
        assert!(e.contains("`average_last` is for `task` ranking"), "{e}");
        let rows =
            [("a", "1"), ("b", "2")].map(|(q, c)| crate::data::Row { query: q, candidate: c, ..Default::default() });
        let t = crate::data::Interactions::from_rows(rows).unwrap();
        let averaged = TrainConfig { average_last: Some(3), ..TrainConfig::default() };
        let e = crate::train::Trainer::new(ModelSpec::Retrieval).config(averaged).fit(&t).unwrap_err().to_string();
        assert!(e.contains("average_last is for ranking models, not retrieval"), "{e}");
        let list = |json: &str| match ranking(json).spec(None).unwrap() {
            ModelSpec::Ranking(r) => r.list_size(),
            _ => unreachable!(),
        };
        assert_eq!(list(r#"{"task": "ranking", "loss": "listmle"}"#), 5);
        let epochs = |json: &str| ranking(json).config().unwrap().epochs;
        assert_eq!(epochs(r#"{"task": "ranking", "loss": "listmle"}"#), 7);
        assert_eq!(epochs(r#"{"task": "ranking", "loss": "listmle", "epochs": 3}"#), 3);
        assert_eq!(epochs(r#"{"task": "ranking", "loss": "listmle", "recipe": "tfrs"}"#), TrainConfig::tfrs().epochs);
        assert_eq!(list(r#"{"task": "ranking", "loss": "approx_ndcg"}"#), 50);
        assert_eq!(list(r#"{"task": "ranking", "loss": "hinge", "list_size": 7}"#), 7);
    }

    #[test]
    fn pipeline_options() {
        let o = |json: &str| serde_json::from_str::<TrainOptions>(json).unwrap();
        let c = o(r#"{"task": "pipeline", "seed": 7, "retrieve": 50, "diversity": 0.2}"#).pipeline_config().unwrap();
        assert_eq!((c.retriever.seed, c.ranker.seed, c.retrieve, c.post.diversity), (7, 7, 50, 0.2));
        let e = o(r#"{"task": "pipeline", "epochs": 2}"#).pipeline_config().unwrap_err().to_string();
        assert!(e.contains("`epochs`: `task` pipeline takes its models' settings from `config`"), "{e}");
        let e = o(r#"{"task": "pipeline", "l2": 0.5}"#).pipeline_config().unwrap_err().to_string();
        assert!(e.contains("`l2`: `task` pipeline takes"), "{e}");
        let e = o(r#"{"task": "pipeline", "diversity": 2}"#).pipeline_config().unwrap_err().to_string();
        assert!(e.contains("diversity must be in [0, 1]"), "{e}");
    }
}
