//! Query tower + candidate tower; a pair's score is the dot product of their outputs.

use super::{Normalization, Tower};
use crate::rng::Rng;

/// A two-tower retrieval model over id vocabularies.
#[derive(Debug, Clone, PartialEq)]
pub struct TwoTower {
    /// Embeds queries (users).
    pub query: Tower,
    /// Embeds candidates (items).
    pub candidate: Tower,
}

impl TwoTower {
    /// A freshly initialised model for `query_rows` queries and `candidate_rows` candidates
    /// (both counting the OOV row).
    pub fn new(query_rows: usize, candidate_rows: usize, dim: usize, normalization: Normalization, seed: u64) -> Self {
        let mut rng = Rng::new(seed);
        let query = Tower::new(query_rows, dim, normalization, &mut rng);
        let candidate = Tower::new(candidate_rows, dim, normalization, &mut rng);
        TwoTower { query, candidate }
    }

    /// Embedding width.
    pub fn dim(&self) -> usize {
        self.query.dim()
    }
}
