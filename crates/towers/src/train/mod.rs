//! Training: configuration, optimizers, the loop, and its history.

mod features;
mod history;
mod optimizer;
mod rating;
mod sequential;
mod trainer;

pub use features::fit_features;
pub use history::{EpochRecord, History};
pub use optimizer::{Optimizer, OptimizerConfig, OptimizerKind, Slots};
pub use rating::{fit_ranking, fit_rating};
pub use sequential::{SequenceConfig, SequenceFormat, evaluate_sequential, fit_sequential};
pub use trainer::{Recipe, TrainConfig, Trainer};
