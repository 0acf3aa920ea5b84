//! Encoders: each feature of an entity becomes a *bag* of rows of the feature's embedding
//! table, with weights.

use super::AttributeTable;
use crate::{Error, Result};
use serde::{Deserialize, Serialize};
use std::collections::HashMap;

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
    /// The encoder of a feature of a model saved in format 1, which did not record it: the
    /// model serves as before, but the feature cannot be encoded again (train the model anew).
    Unrecorded,
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

impl FeatureSpec {
    /// A feature of `column` with an encoder and an embedding width, nothing else set.
    pub fn new(column: &str, encoder: Encoder, dim: usize) -> Self {
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

    /// Checks the keys the encoder needs (and no others), naming the tower (`side`) and column.
    pub fn validate(&self, side: &str) -> Result<()> {
        let (f, bad) = (self, |m: String| Err(Error::Config(m)));
        let what = format!("{side} feature '{}'", f.column);
        if f.encoder == Encoder::Unrecorded {
            return bad(format!("{what}: 'unrecorded' is not an encoder to ask for"));
        }
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
        Ok(())
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
            Encoder::Bucketize | Encoder::Year | Encoder::Unrecorded => Vec::new(),
        }
    };
    let mut bags = Bags::default();
    match spec.encoder {
        Encoder::Unrecorded => Err(Error::Config(format!(
            "feature '{}' comes from a model saved in format 1, which did not record its encoder: train the model again",
            spec.column
        ))),
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
        let (b, rows) = enc(FeatureSpec::new("gender", Encoder::Category, 2), &[false, true, false, false, false]);
        assert_eq!(rows, 2); // OOV + "M": "F" was not seen on a fitted entity
        assert_eq!((b.of(0).0, b.of(1).0, b.of(2).0, b.of(4).0), (&[0u32][..], &[1u32][..], &[0u32][..], &[0u32][..]));
        let (b, rows) = enc(FeatureSpec { len: Some(1), ..FeatureSpec::new("zip", Encoder::Prefix, 2) }, &ALL);
        assert_eq!(rows, 3); // OOV, "1", "9"
        assert_eq!((b.of(1).0, b.of(2).0, b.of(3).0), (&[2u32][..], &[1u32][..], &[0u32][..]));
    }

    #[test]
    fn buckets_and_years() {
        let s = FeatureSpec { boundaries: vec![18.0, 25.0, 60.0], ..FeatureSpec::new("age", Encoder::Bucketize, 2) };
        let (b, rows) = enc(s, &ALL);
        assert_eq!(rows, 5);
        assert_eq!((b.of(1).0, b.of(2).0, b.of(3).0), (&[2u32][..], &[4u32][..], &[0u32][..])); // 23, 61, "x"
        let s = FeatureSpec { boundaries: vec![1990.0, 1995.0], ..FeatureSpec::new("date", Encoder::Year, 2) };
        let (b, _) = enc(s, &ALL);
        assert_eq!((b.of(1).0, b.of(3).0), (&[3u32][..], &[0u32][..]));
        assert_eq!(
            (year_of("01-Jan-1995"), year_of("(1991)"), year_of("12345"), year_of("")),
            (Some(1995.0), Some(1991.0), None, None)
        );
    }

    #[test]
    fn multi_hot_and_tokens_are_mean_pooled() {
        let (b, rows) = enc(FeatureSpec::new("genres", Encoder::MultiHot, 4), &ALL);
        assert_eq!(rows, 5); // OOV, Action, Comedy, Drama, Noir (sorted)
        assert_eq!(b.of(1), (&[1u32, 2][..], &[0.5f32, 0.5][..]));
        let (b, rows) = enc(FeatureSpec { min_count: Some(2), ..FeatureSpec::new("title", Encoder::Tokens, 4) }, &ALL);
        assert_eq!(rows, 3); // "1995" and "toy" occur twice
        assert_eq!(b.of(1), (&[2u32, 1][..], &[0.5f32, 0.5][..])); // "toy", "1995" in title order
        assert_eq!(b.of(3), (&[2u32][..], &[1.0f32][..])); // "toy" only
        assert_eq!(b.of(4), (&[0u32][..], &[1.0f32][..])); // no attributes
    }
}
