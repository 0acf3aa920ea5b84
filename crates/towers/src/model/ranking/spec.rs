//! The settings of a ranking model: its inputs (ids, attribute features, context features of a
//! pipeline), its network (MLP or DCN) and its loss.

use super::context::ContextFeature;
use crate::model::FeatureConfig;
use crate::task::RankingLoss;
use crate::{Error, Result};
use serde::{Deserialize, Serialize};

/// The network of a ranking model.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[cfg_attr(feature = "clap", derive(clap::ValueEnum))]
#[serde(rename_all = "snake_case")]
pub enum RankerKind {
    /// Dense layers (ReLU) on the concatenated inputs (TFRS basic ranking).
    #[default]
    Mlp,
    /// A deep & cross network (DCN-v2): cross layers on the concatenated inputs, with the dense
    /// layers stacked after them or beside them (`cross`).
    Dcn,
}

/// How the cross layers and the dense layers of a DCN are joined.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[cfg_attr(feature = "clap", derive(clap::ValueEnum))]
#[serde(rename_all = "snake_case")]
pub enum Structure {
    /// Cross layers, then the dense layers on their output (TFRS DCN tutorial).
    #[default]
    Stacked,
    /// Cross layers and dense layers side by side on the inputs, their outputs concatenated
    /// into the output layer.
    Parallel,
}

/// The cross layers of a DCN (TFRS `tfrs.layers.dcn.Cross`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct CrossSpec {
    /// Number of cross layers.
    pub layers: usize,
    /// Low-rank cross matrices `U·V` of this rank (TFRS `projection_dim`); none: full rank.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub projection_dim: Option<usize>,
    /// Stacked or parallel with the dense layers.
    pub structure: Structure,
}

impl Default for CrossSpec {
    /// One full-rank cross layer, stacked (the TFRS DCN tutorial's model).
    fn default() -> Self {
        CrossSpec { layers: 1, projection_dim: None, structure: Structure::Stacked }
    }
}

fn is_default<T: Default + PartialEq>(v: &T) -> bool {
    *v == T::default()
}

fn is_true(v: &bool) -> bool {
    *v
}

fn yes() -> bool {
    true
}

/// Settings of a ranking model: what it reads, its network, its loss. The defaults are TFRS's
/// basic ranking: user and item id embeddings, dense 256 → 64 → 1, squared error on ratings.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct RankingSpec {
    /// Dense layer widths (ReLU), before the 1-wide output.
    pub layers: Vec<usize>,
    /// MLP or DCN.
    #[serde(skip_serializing_if = "is_default")]
    pub ranker: RankerKind,
    /// The cross layers (DCN only).
    #[serde(skip_serializing_if = "is_default")]
    pub cross: CrossSpec,
    /// The training loss.
    #[serde(skip_serializing_if = "is_default")]
    pub loss: RankingLoss,
    /// Listwise and pairwise losses on ratings: items per list (each user's rated items,
    /// shuffled and cut into lists of this size every epoch); none: the loss's
    /// [`RankingLoss::default_list_size`].
    #[serde(skip_serializing_if = "Option::is_none")]
    pub list_size: Option<usize>,
    /// User and item id embeddings (width: the configuration's `dim`).
    #[serde(default = "yes", skip_serializing_if = "is_true")]
    pub ids: bool,
    /// Attribute features of users and items (their `features` lists only: ids are `ids`,
    /// and ranking reads no timestamp).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub features: Option<FeatureConfig>,
    /// Features of a candidate in a pipeline: what the retriever and the training data say
    /// about it for this user. A ranker with context is trained and served inside a pipeline.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub context: Vec<ContextFeature>,
}

impl Default for RankingSpec {
    fn default() -> Self {
        RankingSpec {
            layers: vec![256, 64],
            ranker: RankerKind::Mlp,
            cross: CrossSpec::default(),
            loss: RankingLoss::Mse,
            list_size: None,
            ids: true,
            features: None,
            context: Vec::new(),
        }
    }
}

impl RankingSpec {
    /// Items per training list: `list_size`, or the loss's default.
    pub fn list_size(&self) -> usize {
        self.list_size.unwrap_or(self.loss.default_list_size())
    }

