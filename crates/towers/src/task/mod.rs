//! Training objectives: the in-batch softmax of retrieval, and the squared error of ratings.

mod rating;
mod retrieval;

pub use rating::{RatingScale, mse};
pub use retrieval::{Reduction, RetrievalConfig};
