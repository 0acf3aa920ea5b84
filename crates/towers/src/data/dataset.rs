//! Interactions encoded for training: query vocabulary, candidate rows, index pairs.

use super::{CandidateKey, Catalog, Interactions, Items, Vocabulary};
use crate::{Error, Result};

/// How often each of `len` rows occurs in `rows` (e.g. training occurrences of each candidate).
pub fn counts(rows: &[u32], len: usize) -> Vec<f32> {
    let mut out = vec![0f32; len];
    rows.iter().for_each(|&r| out[r as usize] += 1.0);
    out
}

/// A training set encoded against its vocabularies.
#[derive(Debug, Clone)]
pub struct Dataset {
    /// Query ids → rows.
    pub query_vocab: Vocabulary,
    /// Candidate rows.
    pub items: Items,
    /// Query row of each training example.
    pub queries: Vec<u32>,
    /// Candidate row of each training example.
    pub candidates: Vec<u32>,
    /// Weight of each training example in the retrieval loss, when the table has a weight column.
    pub weights: Option<Vec<f32>>,
}

impl Dataset {
    /// Builds vocabularies from a training table (queries) and the catalogue, if any, plus the
    /// table's items (candidates), and encodes the table.
    pub fn build(train: &Interactions, catalog: Option<&Catalog>, key: CandidateKey) -> Result<Dataset> {
        if train.is_empty() {
            return Err(Error::Data("the training set is empty".into()));
        }
        let (items, candidates) = Items::build(catalog, key, train.candidates.iter().map(String::as_str))?;
        let query_vocab = Vocabulary::from_keys(&train.queries);
        let queries = train.queries.iter().map(|q| query_vocab.lookup(q)).collect();
        Ok(Dataset { query_vocab, items, queries, candidates, weights: train.weights.clone() })
    }

    /// Number of training examples.
    pub fn len(&self) -> usize {
        self.queries.len()
    }

    /// Whether there are no examples.
    pub fn is_empty(&self) -> bool {
        self.queries.is_empty()
    }

    /// Encodes another table (e.g. a test set) with these vocabularies; unknown ids map to 0.
    pub fn encode(query_vocab: &Vocabulary, items: &Items, table: &Interactions) -> Vec<(u32, u32)> {
        table
            .queries
            .iter()
            .zip(&table.candidates)
            .map(|(q, c)| (query_vocab.lookup(q), items.rows.get(c).copied().unwrap_or(0)))
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn table(q: &[&str], c: &[&str]) -> Interactions {
        Interactions {
            queries: q.iter().map(|s| s.to_string()).collect(),
            candidates: c.iter().map(|s| s.to_string()).collect(),
            ..Default::default()
        }
    }

    #[test]
    fn title_key_merges_items_and_needs_a_catalogue() {
        let cat =
            Catalog::from_pairs([("1", "A"), ("2", "B"), ("3", "A")].map(|(a, b)| (a.to_string(), b.to_string())));
        let d = Dataset::build(&table(&["u", "v"], &["3", "2"]), Some(&cat), CandidateKey::Title).unwrap();
        assert_eq!(d.items.len(), 3); // OOV, A, B
        assert_eq!(d.candidates, [1, 2]);
        assert_eq!(d.items.ids[1], "1");
        assert_eq!(d.items.rows["3"], 1);
        assert!(Dataset::build(&table(&["u"], &["9"]), Some(&cat), CandidateKey::Title).is_err());
        assert!(Dataset::build(&table(&["u"], &["1"]), None, CandidateKey::Title).is_err());
    }

    #[test]
    fn id_key_adds_unknown_items_and_encodes_oov() {
        let cat = Catalog::from_pairs([("1".to_string(), "A".to_string())]);
        let d = Dataset::build(&table(&["u", "v"], &["7", "1"]), Some(&cat), CandidateKey::Id).unwrap();
        assert_eq!(d.items.ids, ["", "1", "7"]);
        assert_eq!(d.candidates, [2, 1]);
        let enc = Dataset::encode(&d.query_vocab, &d.items, &table(&["v", "x"], &["7", "zz"]));
        assert_eq!(enc, [(2, 2), (0, 0)]);
    }
}
