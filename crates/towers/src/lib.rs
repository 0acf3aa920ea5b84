//! # towers — two-tower recommenders
//!
//! A query tower embeds a user (or a history of items), a candidate tower embeds an item, and a
//! pair is scored by the dot product of the two. Models are trained with an in-batch softmax
//! (TFRS `Retrieval`), evaluated by ranking the whole catalogue (TFRS `FactorizedTopK`), and
//! served by exact or approximate (IVF) top-k over precomputed candidate embeddings. Beyond
//! ids: sequential (GRU) query towers, feature towers, explicit ratings and a ranking model.
//!
//! ```no_run
//! use towers::data::{Catalog, Interactions, TableFormat};
//! use towers::recommend::{Query, Recommender, Request};
//! use towers::{Artifact, EvalOptions, ModelSpec, Trainer, evaluate};
//!
//! # fn main() -> towers::Result<()> {
//! let dir = "../shared/data/ml-100k-splits/tfrs-80-20";
//! let train = Interactions::read(format!("{dir}/train.tsv"), &TableFormat::default())?;
//! let test = Interactions::read(format!("{dir}/test.tsv"), &TableFormat::default())?;
//! let movies = Catalog::read(format!("{dir}/movies.tsv"))?;
//!
//! let model = Trainer::new(ModelSpec::Retrieval).catalog(&movies).fit(&train)?;
//! let e = evaluate(&model, &test, &EvalOptions::new())?;
//! let e = e.ranked()?;
//! println!("top-100 {:.3} (popularity {:.3})", e.model.top_100, e.baseline.top_100);
//!
//! model.save("/tmp/towers-model")?;
//! let recommender = Recommender::new(Artifact::load("/tmp/towers-model")?);
//! for item in recommender.recommend(Query::User("42"), &Request::top(10).exclude_seen(true))?.items {
//!     println!("{:.3}  {}", item.score, item.title);
//! }
//! # Ok(())
//! # }
//! ```
//!
//! Modules follow the data flow (see ARCHITECTURE.md): [`data`] → [`model`] (with [`task`]'s
//! losses) → [`train`] → [`artifact`] → [`eval`] and [`recommend`] (over an [`index`]);
//! [`metrics`] are the measures, [`kernels`] the hand-written numeric hot paths they share.

#![warn(missing_docs)]
// Numeric kernels index several arrays with one loop variable; iterator chains would hide that.
#![allow(clippy::needless_range_loop)]

pub mod artifact;
pub mod config;
pub mod data;
mod error;
pub mod eval;
pub mod index;
pub mod kernels;
pub mod metrics;
pub mod model;
pub mod progress;
pub mod recommend;
pub mod rng;
pub mod task;
pub mod tensors;
pub mod train;

pub use artifact::Artifact;
pub use config::TrainConfig;
pub use error::{Error, ErrorKind, Result};
pub use eval::{EvalOptions, Evaluation, evaluate};
pub use model::{ModelKind, ModelSpec, Recipe, Task};
pub use recommend::{Pipeline, PipelineEvaluation};
pub use recommend::{Query, Recommendation, Recommendations, Recommender, Report, Request, Served};
pub use train::{TrainOptions, Trainer};
