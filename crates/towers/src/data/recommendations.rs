//! Writing recommendations in bulk (`towers recommend --all-users --out FILE`): one row per
//! (user, rank) — `user`, `rank` (1 = best), `item`, `score` — as Parquet, TSV or JSON lines,
//! chosen by the file's extension. Rows arrive in blocks and are written as they come (one
//! Parquet row group per block), so memory stays bounded; the file appears whole under its name
//! when [`RecommendationsWriter::finish`] succeeds (written beside it, then renamed), never half
//! written.

use crate::{Error, Result};
use parquet::data_type::{ByteArray, ByteArrayType, FloatType, Int32Type};
use parquet::file::properties::WriterProperties;
use parquet::file::writer::SerializedFileWriter;
use parquet::schema::parser::parse_message_type;
use std::fs::File;
use std::io::{BufWriter, Write};
use std::path::{Path, PathBuf};
use std::sync::Arc;

/// One block of rows, column by column.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct RecommendationRows {
    /// Each row's user id.
    pub users: Vec<String>,
    /// Each row's rank in its user's list, 1 the best.
    pub ranks: Vec<i32>,
    /// Each row's item id.
    pub items: Vec<String>,
    /// Each row's score.
    pub scores: Vec<f32>,
}

impl RecommendationRows {
    /// Appends `user`'s list, best first.
    pub fn push(&mut self, user: &str, items: impl IntoIterator<Item = (String, f32)>) {
        for (r, (item, score)) in items.into_iter().enumerate() {
            self.users.push(user.to_string());
            self.ranks.push(r as i32 + 1);
            self.items.push(item);
            self.scores.push(score);
        }
    }

    /// Rows held.
    pub fn len(&self) -> usize {
        self.users.len()
    }

    /// Whether no row is held.
    pub fn is_empty(&self) -> bool {
        self.users.is_empty()
    }
}

enum Sink {
    Parquet(SerializedFileWriter<File>),
    Tsv(BufWriter<File>),
    Jsonl(BufWriter<File>),
}

/// A file of recommendations being written (see the module).
pub struct RecommendationsWriter {
    /// `None` once finished.
    sink: Option<Sink>,
    path: PathBuf,
    tmp: PathBuf,
    rows: usize,
}

const SCHEMA: &str = "message recommendations {
  required binary user (UTF8);
  required int32 rank;
  required binary item (UTF8);
  required float score;
}";

impl RecommendationsWriter {
    /// Starts `path`: `.parquet`, `.tsv` (with a header) or `.jsonl` / `.json`.
    pub fn create(path: impl AsRef<Path>) -> Result<Self> {
        let path = path.as_ref().to_path_buf();
        let ext = path.extension().and_then(|e| e.to_str()).unwrap_or("").to_ascii_lowercase();
        let name = path.file_name().map(|n| n.to_string_lossy().to_string()).unwrap_or_default();
        let tmp = path.with_file_name(format!(".{name}.tmp-{}", std::process::id()));
        let file = || File::create(&tmp).map_err(|e| Error::io(&tmp, e));
        let sink = match ext.as_str() {
            "parquet" => {
                let schema = Arc::new(parse_message_type(SCHEMA).map_err(Error::internal)?);
                let props =
                    Arc::new(WriterProperties::builder().set_compression(parquet::basic::Compression::SNAPPY).build());
                Sink::Parquet(SerializedFileWriter::new(file()?, schema, props).map_err(Error::internal)?)
            }
            "tsv" => {
                let mut w = BufWriter::new(file()?);
                w.write_all(b"user\trank\titem\tscore\n").map_err(|e| Error::io(&tmp, e))?;
                Sink::Tsv(w)
            }
            "jsonl" | "json" => Sink::Jsonl(BufWriter::new(file()?)),
            _ => {
                return Err(Error::Config(format!(
                    "{}: write recommendations to a .parquet, .tsv or .jsonl file",
                    path.display()
                )));
            }
        };
        Ok(RecommendationsWriter { sink: Some(sink), path, tmp, rows: 0 })
    }

