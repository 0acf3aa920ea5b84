//! CSV/TSV interaction tables, plain or compressed (`.gz`, `.zst`), read as a stream: no more of
//! the file is in memory than a buffer and the table being built.

use super::Share;
use super::{CANDIDATE_NAMES, QUERY_NAMES, RATING_NAMES, TIME_NAMES, WEIGHT_NAMES};
use super::{DEFAULT_COLUMNS, Interactions, MAX_LINE_BYTES, Optional, Roles, TableFormat, shown};
use crate::data::text::{LineLimit, delimiter_name, guess_delimiter, lines_before, share_range};
use crate::{Error, Result};
use std::borrow::Cow;
use std::io::{BufRead, BufReader, Read, Seek, SeekFrom};
use std::path::Path;

/// Opens a table file, decompressing `.gz` and `.zst`.
fn open(path: &Path) -> Result<Box<dyn Read>> {
    let file = std::fs::File::open(path).map_err(|e| Error::io(path, e))?;
    Ok(match path.extension().and_then(|e| e.to_str()) {
        Some("gz") => Box::new(flate2::read::MultiGzDecoder::new(BufReader::new(file))),
        Some("zst") => Box::new(zstd::Decoder::new(file).map_err(|e| Error::io(path, e))?),
        _ => Box::new(file),
    })
}

/// Reads a CSV/TSV table (see [`Interactions::read`]).
pub(super) fn read(path: &Path, format: &TableFormat) -> Result<Interactions> {
    from_reader(path, open(path)?, format)
}

/// Reads one rank's share of a plain CSV/TSV file (see [`Interactions::read_share`]): the lines
/// that start in its byte range, the first line too when it is the header. Errors name the
/// line in the whole file.
pub(super) fn read_share(path: &Path, format: &TableFormat, share: Share) -> Result<Interactions> {
    let (mut file, from, to) = share_range(path, share, ", or give Parquet")?;
    let io = |e: std::io::Error| Error::io(path, e);
    if share.rank == 0 {
        file.seek(SeekFrom::Start(0)).map_err(io)?;
        return from_reader(path, Box::new(file.take(to)), format);
    }
    // the first line says the columns (or is a row of rank 0's share)
    file.seek(SeekFrom::Start(0)).map_err(io)?;
    let mut first = Vec::new();
    BufReader::new(&mut file).read_until(b'\n', &mut first).map_err(io)?;
    if !first.ends_with(b"\n") {
        first.push(b'\n');
    }
    file.seek(SeekFrom::Start(from)).map_err(io)?;
    let stream = std::io::Cursor::new(first).chain(file.take(to - from));
    parse(path, Box::new(stream), format, Part::Share).map_err(|e| match e {
        // the stream's line 2 is the line starting at `from`
        Error::Parse { path, line: Some(l), msg } => match lines_before(&path, from) {
            Ok(n) => Error::Parse { path, line: Some(n + l - 1), msg },
            Err(e) => e,
        },
        e => e,
    })
}

/// A field as text: UTF-8 when it is, latin-1 otherwise (as MovieLens' files are).
fn text(bytes: &[u8]) -> Cow<'_, str> {
    match std::str::from_utf8(bytes) {
        Ok(s) => Cow::Borrowed(s),
        Err(_) => Cow::Owned(bytes.iter().map(|&b| char::from(b)).collect()),
    }
}

/// The extension that says the delimiter: `a.tsv.gz` → `tsv`.
fn inner_name(path: &Path) -> &Path {
    match path.extension().and_then(|e| e.to_str()) {
        Some("gz" | "zst") => path.file_stem().map(Path::new).unwrap_or(path),
        _ => path,
    }
}

/// What a stream holds of its file.
#[derive(Clone, Copy, PartialEq)]
enum Part {
    Whole,
    /// The file's first line, then a share of its lines (the first line is not one of the
    /// share's rows, even when it is not a header).
    Share,
}

/// Parses a table from a stream (named `path` in errors).
pub(super) fn from_reader(path: &Path, reader: Box<dyn Read>, format: &TableFormat) -> Result<Interactions> {
    parse(path, reader, format, Part::Whole)
}

