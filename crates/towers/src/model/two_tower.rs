//! Query tower + candidate tower of id embeddings; a pair's score is the dot product of their
//! outputs. Trained for retrieval (in-batch softmax) or, with a rating scale, to predict
//! ratings (the rating kind).

use super::{Model, ModelSpec, Normalization, Queries, QueryKind, Shape, Tower, put_table, read_table};
use crate::kernels::table::Table;
use crate::rng::Rng;
use crate::task::RatingScale;
use crate::tensors::{TensorReader, TensorWriter};
use crate::{Error, Result};

/// A two-tower model over id vocabularies.
#[derive(Debug, Clone, PartialEq)]
pub struct TwoTower {
    /// Embeds queries (users).
    pub query: Tower,
    /// Embeds candidates (items).
    pub candidate: Tower,
    /// Rating models: the scale their dot products predict (scaled to `[0, 1]`).
    pub rating_scale: Option<RatingScale>,
}

impl TwoTower {
    /// A freshly initialised model for `query_rows` queries and `candidate_rows` candidates
    /// (both counting the OOV row).
    pub fn new(query_rows: usize, candidate_rows: usize, dim: usize, normalization: Normalization, seed: u64) -> Self {
        let mut rng = Rng::new(seed);
        let query = Tower::new(query_rows, dim, normalization, &mut rng);
        let candidate = Tower::new(candidate_rows, dim, normalization, &mut rng);
        TwoTower { query, candidate, rating_scale: None }
    }

    /// Reads the towers (`query.*`, `candidate.*`) and, for a rating model, the rating scale.
    pub fn load(r: &TensorReader, shape: Shape, rating: bool) -> Result<Self> {
        let normalization: Normalization = r.meta("normalization")?;
        let tower = |prefix: &str, rows: usize| -> Result<Tower> {
            let d = shape.dim;
            let batch_norm = match normalization {
                Normalization::BatchNorm => {
                    let v = |n: &str| r.f32(&format!("{prefix}.batch_norm.{n}"), &[d]);
                    Some(super::BatchNorm {
                        gamma: Table { rows: 1, dim: d, data: v("gamma")? },
                        beta: Table { rows: 1, dim: d, data: v("beta")? },
                        moving_mean: v("moving_mean")?,
                        moving_var: v("moving_var")?,
                    })
                }
                _ => None,
            };
            Ok(Tower { embedding: read_table(r, &format!("{prefix}.embedding"), rows, d)?, normalization, batch_norm })
        };
        let rating_scale = if rating { Some(r.meta("rating_scale")?) } else { None };
        Ok(TwoTower {
            query: tower("query", shape.queries)?,
            candidate: tower("candidate", shape.candidates)?,
            rating_scale,
        })
    }
}

fn put_tower(w: &mut TensorWriter, prefix: &str, t: &Tower) {
    put_table(w, &format!("{prefix}.embedding"), &t.embedding);
    if let Some(bn) = &t.batch_norm {
        let d = t.dim();
        for (name, v) in [
            ("gamma", &bn.gamma.data),
            ("beta", &bn.beta.data),
            ("moving_mean", &bn.moving_mean),
            ("moving_var", &bn.moving_var),
        ] {
            w.f32(format!("{prefix}.batch_norm.{name}"), &[d], v);
        }
    }
}

impl Model for TwoTower {
    fn spec(&self) -> ModelSpec {
        if self.rating_scale.is_some() { ModelSpec::Rating } else { ModelSpec::Retrieval }
    }

    fn dim(&self) -> usize {
        self.query.dim()
    }

    fn query_kind(&self) -> QueryKind {
        QueryKind::User
    }

    fn candidates(&self) -> Vec<f32> {
        self.candidate.embed_all()
    }

    fn queries(&self, queries: &Queries) -> Result<Vec<f32>> {
        match queries {
            Queries::Users { rows, .. } => Ok(self.query.embed(rows)),
            Queries::Histories { .. } => {
                Err(Error::Unsupported("this is a user → item model: recommend for a user".into()))
            }
        }
    }

    fn rating_scale(&self) -> Option<RatingScale> {
        self.rating_scale
    }

    fn predict(&self, pairs: &[(u32, u32)]) -> Result<Vec<f32>> {
        let scale =
            self.rating_scale.ok_or_else(|| Error::Unsupported("this model does not predict ratings".into()))?;
        let (users, items): (Vec<u32>, Vec<u32>) = pairs.iter().copied().unzip();
        let (q, c, d) = (self.query.embed(&users), self.candidate.embed(&items), self.dim());
        Ok(q.chunks_exact(d)
            .zip(c.chunks_exact(d))
            .map(|(a, b)| scale.unscale(a.iter().zip(b).map(|(x, y)| x * y).sum()))
            .collect())
    }

    fn save(&self, w: &mut TensorWriter) -> Result<()> {
        put_tower(w, "query", &self.query);
        put_tower(w, "candidate", &self.candidate);
        w.meta("normalization", &self.query.normalization)?;
        if let Some(s) = &self.rating_scale {
            w.meta("rating_scale", s)?;
        }
        Ok(())
    }
}
