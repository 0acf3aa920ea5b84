//! Ranking models: a score for (user, item) pairs from user and item id embeddings, their
//! attribute features and, inside a pipeline, context features of the candidate (what the
//! retriever and the training data say about it), concatenated and fed to an MLP (TFRS basic
//! ranking) or a deep & cross network (TFRS DCN tutorial). Trained on ratings (squared error,
//! or listwise and pairwise losses over each user's rated items) or on implicit feedback (the
//! softmax over a retriever's candidates).

mod context;
mod cooccurrence;
mod crossing;
mod scorer;
mod spec;

pub use context::{ACTIVE_WINDOW_S, Context, ContextData, ContextFeature, Retrieved, TimeContext, norms};
pub use crossing::FeatureCrossing;
pub use scorer::{Scorer, ScorerCache, ScorerGrads};
pub use spec::{CrossSpec, RankerKind, RankingSpec, Structure};

use super::features::{put_tower, read_tower};
use super::{Candidates, FeatureTower, Model, ModelSpec, QueryKind, Shape, TowerLayout, put_table, read_table};
use crate::kernels::cross::block_norms;
use crate::kernels::table::Table;
use crate::rng::Rng;
use crate::task::RatingScale;
use crate::tensors::{TensorReader, TensorWriter};
use crate::{Error, Result};
use serde::{Deserialize, Serialize};

/// A ranking model: `score = network([user id, item id, user features, item features, context])`.
#[derive(Debug, Clone, PartialEq)]
pub struct RankingModel {
    /// Its settings.
    pub spec: RankingSpec,
    /// User id embeddings (row 0 = OOV), when `spec.ids`.
    pub user: Option<Table>,
    /// Item id embeddings, when `spec.ids`.
    pub item: Option<Table>,
    /// User attribute features (no id, no layers).
    pub user_features: Option<FeatureTower>,
    /// Item attribute features.
    pub item_features: Option<FeatureTower>,
    /// Context features, for a pipeline's ranker.
    pub context: Option<Context>,
    /// The network.
    pub scorer: Scorer,
    /// The range and mean of the training ratings (predictions are clamped to the range).
    pub scale: RatingScale,
    /// User rows.
    pub users: usize,
    /// Item rows.
    pub items: usize,
}

/// The inputs of a ranking model besides its id embeddings, built by its trainer.
#[derive(Debug, Clone, Default)]
pub struct RankingInputs {
    /// User attribute features.
    pub user_features: Option<FeatureTower>,
    /// Item attribute features.
    pub item_features: Option<FeatureTower>,
    /// Context features.
    pub context: Option<Context>,
}

#[derive(Serialize, Deserialize)]
struct TowerLayouts {
    user: Option<TowerLayout>,
    item: Option<TowerLayout>,
}

impl RankingModel {
    /// A fresh model for `users` × `items` rows with id embeddings of width `dim`; the output
    /// bias starts at the mean training rating (squared error) or 0.
    pub fn new(
        spec: &RankingSpec,
        (users, items): (usize, usize),
        dim: usize,
        inputs: RankingInputs,
        scale: RatingScale,
        seed: u64,
    ) -> Self {
        let mut rng = Rng::new(seed);
        let (user, item) = if spec.ids {
            (Some(Table::uniform(users, dim, 0.05, &mut rng)), Some(Table::uniform(items, dim, 0.05, &mut rng)))
        } else {
            (None, None)
        };
        let mut m = RankingModel {
            spec: spec.clone(),
            user,
            item,
            user_features: inputs.user_features,
            item_features: inputs.item_features,
            context: inputs.context,
            scorer: Scorer { cross: None, deep: Default::default(), head: None },
            scale,
            users,
            items,
        };
        let bias = if spec.loss.predicts_ratings() { scale.mean } else { 0.0 };
        m.scorer = Scorer::new(spec, m.input_width(), bias, &mut rng);
        m
    }

