//! Named tensors in a safetensors file: what every model kind and the IVF index write their
//! parameters with, and read them back with shape checks. A file also carries metadata for what
//! a reader needs beside the tensors (layouts, scales): JSON values in one JSON object under the
//! key `towers`, sorted, so that the same model always gives the same bytes.

use crate::{Error, Result};
use safetensors::tensor::{Dtype, SafeTensors, TensorView};
use serde::Serialize;
use serde::de::DeserializeOwned;
use serde_json::{Map, Value};
use std::collections::{BTreeMap, HashMap};
use std::io::Write;

/// The metadata key of the JSON object of values.
const META: &str = "towers";
use std::path::{Path, PathBuf};

/// Collects tensors and metadata, then serialises them.
#[derive(Debug, Default)]
pub struct TensorWriter {
    tensors: Vec<(String, Dtype, Vec<usize>, Payload)>,
    values: BTreeMap<String, Value>,
    raw: BTreeMap<String, String>,
}

/// A tensor's values: little-endian bytes, or `f32`s taken as they are (turned into bytes only
/// as they are written).
#[derive(Debug)]
enum Payload {
    Bytes(Vec<u8>),
    F32(Vec<f32>),
}

impl Payload {
    fn len(&self) -> usize {
        match self {
            Payload::Bytes(b) => b.len(),
            Payload::F32(v) => v.len() * 4,
        }
    }

    fn write(&self, out: &mut dyn Write) -> std::io::Result<()> {
        match self {
            Payload::Bytes(b) => out.write_all(b),
            Payload::F32(v) => write_f32(out, v),
        }
    }
}

impl TensorWriter {
    /// An `f32` tensor of the given shape.
    pub fn f32(&mut self, name: impl Into<String>, shape: &[usize], data: &[f32]) {
        let bytes = data.iter().flat_map(|x| x.to_le_bytes()).collect();
        self.tensors.push((name.into(), Dtype::F32, shape.to_vec(), Payload::Bytes(bytes)));
    }

    /// An `f32` tensor of the given shape that keeps `data` as it is (no copy until written).
    pub fn f32_owned(&mut self, name: impl Into<String>, shape: &[usize], data: Vec<f32>) {
        self.tensors.push((name.into(), Dtype::F32, shape.to_vec(), Payload::F32(data)));
    }

    /// A 1-D `u32` tensor.
    pub fn u32(&mut self, name: impl Into<String>, data: &[u32]) {
        let bytes = data.iter().flat_map(|x| x.to_le_bytes()).collect();
        self.tensors.push((name.into(), Dtype::U32, vec![data.len()], Payload::Bytes(bytes)));
    }

    /// A 1-D `u8` tensor.
    pub fn u8(&mut self, name: impl Into<String>, data: &[u8]) {
        self.tensors.push((name.into(), Dtype::U8, vec![data.len()], Payload::Bytes(data.to_vec())));
    }

    /// A tensor as it is stored: its type, shape and little-endian bytes.
    pub(crate) fn raw(&mut self, name: impl Into<String>, dtype: Dtype, shape: &[usize], bytes: Vec<u8>) {
        self.tensors.push((name.into(), dtype, shape.to_vec(), Payload::Bytes(bytes)));
    }

    /// Every metadata value of `r`, as this writer's.
    pub(crate) fn meta_of(&mut self, r: &TensorReader) {
        self.values.extend(r.values.iter().map(|(k, v)| (k.clone(), v.clone())));
        self.raw.extend(r.raw.iter().filter(|(k, _)| k.as_str() != META).map(|(k, v)| (k.clone(), v.clone())));
    }

    /// A metadata value.
    pub fn meta<T: Serialize + ?Sized>(&mut self, key: &str, value: &T) -> Result<()> {
        self.values.insert(key.to_string(), serde_json::to_value(value).map_err(Error::internal)?);
        Ok(())
    }

    /// A metadata string under its own key of the file's metadata (formats that began so).
    pub fn meta_str(&mut self, key: &str, value: &str) {
        self.raw.insert(key.to_string(), value.to_string());
    }

    /// Each tensor's name and shape, in the order they were added.
    pub(crate) fn shapes(&self) -> impl Iterator<Item = (&str, &[usize])> {
        self.tensors.iter().map(|(n, _, shape, _)| (n.as_str(), shape.as_slice()))
    }

    /// The safetensors bytes.
    pub fn to_bytes(&self) -> Result<Vec<u8>> {
        let mut bytes = Vec::with_capacity(self.tensors.iter().map(|t| t.3.len()).sum::<usize>() + 4096);
        self.write_to(&mut bytes).map_err(Error::internal)?;
        Ok(bytes)
    }

