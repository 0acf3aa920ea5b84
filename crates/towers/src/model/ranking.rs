//! The ranking model of TFRS's basic-ranking tutorial: user and item embeddings, concatenated,
//! through an MLP to a predicted rating.

use super::{Model, ModelSpec, QueryKind, Shape, put_mlp, put_table, read_mlp, read_table};
use crate::kernels::dense::{Mlp, MlpCache};
use crate::kernels::table::Table;
use crate::rng::Rng;
use crate::task::RatingScale;
use crate::tensors::{TensorReader, TensorWriter};
use crate::{Error, Result};
use serde::{Deserialize, Serialize};

/// Settings of a ranking model: the widths of its dense layers before the output (TFRS's basic
/// ranking: 256, 64).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct RankingSpec {
    /// Dense layer widths (ReLU), before the 1-wide output.
    pub layers: Vec<usize>,
}

impl Default for RankingSpec {
    fn default() -> Self {
        RankingSpec { layers: vec![256, 64] }
    }
}

impl RankingSpec {
    /// Checks the widths.
    pub fn validate(&self) -> Result<()> {
        match self.layers.iter().find(|&&w| w == 0 || w > 4096) {
            Some(w) => Err(Error::Config(format!("layer widths must be in 1..=4096, got {w}"))),
            None => Ok(()),
        }
    }
}

/// `rating = MLP([user embedding, item embedding])`.
#[derive(Debug, Clone, PartialEq)]
pub struct RankingModel {
    /// User embeddings (row 0 = OOV).
    pub user: Table,
    /// Item embeddings (row 0 = OOV).
    pub item: Table,
    /// `2·dim → layers… → 1`.
    pub mlp: Mlp,
    /// The range and mean of the training ratings (predictions are clamped to the range).
    pub scale: RatingScale,
}

impl RankingModel {
    /// A fresh model; the output bias starts at the mean training rating.
    pub fn new(users: usize, items: usize, dim: usize, layers: &[usize], scale: RatingScale, seed: u64) -> Self {
        let mut rng = Rng::new(seed);
        let user = Table::uniform(users, dim, 0.05, &mut rng);
        let item = Table::uniform(items, dim, 0.05, &mut rng);
        let widths: Vec<usize> = layers.iter().copied().chain([1]).collect();
        let mut mlp = Mlp::new(2 * dim, &widths, &mut rng);
        if let Some(b) = mlp.biases.last_mut() {
            b.data[0] = scale.mean;
        }
        RankingModel { user, item, mlp, scale }
    }

    fn inputs(&self, pairs: &[(u32, u32)]) -> Vec<f32> {
        let mut x = Vec::with_capacity(pairs.len() * 2 * self.user.dim);
        for &(u, i) in pairs {
            x.extend_from_slice(self.user.row(u as usize));
            x.extend_from_slice(self.item.row(i as usize));
        }
        x
    }

    /// Reads the embeddings, the dense layers (`spec`'s widths) and the rating scale.
    pub fn load(r: &TensorReader, shape: Shape, spec: &RankingSpec) -> Result<Self> {
        let d = shape.dim;
        let widths: Vec<usize> = spec.layers.iter().copied().chain([1]).collect();
        Ok(RankingModel {
            user: read_table(r, "user.embedding", shape.queries, d)?,
            item: read_table(r, "item.embedding", shape.candidates, d)?,
            mlp: read_mlp(r, "mlp", 2 * d, &widths)?,
            scale: r.meta("rating_scale")?,
        })
    }

    /// Training forward pass (raw predictions, not clamped).
    pub(crate) fn forward_train(&self, pairs: &[(u32, u32)]) -> (Vec<f32>, MlpCache) {
        self.mlp.forward_train(self.inputs(pairs), pairs.len())
    }
}

impl Model for RankingModel {
    fn spec(&self) -> ModelSpec {
        let layers = self.mlp.weights.iter().map(|w| w.dim).collect::<Vec<_>>();
        ModelSpec::Ranking(RankingSpec { layers: layers[..layers.len().saturating_sub(1)].to_vec() })
    }

    fn dim(&self) -> usize {
        self.user.dim
    }

    fn query_kind(&self) -> QueryKind {
        QueryKind::Pairs
    }

    fn candidates(&self) -> Vec<f32> {
        self.item.data.clone()
    }

    fn rating_scale(&self) -> Option<RatingScale> {
        Some(self.scale)
    }

    fn predict(&self, pairs: &[(u32, u32)]) -> Result<Vec<f32>> {
        let raw = self.mlp.forward(&self.inputs(pairs), pairs.len());
        Ok(raw.into_iter().map(|r| r.clamp(self.scale.min, self.scale.max)).collect())
    }

    fn save(&self, w: &mut TensorWriter) -> Result<()> {
        put_table(w, "user.embedding", &self.user);
        put_table(w, "item.embedding", &self.item);
        put_mlp(w, "mlp", &self.mlp);
        w.meta("rating_scale", &self.scale)
    }
}
