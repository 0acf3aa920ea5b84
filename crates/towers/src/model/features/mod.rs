//! Feature models: two towers, each the concatenation of an id embedding, attribute features
//! and (query side) the time, followed by dense layers.

mod config;
mod tower;

pub use config::{FeatureConfig, TimeSpec, TowerFeatures};
pub(crate) use tower::Instances;
pub use tower::{Entities, FeatureTower, TimeFeature, TowerLayout};

use super::{At, Model, ModelSpec, Queries, QueryKind, Shape, put_mlp, put_table, read_mlp, read_table};
use crate::data::features::Bags;
use crate::tensors::{TensorReader, TensorWriter};
use crate::{Error, Result};

/// A two-tower model over features: query tower (user id, user attributes, timestamp) and
/// candidate tower (item id, item attributes).
#[derive(Debug, Clone, PartialEq)]
pub struct FeatureModel {
    /// Embeds (user, timestamp) queries.
    pub query: FeatureTower,
    /// Embeds items.
    pub candidate: FeatureTower,
    /// The configuration it was built from.
    pub config: FeatureConfig,
}

impl FeatureModel {
    /// Reads both towers; their layouts are in the file's metadata (`feature_towers`).
    pub fn load(r: &TensorReader, shape: Shape, config: &FeatureConfig) -> Result<Self> {
        let [q, c]: [TowerLayout; 2] = r.meta("feature_towers")?;
        let query = read_tower(r, "query", &q, shape.queries)?;
        let candidate = read_tower(r, "candidate", &c, shape.candidates)?;
        if query.dim() != shape.dim || candidate.dim() != shape.dim {
            return Err(r.error("feature towers' width does not match the manifest"));
        }
        Ok(FeatureModel { query, candidate, config: config.clone() })
    }
}

impl Model for FeatureModel {
    fn spec(&self) -> ModelSpec {
        ModelSpec::Features(self.config.clone())
    }

    fn dim(&self) -> usize {
        self.candidate.dim()
    }

    fn query_kind(&self) -> QueryKind {
        QueryKind::UserAtTime
    }

    fn candidates(&self) -> Vec<f32> {
        self.candidate.embed_all()
    }

    fn queries(&self, queries: &Queries) -> Result<Vec<f32>> {
        let Queries::Users { rows, at } = *queries else {
            return Err(Error::Unsupported("this is a user → item model: recommend for a user".into()));
        };
        let end = self.query.time.map(|t| vec![t.end; rows.len()]);
        let times = match at {
            At::Each(t) => Some(t),
            At::Unknown => None,
            At::TrainingEnd => end.as_deref(),
        };
        Ok(self.query.embed(rows, times))
    }

    fn save(&self, w: &mut TensorWriter) -> Result<()> {
        put_tower(w, "query", &self.query);
        put_tower(w, "candidate", &self.candidate);
        w.meta("feature_towers", &[self.query.layout(), self.candidate.layout()])
    }
}

pub(crate) fn put_tower(w: &mut TensorWriter, prefix: &str, t: &FeatureTower) {
    for (k, table) in t.tables.iter().enumerate() {
        put_table(w, &format!("{prefix}.{k}.table"), table);
    }
    for (k, b) in t.bags.iter().enumerate() {
        w.u32(format!("{prefix}.{k}.offsets"), &b.offsets);
        w.u32(format!("{prefix}.{k}.rows"), &b.rows);
        w.f32(format!("{prefix}.{k}.weights"), &[b.weights.len()], &b.weights);
    }
    put_mlp(w, &format!("{prefix}.mlp"), &t.mlp);
}

/// Reads a feature tower of `entities` entities, checking that its bags stay inside its tables.
pub(crate) fn read_tower(
    r: &TensorReader,
    prefix: &str,
    layout: &TowerLayout,
    entities: usize,
) -> Result<FeatureTower> {
    let bad = |m: String| r.error(format!("{prefix} tower: {m}"));
    let n = layout.names.len();
    if layout.rows.len() != n || layout.dims.len() != n || n == 0 {
        return Err(bad("inconsistent layout".into()));
    }
    let mut tables = Vec::new();
    for k in 0..n {
        tables.push(read_table(r, &format!("{prefix}.{k}.table"), layout.rows[k], layout.dims[k])?);
    }
    let with_bags = n - usize::from(layout.time.is_some());
    let mut bags = Vec::new();
    for k in 0..with_bags {
        let offsets = r.u32(&format!("{prefix}.{k}.offsets"), Some(entities + 1))?;
        let rows = r.u32(&format!("{prefix}.{k}.rows"), None)?;
        let weights = r.f32(&format!("{prefix}.{k}.weights"), &[rows.len()])?;
        let ok = offsets.windows(2).all(|p| p[0] <= p[1])
            && offsets.last() == Some(&(rows.len() as u32))
            && rows.iter().all(|&r| (r as usize) < layout.rows[k]);
        if !ok {
            return Err(bad(format!("feature '{}' has bags outside its table", layout.names[k])));
        }
        bags.push(Bags { offsets, rows, weights });
    }
    if layout.time.is_some_and(|t| t.buckets == 0 || t.rows() != layout.rows[n - 1]) {
        return Err(bad("time feature does not match its table".into()));
    }
    let input: usize = layout.dims.iter().sum();
    let mlp = read_mlp(r, &format!("{prefix}.mlp"), input, &layout.layers)?;
    Ok(FeatureTower { names: layout.names.clone(), tables, bags, time: layout.time, mlp })
}
