//! Feature towers: the id embedding and each feature's embedding (bags of rows, mean-pooled),
//! concatenated, then optional dense layers.

use super::TowerFeatures;
use crate::data::features::{AttributeTable, Bags, encode_feature};
use crate::kernels::dense::Mlp;
use crate::kernels::table::Table;
use crate::rng::Rng;
use crate::{Error, Result};
use serde::{Deserialize, Serialize};

/// The instances of one tower in a training batch: entity rows, their timestamps (when the
/// tower reads time), which of them use the OOV id (id dropout), and how many occurrences each
/// stands for (a batch's distinct candidates; `None`: one each), which L2 counts.
#[derive(Debug, Clone, Copy, Default)]
pub(crate) struct Instances<'a> {
    pub entities: &'a [u32],
    pub times: Option<&'a [i64]>,
    pub drop_id: Option<&'a [bool]>,
    pub uses: Option<&'a [f32]>,
}

/// The timestamp feature: its position in `[start, end]` (clamped) as a weight on one learned
/// row, plus the row of its equal-width bucket. Row 0 is for a missing timestamp.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct TimeFeature {
    /// Number of buckets.
    pub buckets: usize,
    /// First training timestamp.
    pub start: i64,
    /// Last training timestamp.
    pub end: i64,
}

impl TimeFeature {
    /// Rows of its table: OOV, the buckets, the normalised-value row.
    pub fn rows(&self) -> usize {
        self.buckets + 2
    }

    /// The (row, weight) bag of a timestamp.
    pub fn bag(&self, t: Option<i64>) -> Vec<(u32, f32)> {
        match t {
            None => vec![(0, 1.0)],
            Some(t) => {
                let x = ((t - self.start) as f64 / (self.end - self.start).max(1) as f64).clamp(0.0, 1.0);
                let b = ((x * self.buckets as f64) as usize).min(self.buckets - 1);
                vec![(1 + b as u32, 1.0), (self.buckets as u32 + 1, x as f32)]
            }
        }
    }
}

/// One tower of a feature model.
#[derive(Debug, Clone, PartialEq)]
pub struct FeatureTower {
    /// Name of each embedding table: `id`, the feature columns, then `time`.
    pub names: Vec<String>,
    /// One embedding table per feature (row 0 = OOV).
    pub tables: Vec<Table>,
    /// Each entity's bag for every table but `time`, aligned with `tables`.
    pub bags: Vec<Bags>,
    /// The timestamp feature, whose table comes last.
    pub time: Option<TimeFeature>,
    /// Dense layers after the concatenation.
    pub mlp: Mlp,
}

/// Layout of a feature tower, kept in the manifest to read its tensors back.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TowerLayout {
    /// Table names.
    pub names: Vec<String>,
    /// Rows of each table.
    pub rows: Vec<usize>,
    /// Width of each table.
    pub dims: Vec<usize>,
    /// The timestamp feature.
    pub time: Option<TimeFeature>,
    /// Dense layer widths.
    pub layers: Vec<usize>,
}

/// The entities a feature tower embeds, one per row of its id table.
#[derive(Debug, Clone, Copy)]
pub struct Entities<'a> {
    /// The id of each entity (`None` for the OOV row).
    pub ids: &'a [Option<&'a str>],
    /// Each entity's row in the id table (0, the OOV row, for entities not seen in training).
    pub id_rows: &'a [u32],
    /// Whether each entity occurs in training: vocabularies of feature values are built from those.
    pub fit: &'a [bool],
    /// Their attributes.
    pub attributes: Option<&'a AttributeTable>,
}

impl FeatureTower {
    /// Builds a tower for `entities`, with dense `layers` after the concatenation; `time` is
    /// the training period when the tower reads timestamps.
    pub fn build(
        spec: &TowerFeatures,
        layers: &[usize],
        entities: &Entities,
        time: Option<(i64, i64)>,
        rng: &mut Rng,
    ) -> Result<Self> {
        let Entities { ids, id_rows, fit, attributes } = *entities;
        let mut t =
            FeatureTower { names: Vec::new(), tables: Vec::new(), bags: Vec::new(), time: None, mlp: Mlp::default() };
        if spec.id_dim > 0 {
            t.names.push("id".into());
            t.tables.push(Table::uniform(ids.len(), spec.id_dim, 0.05, rng));
            t.bags.push(Bags::single(id_rows.iter().copied()));
        }
        if !spec.features.is_empty() {
            let table = attributes.ok_or_else(|| Error::Config("features need an attribute table".into()))?;
            for f in &spec.features {
                let (bags, rows) = encode_feature(f, table, ids, fit)?;
                t.names.push(f.column.clone());
                t.tables.push(Table::uniform(rows, f.dim, 0.05, rng));
                t.bags.push(bags);
            }
        }
        if let (Some(ts), Some((start, end))) = (spec.time, time) {
            let feature = TimeFeature { buckets: ts.buckets, start, end };
            t.names.push("time".into());
            t.tables.push(Table::uniform(feature.rows(), ts.dim, 0.05, rng));
            t.time = Some(feature);
        }
        t.mlp = Mlp::new(t.input_dim(), layers, rng);
        Ok(t)
    }

