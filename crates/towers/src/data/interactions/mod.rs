//! Interaction tables (who interacted with what, when, how much), held by columns: each id is
//! stored once (in a [`Vocabulary`]) and each row holds 4-byte indices, with the rating, time
//! and weight columns only when the table has them. Read from CSV/TSV files (also `.gz` and
//! `.zst`, streamed) and Parquet files or directories of them.

mod delimited;
mod parquet;

use super::Vocabulary;
use crate::{Error, Result};
use serde::{Deserialize, Serialize};
use std::path::Path;

/// Column names recognised as the query (user) id.
const QUERY_NAMES: &[&str] = &["user", "user_id", "userid", "query", "query_id", "visitorid"];
/// Column names recognised as the candidate (item) id.
const CANDIDATE_NAMES: &[&str] =
    &["item", "item_id", "itemid", "movie", "movie_id", "movieid", "candidate", "candidate_id"];
const RATING_NAMES: &[&str] = &["rating", "ratings", "score"];
const TIME_NAMES: &[&str] = &["timestamp", "time", "ts", "unix_ts"];
/// Column names recognised as a per-example weight of the retrieval loss.
const WEIGHT_NAMES: &[&str] = &["weight", "sample_weight"];

/// The column order of a headerless file when none is given: MovieLens' `u.data`.
pub const DEFAULT_COLUMNS: [&str; 4] = ["user", "item", "rating", "timestamp"];

/// The longest line a text table may have, by default (1 MiB).
pub const MAX_LINE_BYTES: usize = 1 << 20;

/// How to read an interaction table. Every field is optional: the delimiter is guessed from
/// the extension or the first line, a header is detected when the first row names a known
/// column, and a headerless file has MovieLens' columns `user, item, rating, timestamp`.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct TableFormat {
    /// Field delimiter (e.g. `b'\t'`, `b','`).
    pub delimiter: Option<u8>,
    /// Whether the first row is a header; `None` = detect.
    pub header: Option<bool>,
    /// Names of the file's columns, in order (overrides a header). Roles are found by name:
    /// `user`/`user_id`/…, `item`/`movie_id`/…, `rating`, `timestamp`/`time`.
    pub columns: Option<Vec<String>>,
    /// Name of the query-id column, if not one of the recognised names.
    pub query_column: Option<String>,
    /// Name of the candidate-id column, if not one of the recognised names.
    pub candidate_column: Option<String>,
    /// The longest line a text table may have (default [`MAX_LINE_BYTES`]): a longer one is an
    /// error, not a memory blow-up.
    pub max_line_bytes: Option<usize>,
}

/// One rank's part of a data set split between `ranks` ranks ([`Interactions::read_share`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Share {
    /// This rank, in `0..ranks`.
    pub rank: usize,
    /// Ranks sharing the data.
    pub ranks: usize,
}

impl Share {
    /// Where this rank's part of `0..len` starts.
    pub fn part(&self, len: u64) -> u64 {
        (len as u128 * self.rank as u128 / self.ranks as u128) as u64
    }

    /// Where it ends (the next rank's start).
    pub fn part_end(&self, len: u64) -> u64 {
        Share { rank: self.rank + 1, ..*self }.part(len)
    }
}

/// A table of interactions, one row per event: query id, candidate id, and optionally a
/// rating, a timestamp (seconds) and a weight.
///
/// ```
/// use towers::data::{Interactions, Row};
/// // from a file: Interactions::read("u.data", &TableFormat::default()), CSV/TSV/Parquet;
/// // from rows made in code:
/// let rows = [("u1", "i1"), ("u1", "i2"), ("u2", "i1")];
/// let t = Interactions::from_rows(rows.iter().map(|&(query, candidate)| Row { query, candidate, ..Default::default() }))?;
/// assert_eq!((t.len(), t.query_ids().num_keys()), (3, 2));
/// # Ok::<(), towers::Error>(())
/// ```
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Interactions {
    query_ids: Vocabulary,
    candidate_ids: Vocabulary,
    /// Each row's query, as its index in `query_ids` (≥ 1).
    queries: Vec<u32>,
    /// Each row's candidate, as its index in `candidate_ids` (≥ 1).
    candidates: Vec<u32>,
    /// Ratings, if the table has them.
    pub ratings: Option<Vec<f32>>,
    /// Timestamps, if the table has them.
    pub timestamps: Option<Vec<i64>>,
    /// Per-example weights of the retrieval loss (a `weight` column), if the table has them.
    pub weights: Option<Vec<f32>>,
}

/// One row of an interaction table, for building a table in code ([`Interactions::from_rows`]).
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct Row<'a> {
    /// Query (user) id.
    pub query: &'a str,
    /// Candidate (item) id.
    pub candidate: &'a str,
    /// Rating, if the table has ratings.
    pub rating: Option<f32>,
    /// Timestamp (seconds), if the table has them.
    pub timestamp: Option<i64>,
    /// Weight of the example in the retrieval loss, if the table has weights.
    pub weight: Option<f32>,
}

/// Which optional columns a table has.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub(crate) struct Optional {
    pub rating: bool,
    pub timestamp: bool,
    pub weight: bool,
}

