//! Parquet interaction tables: a file, or a directory whose `.parquet` files (in name order) are
//! one data set. Columns get their roles by name as in text tables; ids may be integers or
//! strings, ratings and weights any number, timestamps integers (a `TIMESTAMP` column is
//! converted to seconds). Read one row group at a time.

use super::{Interactions, Optional, Roles, Share, TableFormat};
use crate::{Error, Result};
use parquet::basic::{LogicalType, TimeUnit};
use parquet::column::reader::ColumnReader;
use parquet::data_type::ByteArray;
use parquet::file::reader::{FileReader, RowGroupReader, SerializedFileReader};
use parquet::schema::types::ColumnDescriptor;
use std::path::{Path, PathBuf};

/// The values of one column of a row group.
enum Values {
    Int(Vec<i64>),
    Float(Vec<f64>),
    Bytes(Vec<ByteArray>),
}

/// The files of a data set: `path` itself, or the `.parquet` files of a directory by name.
fn files(path: &Path) -> Result<Vec<PathBuf>> {
    if !path.is_dir() {
        return Ok(vec![path.to_path_buf()]);
    }
    let mut files: Vec<PathBuf> = std::fs::read_dir(path)
        .map_err(|e| Error::io(path, e))?
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.extension().is_some_and(|e| e == "parquet"))
        .collect();
    files.sort();
    if files.is_empty() {
        return Err(Error::parse(path, None, "a directory without .parquet files"));
    }
    Ok(files)
}

/// Reads every value of column `k` of a row group (`rows` of them; no nulls).
fn read_column(group: &dyn RowGroupReader, k: usize, rows: usize) -> std::result::Result<Values, String> {
    let mut defs = Vec::with_capacity(rows);
    macro_rules! all {
        ($reader:expr) => {{
            let mut values = Vec::with_capacity(rows);
            let (_, n, _) =
                $reader.read_records(rows, Some(&mut defs), None, &mut values).map_err(|e| e.to_string())?;
            if n != rows {
                return Err(format!("{} null value(s)", rows - n));
            }
            values
        }};
    }
    Ok(match group.get_column_reader(k).map_err(|e| e.to_string())? {
        ColumnReader::Int32ColumnReader(mut r) => Values::Int(all!(r).into_iter().map(i64::from).collect()),
        ColumnReader::Int64ColumnReader(mut r) => Values::Int(all!(r)),
        ColumnReader::FloatColumnReader(mut r) => Values::Float(all!(r).into_iter().map(f64::from).collect()),
        ColumnReader::DoubleColumnReader(mut r) => Values::Float(all!(r)),
        ColumnReader::ByteArrayColumnReader(mut r) => Values::Bytes(all!(r)),
        _ => return Err("an unsupported type (booleans, int96, fixed-length bytes)".into()),
    })
}

/// Value `i` of an id column as text (`buf` holds a formatted integer).
fn id<'a>(v: &'a Values, i: usize, buf: &'a mut String) -> std::result::Result<&'a str, String> {
    match v {
        Values::Int(x) => {
            buf.clear();
            std::fmt::Write::write_fmt(buf, format_args!("{}", x[i])).map_err(|e| e.to_string())?;
            Ok(buf.as_str())
        }
        Values::Bytes(x) => std::str::from_utf8(x[i].data()).map_err(|_| format!("row {i}: not UTF-8 text")),
        Values::Float(_) => Err("ids must be integers or strings, not floating-point numbers".into()),
    }
}

/// A numeric column as `f64`s.
fn numbers(v: Values) -> std::result::Result<Vec<f64>, String> {
    match v {
        Values::Int(x) => Ok(x.into_iter().map(|v| v as f64).collect()),
        Values::Float(x) => Ok(x),
        Values::Bytes(_) => Err("expected numbers, found text".into()),
    }
}

/// Seconds per unit of a timestamp column (1 for a plain integer).
fn time_divisor(c: &ColumnDescriptor) -> i64 {
    match c.logical_type_ref() {
        Some(LogicalType::Timestamp { unit: TimeUnit::MILLIS, .. }) => 1_000,
        Some(LogicalType::Timestamp { unit: TimeUnit::MICROS, .. }) => 1_000_000,
        Some(LogicalType::Timestamp { unit: TimeUnit::NANOS, .. }) => 1_000_000_000,
        _ => 1,
    }
}