    /// TFRS basic ranking's model with these dense layers.
    pub fn mlp(layers: Vec<usize>) -> Self {
        RankingSpec { layers, ..RankingSpec::default() }
    }

    /// The ranker of a pipeline trained on implicit feedback: the context features named, a
    /// linear layer, the softmax loss over each user's candidates (see the book's pipeline guide for how the
    /// features and settings were chosen).
    pub fn implicit(context: Vec<ContextFeature>) -> Self {
        RankingSpec { layers: Vec::new(), loss: RankingLoss::Softmax, ids: false, context, ..RankingSpec::default() }
    }

    /// Checks every value, with a message naming the bad one.
    pub fn validate(&self) -> Result<()> {
        let bad = |m: String| Err(Error::Config(m));
        if let Some(w) = self.layers.iter().find(|&&w| w == 0 || w > 4096) {
            return bad(format!("layer widths must be in 1..=4096, got {w}"));
        }
        if self.ranker == RankerKind::Dcn {
            if !(1..=8).contains(&self.cross.layers) {
                return bad(format!("cross.layers must be in 1..=8, got {}", self.cross.layers));
            }
            if self.cross.projection_dim.is_some_and(|r| r == 0 || r > 4096) {
                return bad(format!("cross.projection_dim must be in 1..=4096, got {:?}", self.cross.projection_dim));
            }
        }
        if let Some(n) = self.list_size.filter(|n| !(2..=1000).contains(n)) {
            return bad(format!("list_size must be in 2..=1000, got {n}"));
        }
        if let Some(f) = &self.features {
            for (side, t) in [("query", &f.query), ("candidate", &f.candidate)] {
                for feature in &t.features {
                    feature.validate(side)?;
                }
                if t.id_dim != 0 || t.time.is_some() || t.id_dropout != 0.0 {
                    return bad(format!(
                        "ranking features.{side}: only 'features' (ids are the ranker's own, no time, no id_dropout)"
                    ));
                }
            }
            if !f.layers.is_empty() {
                return bad("ranking features: no 'layers' (the ranker's layers follow the concatenation)".into());
            }
        }
        let has_features =
            self.features.as_ref().is_some_and(|f| !f.query.features.is_empty() || !f.candidate.features.is_empty());
        if !self.ids && !has_features && self.context.is_empty() {
            return bad("a ranking model needs inputs: ids, features or context features".into());
        }
        if !self.context.is_empty() && self.loss.predicts_ratings() {
            return bad("a ranker over context features learns from implicit feedback: its loss cannot be mse".into());
        }
        if self.context.is_empty() && self.loss == RankingLoss::Softmax {
            return bad(
                "the softmax loss ranks positives against the retriever's other candidates: it is for a pipeline's \
                 ranker (context features); on ratings use mse, hinge, logistic, listmle or approx-ndcg"
                    .into(),
            );
        }
        Ok(())
    }
}

impl FeatureConfig {
    /// The attribute features alone, as a ranking model reads them: no id embeddings (the
    /// ranker has its own), no timestamp, no id dropout, no layers.
    pub fn attributes_only(&self) -> FeatureConfig {
        let mut f = self.clone();
        f.layers.clear();
        for t in [&mut f.query, &mut f.candidate] {
            t.id_dim = 0;
            t.time = None;
            t.id_dropout = 0.0;
            t.table = None;
        }
        f
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn losses_match_what_the_ranker_reads() {
        let implicit = RankingSpec::implicit(vec![ContextFeature::RetrievalScore]);
        assert!(implicit.validate().is_ok());
        let e = RankingSpec { loss: RankingLoss::Mse, ..implicit }.validate().unwrap_err().to_string();
        assert!(e.contains("cannot be mse"), "{e}");
        // ratings have no negatives for the softmax to rank positives against
        let e =
            RankingSpec { loss: RankingLoss::Softmax, ..RankingSpec::default() }.validate().unwrap_err().to_string();
        assert!(e.contains("for a pipeline's ranker"), "{e}");
    }
}
