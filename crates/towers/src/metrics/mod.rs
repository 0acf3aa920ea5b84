//! Ranking and rating metrics, and the reference baselines: pure computations over embeddings,
//! ranks and predictions (TFRS `FactorizedTopK`: top-k accuracy = recall@k, MRR, NDCG).

mod baselines;
mod rating;
mod topk;

pub use baselines::{popularity, popularity_ranks, repeat_last};
pub use rating::{RatingMetrics, rating_metrics};
pub use topk::{KS, Ranker, TopKMetrics, distinct_queries, rank_metrics, ranks};
