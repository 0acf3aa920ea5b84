//! The feature configuration (TOML) of a feature model: each tower's id embedding, features
//! and dense layers.

use crate::data::features::{Encoder, FeatureSpec};
use crate::{Error, Result};
use serde::{Deserialize, Serialize};
use std::path::{Path, PathBuf};

/// The interaction timestamp as a query feature: normalised to `[0, 1]` over the training
/// period (one learned direction scaled by it) plus an embedding of its equal-width bucket.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TimeSpec {
    /// Buckets over the training period.
    pub buckets: usize,
    /// Embedding width.
    pub dim: usize,
}

/// The features of one tower.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct TowerFeatures {
    /// Width of the id embedding (0: no id embedding, features only).
    pub id_dim: usize,
    /// The attribute table (CSV/TSV with a header; first column the id), relative to the
    /// config file. `--features movielens` fills it from `u.user` / `u.item`.
    pub table: Option<PathBuf>,
    /// Features read from the attribute table.
    pub features: Vec<FeatureSpec>,
    /// The interaction timestamp (query tower only).
    pub time: Option<TimeSpec>,
    /// Share of training examples whose id is replaced by the OOV id, so that the tower
    /// learns to embed an entity from its features alone (cold start).
    pub id_dropout: f32,
}

impl TowerFeatures {
    /// Width of the concatenation: id, features and time embeddings.
    pub fn width(&self) -> usize {
        self.id_dim + self.features.iter().map(|f| f.dim).sum::<usize>() + self.time.map_or(0, |t| t.dim)
    }
}

impl Default for TowerFeatures {
    fn default() -> Self {
        TowerFeatures { id_dim: 32, table: None, features: Vec::new(), time: None, id_dropout: 0.0 }
    }
}

/// A feature model's inputs: each tower's features, concatenated, then dense layers.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct FeatureConfig {
    /// Dense layers after the concatenation in both towers (ReLU between them); the last width
    /// is the embedding width. Empty: both towers' concatenations must have the same width.
    pub layers: Vec<usize>,
    /// The query (user) tower.
    pub query: TowerFeatures,
    /// The candidate (item) tower.
    pub candidate: TowerFeatures,
}

impl Default for FeatureConfig {
    /// Id embeddings of width 32 in both towers, no features, no layers.
    fn default() -> Self {
        FeatureConfig { layers: Vec::new(), query: TowerFeatures::default(), candidate: TowerFeatures::default() }
    }
}

impl FeatureConfig {
    /// MovieLens 100K's features, as in TFRS's featurisation tutorials: user age (bucketised),
    /// gender, occupation, zip-code prefix and the rating's timestamp (1,000 buckets, as TFRS's
    /// context-features tutorial); movie genres (multi-hot), release year (bucketised) and title
    /// words, with 10% id dropout for cold start; dense layers 64 → 32 in both towers.
    /// The attribute tables come from `u.user` and `u.item` ([`AttributeTable::movielens_users`](crate::data::features::AttributeTable::movielens_users)).
    pub fn movielens() -> Self {
        let age = FeatureSpec {
            boundaries: vec![18.0, 25.0, 35.0, 45.0, 50.0, 56.0],
            ..FeatureSpec::new("age", Encoder::Bucketize, 4)
        };
        let zip = FeatureSpec { len: Some(2), ..FeatureSpec::new("zip", Encoder::Prefix, 4) };
        let year = FeatureSpec {
            boundaries: vec![1930.0, 1950.0, 1960.0, 1970.0, 1980.0, 1990.0, 1993.0, 1995.0, 1996.0, 1997.0, 1998.0],
            ..FeatureSpec::new("release_date", Encoder::Year, 4)
        };
        FeatureConfig {
            layers: vec![64, 32],
            query: TowerFeatures {
                id_dim: 32,
                table: None,
                features: vec![
                    age,
                    FeatureSpec::new("gender", Encoder::Category, 2),
                    FeatureSpec::new("occupation", Encoder::Category, 4),
                    zip,
                ],
                time: Some(TimeSpec { buckets: 1000, dim: 16 }),
                id_dropout: 0.0,
            },
            candidate: TowerFeatures {
                id_dim: 32,
                table: None,
                features: vec![
                    FeatureSpec { separator: Some("|".into()), ..FeatureSpec::new("genres", Encoder::MultiHot, 8) },
                    year,
                    FeatureSpec { min_count: Some(2), ..FeatureSpec::new("title", Encoder::Tokens, 8) },
                ],
                time: None,
                id_dropout: 0.1,
            },
        }
    }

