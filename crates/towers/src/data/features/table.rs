//! Attribute tables: named columns of strings per user or item id.

use crate::data::movielens::MovieLens;
use crate::data::text::{csv_reader, guess_delimiter, read_text};
use crate::{Error, Result};
use std::collections::HashMap;
use std::path::Path;

/// Attributes of entities (users or items): named columns of strings, one row per id.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct AttributeTable {
    /// Column names (the id column excluded).
    pub columns: Vec<String>,
    /// Id → that entity's values, aligned with `columns`.
    pub rows: HashMap<String, Vec<String>>,
    /// Where it came from, for error messages.
    pub source: String,
}

impl AttributeTable {
    /// Reads a CSV/TSV/`|` table with a header row whose first column is the id.
    pub fn read(path: impl AsRef<Path>) -> Result<Self> {
        let path = path.as_ref();
        let text = read_text(path)?;
        let mut reader = csv_reader(&text, guess_delimiter(path, &text));
        let mut records = reader.records();
        let header = match records.next() {
            Some(Ok(h)) => h,
            Some(Err(e)) => return Err(Error::parse(path, Some(1), e.to_string())),
            None => return Err(Error::parse(path, None, "empty attribute table")),
        };
        let columns: Vec<String> = header.iter().skip(1).map(|s| s.trim().to_string()).collect();
        let mut rows = HashMap::new();
        for (i, rec) in records.enumerate() {
            let line = i as u64 + 2;
            let rec = rec.map_err(|e| Error::parse(path, Some(line), e.to_string()))?;
            if rec.len() != columns.len() + 1 {
                return Err(Error::parse(
                    path,
                    Some(line),
                    format!("expected {} fields (as the header), found {}", columns.len() + 1, rec.len()),
                ));
            }
            rows.insert(rec[0].trim().to_string(), rec.iter().skip(1).map(|s| s.trim().to_string()).collect());
        }
        Ok(AttributeTable { columns, rows, source: path.display().to_string() })
    }

    /// MovieLens users (`u.user`): age, gender, occupation, zip.
    pub fn movielens_users(ml: &MovieLens) -> Self {
        AttributeTable {
            columns: ["age", "gender", "occupation", "zip"].map(String::from).to_vec(),
            rows: ml
                .users
                .iter()
                .map(|u| (u.id.clone(), vec![u.age.to_string(), u.gender.clone(), u.occupation.clone(), u.zip.clone()]))
                .collect(),
            source: "u.user".into(),
        }
    }

    /// MovieLens movies (`u.item`): title, release_date, genres (`|`-separated).
    pub fn movielens_items(ml: &MovieLens) -> Self {
        AttributeTable {
            columns: ["title", "release_date", "genres"].map(String::from).to_vec(),
            rows: (0..ml.movies.ids.len())
                .map(|i| {
                    let values =
                        vec![ml.movies.titles[i].clone(), ml.movie_dates[i].clone(), ml.movie_genres[i].join("|")];
                    (ml.movies.ids[i].clone(), values)
                })
                .collect(),
            source: "u.item".into(),
        }
    }

    pub(crate) fn column(&self, name: &str) -> Result<usize> {
        self.columns.iter().position(|c| c == name).ok_or_else(|| {
            Error::Config(format!("{}: no column '{name}' (columns: {})", self.source, self.columns.join(", ")))
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn attribute_table_reads_header_and_names_bad_lines() {
        let dir = std::env::temp_dir().join(format!("towers-attr-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let p = dir.join("users.csv");
        std::fs::write(&p, "id,age,gender\n1,23,M\n2,40,F\n").unwrap();
        let t = AttributeTable::read(&p).unwrap();
        assert_eq!(t.columns, ["age", "gender"]);
        assert_eq!(t.rows["2"], ["40", "F"]);
        std::fs::write(&p, "id,age,gender\n1,23\n").unwrap();
        let e = AttributeTable::read(&p).unwrap_err().to_string();
        assert!(e.contains("users.csv") && e.contains('2'), "{e}");
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
