//! Features beyond ids: attribute tables of users and items, their encoders, and the feature
//! configuration (TOML) of a feature model.
//!
//! Every feature is encoded as a *bag*: a few rows of its own embedding table with weights
//! (a category: one row; multi-hot genres and title tokens: their rows, mean-pooled; a numeric
//! value: its bucket's row). Row 0 of every table is the out-of-vocabulary slot: values never
//! seen on a training entity, and missing values, go there.

use super::movielens::MovieLens;
use super::text::{csv_reader, guess_delimiter, read_text};
use crate::{Error, Result};
use serde::{Deserialize, Serialize};
use std::collections::HashMap;
use std::path::{Path, PathBuf};

/// How a column's values become embedding rows.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Encoder {
    /// One vocabulary row per distinct value (gender, occupation).
    Category,
    /// A number, bucketised by `boundaries` (age).
    Bucketize,
    /// The first `len` characters as a category (zip-code prefix).
    Prefix,
    /// The four-digit year found in the value (a date such as `01-Jan-1995`), bucketised by `boundaries`.
    Year,
    /// Several categories split by `separator` (genres), mean-pooled.
    MultiHot,
    /// Lower-cased words with their own vocabulary (words seen `min_count` times), mean-pooled (titles).
    Tokens,
}

/// One feature: a column of the attribute table and its encoding.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FeatureSpec {
    /// Column name in the attribute table.
    pub column: String,
    /// Encoder.
    pub encoder: Encoder,
    /// Embedding width.
    #[serde(default = "default_feature_dim")]
    pub dim: usize,
    /// `bucketize`, `year`: ascending bucket boundaries.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub boundaries: Vec<f64>,
    /// `prefix`: characters kept.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub len: Option<usize>,
    /// `multi_hot`: the separator of the values (default `|`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub separator: Option<String>,
    /// `tokens`: a word needs this many occurrences over training entities (default 1).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub min_count: Option<usize>,
}

fn default_feature_dim() -> usize {
    8
}

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

fn spec(column: &str, encoder: Encoder, dim: usize) -> FeatureSpec {
    FeatureSpec {
        column: column.into(),
        encoder,
        dim,
        boundaries: Vec::new(),
        len: None,
        separator: None,
        min_count: None,
    }
}

impl FeatureConfig {
    /// MovieLens 100K's features, as in TFRS's featurisation tutorials: user age (bucketised),
    /// gender, occupation, zip-code prefix and the rating's timestamp (1,000 buckets, as TFRS's
    /// context-features tutorial); movie genres (multi-hot), release year (bucketised) and title
    /// words, with 10% id dropout for cold start; dense layers 64 → 32 in both towers.
    /// The attribute tables come from `u.user` and `u.item` ([`AttributeTable::movielens_users`]).
    pub fn movielens() -> Self {
        let age =
            FeatureSpec { boundaries: vec![18.0, 25.0, 35.0, 45.0, 50.0, 56.0], ..spec("age", Encoder::Bucketize, 4) };
        let zip = FeatureSpec { len: Some(2), ..spec("zip", Encoder::Prefix, 4) };
        let year = FeatureSpec {
            boundaries: vec![1930.0, 1950.0, 1960.0, 1970.0, 1980.0, 1990.0, 1993.0, 1995.0, 1996.0, 1997.0, 1998.0],
            ..spec("release_date", Encoder::Year, 4)
        };
        FeatureConfig {
            layers: vec![64, 32],
            query: TowerFeatures {
                id_dim: 32,
                table: None,
                features: vec![
                    age,
                    spec("gender", Encoder::Category, 2),
                    spec("occupation", Encoder::Category, 4),
                    zip,
                ],
                time: Some(TimeSpec { buckets: 1000, dim: 16 }),
                id_dropout: 0.0,
            },
            candidate: TowerFeatures {
                id_dim: 32,
                table: None,
                features: vec![
                    FeatureSpec { separator: Some("|".into()), ..spec("genres", Encoder::MultiHot, 8) },
                    year,
                    FeatureSpec { min_count: Some(2), ..spec("title", Encoder::Tokens, 8) },
                ],
                time: None,
                id_dropout: 0.1,
            },
        }
    }

