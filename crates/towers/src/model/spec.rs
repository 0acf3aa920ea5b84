//! The one taxonomy of model kinds: [`ModelSpec`] names a kind with its settings, and is what a
//! model directory's manifest records; [`ModelKind`] is its list of names (derived from it).

use super::{FeatureConfig, MultitaskSpec, RankingSpec, SequenceConfig};
use crate::{Error, Result};
use serde::{Deserialize, Serialize};
use strum::EnumDiscriminants;

/// A named set of defaults for the settings a user leaves unset.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[cfg_attr(feature = "clap", derive(clap::ValueEnum))]
#[serde(rename_all = "snake_case")]
pub enum Recipe {
    /// towers' defaults, chosen by experiment (see the book's experiments).
    #[default]
    Towers,
    /// TensorFlow Recommenders' tutorial settings.
    Tfrs,
}

/// A model kind and its settings. Adding a kind means a variant here and a module of its own
/// under `model/` (its towers, and their tensors), `train/` (its loop) — see ARCHITECTURE.md.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, EnumDiscriminants)]
#[serde(tag = "kind", rename_all = "snake_case")]
#[strum_discriminants(name(ModelKind), derive(Serialize, Deserialize, strum::Display, strum::EnumString))]
#[strum_discriminants(serde(rename_all = "snake_case"), strum(serialize_all = "snake_case"))]
#[strum_discriminants(doc = "The names of the model kinds (the variants of [`ModelSpec`], without their settings).")]
#[cfg_attr(feature = "clap", strum_discriminants(derive(clap::ValueEnum)))]
pub enum ModelSpec {
    /// User id → item: two towers of id embeddings, trained with an in-batch softmax
    /// (implicit feedback).
    Retrieval,
    /// Explicit feedback: two towers of id embeddings whose dot product predicts the rating
    /// scaled to `[0, 1]` (mean squared error).
    Rating,
    /// (user, item) → score: user and item embeddings, attribute features and (in a pipeline)
    /// context features concatenated, then an MLP (TFRS's basic ranking) or a deep & cross
    /// network (TFRS's DCN); trained on ratings (squared error, pairwise or listwise losses) or,
    /// in a pipeline, on implicit feedback; re-scores the candidates a retrieval model found.
    Ranking(RankingSpec),
    /// Retrieval and rating in one model (TFRS's multitask tutorial): shared user and item
    /// embeddings, the in-batch softmax on their dot product and a rating from dense layers on
    /// their concatenation, each loss weighted.
    Multitask(MultitaskSpec),
    /// Feature towers: each tower concatenates an id embedding, attribute features and (query
    /// side) the time, then dense layers; trained like retrieval.
    Features(FeatureConfig),
    /// Item history → next item: a GRU over the last items (the query tower) and an item
    /// embedding (the candidate tower), trained like retrieval.
    Sequential(SequenceConfig),
}

impl ModelSpec {
    /// The kind's settings with `recipe`'s defaults (a feature model: ids only, as
    /// [`FeatureConfig::default`]).
    pub fn defaults(kind: ModelKind, recipe: Recipe) -> Self {
        match kind {
            ModelKind::Retrieval => ModelSpec::Retrieval,
            ModelKind::Rating => ModelSpec::Rating,
            ModelKind::Ranking => ModelSpec::Ranking(RankingSpec::default()),
            ModelKind::Multitask => ModelSpec::Multitask(MultitaskSpec::default()),
            ModelKind::Features => ModelSpec::Features(FeatureConfig::default()),
            ModelKind::Sequential => ModelSpec::Sequential(match recipe {
                Recipe::Towers => SequenceConfig::default(),
                Recipe::Tfrs => SequenceConfig::tfrs(),
            }),
        }
    }

    /// The kind.
    pub fn kind(&self) -> ModelKind {
        self.into()
    }