/// Reads a Parquet data set (see [`Interactions::read`]), or a rank's share of its row groups.
pub(super) fn read(path: &Path, format: &TableFormat, share: Option<Share>) -> Result<Interactions> {
    let files = files(path)?;
    // the row groups of this share, numbered over all files
    let mut mine = 0..u64::MAX;
    if let Some(s) = share {
        let mut total = 0u64;
        for file in &files {
            let f = std::fs::File::open(file).map_err(|e| Error::io(file, e))?;
            let r = SerializedFileReader::new(f)
                .map_err(|e| Error::parse(file, None, format!("not a Parquet file: {e}")))?;
            total += r.num_row_groups() as u64;
        }
        mine = s.part(total)..s.part_end(total);
    }
    let mut numbered = 0u64;
    let mut out: Option<(Interactions, Optional)> = None;
    for file in files {
        let f = std::fs::File::open(&file).map_err(|e| Error::io(&file, e))?;
        let reader =
            SerializedFileReader::new(f).map_err(|e| Error::parse(&file, None, format!("not a Parquet file: {e}")))?;
        let schema = reader.metadata().file_metadata().schema_descr_ptr();
        let names: Vec<String> = schema.columns().iter().map(|c| c.name().to_string()).collect();
        let Roles { query: q, candidate: c, rating: r, timestamp: t, weight: w } =
            Roles::of_file(&file, &names, format)?;
        let columns = Optional { rating: r.is_some(), timestamp: t.is_some(), weight: w.is_some() };
        let (table, first) = out.get_or_insert_with(|| (Interactions::with_columns(columns), columns));
        if *first != columns {
            return Err(Error::parse(&file, None, "its rating, time and weight columns differ from the first file's"));
        }
        for g in 0..reader.num_row_groups() {
            numbered += 1;
            if !mine.contains(&(numbered - 1)) {
                continue;
            }
            let at =
                |k: usize, m: String| Error::parse(&file, None, format!("row group {g}, column '{}': {m}", names[k]));
            let group =
                reader.get_row_group(g).map_err(|e| Error::parse(&file, None, format!("row group {g}: {e}")))?;
            let rows = group.metadata().num_rows() as usize;
            let read = |k: usize| read_column(&*group, k, rows).map_err(|m| at(k, m));
            let (qv, cv) = (read(q)?, read(c)?);
            let (mut qb, mut cb) = (String::new(), String::new());
            for i in 0..rows {
                let qs = id(&qv, i, &mut qb).map_err(|m| at(q, m))?;
                let cs = id(&cv, i, &mut cb).map_err(|m| at(c, m))?;
                if qs.is_empty() || cs.is_empty() {
                    return Err(at(if qs.is_empty() { q } else { c }, format!("row {i}: an empty id")));
                }
                table.push_ids(qs, cs);
            }
            let checked = |k: usize, ok: fn(f64) -> bool, what: &str| -> Result<Vec<f64>> {
                let v = numbers(read(k)?).map_err(|m| at(k, m))?;
                match v.iter().position(|&x| !ok(x)) {
                    Some(i) => Err(at(k, format!("row {i}: expected {what}, found {}", v[i]))),
                    None => Ok(v),
                }
            };
            if let (Some(k), Some(col)) = (r, table.ratings.as_mut()) {
                col.extend(checked(k, f64::is_finite, "a finite number")?.into_iter().map(|x| x as f32));
            }
            if let (Some(k), Some(col)) = (w, table.weights.as_mut()) {
                col.extend(checked(k, |x| x.is_finite() && x >= 0.0, "a weight ≥ 0")?.into_iter().map(|x| x as f32));
            }
            if let (Some(k), Some(col)) = (t, table.timestamps.as_mut()) {
                let div = time_divisor(&schema.column(k));
                match read(k)? {
                    Values::Int(x) => col.extend(x.into_iter().map(|v| v.div_euclid(div))),
                    other => col.extend(checked_times(other).map_err(|m| at(k, m))?),
                }
            }
        }
    }
    match out {
        Some((table, _)) if !table.is_empty() || share.is_some() => Ok(table),
        _ => Err(Error::parse(path, None, "no interactions")),
    }
}

