//! Reading and preparing data: interaction tables, item catalogues, sessions, attribute
//! tables; vocabularies, candidate rows, splits and the encoded training set.

mod catalog;
mod dataset;
pub mod features;
mod format;
mod interactions;
mod items;
pub mod movielens;
pub mod npy;
mod seen;
mod sequence;
mod sessions;
mod split;
pub mod synthetic;
pub(crate) mod text;
mod vocab;

pub use catalog::Catalog;
pub use dataset::{Dataset, counts};
pub use format::{InputFormat, ReadSequences};
pub use interactions::{Interactions, MAX_LINE_BYTES, Roles, Row, TableFormat};
pub use items::{CandidateKey, Items};
pub use seen::Seen;
pub use sequence::{Positions, SequenceExamples};
pub use sessions::{RetailRocketPrep, Sessions};
pub use split::Split;
pub use vocab::Vocabulary;