fn parse(path: &Path, reader: Box<dyn Read>, format: &TableFormat, part: Part) -> Result<Interactions> {
    let share = part == Part::Share;
    let io = |e: std::io::Error| Error::parse(path, None, e.to_string());
    let limited = LineLimit::new(reader, format.max_line_bytes.unwrap_or(MAX_LINE_BYTES));
    let mut buffered = BufReader::with_capacity(1 << 16, limited);
    let delimiter = match format.delimiter {
        Some(d) => d,
        None => {
            let head = buffered.fill_buf().map_err(io)?;
            let first = head.split(|&b| b == b'\n').next().unwrap_or_default();
            guess_delimiter(inner_name(path), &text(first))
        }
    };
    let mut csv = csv::ReaderBuilder::new()
        .delimiter(delimiter)
        .has_headers(false)
        .flexible(true)
        .quoting(delimiter != b'\t')
        .from_reader(buffered);
    let csv_error = |e: csv::Error| {
        let line = e.position().map(|p| p.line());
        match e.into_kind() {
            csv::ErrorKind::Io(e) => Error::parse(path, line, e.to_string()),
            other => Error::parse(path, line, format!("{other:?}")),
        }
    };
    let mut records = csv.byte_records();
    let first = match records.next() {
        None => return Err(Error::parse(path, None, "empty file: no interactions")),
        Some(r) => r.map_err(csv_error)?,
    };
    let first_names: Vec<String> = first.iter().map(|s| text(s).trim().to_string()).collect();
    let looks_like_header = first_names.iter().any(|n| {
        let n = n.to_ascii_lowercase();
        [QUERY_NAMES, CANDIDATE_NAMES, RATING_NAMES, TIME_NAMES, WEIGHT_NAMES].iter().any(|k| k.contains(&n.as_str()))
            || Some(n.as_str()) == format.query_column.as_deref()
            || Some(n.as_str()) == format.candidate_column.as_deref()
    });
    let header = format.header.unwrap_or(looks_like_header);
    let names: Vec<String> = match (&format.columns, header) {
        (Some(c), _) => c.clone(),
        (None, true) => first_names,
        (None, false) => DEFAULT_COLUMNS.iter().map(|s| s.to_string()).collect(),
    };
    let Roles { query: q, candidate: c, rating: r, timestamp: t, weight: w } = Roles::of_file(path, &names, format)?;
    let mut out =
        Interactions::with_columns(Optional { rating: r.is_some(), timestamp: t.is_some(), weight: w.is_some() });
    let rows = std::iter::once(Ok(first)).skip(usize::from(header || share)).chain(records);
    for (i, rec) in rows.enumerate() {
        let rec = rec.map_err(csv_error)?;
        let line = rec.position().map(|p| p.line()).unwrap_or(i as u64 + 1);
        if rec.len() != names.len() {
            let hint = if rec.len() == 1 && names.len() > 1 {
                format!(
                    " (is the file {}-separated? pass the delimiter)",
                    delimiter_name(guess_delimiter(Path::new(""), &text(&rec[0])))
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
        let field = |k: usize| -> Result<Cow<'_, str>> {
            let v = match text(&rec[k]) {
                Cow::Borrowed(s) => Cow::Borrowed(s.trim()),
                Cow::Owned(s) => Cow::Owned(s.trim().to_string()),
            };
            if v.is_empty() {
                return Err(Error::parse(path, Some(line), format!("field '{}' is empty", names[k])));
            }
            Ok(v)
        };
        let bad = |k: usize, what: &str, s: &str| {
            Error::parse(path, Some(line), format!("field '{}': expected {what}, found '{}'", names[k], shown(s)))
        };
        out.push_ids(&field(q)?, &field(c)?);
        if let (Some(k), Some(v)) = (r, out.ratings.as_mut()) {
            let s = field(k)?;
            v.push(s.parse().ok().filter(|x: &f32| x.is_finite()).ok_or_else(|| bad(k, "a number", &s))?);
        }
        if let (Some(k), Some(v)) = (w, out.weights.as_mut()) {
            let s = field(k)?;
            v.push(
                s.parse()
                    .ok()
                    .filter(|x: &f32| x.is_finite() && *x >= 0.0)
                    .ok_or_else(|| bad(k, "a weight ≥ 0", &s))?,
            );
        }
        if let (Some(k), Some(v)) = (t, out.timestamps.as_mut()) {
            let s = field(k)?;
            let x = s.parse::<i64>().ok().or_else(|| s.parse::<f64>().ok().filter(|f| f.is_finite()).map(|f| f as i64));
            v.push(x.ok_or_else(|| bad(k, "a unix timestamp", &s))?);
        }
    }
    if out.is_empty() && !share {
        return Err(Error::parse(path, None, "no interactions (only a header)"));
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(name: &str, text: &str, f: &TableFormat) -> Result<Interactions> {
        let path = Path::new(name);
        from_reader(path, Box::new(std::io::Cursor::new(text.as_bytes().to_vec())), f)
    }

    fn ids(t: &Interactions) -> (Vec<&str>, Vec<&str>) {
        ((0..t.len()).map(|i| t.query(i)).collect(), (0..t.len()).map(|i| t.candidate(i)).collect())
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
        assert_eq!(ids(&t), (vec!["1", "2"], vec!["10", "20"]));
        assert_eq!(t.ratings.unwrap(), [4.0, 3.5]);
        assert_eq!(t.timestamps.unwrap(), [881250949, 881250950]);
    }

    #[test]
    fn header_and_chosen_columns() {
        let t = parse("a.csv", "userId,movieId,rating,timestamp\n1,10,4,5\n", &Default::default()).unwrap();
        assert_eq!((t.query(0), t.candidate(0)), ("1", "10"));
        let f = TableFormat { columns: Some(vec!["user_id".into(), "movie_id".into()]), ..Default::default() };
        let t = parse("a.tsv", "1\t10\n", &f).unwrap();
        assert_eq!(t.candidate(0), "10");
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
    fn select_keeps_columns_aligned() {
        let t = parse("a.tsv", "1\t10\t4\t7\n2\t20\t3\t8\n", &Default::default()).unwrap();
        let s = t.select(&[1]);
        assert_eq!((s.query(0), s.ratings.as_ref().unwrap()[0], s.timestamps.as_ref().unwrap()[0]), ("2", 3.0, 8));
    }

    #[test]
    fn latin1_fields_long_lines_and_compressed_files() {
        let t = from_reader(Path::new("a.tsv"), Box::new(&b"1	Mis\xe9rables\t4\t5\n"[..]), &TableFormat::default());
        assert_eq!(t.unwrap().candidate(0), "Misérables");
        // a line longer than the limit is an error, not a memory blow-up (think /dev/zero)
        let f = TableFormat { max_line_bytes: Some(64), ..Default::default() };
        let long = format!("1\t2\t3\t4\n{}\n", "9".repeat(100));
        let e = from_reader(Path::new("z.tsv"), Box::new(std::io::Cursor::new(long.into_bytes())), &f).unwrap_err();
        assert!(e.to_string().contains("z.tsv") && e.to_string().contains("longer than 64 bytes"), "{e}");
        let dir = std::env::temp_dir().join(format!("towers-delimited-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let text = "user,item,rating\n1,10,4\n2,20,5\n";
        let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
        std::io::Write::write_all(&mut gz, text.as_bytes()).unwrap();
        std::fs::write(dir.join("t.csv.gz"), gz.finish().unwrap()).unwrap();
        std::fs::write(dir.join("t.csv.zst"), zstd::encode_all(text.as_bytes(), 1).unwrap()).unwrap();
        for name in ["t.csv.gz", "t.csv.zst"] {
            let t = read(&dir.join(name), &TableFormat::default()).unwrap();
            assert_eq!((t.len(), t.candidate(1), t.ratings.as_deref()), (2, "20", Some(&[4.0f32, 5.0][..])), "{name}");
        }
        std::fs::write(dir.join("bad.csv.gz"), b"not gzip").unwrap();
        let e = read(&dir.join("bad.csv.gz"), &TableFormat::default()).unwrap_err().to_string();
        assert!(e.contains("bad.csv.gz"), "{e}");
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