    /// The input features' names and widths, in input order.
    pub fn input_groups(&self) -> Vec<(String, usize)> {
        let mut g = Vec::new();
        if let (Some(u), Some(i)) = (&self.user, &self.item) {
            g.push(("user_id".to_string(), u.dim));
            g.push(("item_id".to_string(), i.dim));
        }
        for (side, t) in [("user", &self.user_features), ("item", &self.item_features)] {
            if let Some(t) = t {
                g.extend(t.names.iter().zip(&t.tables).map(|(n, tb)| (format!("{side}_{n}"), tb.dim)));
            }
        }
        if let Some(c) = &self.context {
            g.extend(c.features.iter().map(|f| (f.to_string(), 1)));
        }
        g
    }

    /// Width of the concatenated inputs.
    pub fn input_width(&self) -> usize {
        self.input_groups().iter().map(|g| g.1).sum()
    }

    /// The concatenated inputs of `pairs`, with their context features (`pairs.len() × context
    /// width`) for a model that reads them.
    pub fn inputs(&self, pairs: &[(u32, u32)], context: Option<&[f32]>) -> Result<Vec<f32>> {
        let n = pairs.len();
        let width = self.input_width();
        if let Some(&(u, i)) = pairs.iter().find(|&&(u, i)| u as usize >= self.users || i as usize >= self.items) {
            return Err(Error::Data(format!(
                "pair ({u}, {i}) is outside the ranker's {} × {} rows",
                self.users, self.items
            )));
        }
        let users: Vec<u32> = pairs.iter().map(|p| p.0).collect();
        let items: Vec<u32> = pairs.iter().map(|p| p.1).collect();
        let mut parts: Vec<(Vec<f32>, usize)> = Vec::new();
        if let (Some(u), Some(i)) = (&self.user, &self.item) {
            parts.push((u.gather(&users), u.dim));
            parts.push((i.gather(&items), i.dim));
        }
        if let Some(t) = &self.user_features {
            parts.push((t.inputs(&users, None), t.input_dim()));
        }
        if let Some(t) = &self.item_features {
            parts.push((t.inputs(&items, None), t.input_dim()));
        }
        match (&self.context, context) {
            (Some(c), Some(x)) if x.len() == n * c.width() => parts.push((x.to_vec(), c.width())),
            (Some(c), _) => {
                return Err(Error::Unsupported(format!(
                    "this ranker reads {} context features: it scores a retriever's candidates in a pipeline",
                    c.width()
                )));
            }
            (None, _) => {}
        }
        let mut x = Vec::with_capacity(n * width);
        for r in 0..n {
            for (p, w) in &parts {
                x.extend_from_slice(&p[r * w..(r + 1) * w]);
            }
        }
        Ok(x)
    }

    /// Every trained parameter: id embeddings, feature tables, the network.
    pub fn params_mut(&mut self) -> Vec<&mut Table> {
        let mut out: Vec<&mut Table> = self.user.iter_mut().chain(self.item.iter_mut()).collect();
        for t in self.user_features.iter_mut().chain(self.item_features.iter_mut()) {
            out.extend(t.tables.iter_mut());
        }
        out.extend(self.scorer.params_mut());
        out
    }

    /// Raw scores (not clamped) of pairs with their context.
    pub fn raw_scores(&self, pairs: &[(u32, u32)], context: Option<&[f32]>) -> Result<Vec<f32>> {
        Ok(self.scorer.forward(&self.inputs(pairs, context)?, pairs.len()))
    }

    fn finish(&self, raw: Vec<f32>) -> Vec<f32> {
        if self.spec.loss.predicts_ratings() {
            raw.into_iter().map(|r| r.clamp(self.scale.min, self.scale.max)).collect()
        } else {
            raw
        }
    }

