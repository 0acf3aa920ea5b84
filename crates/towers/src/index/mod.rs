//! Top-k search over candidate embeddings. Needs only embeddings, never the model.

mod brute_force;

pub use crate::kernels::topk::Scored;
pub use brute_force::{BruteForceIndex, Filter, Metric};
