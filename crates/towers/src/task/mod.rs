//! Training objectives.

mod rating;
mod retrieval;

pub use rating::{RatingScale, mse};
pub use retrieval::{Reduction, RetrievalConfig};

use serde::{Deserialize, Serialize};

/// What a user → item model learns.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Task {
    /// Two towers, in-batch softmax over the batch's candidates (implicit feedback).
    #[default]
    Retrieval,
    /// Two towers whose dot product predicts the rating scaled to `[0, 1]` (explicit feedback, MSE).
    Rating,
    /// A ranking model: user and item embeddings concatenated → MLP → rating (MSE); re-scores
    /// the candidates a retrieval model found.
    Ranking,
}