/// Finds a column's index by an explicit name, or else by the names its role goes by.
fn find_role(names: &[String], explicit: Option<&str>, known: &[&str]) -> Option<usize> {
    match explicit {
        Some(e) => names.iter().position(|n| n == e),
        None => names.iter().position(|n| known.contains(&n.to_ascii_lowercase().as_str())),
    }
}

/// Which column of a table holds each role, found by name as in files: `user`/`user_id`/…,
/// `item`/`movie_id`/…, `rating`, `timestamp`/`time`, `weight`/`sample_weight` (case-insensitive),
/// or the query and candidate columns a [`TableFormat`] names.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Roles {
    /// The query (user) id column.
    pub query: usize,
    /// The candidate (item) id column.
    pub candidate: usize,
    /// The rating column, if any.
    pub rating: Option<usize>,
    /// The timestamp column, if any.
    pub timestamp: Option<usize>,
    /// The weight column, if any.
    pub weight: Option<usize>,
}

impl Roles {
    /// The roles of the columns called `names`; a table without a query or a candidate column
    /// is an error naming the columns it has and the names looked for.
    pub fn find(names: &[String], format: &TableFormat) -> Result<Roles> {
        let role = |explicit: Option<&str>, known: &[&str], what: &str| {
            find_role(names, explicit, known).ok_or_else(|| {
                Error::Data(format!(
                    "no {what} column among [{}] (name it {}, or pass its name explicitly)",
                    names.join(", "),
                    explicit.map(|e| format!("'{e}'")).unwrap_or_else(|| known.join("/"))
                ))
            })
        };
        Ok(Roles {
            query: role(format.query_column.as_deref(), QUERY_NAMES, "query (user) id")?,
            candidate: role(format.candidate_column.as_deref(), CANDIDATE_NAMES, "candidate (item) id")?,
            rating: find_role(names, None, RATING_NAMES),
            timestamp: find_role(names, None, TIME_NAMES),
            weight: find_role(names, None, WEIGHT_NAMES),
        })
    }

    /// [`Roles::find`] for a file: the error names it.
    fn of_file(path: &Path, names: &[String], format: &TableFormat) -> Result<Roles> {
        Roles::find(names, format).map_err(|e| Error::parse(path, None, e.to_string()))
    }
}

/// A value for an error message: at most 64 characters of it.
pub(crate) fn shown(v: &str) -> String {
    match v.char_indices().nth(64) {
        Some((i, _)) => format!("{}…", &v[..i]),
        None => v.to_string(),
    }
}

impl Interactions {
    /// An empty table with the given optional columns.
    pub(crate) fn with_columns(columns: Optional) -> Self {
        Interactions {
            ratings: columns.rating.then(Vec::new),
            timestamps: columns.timestamp.then(Vec::new),
            weights: columns.weight.then(Vec::new),
            ..Default::default()
        }
    }

    /// Appends a row's ids (its optional values go into their columns separately).
    pub(crate) fn push_ids(&mut self, query: &str, candidate: &str) {
        self.queries.push(self.query_ids.insert(query));
        self.candidates.push(self.candidate_ids.insert(candidate));
    }

    /// Number of rows.
    pub fn len(&self) -> usize {
        self.queries.len()
    }

    /// Whether the table has no rows.
    pub fn is_empty(&self) -> bool {
        self.queries.is_empty()
    }

    /// The query (user) id of row `i`.
    pub fn query(&self, i: usize) -> &str {
        self.query_ids.key(self.queries[i]).unwrap_or_default()
    }

    /// The candidate (item) id of row `i`.
    pub fn candidate(&self, i: usize) -> &str {
        self.candidate_ids.key(self.candidates[i]).unwrap_or_default()
    }

    /// The distinct query ids, in order of first appearance (index `i + 1` for the `i`-th).
    pub fn query_ids(&self) -> &Vocabulary {
        &self.query_ids
    }

    /// The distinct candidate ids, in order of first appearance.
    pub fn candidate_ids(&self) -> &Vocabulary {
        &self.candidate_ids
    }

    /// Each row's query, as its index in [`Interactions::query_ids`].
    pub fn query_indices(&self) -> &[u32] {
        &self.queries
    }

    /// Each row's candidate, as its index in [`Interactions::candidate_ids`].
    pub fn candidate_indices(&self) -> &[u32] {
        &self.candidates
    }

