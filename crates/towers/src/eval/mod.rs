//! Evaluation over the whole catalogue (TFRS `FactorizedTopK`) and reference baselines.

mod baselines;
mod topk;

pub use baselines::popularity;
pub use topk::{Seen, TopKMetrics, distinct_queries, evaluate, ranks};
