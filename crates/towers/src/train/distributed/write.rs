//! The model directory of a distributed run with sharded tables, written by rank 0 with no rank
//! holding a whole sharded table: each sharded tensor (an embedding table, the candidate
//! embeddings, their optimizer slots) is moved out of the model and its state on every rank,
//! and as rank 0 writes its file the ranks send their rows in blocks, which rank 0 writes in the
//! table's order. Rank 0's own model keeps the sharded tensors' shapes, not their rows.

use super::tables::Placement;
use crate::dist::Counted;
use crate::kernels::table::Table;
use crate::model::{Normalization, Tower};
use crate::tensors::Streams;
use crate::train::Slots;
use crate::train::state::{Part, State};
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

/// Every rank's rows of a sharded table in blocks of about 4 MB per rank; on rank 0, `sink`
/// gets each block's rows, consecutive rows of the whole table in order (every rank calls it
/// alike).
pub(crate) fn blocks(comm: &Counted, p: &Placement, local: &Table, mut sink: impl FnMut(&[f32])) {
    let d = local.dim.max(1);
    let block = ((1 << 20) / d).max(1);
    let mut rows = Vec::new();
    // rank 0 holds the most rows
    for start in (0..p.rows.div_ceil(p.ranks)).step_by(block) {
        let (from, to) = (start.min(local.rows), (start + block).min(local.rows));
        let Some(parts) = comm.gather(&local.data[from * d..to * d]) else { continue };
        rows.clear();
        for i in 0..block {
            for part in &parts {
                match part.get(i * d..(i + 1) * d) {
                    Some(row) => rows.extend_from_slice(row),
                    None => break,
                }
            }
        }
        sink(&rows);
    }
}

/// Sends this rank's rows of `s` (every rank), and writes the whole tensor to `out` (rank 0).
/// Every rank takes part to the end whatever befalls the writing; its first error is returned.
fn send(comm: &Counted, s: &Sharded, mut out: Option<&mut dyn Write>) -> std::io::Result<()> {
    let mut result = Ok(());
    blocks(comm, &s.placement, &s.rows, |rows| {
        let Some(out) = out.as_mut().filter(|_| result.is_ok()) else { return };
        let dim = s.rows.dim;
        let outputs = s.output.map(|normalization| {
            let embedding = Table { rows: rows.len() / dim.max(1), dim, data: rows.to_vec() };
            Tower { embedding, normalization, batch_norm: None }.embed_all()
        });
        let rows = outputs.as_deref().unwrap_or(rows);
        result = rows
            .chunks(1 << 14)
            .try_for_each(|c| out.write_all(&c.iter().flat_map(|x| x.to_le_bytes()).collect::<Vec<u8>>()));
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

    /// The ranks other than 0: sends every tensor's rows, in order.
    pub fn serve(self) {
        self.list.iter().for_each(|s| drop(send(self.comm, s, None)));
    }

    /// Rank 0, after writing (or failing to): takes part in the sending of the tensors it did
    /// not write, so that every rank ends together.
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

/// The name under which the optimizer state (as `write_state` numbers it) keeps `slots`'
/// first table, and its second's, when `slots` is part of `state`.
pub(crate) fn slot_names(state: &mut dyn State, slots: *const Slots) -> Option<[String; 2]> {
    let (mut i, mut found) = (0, None);
    state.visit(&mut |part| {
        if let Part::Slots(s) = part {
            if std::ptr::eq(s, slots) {
                found = Some(i);
            }
            i += 1;
        }
    });
    found.map(|i| [format!("slot.{i}.first"), format!("slot.{i}.second")])
}
