//! Python values as the library's data: interaction tables (a path or a table), item sequences
//! (a path, a list of lists, or a table of timestamped interactions) and item catalogues.

use crate::columns::{self, Column, Values, is_table};
use crate::errors::{IntoPy, config, input};
use pyo3::prelude::*;
use pyo3::types::{PyDict, PyList, PyString, PyTuple};
use std::path::PathBuf;
use towers::data::{Catalog, InputFormat, Interactions, ReadSequences, Roles, Row, Sessions, TableFormat};

/// How files are read: the CLI's `--columns`, `--delimiter`, `--header`/`--no-header` (as
/// `columns=[…]`, `delimiter="tab"`, `header=True/False`) and, for test sequences,
/// `--test-format` (`test_format="sessions"`).
#[derive(Debug, Clone, Default)]
pub struct ReadOptions {
    /// How interaction tables are read.
    pub table: TableFormat,
    /// The layout of a sequential model's test file.
    pub test_format: Option<InputFormat>,
}

impl ReadOptions {
    /// The options in `kwargs`; any other name is a `ConfigError`.
    pub fn from_kwargs(py: Python<'_>, kwargs: Option<&Bound<'_, PyDict>>) -> PyResult<ReadOptions> {
        let mut out = ReadOptions::default();
        let Some(kwargs) = kwargs else { return Ok(out) };
        for (k, v) in kwargs.iter() {
            let key: String = k.extract()?;
            if v.is_none() {
                continue;
            }
            match key.as_str() {
                "columns" => out.table.columns = Some(v.extract()?),
                "header" => out.table.header = Some(v.extract()?),
                "delimiter" => {
                    out.table.delimiter = match v.extract::<String>()?.as_str() {
                        "tab" | "\\t" | "\t" => Some(b'\t'),
                        "comma" => Some(b','),
                        s if s.len() == 1 => Some(s.as_bytes()[0]),
                        s => return Err(config(py, format!("delimiter '{s}': expected tab, comma or one character"))),
                    }
                }
                "test_format" => out.test_format = Some(crate::options::enum_value(py, "test_format", &v)?),
                other => {
                    return Err(config(
                        py,
                        format!("unknown option `{other}`: files take columns, delimiter, header and test_format"),
                    ));
                }
            }
        }
        Ok(out)
    }
}

/// The path a `str` or `os.PathLike` names; `None` for anything else.
pub fn path_of(obj: &Bound<'_, PyAny>) -> PyResult<Option<PathBuf>> {
    if obj.is_instance_of::<PyString>() || obj.hasattr("__fspath__")? {
        let os = obj.py().import("os")?;
        return Ok(Some(os.call_method1("fspath", (obj,))?.extract::<PathBuf>()?));
    }
    Ok(None)
}

/// An interaction table: a file, or a table whose columns are found by name.
pub fn interactions(obj: &Bound<'_, PyAny>, format: &TableFormat) -> PyResult<Interactions> {
    let py = obj.py();
    if let Some(path) = path_of(obj)? {
        return py.detach(|| Interactions::read(&path, format)).py_err(py);
    }
    let mut roles = None;
    let mut columns = columns::read(obj, &mut |names| {
        let r = Roles::find(names, format).py_err(py)?;
        roles = Some(r);
        Ok([Some(r.query), Some(r.candidate), r.rating, r.timestamp, r.weight].into_iter().flatten().collect())
    })?;
    let Some(roles) = roles else { return Err(input(py, "no columns")) };
    let mut take = |i: usize| columns.get_mut(i).and_then(Option::take).ok_or_else(|| input(py, "a column is missing"));
    let queries = ids(py, take(roles.query)?)?;
    let candidates = ids(py, take(roles.candidate)?)?;
    let ratings = roles.rating.map(|i| take(i).and_then(|c| numbers(py, c))).transpose()?;
    let timestamps = roles.timestamp.map(|i| take(i).and_then(|c| times(py, c))).transpose()?;
    let weights = roles.weight.map(|i| take(i).and_then(|c| numbers(py, c))).transpose()?;
    let rows = (0..queries.len()).map(|i| Row {
        query: &queries[i],
        candidate: &candidates[i],
        rating: ratings.as_ref().map(|r| r[i]),
        timestamp: timestamps.as_ref().map(|t| t[i]),
        weight: weights.as_ref().map(|w| w[i]),
    });
    Interactions::from_rows(rows).py_err(py)
}

/// Ids: texts as they are, integers written out; a missing id is an error naming its row.
fn ids(py: Python<'_>, c: Column) -> PyResult<Vec<String>> {
    let missing = |i: usize| input(py, format!("column '{}' row {}: missing id", c.name, i + 1));
    match c.values {
        Values::Text(v) => v.into_iter().enumerate().map(|(i, s)| s.ok_or_else(|| missing(i))).collect(),
        Values::Int(v) => Ok(v.iter().map(i64::to_string).collect()),
        Values::Float(v) => v
            .iter()
            .enumerate()
            .map(|(i, &f)| match f {
                f if f.is_nan() => Err(missing(i)),
                f if f.fract() == 0.0 && f.abs() < 9.0e15 => Ok((f as i64).to_string()),
                f => Err(input(py, format!("column '{}' row {}: expected an id, found {f}", c.name, i + 1))),
            })
            .collect(),
    }
}

