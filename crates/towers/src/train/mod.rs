//! Training: the one entry ([`Trainer`]) for every model kind, the optimizers, the epoch loop,
//! and each kind's training step; a pipeline's retriever and ranker are trained together.

mod attention;
mod checkpoint;
mod continuing;
mod distributed;
mod epochs;
mod features;
mod multitask;
mod optimizer;
mod options;
mod pipeline;
mod ranking;
mod rating;
mod repeat;
mod retrieval;
mod sequential;
mod state;
mod trainer;

pub use checkpoint::Checkpoints;
pub use distributed::{Sharding, Written};
pub use optimizer::{Optimizer, Slots};
pub use options::{FeatureData, TrainOptions};
pub use pipeline::PipelineConfig;
pub use trainer::Trainer;
