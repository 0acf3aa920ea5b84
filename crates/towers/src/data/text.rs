//! Reading text files whatever their encoding (UTF-8, or latin-1 as in MovieLens' `u.item`).

use crate::data::MAX_LINE_BYTES;
use crate::data::Share;
use crate::{Error, Result};
use std::io::{BufRead, BufReader, Read, Seek, SeekFrom};
use std::path::Path;

/// Reads a whole file as text (lines of at most [`MAX_LINE_BYTES`]): UTF-8 when it is valid UTF-8, otherwise decoded as latin-1
/// (every byte is the code point of the same value), so "Mis\xe9rables" becomes "Misérables".
pub(crate) fn read_text(path: &Path) -> Result<String> {
    let file = std::fs::File::open(path).map_err(|e| Error::io(path, e))?;
    let mut bytes = Vec::new();
    LineLimit::new(file, MAX_LINE_BYTES).read_to_end(&mut bytes).map_err(|e| match e.kind() {
        std::io::ErrorKind::InvalidData => Error::parse(path, None, e.to_string()),
        _ => Error::io(path, e),
    })?;
    Ok(decoded(path, bytes))
}

/// Bytes as text: UTF-8 when they are, latin-1 otherwise.
fn decoded(path: &Path, bytes: Vec<u8>) -> String {
    match String::from_utf8(bytes) {
        Ok(s) => s,
        Err(e) => {
            tracing::debug!("{}: not UTF-8, decoding as latin-1", path.display());
            e.into_bytes().into_iter().map(char::from).collect()
        }
    }
}

/// The file at `path`, open, and the bytes of the lines that start in `share`'s part of it: a
/// file of one record per line split between ranks. A compressed file cannot be split (`or`
/// says what to give instead).
pub(crate) fn share_range(path: &Path, share: Share, or: &str) -> Result<(std::fs::File, u64, u64)> {
    if matches!(path.extension().and_then(|e| e.to_str()), Some("gz" | "zst")) {
        return Err(Error::Config(format!(
            "{}: a compressed file cannot be split between ranks: decompress it{or}",
            path.display()
        )));
    }
    let io = |e: std::io::Error| Error::io(path, e);
    let mut file = std::fs::File::open(path).map_err(io)?;
    let len = file.metadata().map_err(io)?.len();
    let (from, to) = (line_start(&mut file, len, share.part(len))?, line_start(&mut file, len, share.part_end(len))?);
    Ok((file, from, to))
}

/// One rank's share of a text file of one record per line: the lines that start in its part of
/// the bytes (see [`Share`]), and the number of lines before them.
pub(crate) fn read_text_share(path: &Path, share: Share) -> Result<(String, u64)> {
    let (mut file, from, to) = share_range(path, share, "")?;
    let io = |e: std::io::Error| Error::io(path, e);
    file.seek(SeekFrom::Start(from)).map_err(io)?;
    let mut bytes = Vec::new();
    LineLimit::new(file.take(to - from), MAX_LINE_BYTES).read_to_end(&mut bytes).map_err(|e| match e.kind() {
        std::io::ErrorKind::InvalidData => Error::parse(path, None, e.to_string()),
        _ => Error::io(path, e),
    })?;
    Ok((decoded(path, bytes), lines_before(path, from)?))
}

/// The start of the first line that starts at or after byte `at`.
fn line_start(file: &mut std::fs::File, len: u64, at: u64) -> Result<u64> {
    if at == 0 || at >= len {
        return Ok(at.min(len));
    }
    file.seek(SeekFrom::Start(at - 1)).map_err(|e| Error::Internal(e.to_string()))?;
    let mut skipped = Vec::new();
    BufReader::new(file).read_until(b'\n', &mut skipped).map_err(|e| Error::Internal(e.to_string()))?;
    Ok(at - 1 + skipped.len() as u64)
}

/// Lines that end before byte `at` of a file.
pub(crate) fn lines_before(path: &Path, at: u64) -> Result<u64> {
    let file = std::fs::File::open(path).map_err(|e| Error::io(path, e))?;
    let mut reader = BufReader::new(file.take(at));
    let mut n = 0;
    loop {
        let buf = reader.fill_buf().map_err(|e| Error::io(path, e))?;
        if buf.is_empty() {
            return Ok(n);
        }
        n += buf.iter().filter(|&&b| b == b'\n').count() as u64;
        let k = buf.len();
        reader.consume(k);
    }
}

/// Reads a TOML file into `T`; a parse error names the file, on one line.
pub(crate) fn read_toml<T: serde::de::DeserializeOwned>(path: &Path) -> Result<T> {
    toml::from_str(&read_text(path)?)
        .map_err(|e| Error::Config(format!("{}: {}", path.display(), e.to_string().trim_end().replace('\n', " "))))
}

/// The delimiter a table file most likely uses: from its extension, else from its first line.
pub(crate) fn guess_delimiter(path: &Path, text: &str) -> u8 {
    match path.extension().and_then(|e| e.to_str()) {
        Some("csv") => return b',',
        Some("tsv") | Some("tab") => return b'\t',
        _ => {}
    }
    let first = text.lines().next().unwrap_or("");
    [b'\t', b'|', b',', b';'].into_iter().find(|&d| first.as_bytes().contains(&d)).unwrap_or(b'\t')
}

/// A printable name for a delimiter, for error messages.
pub(crate) fn delimiter_name(d: u8) -> String {
    match d {
        b'\t' => "tab".into(),
        b',' => "','".into(),
        other => format!("'{}'", other as char),
    }
}

/// A csv reader over text, with quoting only where the delimiter is not a tab (TSV files such
/// as MovieLens' contain bare quotes in titles).
pub(crate) fn csv_reader(text: &str, delimiter: u8) -> csv::Reader<&[u8]> {
    csv::ReaderBuilder::new()
        .delimiter(delimiter)
        .has_headers(false)
        .flexible(true)
        .quoting(delimiter != b'\t')
        .from_reader(text.as_bytes())
}

/// A reader that refuses lines longer than `max` bytes.
pub(crate) struct LineLimit<R> {
    inner: R,
    max: usize,
    /// Bytes since the last newline.
    run: usize,
}

impl<R> LineLimit<R> {
    /// Wraps `inner`.
    pub(crate) fn new(inner: R, max: usize) -> Self {
        LineLimit { inner, max, run: 0 }
    }
}

impl<R: Read> Read for LineLimit<R> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        let n = self.inner.read(buf)?;
        for &b in &buf[..n] {
            self.run = if b == b'\n' { 0 } else { self.run + 1 };
            if self.run > self.max {
                return Err(std::io::Error::new(
                    std::io::ErrorKind::InvalidData,
                    format!("a line longer than {} bytes (raise the limit with `max_line_bytes`)", self.max),
                ));
            }
        }
        Ok(n)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn latin1_fallback_gives_utf8() {
        let dir = std::env::temp_dir().join(format!("towers-text-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let p = dir.join("items.txt");
        std::fs::write(&p, b"1|Les Mis\xe9rables (1995)|x\n").unwrap();
        assert!(read_text(&p).unwrap().contains("Misérables"));
        std::fs::write(&p, "1|Misérables\n").unwrap();
        assert!(read_text(&p).unwrap().contains("Misérables"));
        assert_eq!(guess_delimiter(&p, "1|a|b"), b'|');
        assert_eq!(guess_delimiter(Path::new("x.csv"), "1\t2"), b',');
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
