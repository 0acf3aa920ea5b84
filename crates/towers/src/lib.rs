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
//! use towers::{EvalOptions, ModelSpec, Query, Request, Served, Trainer};
//!
//! # fn main() -> towers::Result<()> {
//! let dir = "../shared/data/ml-100k-splits/tfrs-80-20";
//! let train = Interactions::read(format!("{dir}/train.tsv"), &TableFormat::default())?;
//! let test = Interactions::read(format!("{dir}/test.tsv"), &TableFormat::default())?;
//! let movies = Catalog::read(format!("{dir}/movies.tsv"))?;
//!
//! // train (any kind, or a pipeline with `Trainer::pipeline`), evaluate, save
//! let model = Trainer::new(ModelSpec::Retrieval).catalog(&movies).fit_served(&train)?;
//! println!("{}", model.evaluate(&test, &EvalOptions::new().exclude_seen(true))?);
//! model.save("/tmp/towers-model")?;
//!
//! // any model directory, a model or a pipeline: one type, one set of request rules
//! let served = Served::load("/tmp/towers-model")?;
//! for item in served.recommend(Query::User("42"), &Request::top(10).exclude_seen(true))?.items {
//!     println!("{:.3}  {}", item.score, item.title);
//! }
//! // continue it tomorrow on new data: `Trainer::init_from(&served)`
//! # Ok(())
//! # }
//! ```
//!
//! Modules follow the data flow (see ARCHITECTURE.md, and the book under `docs/`): [`data`]
//! reads files and tables → [`model`] (with [`task`]'s losses) is what [`train`]'s
//! [`Trainer`] fits → [`artifact`] is the model directory → [`eval`] measures it and
//! [`recommend`] serves it ([`Served`], over an [`index`] or a
//! [`CandidateStore`](recommend::CandidateStore)); [`metrics`] are the measures, [`kernels`]
//! the hand-written numeric hot paths they share.

#![deny(missing_docs)]
// Numeric kernels index several arrays with one loop variable; iterator chains would hide that.
#![allow(clippy::needless_range_loop)]

pub mod artifact;
pub mod config;
pub mod data;
pub mod dist;
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

// the Rust snippets of the README and the book compile (`cargo test --doc`)
#[cfg(doctest)]
#[doc = include_str!("../../../README.md")]
struct ReadmeSnippets;
#[cfg(doctest)]
#[doc = include_str!("../../../docs/src/guides/getting-started.md")]
struct GettingStartedSnippets;
