//! Evaluation over the whole catalogue (TFRS `FactorizedTopK`), of rating predictions, and
//! reference baselines.

mod baselines;
mod rating;
mod topk;

pub use baselines::{popularity, repeat_last};
pub use rating::{RatingMetrics, rating_metrics};
pub use topk::{KS, Seen, TopKMetrics, distinct_queries, evaluate, ranks};