    /// Reads a TOML feature configuration; relative table paths are resolved against its folder.
    pub fn load(path: impl AsRef<Path>) -> Result<Self> {
        let path = path.as_ref();
        let text = std::fs::read_to_string(path).map_err(|e| Error::io(path, e))?;
        let mut c: FeatureConfig =
            toml::from_str(&text).map_err(|e| Error::Config(format!("{}: {e}", path.display())))?;
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
                let what = format!("{side} feature '{}'", f.column);
                if f.dim == 0 || f.dim > 4096 {
                    return bad(format!("{what}: dim must be in 1..=4096, got {}", f.dim));
                }
                let needs_boundaries = matches!(f.encoder, Encoder::Bucketize | Encoder::Year);
                if needs_boundaries && (f.boundaries.is_empty() || !f.boundaries.windows(2).all(|w| w[0] < w[1])) {
                    return bad(format!("{what}: {:?} needs ascending 'boundaries'", f.encoder));
                }
                if !needs_boundaries && !f.boundaries.is_empty() {
                    return bad(format!("{what}: 'boundaries' is only for bucketize and year"));
                }
                match (f.encoder, f.len) {
                    (Encoder::Prefix, None | Some(0)) => return bad(format!("{what}: prefix needs 'len' ≥ 1")),
                    (Encoder::Prefix, _) | (_, None) => {}
                    _ => return bad(format!("{what}: 'len' is only for prefix")),
                }
                if f.separator.as_ref().is_some_and(|s| f.encoder != Encoder::MultiHot || s.is_empty()) {
                    return bad(format!("{what}: 'separator' is only for multi_hot, and not empty"));
                }
                if f.min_count.is_some() && f.encoder != Encoder::Tokens {
                    return bad(format!("{what}: 'min_count' is only for tokens"));
                }
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

/// Attributes of entities (users or items): named columns of strings, one row per id.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct AttributeTable {
    /// Column names (the id column excluded).
    pub columns: Vec<String>,
    /// Id → that entity's values, aligned with `columns`.
    pub rows: HashMap<String, Vec<String>>,
    /// Where it came from, for error messages.
    pub source: String,
}

impl AttributeTable {
    /// Reads a CSV/TSV/`|` table with a header row whose first column is the id.
    pub fn read(path: impl AsRef<Path>) -> Result<Self> {
        let path = path.as_ref();
        let text = read_text(path)?;
        let mut reader = csv_reader(&text, guess_delimiter(path, &text));
        let mut records = reader.records();
        let header = match records.next() {
            Some(Ok(h)) => h,
            Some(Err(e)) => return Err(Error::parse(path, Some(1), e.to_string())),
            None => return Err(Error::parse(path, None, "empty attribute table")),
        };
        let columns: Vec<String> = header.iter().skip(1).map(|s| s.trim().to_string()).collect();
        let mut rows = HashMap::new();
        for (i, rec) in records.enumerate() {
            let line = i as u64 + 2;
            let rec = rec.map_err(|e| Error::parse(path, Some(line), e.to_string()))?;
            if rec.len() != columns.len() + 1 {
                return Err(Error::parse(
                    path,
                    Some(line),
                    format!("expected {} fields (as the header), found {}", columns.len() + 1, rec.len()),
                ));
            }
            rows.insert(rec[0].trim().to_string(), rec.iter().skip(1).map(|s| s.trim().to_string()).collect());
        }
        Ok(AttributeTable { columns, rows, source: path.display().to_string() })
    }

    /// MovieLens users (`u.user`): age, gender, occupation, zip.
    pub fn movielens_users(ml: &MovieLens) -> Self {
        AttributeTable {
            columns: ["age", "gender", "occupation", "zip"].map(String::from).to_vec(),
            rows: ml
                .users
                .iter()
                .map(|u| (u.id.clone(), vec![u.age.to_string(), u.gender.clone(), u.occupation.clone(), u.zip.clone()]))
                .collect(),
            source: "u.user".into(),
        }
    }

    /// MovieLens movies (`u.item`): title, release_date, genres (`|`-separated).
    pub fn movielens_items(ml: &MovieLens) -> Self {
        AttributeTable {
            columns: ["title", "release_date", "genres"].map(String::from).to_vec(),
            rows: (0..ml.movies.ids.len())
                .map(|i| {
                    let values =
                        vec![ml.movies.titles[i].clone(), ml.movie_dates[i].clone(), ml.movie_genres[i].join("|")];
                    (ml.movies.ids[i].clone(), values)
                })
                .collect(),
            source: "u.item".into(),
        }
    }

    fn column(&self, name: &str) -> Result<usize> {
        self.columns.iter().position(|c| c == name).ok_or_else(|| {
            Error::Config(format!("{}: no column '{name}' (columns: {})", self.source, self.columns.join(", ")))
        })
    }
}

/// Each entity's bag of (row, weight) for one feature, in compressed rows.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Bags {
    /// `offsets[e]..offsets[e + 1]` indexes `rows` and `weights` for entity `e`.
    pub offsets: Vec<u32>,
    /// Embedding rows.
    pub rows: Vec<u32>,
    /// Their weights.
    pub weights: Vec<f32>,
}

