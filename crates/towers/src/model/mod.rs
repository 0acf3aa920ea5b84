//! The towers: id embeddings with an optional normalisation (user → item), or a GRU over item
//! histories (sequential); scored by dot product.

mod features;
mod ranking;
mod sequential;
mod tower;
mod two_tower;

pub use features::{FeatureModel, FeatureTower, TimeFeature, TowerLayout};
pub use ranking::RankingModel;
pub use sequential::{QueryCache, SequentialGrads, SequentialModel, last_position};
pub use tower::{BatchNorm, Normalization, Tower, TowerCache, TowerGrads};
pub use two_tower::TwoTower;

/// A trained model of either kind.
#[derive(Debug, Clone, PartialEq)]
pub enum Model {
    /// User id → item.
    TwoTower(TwoTower),
    /// Item history → next item.
    Sequential(SequentialModel),
    /// (user, item) → rating.
    Ranking(RankingModel),
    /// User id, attributes and time → item id and attributes.
    Features(FeatureModel),
}

impl Model {
    /// Embedding width.
    pub fn dim(&self) -> usize {
        match self {
            Model::TwoTower(m) => m.dim(),
            Model::Sequential(m) => m.dim(),
            Model::Ranking(m) => m.dim(),
            Model::Features(m) => m.dim(),
        }
    }

    /// `retrieval`, `sequential`, `ranking` or `features`, as in the manifest.
    pub fn kind(&self) -> &'static str {
        match self {
            Model::TwoTower(_) => "retrieval",
            Model::Sequential(_) => "sequential",
            Model::Ranking(_) => "ranking",
            Model::Features(_) => "features",
        }
    }
}
