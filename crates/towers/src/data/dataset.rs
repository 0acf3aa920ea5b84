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
    /// Occurrences of each candidate row: in this table, plus those of the model continued
    /// (decayed); popularity and the logQ correction read them.
    pub counts: Vec<f32>,
}

/// What a training set continues from: a model trained before. Its ids keep their rows (new
/// ids come after them), and its counts of each candidate carry over, times `decay`.
#[derive(Debug, Clone, Copy)]
pub struct Earlier<'a> {
    /// Its query vocabulary.
    pub query_vocab: &'a Vocabulary,
    /// Its candidates.
    pub items: &'a Items,
    /// Its occurrences of each candidate row.
    pub counts: &'a [f32],
    /// What an old occurrence weighs now (1: as much as a new one).
    pub decay: f32,
}

impl Earlier<'_> {
    /// `counts` (of this run's rows) plus the earlier counts, decayed.
    pub fn add_counts(&self, counts: &mut [f32]) {
        counts.iter_mut().zip(self.counts).for_each(|(c, &old)| *c += self.decay * old);
    }
}

impl Dataset {
    /// Builds vocabularies from a training table (queries) and the catalogue, if any, plus the
    /// table's items (candidates), and encodes the table.
    pub fn build(train: &Interactions, catalog: Option<&Catalog>, key: CandidateKey) -> Result<Dataset> {
        Dataset::build_on(None, train, catalog, key)
    }

    /// As [`Dataset::build`], continuing the vocabularies and counts of a model trained before.
    pub fn build_on(
        earlier: Option<Earlier>,
        train: &Interactions,
        catalog: Option<&Catalog>,
        key: CandidateKey,
    ) -> Result<Dataset> {
        if train.is_empty() {
            return Err(Error::Data("the training set is empty".into()));
        }
        // the table's ids are stored once: its query ids are the query vocabulary, its candidate
        // ids are mapped to candidate rows once each
        let (items, rows) = Items::build_on(earlier.map(|e| e.items), catalog, key, train.candidate_ids().iter())?;
        let candidates: Vec<u32> = train.candidate_indices().iter().map(|&c| rows[c as usize - 1]).collect();
        let (query_vocab, queries) = match earlier {
            None => (train.query_ids().clone(), train.query_indices().to_vec()),
            Some(e) => {
                let mut vocab = e.query_vocab.clone();
                let row: Vec<u32> =
                    std::iter::once(0).chain(train.query_ids().iter().map(|k| vocab.insert(k))).collect();
                (vocab, train.query_indices().iter().map(|&q| row[q as usize]).collect())
            }
        };
        let mut counts = counts(&candidates, items.len());
        if let Some(e) = earlier {
            e.add_counts(&mut counts);
        }
        Ok(Dataset { query_vocab, items, queries, candidates, weights: train.weights.clone(), counts })
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
        let q: Vec<u32> = table.query_ids().iter().map(|k| query_vocab.lookup(k)).collect();
        let c: Vec<u32> = table.candidate_ids().iter().map(|k| items.rows.get(k).copied().unwrap_or(0)).collect();
        let rows = table.query_indices().iter().zip(table.candidate_indices());
        rows.map(|(&a, &b)| (q[a as usize - 1], c[b as usize - 1])).collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn table(q: &[&str], c: &[&str]) -> Interactions {
        Interactions::from_rows(q.iter().zip(c).map(|(q, c)| crate::data::Row {
            query: q,
            candidate: c,
            ..Default::default()
        }))
        .unwrap()
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
