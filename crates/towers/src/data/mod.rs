//! Reading and preparing data: interaction tables, item catalogues, sessions, attribute
//! tables; vocabularies, candidate rows, splits and the encoded training set.

mod catalog;
mod dataset;
mod embeddings;
pub mod features;
mod format;
mod interactions;
mod items;
pub mod movielens;
pub mod npy;
mod recommendations;
mod seen;
mod sequence;
mod sessions;
mod split;
pub mod synthetic;
pub(crate) mod text;
mod vocab;

pub use catalog::Catalog;
pub use dataset::{Dataset, Earlier, counts};
pub use embeddings::EmbeddingsWriter;
pub use format::{InputFormat, ReadSequences};
pub use interactions::{Interactions, MAX_LINE_BYTES, Roles, Row, Share, TableFormat};
pub use items::{CandidateKey, Items};
pub use recommendations::{RecommendationRows, RecommendationsWriter, read_ids};
pub use seen::Seen;
pub use sequence::{Positions, SequenceExamples, Sequences, window};
pub use sessions::{RetailRocketPrep, Sessions};
pub use split::Split;
pub use vocab::Vocabulary;

/// Data to train on or to test with: an interaction table, or item sequences (sequential
/// models). Both the trainer and the evaluation take it.
#[derive(Debug, Clone, Copy)]
pub enum Data<'a> {
    /// Who interacted with what (and, where the table has them, ratings, times and weights).
    Interactions(&'a Interactions),
    /// Item sequences: sessions or user histories; in test data the last item is the target.
    Sequences(&'a Sessions),
}

impl<'a> From<&'a Interactions> for Data<'a> {
    fn from(t: &'a Interactions) -> Self {
        Data::Interactions(t)
    }
}

impl<'a> From<&'a Sessions> for Data<'a> {
    fn from(s: &'a Sessions) -> Self {
        Data::Sequences(s)
    }
}

/// [`Data`] read from a file and owned.
#[derive(Debug, Clone)]
pub enum OwnedData {
    /// An interaction table.
    Interactions(Box<Interactions>),
    /// Item sequences.
    Sequences(Box<Sessions>),
}

impl<'a> From<&'a OwnedData> for Data<'a> {
    fn from(d: &'a OwnedData) -> Self {
        match d {
            OwnedData::Interactions(t) => Data::Interactions(t),
            OwnedData::Sequences(s) => Data::Sequences(s),
        }
    }
}
