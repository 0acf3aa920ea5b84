//! Evaluation over the whole catalogue (TFRS `FactorizedTopK`) and reference baselines.

mod baselines;
mod topk;

pub use baselines::{popularity, repeat_last};
pub use topk::{KS, Seen, TopKMetrics, distinct_queries, evaluate, ranks};