    /// Writes the safetensors file to `out` tensor after tensor (sorted by name), never holding
    /// a second copy of them: the header (`__metadata__` and each tensor's type, shape and
    /// offsets, padded with spaces to 8 bytes), then the tensors' bytes.
    pub fn write_to(&self, out: &mut dyn Write) -> std::io::Result<()> {
        self.write_streamed(out, "", &mut ())
    }

    /// [`TensorWriter::write_to`] for the file named `file`, with the tensors that `streams`
    /// has for it (an `f32` tensor of its shape) written by it instead of from this writer.
    pub(crate) fn write_streamed(
        &self,
        out: &mut dyn Write,
        file: &str,
        streams: &mut dyn Streams,
    ) -> std::io::Result<()> {
        let mut order: Vec<usize> = (0..self.tensors.len()).collect();
        order.sort_by(|&a, &b| self.tensors[a].0.cmp(&self.tensors[b].0));
        let mut header = Map::new();
        let mut meta: BTreeMap<String, String> = self.raw.clone();
        if !self.values.is_empty() {
            meta.insert(META.into(), serde_json::to_string(&self.values)?);
        }
        if !meta.is_empty() {
            header.insert("__metadata__".into(), serde_json::to_value(meta)?);
        }
        let mut offset = 0;
        for &i in &order {
            let (name, dtype, shape, data) = &self.tensors[i];
            let (shape, len) = match streams.shape(file, name) {
                Some(s) => (s.to_vec(), s.iter().product::<usize>() * 4),
                None => (shape.clone(), data.len()),
            };
            let end = offset + len;
            let entry = serde_json::json!({"dtype": dtype, "shape": shape, "data_offsets": [offset, end]});
            header.insert(name.clone(), entry);
            offset = end;
        }
        let mut text = serde_json::to_vec(&header)?;
        text.resize(text.len().next_multiple_of(8), b' ');
        out.write_all(&(text.len() as u64).to_le_bytes())?;
        out.write_all(&text)?;
        order.iter().try_for_each(|&i| {
            let (name, _, _, data) = &self.tensors[i];
            match streams.shape(file, name) {
                Some(_) => streams.write(file, name, out),
                None => data.write(out),
            }
        })
    }
}

/// Writes `values` as little-endian bytes, a chunk at a time.
pub(crate) fn write_f32(out: &mut dyn Write, values: &[f32]) -> std::io::Result<()> {
    values.chunks(1 << 14).try_for_each(|c| out.write_all(&c.iter().flat_map(|x| x.to_le_bytes()).collect::<Vec<u8>>()))
}

/// `f32` tensors whose values come from elsewhere as their file is written (a distributed
/// run's sharded tables, from the ranks that hold their rows), by file and tensor name.
pub(crate) trait Streams {
    /// The shape of the tensor `name` of `file`, when it is streamed.
    fn shape(&self, file: &str, name: &str) -> Option<&[usize]>;
    /// Writes the values of `name` (little-endian, row after row).
    fn write(&mut self, file: &str, name: &str, out: &mut dyn Write) -> std::io::Result<()>;
}

impl Streams for () {
    fn shape(&self, _: &str, _: &str) -> Option<&[usize]> {
        None
    }
    fn write(&mut self, _: &str, _: &str, _: &mut dyn Write) -> std::io::Result<()> {
        Ok(())
    }
}

/// A parsed safetensors file with shape-checked accessors; every error is an
/// [`Error::Artifact`] naming the file.
pub struct TensorReader<'a> {
    path: PathBuf,
    st: SafeTensors<'a>,
    raw: HashMap<String, String>,
    values: Map<String, Value>,
}

impl<'a> TensorReader<'a> {
    /// Parses `bytes`, read from `path` (named in errors).
    pub fn parse(path: &Path, bytes: &'a [u8]) -> Result<Self> {
        let bad = |e: String| Error::artifact(path, format!("not a safetensors file: {e}"));
        let st = SafeTensors::deserialize(bytes).map_err(|e| bad(e.to_string()))?;
        let (_, header) = SafeTensors::read_metadata(bytes).map_err(|e| bad(e.to_string()))?;
        let raw = header.metadata().clone().unwrap_or_default();
        let values = match raw.get(META) {
            Some(v) => serde_json::from_str(v).map_err(|e| bad(format!("metadata '{META}': {e}")))?,
            None => Map::new(),
        };
        Ok(TensorReader { path: path.to_path_buf(), st, raw, values })
    }

    /// An error about this file.
    pub fn error(&self, msg: impl std::fmt::Display) -> Error {
        Error::artifact(&self.path, msg.to_string())
    }

    /// Whether the file holds a tensor of that name.
    pub fn has(&self, name: &str) -> bool {
        self.st.tensor(name).is_ok()
    }