impl Bags {
    /// The bag of entity `e`.
    pub fn of(&self, e: usize) -> (&[u32], &[f32]) {
        let (a, b) = (self.offsets[e] as usize, self.offsets[e + 1] as usize);
        (&self.rows[a..b], &self.weights[a..b])
    }

    /// Number of entities.
    pub fn len(&self) -> usize {
        self.offsets.len().saturating_sub(1)
    }

    /// Whether there are no entities.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    fn push(&mut self, bag: &[(u32, f32)]) {
        if self.offsets.is_empty() {
            self.offsets.push(0);
        }
        for &(r, w) in bag {
            self.rows.push(r);
            self.weights.push(w);
        }
        self.offsets.push(self.rows.len() as u32);
    }

    /// One row per entity with weight 1 (ids).
    pub fn single(rows: impl IntoIterator<Item = u32>) -> Self {
        let mut b = Bags::default();
        for r in rows {
            b.push(&[(r, 1.0)]);
        }
        if b.offsets.is_empty() {
            b.offsets.push(0);
        }
        b
    }
}

/// The bucket (1-based; 0 is OOV) of `v` among ascending `boundaries`: 1 below the first.
fn bucket(boundaries: &[f64], v: f64) -> u32 {
    1 + boundaries.partition_point(|&b| b <= v) as u32
}

fn year_of(v: &str) -> Option<f64> {
    let b = v.as_bytes();
    (0..b.len().saturating_sub(3))
        .find(|&i| {
            b[i..i + 4].iter().all(u8::is_ascii_digit)
                && (i == 0 || !b[i - 1].is_ascii_digit())
                && (i + 4 == b.len() || !b[i + 4].is_ascii_digit())
        })
        .and_then(|i| v[i..i + 4].parse().ok())
}

fn tokens(v: &str) -> impl Iterator<Item = String> + '_ {
    v.split(|c: char| !c.is_alphanumeric()).filter(|t| !t.is_empty()).map(str::to_lowercase)
}

