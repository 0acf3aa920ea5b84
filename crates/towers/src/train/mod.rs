//! Training: the one entry ([`Trainer`]) for every model kind, the optimizers, the epoch loop,
//! and each kind's training step.

mod epochs;
mod features;
mod optimizer;
mod options;
mod rating;
mod retrieval;
mod sequential;
mod trainer;

pub use optimizer::{Optimizer, Slots};
pub use options::{FeatureData, TrainOptions};
pub use trainer::{TrainData, Trainer};