    /// Writes a block (a Parquet row group).
    pub fn write(&mut self, rows: &RecommendationRows) -> Result<()> {
        if rows.is_empty() {
            return Ok(());
        }
        let io = |e: std::io::Error| Error::io(&self.tmp, e);
        match self.sink.as_mut().ok_or_else(|| Error::Internal("recommendations written after finish".into()))? {
            Sink::Parquet(w) => {
                let mut group = w.next_row_group().map_err(Error::internal)?;
                let bytes = |v: &[String]| v.iter().map(|s| ByteArray::from(s.as_str())).collect::<Vec<_>>();
                let mut k = 0;
                while let Some(mut col) = group.next_column().map_err(Error::internal)? {
                    let written = match k {
                        0 => col.typed::<ByteArrayType>().write_batch(&bytes(&rows.users), None, None),
                        1 => col.typed::<Int32Type>().write_batch(&rows.ranks, None, None),
                        2 => col.typed::<ByteArrayType>().write_batch(&bytes(&rows.items), None, None),
                        _ => col.typed::<FloatType>().write_batch(&rows.scores, None, None),
                    };
                    written.map_err(Error::internal)?;
                    col.close().map_err(Error::internal)?;
                    k += 1;
                }
                group.close().map_err(Error::internal)?;
            }
            Sink::Tsv(w) => {
                for i in 0..rows.len() {
                    writeln!(w, "{}\t{}\t{}\t{}", rows.users[i], rows.ranks[i], rows.items[i], rows.scores[i])
                        .map_err(io)?;
                }
            }
            Sink::Jsonl(w) => {
                for i in 0..rows.len() {
                    let line = serde_json::json!({
                        "user": rows.users[i], "rank": rows.ranks[i], "item": rows.items[i], "score": rows.scores[i]
                    });
                    writeln!(w, "{line}").map_err(io)?;
                }
            }
        }
        self.rows += rows.len();
        Ok(())
    }

    /// Closes the file and puts it in its place; the rows written.
    pub fn finish(mut self) -> Result<usize> {
        let io = |e: std::io::Error| Error::io(&self.tmp, e);
        let sink = self.sink.take().ok_or_else(|| Error::Internal("recommendations finished twice".into()))?;
        let file = match sink {
            Sink::Parquet(w) => w.into_inner().map_err(Error::internal)?,
            Sink::Tsv(w) | Sink::Jsonl(w) => w.into_inner().map_err(|e| io(e.into_error()))?,
        };
        file.sync_all().map_err(io)?;
        std::fs::rename(&self.tmp, &self.path).map_err(|e| Error::io(&self.path, e))?;
        Ok(self.rows)
    }
}

impl Drop for RecommendationsWriter {
    /// A writer dropped before `finish` (an error, an interruption) leaves no file behind.
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.tmp);
    }
}

/// The ids of a file with one per line (the first tab- or comma-separated field; blank lines
/// skipped), e.g. the users to recommend for.
pub fn read_ids(path: impl AsRef<Path>) -> Result<Vec<String>> {
    let path = path.as_ref();
    let text = super::text::read_text(path)?;
    let ids: Vec<String> = text
        .lines()
        .filter_map(|l| l.split(['\t', ',']).next().map(str::trim).filter(|s| !s.is_empty()).map(String::from))
        .collect();
    if ids.is_empty() {
        return Err(Error::parse(path, None, "no id in the file"));
    }
    Ok(ids)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_format_holds_the_rows_and_nothing_is_left_half_written() {
        let dir = std::env::temp_dir().join(format!("towers-recs-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let mut rows = RecommendationRows::default();
        rows.push("u1", [("a".to_string(), 2.0), ("b".to_string(), 1.0)]);
        rows.push("u2", [("c".to_string(), 0.5)]);
        for name in ["r.parquet", "r.tsv", "r.jsonl"] {
            let path = dir.join(name);
            let mut w = RecommendationsWriter::create(&path).unwrap();
            assert!(!path.exists(), "{name} appears before it is whole");
            w.write(&rows).unwrap();
            w.write(&rows).unwrap();
            assert_eq!(w.finish().unwrap(), 6);
            assert!(path.is_file());
        }
        let tsv = std::fs::read_to_string(dir.join("r.tsv")).unwrap();
        assert_eq!(tsv.lines().collect::<Vec<_>>()[..3], ["user\trank\titem\tscore", "u1\t1\ta\t2", "u1\t2\tb\t1"]);
        let reader = parquet::file::reader::SerializedFileReader::new(File::open(dir.join("r.parquet")).unwrap());
        use parquet::file::reader::FileReader;
        let meta = reader.unwrap().metadata().clone();
        assert_eq!((meta.num_row_groups(), meta.file_metadata().num_rows()), (2, 6));
        // dropped before finish: no file, no leftover
        let w = RecommendationsWriter::create(dir.join("gone.parquet")).unwrap();
        drop(w);
        assert_eq!(std::fs::read_dir(&dir).unwrap().count(), 3);
        assert!(RecommendationsWriter::create(dir.join("r.xlsx")).is_err());
        std::fs::write(dir.join("users.txt"), "u1\n\nu2\tx\n").unwrap();
        assert_eq!(read_ids(dir.join("users.txt")).unwrap(), ["u1", "u2"]);
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
