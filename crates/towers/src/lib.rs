//! # towers — two-tower retrieval recommenders
//!
//! A query tower embeds a user, a candidate tower embeds an item, and a pair is scored by the
//! dot product of the two. Models are trained with an in-batch softmax (TFRS `Retrieval`),
//! evaluated by ranking the whole catalogue (TFRS `FactorizedTopK`), and served by exact or
//! approximate (IVF) top-k over precomputed candidate embeddings. Beyond ids: sequential (GRU)
//! query towers, feature towers, explicit ratings and a ranking model.
//!
//! ```no_run
//! use towers::data::{Catalog, Interactions, TableFormat};
//! use towers::{Artifact, TrainConfig};
//!
//! # fn main() -> towers::Result<()> {
//! let dir = "../shared/data/ml-100k-splits/tfrs-80-20";
//! let train = Interactions::read(format!("{dir}/train.tsv"), &TableFormat::default())?;
//! let test = Interactions::read(format!("{dir}/test.tsv"), &TableFormat::default())?;
//! let movies = Catalog::read(format!("{dir}/movies.tsv"))?;
//!
//! let model = Artifact::train(TrainConfig::default(), &train, Some(&movies), None, true)?;
//! let eval = model.evaluate(&test, false)?;
//! println!("top-100 {:.3} (popularity {:.3})", eval.model.top_100, eval.baseline.top_100);
//!
//! for item in model.recommend("42", 10, true)?.items {
//!     println!("{:.3}  {}", item.score, item.title);
//! }
//! model.save("/tmp/towers-model")?;
//! let again = Artifact::load("/tmp/towers-model")?;
//! # let _ = again;
//! # Ok(())
//! # }
//! ```
//!
//! Modules follow the data flow: [`data`] → [`model`] → [`task`] → [`train`] → [`eval`] →
//! [`artifact`] → [`index`]; [`kernels`] holds the hand-written numeric hot paths they share.

#![warn(missing_docs)]
// Numeric kernels index several arrays with one loop variable; iterator chains would hide that.
#![allow(clippy::needless_range_loop)]

pub mod artifact;
pub mod data;
mod error;
pub mod eval;
pub mod index;
pub mod kernels;
pub mod model;
pub mod rng;
pub mod task;
pub mod train;

pub use artifact::{Artifact, Evaluation, Recommendation, Recommendations};
pub use error::{Error, Result};
pub use train::{TrainConfig, Trainer};