/// A floating-point timestamp column as whole seconds.
fn checked_times(v: Values) -> std::result::Result<Vec<i64>, String> {
    let v = numbers(v)?;
    match v.iter().position(|x| !x.is_finite()) {
        Some(i) => Err(format!("row {i}: expected a unix timestamp, found {}", v[i])),
        None => Ok(v.into_iter().map(|x| x as i64).collect()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use parquet::data_type::{ByteArrayType, DoubleType, Int64Type};
    use parquet::file::writer::SerializedFileWriter;
    use parquet::schema::parser::parse_message_type;
    use std::sync::Arc;

    /// Writes a file of string users, integer items, double ratings, integer times; two row
    /// groups. `nulls`: the second rating is missing.
    fn write(path: &Path, ratings: &str, nulls: bool) {
        let schema = format!(
            "message t {{ REQUIRED BYTE_ARRAY user_id (UTF8); REQUIRED INT64 movie_id; {ratings} rating; REQUIRED INT64 timestamp; }}"
        );
        let schema = Arc::new(parse_message_type(&schema).unwrap());
        let mut w =
            SerializedFileWriter::new(std::fs::File::create(path).unwrap(), schema, Default::default()).unwrap();
        for g in 0..2i64 {
            let mut group = w.next_row_group().unwrap();
            let users: Vec<ByteArray> = ["a", "b"].iter().map(|u| ByteArray::from(*u)).collect();
            let mut col = group.next_column().unwrap().unwrap();
            col.typed::<ByteArrayType>().write_batch(&users, None, None).unwrap();
            col.close().unwrap();
            let mut col = group.next_column().unwrap().unwrap();
            col.typed::<Int64Type>().write_batch(&[10 + g, 20 + g], None, None).unwrap();
            col.close().unwrap();
            let mut col = group.next_column().unwrap().unwrap();
            match nulls {
                true => col.typed::<DoubleType>().write_batch(&[4.5], Some(&[1, 0]), None).unwrap(),
                false => col.typed::<DoubleType>().write_batch(&[4.5, 3.0], None, None).unwrap(),
            };
            col.close().unwrap();
            let mut col = group.next_column().unwrap().unwrap();
            col.typed::<Int64Type>().write_batch(&[100 + g, 200 + g], None, None).unwrap();
            col.close().unwrap();
            group.close().unwrap();
        }
        w.close().unwrap();
    }

    #[test]
    fn files_and_directories_read_like_text_tables() {
        let dir = std::env::temp_dir().join(format!("towers-parquet-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(dir.join("set")).unwrap();
        write(&dir.join("set/a.parquet"), "REQUIRED DOUBLE", false);
        write(&dir.join("set/b.parquet"), "REQUIRED DOUBLE", false);
        let t = Interactions::read(dir.join("set/a.parquet"), &TableFormat::default()).unwrap();
        assert_eq!((t.len(), t.query(2), t.candidate(2)), (4, "a", "11"));
        assert_eq!(t.ratings.as_deref(), Some(&[4.5f32, 3.0, 4.5, 3.0][..]));
        assert_eq!(t.timestamps.as_deref(), Some(&[100i64, 200, 101, 201][..]));
        assert_eq!(Interactions::read(dir.join("set"), &TableFormat::default()).unwrap().len(), 8);
        // a null, and a file that is not Parquet, name the file (and the row group and column)
        write(&dir.join("null.parquet"), "OPTIONAL DOUBLE", true);
        let e = Interactions::read(dir.join("null.parquet"), &TableFormat::default()).unwrap_err().to_string();
        assert!(e.contains("null.parquet") && e.contains("row group 0, column 'rating'") && e.contains("null"), "{e}");
        std::fs::write(dir.join("junk.parquet"), b"PAR1 not really").unwrap();
        let e = Interactions::read(dir.join("junk.parquet"), &TableFormat::default()).unwrap_err().to_string();
        assert!(e.contains("junk.parquet") && e.contains("not a Parquet file"), "{e}");
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