    /// A table from rows made in code (data frames, arrays). The first row says which optional
    /// columns the table has; every row must have the same ones, ids must not be empty, numbers
    /// must be finite and weights ≥ 0 (errors name the row, counted from 1).
    pub fn from_rows<'a>(rows: impl IntoIterator<Item = Row<'a>>) -> Result<Interactions> {
        let mut rows = rows.into_iter().peekable();
        let first = rows.peek().copied().ok_or_else(|| Error::Data("no interactions".into()))?;
        let columns = Optional {
            rating: first.rating.is_some(),
            timestamp: first.timestamp.is_some(),
            weight: first.weight.is_some(),
        };
        let mut out = Interactions::with_columns(columns);
        for (i, r) in rows.enumerate() {
            let bad = |m: &str| Error::Data(format!("row {}: {m}", i + 1));
            if r.query.is_empty() || r.candidate.is_empty() {
                return Err(bad("empty query or candidate id"));
            }
            fn push<T>(col: &mut Option<Vec<T>>, v: Option<T>, ok: impl Fn(&T) -> bool) -> bool {
                match (col, v) {
                    (Some(c), Some(v)) if ok(&v) => {
                        c.push(v);
                        true
                    }
                    (None, None) => true,
                    _ => false,
                }
            }
            if !push(&mut out.ratings, r.rating, |x| x.is_finite()) {
                return Err(bad("a rating missing, present where the first row has none, or not finite"));
            }
            if !push(&mut out.timestamps, r.timestamp, |_| true) {
                return Err(bad("a timestamp missing, or present where the first row has none"));
            }
            if !push(&mut out.weights, r.weight, |w| w.is_finite() && *w >= 0.0) {
                return Err(bad("a weight missing, present where the first row has none, or not a number ≥ 0"));
            }
            out.push_ids(r.query, r.candidate);
        }
        Ok(out)
    }

    /// A new table with the rows at `rows`, in that order (its ids are those of these rows
    /// only, in order of first appearance).
    pub fn select(&self, rows: &[usize]) -> Interactions {
        let mut out = Interactions {
            ratings: self.ratings.as_ref().map(|r| rows.iter().map(|&i| r[i]).collect()),
            timestamps: self.timestamps.as_ref().map(|t| rows.iter().map(|&i| t[i]).collect()),
            weights: self.weights.as_ref().map(|w| rows.iter().map(|&i| w[i]).collect()),
            ..Default::default()
        };
        out.queries.reserve(rows.len());
        out.candidates.reserve(rows.len());
        for &i in rows {
            out.push_ids(self.query(i), self.candidate(i));
        }
        out
    }

    /// Reads an interaction table: a Parquet file (`.parquet`) or a directory of them (one data
    /// set, files in name order), or a CSV/TSV file, plain or compressed (`.gz`, `.zst`), read as
    /// a stream. Errors name the file, the line (row group for Parquet) and the field.
    pub fn read(path: impl AsRef<Path>, format: &TableFormat) -> Result<Interactions> {
        let path = path.as_ref();
        if path.is_dir() || path.extension().is_some_and(|e| e == "parquet") {
            parquet::read(path, format, None)
        } else {
            delimited::read(path, format)
        }
    }

    /// Reads one rank's share of an interaction table, for distributed training: of a CSV/TSV
    /// file (not compressed), the lines that start in the rank's part of the file's bytes; of
    /// Parquet, its part of the row groups (of all files, in order). The shares of ranks
    /// `0..ranks`, one after the other, are the table [`Interactions::read`] reads; no rank
    /// reads the others' rows. A share may be empty.
    pub fn read_share(path: impl AsRef<Path>, format: &TableFormat, share: Share) -> Result<Interactions> {
        let path = path.as_ref();
        if path.is_dir() || path.extension().is_some_and(|e| e == "parquet") {
            parquet::read(path, format, Some(share))
        } else {
            delimited::read_share(path, format, share)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn from_rows_checks_every_row_like_the_first() {
        let row = |q, c, r| Row { query: q, candidate: c, rating: r, ..Default::default() };
        let t = Interactions::from_rows([row("u", "1", Some(4.0)), row("v", "2", Some(3.0))]).unwrap();
        assert_eq!((t.len(), t.ratings.as_deref()), (2, Some(&[4.0f32, 3.0][..])));
        assert_eq!((t.query(1), t.candidate(1)), ("v", "2"));
        let e = Interactions::from_rows([row("u", "1", Some(4.0)), row("v", "2", None)]).unwrap_err();
        assert!(e.to_string().contains("row 2") && e.to_string().contains("rating"), "{e}");
        assert!(Interactions::from_rows([row("", "1", None)]).is_err());
        assert!(Interactions::from_rows([]).is_err());
    }

    #[test]
    fn ids_are_stored_once_and_select_renumbers_them() {
        let row = |q, c| Row { query: q, candidate: c, timestamp: Some(7), ..Default::default() };
        let t = Interactions::from_rows([row("a", "x"), row("b", "y"), row("a", "y"), row("c", "z")]).unwrap();
        assert_eq!((t.query_ids().num_keys(), t.candidate_ids().num_keys()), (3, 3));
        assert_eq!(t.query_indices(), [1, 2, 1, 3]);
        let s = t.select(&[3, 2]);
        assert_eq!((s.query(0), s.candidate(0), s.query(1), s.candidate(1)), ("c", "z", "a", "y"));
        assert_eq!((s.query_ids().num_keys(), s.timestamps.as_deref()), (2, Some(&[7i64, 7][..])));
    }

    #[test]
    fn long_values_are_cut_in_messages() {
        assert_eq!(shown("abc"), "abc");
        let long = "é".repeat(100);
        assert_eq!(shown(&long).chars().count(), 65);
    }
}