    /// Checks the settings, with a message naming the bad one.
    pub fn validate(&self) -> Result<()> {
        match self {
            ModelSpec::Retrieval | ModelSpec::Rating => Ok(()),
            ModelSpec::Ranking(r) => r.validate(),
            ModelSpec::Multitask(m) => m.validate(),
            ModelSpec::Features(f) => f.validate(),
            ModelSpec::Sequential(s) => s.validate(),
        }
    }

    /// The embedding width this spec fixes itself (feature towers: their last layer), if any;
    /// otherwise the training configuration's `dim` holds.
    pub fn dim(&self) -> Option<usize> {
        match self {
            ModelSpec::Features(f) => Some(f.dim()),
            _ => None,
        }
    }

    /// Dense layer widths, for the kinds that have them (`--layers`).
    pub fn set_layers(&mut self, layers: Vec<usize>) -> Result<()> {
        match self {
            ModelSpec::Ranking(r) => r.layers = layers,
            ModelSpec::Multitask(m) => m.layers = layers,
            ModelSpec::Features(f) => f.layers = layers,
            other => {
                return Err(Error::Config(format!(
                    "`layers` is for ranking, multitask and feature models, not {}",
                    other.kind()
                )));
            }
        }
        Ok(())
    }
}

/// What `towers train --task` trains: a model of one kind, or a pipeline (a retriever, a
/// ranker and post-ranking rules, see [`crate::recommend::Pipeline`]). Its names are the model
/// kinds' and `pipeline`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub enum Task {
    /// One model.
    Model(ModelKind),
    /// A retriever and a ranker in one directory.
    Pipeline,
}

impl std::fmt::Display for Task {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Task::Model(k) => k.fmt(f),
            Task::Pipeline => f.write_str("pipeline"),
        }
    }
}

impl std::str::FromStr for Task {
    type Err = Error;

    fn from_str(s: &str) -> Result<Self> {
        match s {
            "pipeline" => Ok(Task::Pipeline),
            _ => s.parse::<ModelKind>().map(Task::Model).map_err(|_| Error::Config(format!("unknown task '{s}'"))),
        }
    }
}

impl TryFrom<String> for Task {
    type Error = Error;
    fn try_from(s: String) -> Result<Self> {
        s.parse()
    }
}

impl From<Task> for String {
    fn from(t: Task) -> String {
        t.to_string()
    }
}

#[cfg(feature = "clap")]
impl clap::ValueEnum for Task {
    fn value_variants<'a>() -> &'a [Self] {
        static ALL: std::sync::LazyLock<Vec<Task>> = std::sync::LazyLock::new(|| {
            <ModelKind as clap::ValueEnum>::value_variants()
                .iter()
                .map(|&k| Task::Model(k))
                .chain([Task::Pipeline])
                .collect()
        });
        &ALL
    }

    fn to_possible_value(&self) -> Option<clap::builder::PossibleValue> {
        match self {
            Task::Model(k) => clap::ValueEnum::to_possible_value(k),
            Task::Pipeline => Some(clap::builder::PossibleValue::new("pipeline")),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn manifest_form_and_kind_names() {
        let s = ModelSpec::Ranking(RankingSpec::mlp(vec![8, 4]));
        assert_eq!(serde_json::to_string(&s).unwrap(), r#"{"kind":"ranking","layers":[8,4]}"#);
        assert_eq!(serde_json::from_str::<ModelSpec>(r#"{"kind":"rating"}"#).unwrap(), ModelSpec::Rating);
        assert_eq!(s.kind().to_string(), "ranking");
        assert_eq!("sequential".parse::<ModelKind>().unwrap(), ModelKind::Sequential);
        let seq = ModelSpec::defaults(ModelKind::Sequential, Recipe::Tfrs);
        let back: ModelSpec = serde_json::from_str(&serde_json::to_string(&seq).unwrap()).unwrap();
        assert_eq!(back, seq);
        assert_eq!("pipeline".parse::<Task>().unwrap(), Task::Pipeline);
        assert_eq!("multitask".parse::<Task>().unwrap().to_string(), "multitask");
        assert!("nope".parse::<Task>().is_err());
    }
}
