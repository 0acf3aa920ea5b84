//! Evaluation over the whole catalogue (TFRS `FactorizedTopK`), of rating predictions, and
//! reference baselines; [`evaluate`] evaluates a trained model of any kind.

mod baselines;
mod evaluate;
mod rating;
mod topk;

pub use baselines::{popularity, repeat_last};
pub use evaluate::{Encoded, Evaluation, Ranked, TestSet, evaluate, validate};
pub use rating::{RatingMetrics, rating_metrics};
pub use topk::{KS, TopKMetrics, distinct_queries, ranks};
