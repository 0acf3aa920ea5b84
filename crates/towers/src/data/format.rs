//! The layouts of training and test files, and reading sequences from each.

use super::{Interactions, RetailRocketPrep, Sessions, TableFormat};
use crate::{Error, Result};
use serde::{Deserialize, Serialize};
use std::path::Path;

/// How a file of interactions or sequences is laid out.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[cfg_attr(feature = "clap", derive(clap::ValueEnum))]
#[serde(rename_all = "snake_case")]
pub enum InputFormat {
    /// An interaction table (CSV/TSV, [`Interactions`]); as sequences, one history per user in
    /// time order (it needs a timestamp column).
    Interactions,
    /// One session per line, item ids separated by spaces or commas; in training every
    /// position is an example, in a test file the last item is the target.
    #[default]
    Sessions,
    /// One example per line: `query<TAB>context ids (0 = padding)<TAB>target`.
    Examples,
    /// GRU4Rec's `SessionId<TAB>ItemId<TAB>Time` table with a header (events put in time order).
    Gru4rec,
    /// RetailRocket's raw `events.csv`, turned into sessions by GRU4Rec's preprocessing
    /// ([`RetailRocketPrep`]): its training sessions for training, its test sessions (the last
    /// 7 days) for evaluation.
    #[serde(alias = "retailrocket-events")]
    RetailrocketEvents,
}

/// Sequences read from a file, and the test sequences the file's format holds out itself
/// (RetailRocket events: its last 7 days).
#[derive(Debug, Clone)]
pub struct ReadSequences {
    /// The file's sequences (training sessions, for RetailRocket events).
    pub sequences: Sessions,
    /// Test sequences held out by the format.
    pub held_out: Option<Sessions>,
}

impl InputFormat {
    /// Reads a file in this layout as item sequences; `table` says how to read an interaction
    /// table (per-user histories in time order).
    pub fn read_sequences(self, path: &Path, table: &TableFormat) -> Result<ReadSequences> {
        let sequences = match self {
            InputFormat::Sessions => Sessions::read_lines(path)?,
            InputFormat::Examples => Sessions::read_examples(path)?,
            InputFormat::Gru4rec => Sessions::read_gru4rec(path)?,
            InputFormat::Interactions => read_histories(path, table)?,
            InputFormat::RetailrocketEvents => {
                let (train, test) = RetailRocketPrep::default().apply(path)?;
                return Ok(ReadSequences { sequences: train, held_out: Some(test) });
            }
        };
        Ok(ReadSequences { sequences, held_out: None })
    }

    /// Reads a test file in this layout: its sequences, or, for RetailRocket events, the test
    /// sessions of its preprocessing. The last item of each sequence is the target.
    pub fn read_test_sequences(self, path: &Path, table: &TableFormat) -> Result<Sessions> {
        let read = self.read_sequences(path, table)?;
        Ok(read.held_out.unwrap_or(read.sequences))
    }
}

/// Per-user histories of an interaction table, which needs a timestamp column.
fn read_histories(path: &Path, table: &TableFormat) -> Result<Sessions> {
    let t = Interactions::read(path, table)?;
    if t.timestamps.is_none() {
        return Err(Error::parse(
            path,
            None,
            "user histories need a timestamp column (name it in the header or with `columns` user,item,rating,timestamp)",
        ));
    }
    Sessions::from_interactions(&t)
}
