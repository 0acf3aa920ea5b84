//! Reading and preparing data: interaction tables, item catalogues, vocabularies, splits.

mod catalog;
mod interactions;
pub mod movielens;
pub mod npy;
mod sequence;
mod sessions;
mod split;
mod text;
mod vocab;

pub use catalog::Catalog;
pub use interactions::{Interactions, TableFormat};
pub use sequence::{Positions, SequenceExamples};
pub use sessions::{RetailRocketPrep, Sessions};
pub use split::Split;
pub use vocab::Vocabulary;

mod dataset;
pub mod features;
pub use dataset::{CandidateKey, Dataset, Items, counts};
