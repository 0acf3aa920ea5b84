//! Training: configuration, optimizers, the loop, and its history.

mod history;
mod optimizer;
mod sequential;
mod trainer;

pub use history::{EpochRecord, History};
pub use optimizer::{Optimizer, OptimizerConfig, OptimizerKind, Slots};
pub use sequential::{SequenceConfig, SequenceFormat, evaluate_sequential, fit_sequential};
pub use trainer::{Recipe, TrainConfig, Trainer};
