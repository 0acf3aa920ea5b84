//! The two towers: id embeddings with an optional normalisation, scored by dot product.

mod sequential;
mod tower;
mod two_tower;

pub use sequential::SequentialModel;
pub use tower::{BatchNorm, Normalization, Tower, TowerCache, TowerGrads};
pub use two_tower::TwoTower;
