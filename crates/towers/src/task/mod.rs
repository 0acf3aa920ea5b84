//! Training objectives: the in-batch softmax of retrieval, the squared error of ratings, and
//! the pointwise, pairwise and listwise losses of ranking models.

mod listwise;
mod rating;
mod retrieval;

pub use listwise::{APPROX_NDCG_TEMPERATURE, RankingLoss};
pub use rating::{RatingScale, mse};
pub use retrieval::{Reduction, RetrievalConfig};
