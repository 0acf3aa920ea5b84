//! Item catalogues: candidate id → title (MovieLens `u.item`, `movies.tsv`, `movies.csv`).

use super::interactions::shown;
use super::text::{csv_reader, guess_delimiter, read_text};
use crate::{Error, Result};
use std::collections::HashMap;
use std::path::Path;

/// The items a model can recommend, with their titles, in file order.
///
/// ```no_run
/// # fn main() -> towers::Result<()> {
/// use towers::data::Catalog;
/// let movies = Catalog::read("u.item")?; // also movies.tsv (id, title) or movies.csv
/// println!("{} items, the first {}", movies.ids.len(), movies.titles[0]);
/// # Ok(()) }
/// ```
#[derive(Debug, Clone, Default)]
pub struct Catalog {
    /// Item ids.
    pub ids: Vec<String>,
    /// Titles, aligned with `ids`.
    pub titles: Vec<String>,
    index: HashMap<String, usize>,
}

impl Catalog {
    /// Builds a catalogue from (id, title) pairs; a repeated id keeps its first title.
    pub fn from_pairs(pairs: impl IntoIterator<Item = (String, String)>) -> Self {
        let mut c = Catalog::default();
        for (id, title) in pairs {
            if !c.index.contains_key(&id) {
                c.index.insert(id.clone(), c.ids.len());
                c.ids.push(id);
                c.titles.push(title);
            }
        }
        c
    }

    /// Reads a catalogue file: the first field is the id, the second the title. The delimiter
    /// is guessed (tab, `|` as in `u.item`, or `,` with quoted titles); a header row (first
    /// field not an id, e.g. `movieId`) is skipped; latin-1 files are decoded to UTF-8. A
    /// repeated id is an error.
    pub fn read(path: impl AsRef<Path>) -> Result<Catalog> {
        let path = path.as_ref();
        let text = read_text(path)?;
        let delimiter = guess_delimiter(path, &text);
        let mut pairs = Vec::new();
        let mut lines: HashMap<String, u64> = HashMap::new();
        for (i, rec) in csv_reader(&text, delimiter).into_records().enumerate() {
            let rec = rec.map_err(|e| Error::parse(path, None, e.to_string()))?;
            let line = rec.position().map(|p| p.line()).unwrap_or(i as u64 + 1);
            if rec.len() < 2 {
                return Err(Error::parse(
                    path,
                    Some(line),
                    format!("expected at least 2 fields (id, title), found {}", rec.len()),
                ));
            }
            let (id, title) = (rec[0].trim(), rec[1].trim());
            if i == 0
                && ["id", "movieid", "movie_id", "item_id", "itemid", "item"]
                    .contains(&id.to_ascii_lowercase().as_str())
            {
                continue;
            }
            if id.is_empty() {
                return Err(Error::parse(path, Some(line), "field 'id' is empty"));
            }
            if let Some(first) = lines.insert(id.to_string(), line) {
                return Err(Error::parse(
                    path,
                    Some(line),
                    format!("field 'id': item {} is already on line {first} (ids must be unique)", shown(id)),
                ));
            }
            pairs.push((id.to_string(), title.to_string()));
        }
        if pairs.is_empty() {
            return Err(Error::parse(path, None, "empty file: no items"));
        }
        Ok(Self::from_pairs(pairs))
    }

    /// Number of items.
    pub fn len(&self) -> usize {
        self.ids.len()
    }

    /// Whether the catalogue is empty.
    pub fn is_empty(&self) -> bool {
        self.ids.is_empty()
    }

    /// The title of an item id.
    pub fn title(&self, id: &str) -> Option<&str> {
        self.index.get(id).map(|&i| self.titles[i].as_str())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_tsv_pipe_and_csv_with_header() {
        let dir = std::env::temp_dir().join(format!("towers-cat-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let p = dir.join("movies.tsv");
        std::fs::write(&p, "1\tToy Story (1995)\n2\tGoldenEye (1995)\n").unwrap();
        let c = Catalog::read(&p).unwrap();
        assert_eq!(c.title("2"), Some("GoldenEye (1995)"));
        let p = dir.join("u.item");
        std::fs::write(&p, b"7|Mis\xe9rables, Les (1995)|01-Jan-1995||http://x|0|1\n").unwrap();
        assert_eq!(Catalog::read(&p).unwrap().title("7"), Some("Misérables, Les (1995)"));
        let p = dir.join("movies.csv");
        std::fs::write(&p, "movieId,title,genres\n11,\"American President, The (1995)\",Comedy\n").unwrap();
        let c = Catalog::read(&p).unwrap();
        assert_eq!((c.len(), c.title("11")), (1, Some("American President, The (1995)")));
        std::fs::write(&p, "").unwrap();
        assert!(Catalog::read(&p).unwrap_err().to_string().contains("movies.csv"));
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