    /// Reads the model `spec` describes, checking its tensors against `shape`.
    pub fn load(r: &TensorReader, shape: Shape, spec: &RankingSpec) -> Result<Self> {
        let (user, item) = if spec.ids {
            (
                Some(read_table(r, "user.embedding", shape.queries, shape.dim)?),
                Some(read_table(r, "item.embedding", shape.candidates, shape.dim)?),
            )
        } else {
            (None, None)
        };
        let (mut user_features, mut item_features) = (None, None);
        if spec.features.is_some() {
            let layouts: TowerLayouts = r.meta("ranking_towers")?;
            if let Some(l) = &layouts.user {
                user_features = Some(read_tower(r, "user_features", l, shape.queries)?);
            }
            if let Some(l) = &layouts.item {
                item_features = Some(read_tower(r, "item_features", l, shape.candidates)?);
            }
        }
        let context = if spec.context.is_empty() {
            None
        } else {
            let c = Context::load(r, shape.queries, shape.candidates)?;
            if c.features != spec.context {
                return Err(r.error("the context features do not match the manifest's"));
            }
            Some(c)
        };
        let mut m = RankingModel {
            spec: spec.clone(),
            user,
            item,
            user_features,
            item_features,
            context,
            scorer: Scorer { cross: None, deep: Default::default(), head: None },
            scale: r.meta("rating_scale")?,
            users: shape.queries,
            items: shape.candidates,
        };
        m.scorer = Scorer::load(r, spec, m.input_width())?;
        Ok(m)
    }
}

impl Model for RankingModel {
    fn spec(&self) -> ModelSpec {
        ModelSpec::Ranking(RankingSpec { layers: self.scorer.layers(), ..self.spec.clone() })
    }

    fn dim(&self) -> usize {
        self.item.as_ref().map_or(1, |t| t.dim)
    }

    fn query_kind(&self) -> QueryKind {
        QueryKind::Pairs
    }

    /// The item id embeddings (a ranker without ids: zeros of width 1).
    fn candidates(&self) -> Vec<f32> {
        self.item.as_ref().map_or_else(|| vec![0.0; self.items], |t| t.data.clone())
    }

    fn rating_scale(&self) -> Option<RatingScale> {
        self.spec.loss.predicts_ratings().then_some(self.scale)
    }

    fn predict(&self, pairs: &[(u32, u32)]) -> Result<Vec<f32>> {
        Ok(self.finish(self.raw_scores(pairs, None)?))
    }

    fn score(&self, c: &Candidates) -> Result<Vec<f32>> {
        let pairs: Vec<(u32, u32)> = c.items.iter().map(|&i| (c.user, i)).collect();
        let context = match &self.context {
            Some(ctx) => Some(ctx.compute(c.user, c.history, c.items, c.retrieved.as_ref())?),
            None => None,
        };
        Ok(self.finish(self.raw_scores(&pairs, context.as_deref())?))
    }

    fn feature_crossing(&self) -> Option<FeatureCrossing> {
        let m = self.scorer.cross.as_ref()?.matrix(0)?;
        let groups = self.input_groups();
        let widths: Vec<usize> = groups.iter().map(|g| g.1).collect();
        Some(FeatureCrossing { norms: block_norms(&m, &widths), features: groups.into_iter().map(|g| g.0).collect() })
    }

    fn save(&self, w: &mut TensorWriter) -> Result<()> {
        if let (Some(u), Some(i)) = (&self.user, &self.item) {
            put_table(w, "user.embedding", u);
            put_table(w, "item.embedding", i);
        }
        if self.spec.features.is_some() {
            if let Some(t) = &self.user_features {
                put_tower(w, "user_features", t);
            }
            if let Some(t) = &self.item_features {
                put_tower(w, "item_features", t);
            }
            let layouts = TowerLayouts {
                user: self.user_features.as_ref().map(FeatureTower::layout),
                item: self.item_features.as_ref().map(FeatureTower::layout),
            };
            w.meta("ranking_towers", &layouts)?;
        }
        if let Some(c) = &self.context {
            c.save(w)?;
        }
        self.scorer.save(w);
        w.meta("rating_scale", &self.scale)
    }
}