    /// Width of the concatenation.
    pub fn input_dim(&self) -> usize {
        self.tables.iter().map(|t| t.dim).sum()
    }

    /// Output width.
    pub fn dim(&self) -> usize {
        self.mlp.output_dim(self.input_dim())
    }

    /// Number of entities.
    pub fn entities(&self) -> usize {
        self.bags.first().map_or(0, Bags::len)
    }

    /// The layout of its tensors.
    pub fn layout(&self) -> TowerLayout {
        TowerLayout {
            names: self.names.clone(),
            rows: self.tables.iter().map(|t| t.rows).collect(),
            dims: self.tables.iter().map(|t| t.dim).collect(),
            time: self.time,
            layers: self.mlp.weights.iter().map(|w| w.dim).collect(),
        }
    }

    /// Calls `f(table, column offset, instance, rows, weights)` for every bag of every instance;
    /// instances flagged in `drop_id` use the OOV id.
    fn for_each_bag(&self, batch: &Instances, mut f: impl FnMut(usize, usize, usize, &[u32], &[f32])) {
        let Instances { entities, times, drop_id, .. } = *batch;
        let mut offset = 0;
        let has_id = self.names.first().is_some_and(|n| n == "id");
        for (k, table) in self.tables.iter().enumerate() {
            match self.bags.get(k) {
                Some(bags) => {
                    for (i, &e) in entities.iter().enumerate() {
                        if k == 0 && has_id && drop_id.is_some_and(|d| d[i]) {
                            f(k, offset, i, &[0], &[1.0]);
                            continue;
                        }
                        let (rows, ws) = bags.of(e as usize);
                        f(k, offset, i, rows, ws);
                    }
                }
                None => {
                    let time = self.time.expect("the last table without bags is time");
                    for i in 0..entities.len() {
                        let bag = time.bag(times.map(|t| t[i]));
                        let (rows, ws): (Vec<u32>, Vec<f32>) = bag.into_iter().unzip();
                        f(k, offset, i, &rows, &ws);
                    }
                }
            }
            offset += table.dim;
        }
    }

    /// The concatenated inputs of instances (`entities.len() × input_dim`); `times` gives each
    /// instance's timestamp for a tower that reads them.
    pub fn inputs(&self, entities: &[u32], times: Option<&[i64]>) -> Vec<f32> {
        self.inputs_dropping(&Instances { entities, times, ..Default::default() })
    }

    /// [`FeatureTower::inputs`] of a training batch, with the OOV id for instances flagged in
    /// `drop_id`.
    pub(crate) fn inputs_dropping(&self, batch: &Instances) -> Vec<f32> {
        let width = self.input_dim();
        let mut x = vec![0f32; batch.entities.len() * width];
        self.for_each_bag(batch, |k, off, i, rows, ws| {
            let d = self.tables[k].dim;
            let out = &mut x[i * width + off..i * width + off + d];
            for (&r, &w) in rows.iter().zip(ws) {
                out.iter_mut().zip(self.tables[k].row(r as usize)).for_each(|(o, v)| *o += w * v);
            }
        });
        x
    }

    /// Embeddings of instances.
    pub fn embed(&self, entities: &[u32], times: Option<&[i64]>) -> Vec<f32> {
        self.mlp.forward(&self.inputs(entities, times), entities.len())
    }

    /// Embeddings of every entity (no timestamp).
    pub fn embed_all(&self) -> Vec<f32> {
        self.embed(&(0..self.entities() as u32).collect::<Vec<_>>(), None)
    }

