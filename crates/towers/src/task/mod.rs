//! Training objectives.

mod retrieval;

pub use retrieval::{Reduction, RetrievalConfig};
