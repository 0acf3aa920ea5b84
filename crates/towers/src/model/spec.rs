//! The one taxonomy of model kinds: [`ModelSpec`] names a kind with its settings, and is what a
//! model directory's manifest records; [`ModelKind`] is its list of names (derived from it).

use super::{FeatureConfig, RankingSpec, SequenceConfig};
use crate::{Error, Result};
use serde::{Deserialize, Serialize};
use strum::EnumDiscriminants;

/// A named set of defaults for the settings a user leaves unset.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[cfg_attr(feature = "clap", derive(clap::ValueEnum))]
#[serde(rename_all = "snake_case")]
pub enum Recipe {
    /// towers' defaults, chosen by experiment (see the README).
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
    /// (user, item) → rating: user and item embeddings concatenated, then dense layers (TFRS's
    /// basic ranking); re-scores the candidates a retrieval model found.
    Ranking(RankingSpec),
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
            ModelSpec::Features(f) => f.layers = layers,
            other => {
                return Err(Error::Config(format!("--layers is for ranking and feature models, not {}", other.kind())));
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn manifest_form_and_kind_names() {
        let s = ModelSpec::Ranking(RankingSpec { layers: vec![8, 4] });
        assert_eq!(serde_json::to_string(&s).unwrap(), r#"{"kind":"ranking","layers":[8,4]}"#);
        assert_eq!(serde_json::from_str::<ModelSpec>(r#"{"kind":"rating"}"#).unwrap(), ModelSpec::Rating);
        assert_eq!(s.kind().to_string(), "ranking");
        assert_eq!("sequential".parse::<ModelKind>().unwrap(), ModelKind::Sequential);
        let seq = ModelSpec::defaults(ModelKind::Sequential, Recipe::Tfrs);
        let back: ModelSpec = serde_json::from_str(&serde_json::to_string(&seq).unwrap()).unwrap();
        assert_eq!(back, seq);
    }
}
