//! The model directory of a distributed run with sharded tables, written by rank 0 with no rank
//! holding a whole sharded table: each sharded tensor (an embedding table, the candidate
//! embeddings, their optimizer slots) is moved out of the model and its state on every rank,
//! and as rank 0 writes its file the ranks send their rows in blocks, which rank 0 writes in the
//! table's order. Rank 0's own model keeps the sharded tensors' shapes, not their rows.

use super::tables::{self, Placement};
use crate::dist::Counted;
use crate::kernels::table::Table;
use crate::model::{Normalization, Tower};
use crate::tensors::{Streams, write_f32};
use std::io::Write;
use std::rc::Rc;

/// One sharded tensor of the directory: this rank's rows of it, and where it is written.
pub(crate) struct Sharded {
    pub file: &'static str,
    pub name: String,
    pub placement: Placement,
    /// This rank's rows.
    rows: Rc<Table>,
    /// Rows written as a tower of this normalisation outputs them (the candidate embeddings),
    /// or as they are.
    output: Option<Normalization>,
    shape: [usize; 2],
}

impl Sharded {
    /// The rows of `table` (sharded as `placement` says) moved out of it, to be written as
    /// `name` of `file`.
    pub fn take(file: &'static str, name: String, placement: Placement, table: &mut Table) -> Sharded {
        let rows = Rc::new(Table { rows: table.rows, dim: table.dim, data: std::mem::take(&mut table.data) });
        Sharded { file, name, placement, shape: [placement.rows, table.dim], rows, output: None }
    }

    /// The same rows written as a tower of `normalization` outputs them, as `name` of `file`.
    pub fn outputs(&self, file: &'static str, name: String, normalization: Normalization) -> Sharded {
        Sharded { file, name, rows: self.rows.clone(), output: Some(normalization), ..*self }
    }
}

/// Sends this rank's rows of `s` (every rank), and writes the whole tensor to `out` (rank 0).
/// Every rank takes part to the end whatever befalls the writing; its first error is returned.
fn send(comm: &Counted, s: &Sharded, mut out: Option<&mut dyn Write>) -> std::io::Result<()> {
    let mut result = Ok(());
    tables::blocks(comm, &s.placement, &s.rows, |rows| {
        let Some(out) = out.as_mut().filter(|_| result.is_ok()) else { return };
        let dim = s.rows.dim;
        let outputs = s.output.map(|normalization| {
            let embedding = Table { rows: rows.len() / dim.max(1), dim, data: rows.to_vec() };
            Tower { embedding, normalization, batch_norm: None }.embed_all()
        });
        result = write_f32(out, outputs.as_deref().unwrap_or(rows));
    });
    result
}

/// The sharded tensors of a run, in the order rank 0 writes them (by file in the order of
/// `files`, then by name, as a safetensors file is written).
pub(crate) struct Streamed<'a> {
    comm: &'a Counted<'a>,
    list: Vec<Sharded>,
    next: usize,
}

impl<'a> Streamed<'a> {
    pub fn new(comm: &'a Counted<'a>, mut list: Vec<Sharded>, files: &[&str]) -> Self {
        list.sort_by_key(|s| (files.iter().position(|f| *f == s.file), s.name.clone()));
        Streamed { comm, list, next: 0 }
    }

    /// Takes part in the sending of the tensors rank 0 did not write: all of them on the other
    /// ranks; on rank 0, after writing (or failing to), the rest, so that every rank ends
    /// together.
    pub fn finish(self) {
        self.list[self.next..].iter().for_each(|s| drop(send(self.comm, s, None)));
    }
}

impl Streams for Streamed<'_> {
    fn shape(&self, file: &str, name: &str) -> Option<&[usize]> {
        self.list.iter().find(|s| s.file == file && s.name == name).map(|s| &s.shape[..])
    }

    fn write(&mut self, file: &str, name: &str, out: &mut dyn Write) -> std::io::Result<()> {
        let at = self.list.iter().position(|s| s.file == file && s.name == name);
        if at != Some(self.next) {
            // every rank sends in the list's order: another order would leave them waiting
            return Err(std::io::Error::other(format!("internal: {file} {name} written out of order")));
        }
        self.next += 1;
        send(self.comm, &self.list[self.next - 1], Some(out))
    }
}