    /// The names of its tensors, sorted.
    pub fn names(&self) -> Vec<String> {
        let mut n: Vec<String> = self.st.names().into_iter().map(String::from).collect();
        n.sort();
        n
    }

    /// A tensor as it is stored: its type, shape and little-endian bytes.
    pub(crate) fn raw(&self, name: &str) -> Option<(Dtype, Vec<usize>, &'a [u8])> {
        self.st.tensor(name).ok().map(|v| (v.dtype(), v.shape().to_vec(), v.data()))
    }

    fn view(&self, name: &str, dtype: Dtype) -> Result<TensorView<'a>> {
        let v = self.st.tensor(name).map_err(|_| self.error(format!("missing tensor '{name}'")))?;
        if v.dtype() != dtype {
            return Err(self.error(format!("tensor '{name}' is {:?}, expected {dtype:?}", v.dtype())));
        }
        Ok(v)
    }

    fn check_shape(&self, name: &str, got: &[usize], want: &[usize]) -> Result<()> {
        if got != want {
            return Err(self.error(format!("tensor '{name}' has shape {got:?}, expected {want:?}")));
        }
        Ok(())
    }

    /// An `f32` tensor of exactly `shape`.
    pub fn f32(&self, name: &str, shape: &[usize]) -> Result<Vec<f32>> {
        let (data, got) = self.f32_any(name)?;
        self.check_shape(name, &got, shape)?;
        Ok(data)
    }

    /// An `f32` tensor and its shape; a value that is not finite is a corrupt artifact.
    pub fn f32_any(&self, name: &str) -> Result<(Vec<f32>, Vec<usize>)> {
        let v = self.view(name, Dtype::F32)?;
        let data: Vec<f32> = v.data().chunks_exact(4).map(|b| f32::from_le_bytes([b[0], b[1], b[2], b[3]])).collect();
        if let Some(i) = data.iter().position(|x| !x.is_finite()) {
            return Err(
                self.error(format!("tensor '{name}' holds {} at index {i}: every value must be finite", data[i]))
            );
        }
        Ok((data, v.shape().to_vec()))
    }

    /// A 1-D `u32` tensor, of length `len` when given.
    pub fn u32(&self, name: &str, len: Option<usize>) -> Result<Vec<u32>> {
        let v = self.view(name, Dtype::U32)?;
        self.check_shape(name, v.shape(), &[len.unwrap_or(v.data().len() / 4)])?;
        Ok(v.data().chunks_exact(4).map(|b| u32::from_le_bytes([b[0], b[1], b[2], b[3]])).collect())
    }

    /// A 1-D `u8` tensor.
    pub fn u8(&self, name: &str) -> Result<Vec<u8>> {
        let v = self.view(name, Dtype::U8)?;
        self.check_shape(name, v.shape(), &[v.data().len()])?;
        Ok(v.data().to_vec())
    }

    /// A metadata value.
    pub fn meta<T: DeserializeOwned>(&self, key: &str) -> Result<T> {
        let v = self.values.get(key).ok_or_else(|| self.error(format!("no '{key}' in its metadata")))?;
        T::deserialize(v).map_err(|e| self.error(format!("metadata '{key}': {e}")))
    }

    /// A metadata string under its own key (see [`TensorWriter::meta_str`]).
    pub fn meta_str(&self, key: &str) -> Option<&str> {
        self.raw.get(key).map(String::as_str)
    }

    /// Adds a metadata value (for files written before a value was kept in them).
    pub fn insert_meta(&mut self, key: &str, value: Value) {
        self.values.insert(key.to_string(), value);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trip_with_shapes_and_metadata() {
        let mut w = TensorWriter::default();
        w.f32("a", &[2, 2], &[1.0, 2.0, 3.0, 4.0]);
        w.u32("b", &[7, 8]);
        w.meta("scale", &[1.5f32, 2.0]).unwrap();
        w.meta("kind", "x").unwrap();
        let bytes = w.to_bytes().unwrap();
        assert_eq!(bytes, w.to_bytes().unwrap(), "the same bytes every time");
        let r = TensorReader::parse(Path::new("x.safetensors"), &bytes).unwrap();
        assert_eq!(r.f32("a", &[2, 2]).unwrap(), [1.0, 2.0, 3.0, 4.0]);
        assert_eq!(r.u32("b", Some(2)).unwrap(), [7, 8]);
        assert_eq!(r.meta::<Vec<f32>>("scale").unwrap(), [1.5, 2.0]);
        for e in [r.f32("a", &[4]).unwrap_err(), r.f32("zz", &[1]).unwrap_err(), r.u32("a", None).unwrap_err()] {
            assert!(matches!(e, Error::Artifact { .. }) && e.to_string().contains("x.safetensors"), "{e}");
        }
        assert!(TensorReader::parse(Path::new("y"), b"junk").is_err());
    }
}