/// Ratings and weights (missing values are NaN, which the table's checks refuse by row).
fn numbers(py: Python<'_>, c: Column) -> PyResult<Vec<f32>> {
    match c.values {
        Values::Float(v) => Ok(v.iter().map(|&x| x as f32).collect()),
        Values::Int(v) => Ok(v.iter().map(|&x| x as f32).collect()),
        Values::Text(v) => v
            .iter()
            .enumerate()
            .map(|(i, s)| {
                s.as_deref().and_then(|s| s.trim().parse::<f32>().ok()).ok_or_else(|| {
                    input(py, format!("column '{}' row {}: expected a number, found {s:?}", c.name, i + 1))
                })
            })
            .collect(),
    }
}

/// Timestamps in seconds (datetimes are converted when the column is read).
fn times(py: Python<'_>, c: Column) -> PyResult<Vec<i64>> {
    let bad = |i: usize, found: String| {
        input(py, format!("column '{}' row {}: expected a unix timestamp, found {found}", c.name, i + 1))
    };
    match c.values {
        Values::Int(v) => Ok(v),
        Values::Float(v) => v
            .iter()
            .enumerate()
            .map(|(i, &f)| if f.is_finite() { Ok(f as i64) } else { Err(bad(i, f.to_string())) })
            .collect(),
        Values::Text(v) => v
            .iter()
            .enumerate()
            .map(|(i, s)| {
                let t = s.as_deref().map(str::trim);
                t.and_then(|t| {
                    t.parse::<i64>().ok().or_else(|| t.parse::<f64>().ok().filter(|f| f.is_finite()).map(|f| f as i64))
                })
                .ok_or_else(|| bad(i, format!("{s:?}")))
            })
            .collect(),
    }
}

/// Training sequences: a file in `format`, a list of item lists (oldest first), or a table of
/// timestamped interactions (one history per user); with the test sequences the format holds
/// out itself (RetailRocket events).
pub fn sequences(obj: &Bound<'_, PyAny>, format: InputFormat, table: &TableFormat) -> PyResult<ReadSequences> {
    let py = obj.py();
    if let Some(path) = path_of(obj)? {
        return py.detach(|| format.read_sequences(&path, table)).py_err(py);
    }
    Ok(ReadSequences { sequences: in_memory_sequences(obj, table)?, held_out: None })
}

/// Test sequences (the last item of each is the target): as [`sequences`], a file's test part.
pub fn test_sequences(obj: &Bound<'_, PyAny>, format: InputFormat, table: &TableFormat) -> PyResult<Sessions> {
    let py = obj.py();
    if let Some(path) = path_of(obj)? {
        return py.detach(|| format.read_test_sequences(&path, table)).py_err(py);
    }
    in_memory_sequences(obj, table)
}

fn in_memory_sequences(obj: &Bound<'_, PyAny>, table: &TableFormat) -> PyResult<Sessions> {
    let py = obj.py();
    if is_table(obj) {
        let t = interactions(obj, table)?;
        return Sessions::from_interactions(&t).py_err(py);
    }
    if !(obj.is_instance_of::<PyList>() || obj.is_instance_of::<PyTuple>()) {
        return Err(input(
            py,
            format!(
                "expected sequences as a path, a list of item lists or a table of timestamped interactions, got {}",
                obj.get_type().name()?
            ),
        ));
    }
    let mut items = Vec::new();
    for (i, s) in obj.try_iter()?.enumerate() {
        let s = s?;
        let values = columns::array_values(&format!("sequence {}", i + 1), &s)?;
        items.push(ids(py, Column { name: format!("sequence {}", i + 1), values })?);
    }
    Ok(Sessions { items, ids: None })
}

/// Names of an item catalogue's id and title columns.
const ID_NAMES: &[&str] =
    &["id", "item", "item_id", "itemid", "movie", "movie_id", "movieid", "candidate", "candidate_id"];
const TITLE_NAMES: &[&str] = &["title", "name", "movie_title"];

/// An item catalogue: a file (`movies.tsv`, `u.item`, `movies.csv`) or a table with an id and a
/// title column.
pub fn catalog(obj: &Bound<'_, PyAny>) -> PyResult<Catalog> {
    let py = obj.py();
    if let Some(path) = path_of(obj)? {
        return py.detach(|| Catalog::read(&path)).py_err(py);
    }
    let mut found = None;
    let mut columns = columns::read(obj, &mut |names| {
        let find = |known: &[&str]| names.iter().position(|n| known.contains(&n.to_ascii_lowercase().as_str()));
        match (find(ID_NAMES), find(TITLE_NAMES)) {
            (Some(i), Some(t)) => {
                found = Some((i, t));
                Ok(vec![i, t])
            }
            _ => Err(input(
                py,
                format!(
                    "an item catalogue needs an id column ({}) and a title column ({}); found [{}]",
                    ID_NAMES.join("/"),
                    TITLE_NAMES.join("/"),
                    names.join(", ")
                ),
            )),
        }
    })?;
    let Some((i, t)) = found else { return Err(input(py, "no columns")) };
    let (Some(id_column), Some(title_column)) = (columns[i].take(), columns[t].take()) else {
        return Err(input(py, "a column is missing"));
    };
    let ids = ids(py, id_column)?;
    let titles: Vec<String> = match title_column.values {
        Values::Text(v) => v.into_iter().map(Option::unwrap_or_default).collect(),
        _ => return Err(input(py, format!("column '{}': expected titles (text)", title_column.name))),
    };
    Ok(Catalog::from_pairs(ids.into_iter().zip(titles)))
}
