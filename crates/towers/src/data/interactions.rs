//! Interaction tables (who interacted with what, when, how much) read from CSV/TSV files.

use super::text::{csv_reader, delimiter_name, guess_delimiter, read_text};
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
}

/// A table of interactions, one row per event: query id, candidate id, and optionally a
/// rating and a timestamp (seconds).
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Interactions {
    /// Query (user) ids, as in the file.
    pub queries: Vec<String>,
    /// Candidate (item) ids, as in the file.
    pub candidates: Vec<String>,
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
}

impl Interactions {
    /// Number of rows.
    pub fn len(&self) -> usize {
        self.queries.len()
    }

    /// Whether the table has no rows.
    pub fn is_empty(&self) -> bool {
        self.queries.is_empty()
    }

    /// A table from rows made in code (data frames, arrays). The first row says which optional
    /// columns the table has; every row must have the same ones, ids must not be empty, numbers
    /// must be finite and weights ≥ 0 (errors name the row, counted from 1).
    pub fn from_rows<'a>(rows: impl IntoIterator<Item = Row<'a>>) -> Result<Interactions> {
        let mut rows = rows.into_iter().peekable();
        let first = rows.peek().copied().ok_or_else(|| Error::Data("no interactions".into()))?;
        let mut out = Interactions {
            ratings: first.rating.map(|_| Vec::new()),
            timestamps: first.timestamp.map(|_| Vec::new()),
            weights: first.weight.map(|_| Vec::new()),
            ..Default::default()
        };
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
            out.queries.push(r.query.to_string());
            out.candidates.push(r.candidate.to_string());
        }
        Ok(out)
    }

    /// A new table with the rows at `rows`, in that order.
    pub fn select(&self, rows: &[usize]) -> Interactions {
        Interactions {
            queries: rows.iter().map(|&i| self.queries[i].clone()).collect(),
            candidates: rows.iter().map(|&i| self.candidates[i].clone()).collect(),
            ratings: self.ratings.as_ref().map(|r| rows.iter().map(|&i| r[i]).collect()),
            timestamps: self.timestamps.as_ref().map(|t| rows.iter().map(|&i| t[i]).collect()),
            weights: self.weights.as_ref().map(|w| rows.iter().map(|&i| w[i]).collect()),
        }
    }

    /// Reads a CSV/TSV interaction table. Errors name the file, the line and the field.
    pub fn read(path: impl AsRef<Path>, format: &TableFormat) -> Result<Interactions> {
        let path = path.as_ref();
        let text = read_text(path)?;
        Self::parse(path, &text, format)
    }

    fn parse(path: &Path, text: &str, format: &TableFormat) -> Result<Interactions> {
        let delimiter = format.delimiter.unwrap_or_else(|| guess_delimiter(path, text));
        let mut records = csv_reader(text, delimiter).into_records();
        let first = match records.next() {
            None => return Err(Error::parse(path, None, "empty file: no interactions")),
            Some(r) => r.map_err(|e| Error::parse(path, Some(1), e.to_string()))?,
        };
        let first_names: Vec<String> = first.iter().map(|s| s.trim().to_string()).collect();
        let looks_like_header = first_names.iter().any(|n| {
            let n = n.to_ascii_lowercase();
            [QUERY_NAMES, CANDIDATE_NAMES, RATING_NAMES, TIME_NAMES, WEIGHT_NAMES]
                .iter()
                .any(|k| k.contains(&n.as_str()))
                || Some(n.as_str()) == format.query_column.as_deref()
                || Some(n.as_str()) == format.candidate_column.as_deref()
        });
        let header = format.header.unwrap_or(looks_like_header);
        let names: Vec<String> = match (&format.columns, header) {
            (Some(c), _) => c.clone(),
            (None, true) => first_names,
            (None, false) => DEFAULT_COLUMNS.iter().map(|s| s.to_string()).collect(),
        };
        let Roles { query: q, candidate: c, rating: r, timestamp: t, weight: w } =
            Roles::find(&names, format).map_err(|e| Error::parse(path, None, e.to_string()))?;

        let mut out = Interactions {
            ratings: r.map(|_| Vec::new()),
            timestamps: t.map(|_| Vec::new()),
            weights: w.map(|_| Vec::new()),
            ..Default::default()
        };
        let rows = std::iter::once(Ok(first)).skip(usize::from(header)).chain(records);
        for (i, rec) in rows.enumerate() {
            let rec = rec.map_err(|e| Error::parse(path, None, e.to_string()))?;
            let line = rec.position().map(|p| p.line()).unwrap_or(i as u64 + 1);
            if rec.len() != names.len() {
                let hint = if rec.len() == 1 && names.len() > 1 {
                    format!(
                        " (is the file {}-separated? pass the delimiter)",
                        delimiter_name(guess_delimiter(Path::new(""), &rec[0]))
                    )
                } else {
                    String::new()
                };
                return Err(Error::parse(
                    path,
                    Some(line),
                    format!(
                        "expected {} fields ({}) separated by {}, found {}{hint}",
                        names.len(),
                        names.join(", "),
                        delimiter_name(delimiter),
                        rec.len()
                    ),
                ));
            }
            let field = |k: usize| -> Result<&str> {
                let v = rec[k].trim();
                if v.is_empty() {
                    Err(Error::parse(path, Some(line), format!("field '{}' is empty", names[k])))
                } else {
                    Ok(v)
                }
            };
            out.queries.push(field(q)?.to_string());
            out.candidates.push(field(c)?.to_string());
            if let (Some(k), Some(v)) = (r, out.ratings.as_mut()) {
                let s = field(k)?;
                let x: f32 = s.parse().ok().filter(|x: &f32| x.is_finite()).ok_or_else(|| {
                    Error::parse(path, Some(line), format!("field '{}': expected a number, found '{s}'", names[k]))
                })?;
                v.push(x);
            }
            if let (Some(k), Some(v)) = (w, out.weights.as_mut()) {
                let s = field(k)?;
                let x: f32 = s.parse().ok().filter(|x: &f32| x.is_finite() && *x >= 0.0).ok_or_else(|| {
                    Error::parse(path, Some(line), format!("field '{}': expected a weight ≥ 0, found '{s}'", names[k]))
                })?;
                v.push(x);
            }
            if let (Some(k), Some(v)) = (t, out.timestamps.as_mut()) {
                let s = field(k)?;
                let x =
                    s.parse::<i64>().ok().or_else(|| s.parse::<f64>().ok().filter(|f| f.is_finite()).map(|f| f as i64));
                v.push(x.ok_or_else(|| {
                    Error::parse(
                        path,
                        Some(line),
                        format!("field '{}': expected a unix timestamp, found '{s}'", names[k]),
                    )
                })?);
            }
        }
        if out.is_empty() {
            return Err(Error::parse(path, None, "no interactions (only a header)"));
        }
        Ok(out)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(name: &str, text: &str, f: &TableFormat) -> Result<Interactions> {
        Interactions::parse(Path::new(name), text, f)
    }

    #[test]
    fn weight_column_is_read_and_checked() {
        let t = parse("a.csv", "user,item,weight\n1,10,2.5\n2,20,0\n", &Default::default()).unwrap();
        assert_eq!(t.weights, Some(vec![2.5, 0.0]));
        assert_eq!(t.select(&[1]).weights, Some(vec![0.0]));
        let e = parse("a.csv", "user,item,weight\n1,10,-1\n", &Default::default()).unwrap_err().to_string();
        assert!(e.contains("a.csv") && e.contains(":2") && e.contains("weight"), "{e}");
    }

    #[test]
    fn headerless_tsv_has_movielens_columns() {
        let t = parse("a.tsv", "1\t10\t4\t881250949\n2\t20\t3.5\t881250950\n", &Default::default()).unwrap();
        assert_eq!(t.queries, ["1", "2"]);
        assert_eq!(t.candidates, ["10", "20"]);
        assert_eq!(t.ratings.unwrap(), [4.0, 3.5]);
        assert_eq!(t.timestamps.unwrap(), [881250949, 881250950]);
    }

    #[test]
    fn header_and_chosen_columns() {
        let t = parse("a.csv", "userId,movieId,rating,timestamp\n1,10,4,5\n", &Default::default()).unwrap();
        assert_eq!((t.queries[0].as_str(), t.candidates[0].as_str()), ("1", "10"));
        let f = TableFormat { columns: Some(vec!["user_id".into(), "movie_id".into()]), ..Default::default() };
        let t = parse("a.tsv", "1\t10\n", &f).unwrap();
        assert_eq!(t.candidates, ["10"]);
        assert!(t.ratings.is_none() && t.timestamps.is_none());
    }

    #[test]
    fn malformed_input_names_file_line_and_field() {
        let d = TableFormat::default();
        let e = parse("bad.tsv", "1\t2\n", &d).unwrap_err().to_string();
        assert!(e.contains("bad.tsv:1") && e.contains("expected 4 fields"), "{e}");
        let e = parse("bad.tsv", "1\t2\t4\t5\n1\t2\tfive\t6\n", &d).unwrap_err().to_string();
        assert!(e.contains("bad.tsv:2") && e.contains("'rating'") && e.contains("five"), "{e}");
        let e = parse("empty.tsv", "", &d).unwrap_err().to_string();
        assert!(e.contains("empty.tsv") && e.contains("empty"), "{e}");
        let e = parse("trunc.tsv", "1\t2\t4\t5\n3\t4\t", &d).unwrap_err().to_string();
        assert!(e.contains("trunc.tsv:2"), "{e}");
        let e = parse("x.tsv", "1,2,4,5\n", &d).unwrap_err().to_string();
        assert!(e.contains("found 1") && e.contains("','"), "{e}");
        let e = parse("x.csv", "foo,movie_id\n1,2\n", &d).unwrap_err().to_string();
        assert!(e.contains("x.csv") && e.contains("no query"), "{e}");
        let e = parse("x.tsv", "1\t2\t4\tnever\n", &d).unwrap_err().to_string();
        assert!(e.contains("'timestamp'"), "{e}");
    }

    #[test]
    fn from_rows_checks_every_row_like_the_first() {
        let row = |q, c, r| Row { query: q, candidate: c, rating: r, ..Default::default() };
        let t = Interactions::from_rows([row("u", "1", Some(4.0)), row("v", "2", Some(3.0))]).unwrap();
        assert_eq!((t.len(), t.ratings.as_deref()), (2, Some(&[4.0f32, 3.0][..])));
        let e = Interactions::from_rows([row("u", "1", Some(4.0)), row("v", "2", None)]).unwrap_err();
        assert!(e.to_string().contains("row 2") && e.to_string().contains("rating"), "{e}");
        assert!(Interactions::from_rows([row("", "1", None)]).is_err());
        assert!(Interactions::from_rows([]).is_err());
    }

    #[test]
    fn select_keeps_columns_aligned() {
        let t = parse("a.tsv", "1\t10\t4\t7\n2\t20\t3\t8\n", &Default::default()).unwrap();
        let s = t.select(&[1]);
        assert_eq!((s.queries[0].as_str(), s.ratings.unwrap()[0], s.timestamps.unwrap()[0]), ("2", 3.0, 8));
    }
}
