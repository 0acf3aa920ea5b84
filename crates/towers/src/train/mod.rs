//! Training: the one entry ([`Trainer`]) for every model kind, the configuration, the
//! optimizers, the epoch loop, and each kind's training step.

mod config;
mod epochs;
mod features;
mod optimizer;
mod rating;
mod retrieval;
mod sequential;
mod trainer;

pub use config::TrainConfig;
pub use optimizer::{Optimizer, OptimizerConfig, OptimizerKind, Slots};
pub use trainer::{TrainData, Trainer};