/// Encodes one feature of `entities` (ids, `None` for an entity without attributes, such as
/// the OOV row). Vocabularies (categories, words) are built from the entities flagged in
/// `fit`: values seen only elsewhere go to the OOV row 0. Returns the bags and the table's row count.
pub fn encode_feature(
    spec: &FeatureSpec,
    table: &AttributeTable,
    entities: &[Option<&str>],
    fit: &[bool],
) -> Result<(Bags, usize)> {
    let col = table.column(&spec.column)?;
    let value =
        |e: usize| entities[e].and_then(|id| table.rows.get(id)).map(|r| r[col].as_str()).filter(|v| !v.is_empty());
    let parts = |v: &str| -> Vec<String> {
        match spec.encoder {
            Encoder::Category => vec![v.to_string()],
            Encoder::Prefix => vec![v.chars().take(spec.len.unwrap_or(1)).collect()],
            Encoder::MultiHot => {
                v.split(spec.separator.as_deref().unwrap_or("|")).filter(|s| !s.is_empty()).map(String::from).collect()
            }
            Encoder::Tokens => tokens(v).collect(),
            Encoder::Bucketize | Encoder::Year => Vec::new(),
        }
    };
    let mut bags = Bags::default();
    match spec.encoder {
        Encoder::Bucketize | Encoder::Year => {
            for e in 0..entities.len() {
                let number = value(e).and_then(|v| match spec.encoder {
                    Encoder::Year => year_of(v),
                    _ => v.parse::<f64>().ok().filter(|x| x.is_finite()),
                });
                bags.push(&[(number.map_or(0, |x| bucket(&spec.boundaries, x)), 1.0)]);
            }
            Ok((bags, spec.boundaries.len() + 2))
        }
        _ => {
            let mut counts: HashMap<String, usize> = HashMap::new();
            for e in (0..entities.len()).filter(|&e| fit[e]) {
                if let Some(v) = value(e) {
                    for p in parts(v) {
                        *counts.entry(p).or_default() += 1;
                    }
                }
            }
            let min = spec.min_count.unwrap_or(1);
            let mut kept: Vec<&String> = counts.iter().filter(|&(_, &c)| c >= min).map(|(k, _)| k).collect();
            kept.sort();
            let vocab: HashMap<&str, u32> = kept.iter().enumerate().map(|(i, k)| (k.as_str(), i as u32 + 1)).collect();
            for e in 0..entities.len() {
                let rows: Vec<u32> = value(e)
                    .map_or(Vec::new(), |v| parts(v).iter().filter_map(|p| vocab.get(p.as_str()).copied()).collect());
                if rows.is_empty() {
                    bags.push(&[(0, 1.0)]);
                } else {
                    let w = 1.0 / rows.len() as f32;
                    bags.push(&rows.iter().map(|&r| (r, w)).collect::<Vec<_>>());
                }
            }
            Ok((bags, vocab.len() + 1))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn table() -> AttributeTable {
        let rows = [
            ("a", ["23", "M", "90210", "Action|Comedy", "Toy Story (1995)", "01-Jan-1995"]),
            ("b", ["61", "F", "10001", "Drama", "Heat (1995)", "15-Dec-1995"]),
            ("c", ["x", "F", "", "Comedy|Noir", "Toy Soldiers (1991)", ""]),
        ];
        AttributeTable {
            columns: ["age", "gender", "zip", "genres", "title", "date"].map(String::from).to_vec(),
            rows: rows.iter().map(|(id, v)| (id.to_string(), v.map(String::from).to_vec())).collect(),
            source: "test".into(),
        }
    }

    fn enc(spec: FeatureSpec, fit: &[bool]) -> (Bags, usize) {
        let ents = [None, Some("a"), Some("b"), Some("c"), Some("zz")];
        encode_feature(&spec, &table(), &ents, fit).unwrap()
    }

    const ALL: [bool; 5] = [false, true, true, true, true];

    #[test]
    fn category_and_prefix_with_oov() {
        let (b, rows) = enc(spec("gender", Encoder::Category, 2), &[false, true, false, false, false]);
        assert_eq!(rows, 2); // OOV + "M": "F" was not seen on a fitted entity
        assert_eq!((b.of(0).0, b.of(1).0, b.of(2).0, b.of(4).0), (&[0u32][..], &[1u32][..], &[0u32][..], &[0u32][..]));
        let (b, rows) = enc(FeatureSpec { len: Some(1), ..spec("zip", Encoder::Prefix, 2) }, &ALL);
        assert_eq!(rows, 3); // OOV, "1", "9"
        assert_eq!((b.of(1).0, b.of(2).0, b.of(3).0), (&[2u32][..], &[1u32][..], &[0u32][..]));
    }

    #[test]
    fn buckets_and_years() {
        let s = FeatureSpec { boundaries: vec![18.0, 25.0, 60.0], ..spec("age", Encoder::Bucketize, 2) };
        let (b, rows) = enc(s, &ALL);
        assert_eq!(rows, 5);
        assert_eq!((b.of(1).0, b.of(2).0, b.of(3).0), (&[2u32][..], &[4u32][..], &[0u32][..])); // 23, 61, "x"
        let s = FeatureSpec { boundaries: vec![1990.0, 1995.0], ..spec("date", Encoder::Year, 2) };
        let (b, _) = enc(s, &ALL);
        assert_eq!((b.of(1).0, b.of(3).0), (&[3u32][..], &[0u32][..]));
        assert_eq!(
            (year_of("01-Jan-1995"), year_of("(1991)"), year_of("12345"), year_of("")),
            (Some(1995.0), Some(1991.0), None, None)
        );
    }

    #[test]
    fn multi_hot_and_tokens_are_mean_pooled() {
        let (b, rows) = enc(spec("genres", Encoder::MultiHot, 4), &ALL);
        assert_eq!(rows, 5); // OOV, Action, Comedy, Drama, Noir (sorted)
        assert_eq!(b.of(1), (&[1u32, 2][..], &[0.5f32, 0.5][..]));
        let (b, rows) = enc(FeatureSpec { min_count: Some(2), ..spec("title", Encoder::Tokens, 4) }, &ALL);
        assert_eq!(rows, 3); // "1995" and "toy" occur twice
        assert_eq!(b.of(1), (&[2u32, 1][..], &[0.5f32, 0.5][..])); // "toy", "1995" in title order
        assert_eq!(b.of(3), (&[2u32][..], &[1.0f32][..])); // "toy" only
        assert_eq!(b.of(4), (&[0u32][..], &[1.0f32][..])); // no attributes
    }

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

    #[test]
    fn attribute_table_reads_header_and_names_bad_lines() {
        let dir = std::env::temp_dir().join(format!("towers-attr-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let p = dir.join("users.csv");
        std::fs::write(&p, "id,age,gender\n1,23,M\n2,40,F\n").unwrap();
        let t = AttributeTable::read(&p).unwrap();
        assert_eq!(t.columns, ["age", "gender"]);
        assert_eq!(t.rows["2"], ["40", "F"]);
        std::fs::write(&p, "id,age,gender\n1,23\n").unwrap();
        let e = AttributeTable::read(&p).unwrap_err().to_string();
        assert!(e.contains("users.csv") && e.contains('2'), "{e}");
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