    /// Reads a TOML feature configuration; relative table paths are resolved against its folder.
    pub fn load(path: impl AsRef<Path>) -> Result<Self> {
        let path = path.as_ref();
        let mut c: FeatureConfig = crate::data::text::read_toml(path)?;
        let base = path.parent().unwrap_or(Path::new("."));
        for (side, t) in [("query", &c.query), ("candidate", &c.candidate)] {
            if !t.features.is_empty() && t.table.is_none() {
                return Err(Error::Config(format!(
                    "{}: {side}: features need an attribute table ({side}.table)",
                    path.display()
                )));
            }
        }
        for t in [&mut c.query, &mut c.candidate] {
            if let Some(p) = t.table.as_mut().filter(|p| p.is_relative()) {
                *p = base.join(&*p);
            }
        }
        c.validate().map_err(|e| match e {
            Error::Config(m) => Error::Config(format!("{}: {m}", path.display())),
            e => e,
        })?;
        Ok(c)
    }

    /// Checks every value, with a message naming the tower, the column and the key.
    pub fn validate(&self) -> Result<()> {
        let bad = |m: String| Err(Error::Config(m));
        if let Some(w) = self.layers.iter().find(|&&w| w == 0 || w > 4096) {
            return bad(format!("features.layers: widths must be in 1..=4096, got {w}"));
        }
        for (side, t) in [("query", &self.query), ("candidate", &self.candidate)] {
            if t.id_dim > 4096 {
                return bad(format!("{side}.id_dim must be at most 4096, got {}", t.id_dim));
            }
            if !(0.0..1.0).contains(&t.id_dropout) {
                return bad(format!("{side}.id_dropout must be in [0, 1), got {}", t.id_dropout));
            }
            if t.id_dim == 0 && t.features.is_empty() && t.time.is_none() {
                return bad(format!("{side}: no id embedding and no feature: the tower has no input"));
            }
            if let Some(ts) = t.time {
                if side == "candidate" {
                    return bad("candidate.time: the timestamp is a query feature".into());
                }
                if ts.buckets == 0 || ts.dim == 0 || ts.dim > 4096 {
                    return bad(format!("query.time: buckets and dim must be positive, got {ts:?}"));
                }
            }
            for f in &t.features {
                f.validate(side)?;
            }
        }
        let (q, c) = (self.query.width(), self.candidate.width());
        if self.layers.is_empty() && q != c {
            return bad(format!(
                "without layers both towers' concatenations need the same width: query {q}, candidate {c}"
            ));
        }
        Ok(())
    }

    /// The output width of both towers.
    pub fn dim(&self) -> usize {
        self.layers.last().copied().unwrap_or_else(|| self.query.width())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn config_loader_and_validation() {
        FeatureConfig::movielens().validate().unwrap();
        let dir = std::env::temp_dir().join(format!("towers-features-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let p = dir.join("f.toml");
        std::fs::write(
            &p,
            "layers = [16]\n[query]\nid_dim = 8\ntable = \"users.csv\"\ntime = { buckets = 4, dim = 2 }\n\
             [[query.features]]\ncolumn = \"age\"\nencoder = \"bucketize\"\nboundaries = [18, 30]\n",
        )
        .unwrap();
        let c = FeatureConfig::load(&p).unwrap();
        assert_eq!(c.query.table.as_deref(), Some(dir.join("users.csv").as_path()));
        assert_eq!((c.dim(), c.query.features[0].dim, c.candidate.id_dim), (16, 8, 32));
        for (toml, needle) in [
            ("[query]\nunknown = 1\n", "unknown field"),
            (
                "[query]\ntable = \"u\"\n[[query.features]]\ncolumn = \"a\"\nencoder = \"bucketize\"\n",
                "ascending 'boundaries'",
            ),
            ("[query]\ntable = \"u\"\n[[query.features]]\ncolumn = \"a\"\nencoder = \"prefix\"\n", "'len'"),
            ("[query]\ntable = \"u\"\n[[query.features]]\ncolumn = \"a\"\nencoder = \"zip\"\n", "unknown variant"),
            ("[query]\n[[query.features]]\ncolumn = \"a\"\nencoder = \"category\"\n", "attribute table"),
            ("[candidate]\ntime = { buckets = 2, dim = 2 }\n", "query feature"),
            ("layers = []\n[query]\nid_dim = 8\n", "same width"),
            ("layers = [0]\n", "1..=4096"),
        ] {
            std::fs::write(&p, toml).unwrap();
            let e = FeatureConfig::load(&p).unwrap_err().to_string();
            assert!(e.contains(needle) && e.contains("f.toml"), "{toml:?}: {e}");
        }
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