    /// Scatters the gradient of a batch's inputs onto the tables: per table, the distinct rows,
    /// their gradients and how many times each was used (instance `i` counting `uses[i]`).
    pub(crate) fn table_grads(&self, batch: &Instances, d_x: &[f32]) -> Vec<RowGrads> {
        let width = self.input_dim();
        let mut out: Vec<RowGrads> = self.tables.iter().map(|_| RowGrads::default()).collect();
        let mut slot: Vec<std::collections::HashMap<u32, usize>> = vec![Default::default(); self.tables.len()];
        self.for_each_bag(batch, |k, off, i, rows, ws| {
            let d = self.tables[k].dim;
            let g = &d_x[i * width + off..i * width + off + d];
            for (&r, &w) in rows.iter().zip(ws) {
                let rg = &mut out[k];
                let s = *slot[k].entry(r).or_insert_with(|| {
                    rg.rows.push(r);
                    rg.uses.push(0.0);
                    rg.grads.extend(std::iter::repeat_n(0.0, d));
                    rg.rows.len() - 1
                });
                rg.uses[s] += batch.uses.map_or(1.0, |u| u[i]);
                rg.grads[s * d..(s + 1) * d].iter_mut().zip(g).for_each(|(a, b)| *a += w * b);
            }
        });
        out
    }
}

/// Gradients of some rows of a table (crate-internal: the trainer's).
#[derive(Debug, Clone, Default)]
pub struct RowGrads {
    pub(crate) rows: Vec<u32>,
    pub(crate) grads: Vec<f32>,
    pub(crate) uses: Vec<f32>,
}

#[cfg(test)]
mod tests {
    use super::super::TimeSpec;
    use super::*;
    use crate::data::features::{Encoder, FeatureSpec};

    fn tower(layers: &[usize]) -> FeatureTower {
        let table = AttributeTable {
            columns: vec!["genres".into()],
            rows: [("a", "x|y"), ("b", "y")].iter().map(|(k, v)| (k.to_string(), vec![v.to_string()])).collect(),
            source: "t".into(),
        };
        let spec = TowerFeatures {
            id_dim: 3,
            table: None,
            features: vec![FeatureSpec {
                column: "genres".into(),
                encoder: Encoder::MultiHot,
                dim: 2,
                boundaries: vec![],
                len: None,
                separator: None,
                min_count: None,
            }],
            time: Some(TimeSpec { buckets: 4, dim: 2 }),
            id_dropout: 0.0,
        };
        let ents = [None, Some("a"), Some("b")];
        let entities =
            Entities { ids: &ents, id_rows: &[0, 1, 2], fit: &[false, true, true], attributes: Some(&table) };
        FeatureTower::build(&spec, layers, &entities, Some((0, 100)), &mut Rng::new(2)).unwrap()
    }

    #[test]
    fn inputs_concatenate_mean_pooled_bags_and_time() {
        let t = tower(&[]);
        assert_eq!(
            (t.input_dim(), t.dim(), t.names.clone()),
            (7, 7, vec!["id".to_string(), "genres".into(), "time".into()])
        );
        let x = t.inputs(&[1], Some(&[50]));
        let g = &t.tables[1];
        for j in 0..3 {
            assert_eq!(x[j], t.tables[0].row(1)[j]);
        }
        for j in 0..2 {
            assert!((x[3 + j] - 0.5 * (g.row(1)[j] + g.row(2)[j])).abs() < 1e-7);
            let time = &t.tables[2];
            assert!((x[5 + j] - (time.row(3)[j] + 0.5 * time.row(5)[j])).abs() < 1e-7); // bucket 2 of 4 → row 3
        }
        assert_eq!(TimeFeature { buckets: 4, start: 0, end: 100 }.bag(Some(500)), vec![(4, 1.0), (5, 1.0)]);
    }

    #[test]
    fn table_grads_match_finite_differences() {
        let t = tower(&[4, 3]);
        let ents = [1u32, 2, 1];
        let times = [10i64, 90, 60];
        let c: Vec<f32> = (0..ents.len() * 3).map(|i| (i as f32 * 0.9).cos()).collect();
        let loss =
            |t: &FeatureTower| t.embed(&ents, Some(&times)).iter().zip(&c).map(|(a, b)| (a * b) as f64).sum::<f64>();
        let (_, cache) = t.mlp.forward_train(t.inputs(&ents, Some(&times)), ents.len());
        let (_, dx) = t.mlp.backward(&cache, &c);
        let grads = t.table_grads(&Instances { entities: &ents, times: Some(&times), ..Default::default() }, &dx);
        for (k, g) in grads.iter().enumerate() {
            let d = t.tables[k].dim;
            for (s, &r) in g.rows.iter().enumerate() {
                for j in 0..d {
                    let h = 1e-3;
                    let (mut p, mut m) = (t.clone(), t.clone());
                    p.tables[k].data[r as usize * d + j] += h;
                    m.tables[k].data[r as usize * d + j] -= h;
                    let fd = (loss(&p) - loss(&m)) / (2.0 * h as f64);
                    assert!(
                        (fd - g.grads[s * d + j] as f64).abs() < 1e-2,
                        "table {k} row {r}: {fd} vs {}",
                        g.grads[s * d + j]
                    );
                }
            }
        }
    }
}
