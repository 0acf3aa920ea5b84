//! Writing embeddings for other systems (`towers embed`): `NAME.parquet` with an `id` column and
//! one float column per dimension (`e0`, `e1`, …), and `NAME.npy`, the same rows as a float32
//! matrix (row `i` is the Parquet's row `i`). Rows arrive in blocks (one row group each); both
//! files appear under their names only when whole.

use crate::{Error, Result};
use parquet::data_type::{ByteArray, ByteArrayType, FloatType};
use parquet::file::properties::WriterProperties;
use parquet::file::writer::SerializedFileWriter;
use parquet::schema::parser::parse_message_type;
use std::fs::File;
use std::io::{BufWriter, Write};
use std::path::{Path, PathBuf};
use std::sync::Arc;

/// The two files of one table of embeddings being written.
pub struct EmbeddingsWriter {
    parquet: Option<SerializedFileWriter<File>>,
    npy: Option<BufWriter<File>>,
    /// (written beside, final name) of each file.
    files: [(PathBuf, PathBuf); 2],
    dim: usize,
    rows: usize,
    expected: usize,
}

impl EmbeddingsWriter {
    /// Starts `dir/NAME.parquet` and `dir/NAME.npy` for `rows` rows of width `dim`.
    pub fn create(dir: impl AsRef<Path>, name: &str, rows: usize, dim: usize) -> Result<Self> {
        let dir = dir.as_ref();
        std::fs::create_dir_all(dir).map_err(|e| Error::io(dir, e))?;
        let place = |ext: &str| {
            (dir.join(format!(".{name}.{ext}.tmp-{}", std::process::id())), dir.join(format!("{name}.{ext}")))
        };
        let files = [place("parquet"), place("npy")];
        let columns: String = (0..dim).map(|j| format!("  required float e{j};\n")).collect();
        let schema = parse_message_type(&format!("message embeddings {{\n  required binary id (UTF8);\n{columns}}}"))
            .map_err(Error::internal)?;
        let create = |p: &Path| File::create(p).map_err(|e| Error::io(p, e));
        let props = Arc::new(WriterProperties::builder().set_compression(parquet::basic::Compression::SNAPPY).build());
        let parquet =
            SerializedFileWriter::new(create(&files[0].0)?, Arc::new(schema), props).map_err(Error::internal)?;
        let mut npy = BufWriter::new(create(&files[1].0)?);
        // format 1.0: magic, version, header length, a dict padded with spaces to 64 bytes
        let mut header = format!("{{'descr': '<f4', 'fortran_order': False, 'shape': ({rows}, {dim}), }}");
        while (10 + header.len() + 1) % 64 != 0 {
            header.push(' ');
        }
        header.push('\n');
        let io = |e: std::io::Error| Error::io(&files[1].0, e);
        npy.write_all(b"\x93NUMPY\x01\x00").map_err(io)?;
        npy.write_all(&(header.len() as u16).to_le_bytes()).map_err(io)?;
        npy.write_all(header.as_bytes()).map_err(io)?;
        Ok(EmbeddingsWriter { parquet: Some(parquet), npy: Some(npy), files, dim, rows: 0, expected: rows })
    }

    /// Writes rows: their ids and `ids.len() × dim` values.
    pub fn write(&mut self, ids: &[String], values: &[f32]) -> Result<()> {
        let d = self.dim;
        if values.len() != ids.len() * d || self.rows + ids.len() > self.expected {
            return Err(Error::Internal("embedding rows of the wrong size or number".into()));
        }
        if ids.is_empty() {
            return Ok(());
        }
        let (Some(parquet), Some(npy)) = (self.parquet.as_mut(), self.npy.as_mut()) else {
            return Err(Error::Internal("embeddings written after finish".into()));
        };
        let mut group = parquet.next_row_group().map_err(Error::internal)?;
        let mut k = 0;
        while let Some(mut col) = group.next_column().map_err(Error::internal)? {
            let written = if k == 0 {
                let bytes: Vec<ByteArray> = ids.iter().map(|s| ByteArray::from(s.as_str())).collect();
                col.typed::<ByteArrayType>().write_batch(&bytes, None, None)
            } else {
                let column: Vec<f32> = values.iter().skip(k - 1).step_by(d).copied().collect();
                col.typed::<FloatType>().write_batch(&column, None, None)
            };
            written.map_err(Error::internal)?;
            col.close().map_err(Error::internal)?;
            k += 1;
        }
        group.close().map_err(Error::internal)?;
        let bytes: Vec<u8> = values.iter().flat_map(|v| v.to_le_bytes()).collect();
        npy.write_all(&bytes).map_err(|e| Error::io(&self.files[1].0, e))?;
        self.rows += ids.len();
        Ok(())
    }

    /// Closes both files and puts them in their places; the rows written.
    pub fn finish(mut self) -> Result<usize> {
        if self.rows != self.expected {
            return Err(Error::Internal(format!("{} embedding rows written of {}", self.rows, self.expected)));
        }
        let (Some(parquet), Some(npy)) = (self.parquet.take(), self.npy.take()) else {
            return Err(Error::Internal("embeddings finished twice".into()));
        };
        let parquet = parquet.into_inner().map_err(Error::internal)?;
        let npy = npy.into_inner().map_err(|e| Error::io(&self.files[1].0, e.into_error()))?;
        for (file, (tmp, _)) in [parquet, npy].iter().zip(&self.files) {
            file.sync_all().map_err(|e| Error::io(tmp, e))?;
        }
        for (tmp, path) in &self.files {
            std::fs::rename(tmp, path).map_err(|e| Error::io(path, e))?;
        }
        Ok(self.rows)
    }
}

impl Drop for EmbeddingsWriter {
    /// Dropped before `finish`: no file left behind.
    fn drop(&mut self) {
        for (tmp, _) in &self.files {
            let _ = std::fs::remove_file(tmp);
        }
    }
}
