//! The multi-task model of the TFRS multitask tutorial: one user and one item embedding table
//! shared by a retrieval task (the dot product, in-batch softmax) and a rating task (the two
//! embeddings concatenated through dense layers to a rating), their losses weighted.

use super::{Model, ModelSpec, Normalization, Queries, QueryKind, Shape, TwoTower, put_mlp, read_mlp};
use crate::kernels::dense::Mlp;
use crate::rng::Rng;
use crate::task::RatingScale;
use crate::tensors::{TensorReader, TensorWriter};
use crate::{Error, Result};
use serde::{Deserialize, Serialize};

/// Settings of a multi-task model: the weight of each task's loss and the rating task's layers.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct MultitaskSpec {
    /// Weight of the retrieval loss (TFRS `retrieval_weight`).
    pub retrieval_weight: f32,
    /// Weight of the rating loss (TFRS `rating_weight`).
    pub rating_weight: f32,
    /// Dense layers of the rating task after the concatenated embeddings (TFRS: 256, 128).
    pub layers: Vec<usize>,
}

impl Default for MultitaskSpec {
    /// Both tasks weighted 1; the rating task's layers as TFRS's tutorial (256, 128).
    fn default() -> Self {
        MultitaskSpec { retrieval_weight: 1.0, rating_weight: 1.0, layers: vec![256, 128] }
    }
}

impl MultitaskSpec {
    /// Checks the weights and widths.
    pub fn validate(&self) -> Result<()> {
        for (name, w) in [("retrieval weight", self.retrieval_weight), ("rating weight", self.rating_weight)] {
            if !(w.is_finite() && (0.0..=1000.0).contains(&w)) {
                return Err(Error::Config(format!("{name} must be in 0..=1000, got {w}")));
            }
        }
        if self.retrieval_weight == 0.0 && self.rating_weight == 0.0 {
            return Err(Error::Config("the retrieval and rating weights are both 0: nothing to learn".into()));
        }
        match self.layers.iter().find(|&&w| w == 0 || w > 4096) {
            Some(w) => Err(Error::Config(format!("layer widths must be in 1..=4096, got {w}"))),
            None => Ok(()),
        }
    }
}

/// Shared towers, the rating task's dense layers, and the weights it was trained with.
#[derive(Debug, Clone, PartialEq)]
pub struct MultitaskModel {
    /// The shared user (query) and item (candidate) embeddings; retrieval scores their dot product.
    pub towers: TwoTower,
    /// `[user, item] → layers → rating`.
    pub rating: Mlp,
    /// The range and mean of the training ratings (predictions are clamped to the range).
    pub scale: RatingScale,
    /// Its settings.
    pub spec: MultitaskSpec,
}

impl MultitaskModel {
    /// A fresh model; the rating output's bias starts at the mean training rating.
    pub fn new(
        spec: &MultitaskSpec,
        (users, items): (usize, usize),
        dim: usize,
        scale: RatingScale,
        seed: u64,
    ) -> Self {
        let towers = TwoTower::new(users, items, dim, Normalization::None, seed);
        let widths: Vec<usize> = spec.layers.iter().copied().chain([1]).collect();
        let mut rating = Mlp::new(2 * dim, &widths, &mut Rng::new(seed ^ 0x4D75_4C74));
        if let Some(b) = rating.biases.last_mut() {
            b.data[0] = scale.mean;
        }
        MultitaskModel { towers, rating, scale, spec: spec.clone() }
    }

    /// Concatenated `[user, item]` embeddings of pairs.
    pub fn rating_inputs(&self, pairs: &[(u32, u32)]) -> Vec<f32> {
        let (q, c) = (&self.towers.query.embedding, &self.towers.candidate.embedding);
        let mut x = Vec::with_capacity(pairs.len() * 2 * q.dim);
        for &(u, i) in pairs {
            x.extend_from_slice(q.row(u as usize));
            x.extend_from_slice(c.row(i as usize));
        }
        x
    }

    /// Reads the towers (`query.*`, `candidate.*`), the rating layers (`rating.*`) and scale.
    pub fn load(r: &TensorReader, shape: Shape, spec: &MultitaskSpec) -> Result<Self> {
        let towers = TwoTower::load(r, shape, false)?;
        if towers.query.normalization != Normalization::None {
            return Err(r.error("a multi-task model's towers are not normalised"));
        }
        let widths: Vec<usize> = spec.layers.iter().copied().chain([1]).collect();
        Ok(MultitaskModel {
            towers,
            rating: read_mlp(r, "rating", 2 * shape.dim, &widths)?,
            scale: r.meta("rating_scale")?,
            spec: spec.clone(),
        })
    }
}

impl Model for MultitaskModel {
    fn spec(&self) -> ModelSpec {
        ModelSpec::Multitask(self.spec.clone())
    }

    fn dim(&self) -> usize {
        self.towers.dim()
    }

    fn query_kind(&self) -> QueryKind {
        QueryKind::User
    }

    fn candidates(&self) -> Vec<f32> {
        self.towers.candidates()
    }

    fn queries(&self, queries: &Queries) -> Result<Vec<f32>> {
        self.towers.queries(queries)
    }

    fn rating_scale(&self) -> Option<RatingScale> {
        Some(self.scale)
    }

    fn predict(&self, pairs: &[(u32, u32)]) -> Result<Vec<f32>> {
        let out = self.rating.forward(&self.rating_inputs(pairs), pairs.len());
        Ok(out.into_iter().map(|r| r.clamp(self.scale.min, self.scale.max)).collect())
    }

    fn save(&self, w: &mut TensorWriter) -> Result<()> {
        self.towers.save(w)?;
        put_mlp(w, "rating", &self.rating);
        w.meta("rating_scale", &self.scale)
    }
}
