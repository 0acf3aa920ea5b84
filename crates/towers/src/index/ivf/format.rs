//! The saved index: its tensors (centroids, list offsets, ids in list order, codebooks, codes)
//! and, in the metadata, its format, version and search settings. The f32 vectors are not in
//! it: they come from the caller (the model's candidate embeddings).

use super::{IvfIndex, Lists, NO_ID};
use crate::kernels::fastscan::{self, CODES, Pq4, SUB_DIM};
use crate::tensors::{TensorReader, TensorWriter};
use crate::{Error, Result};

/// Format name of the saved index.
const FORMAT: &str = "towers-ivf";
/// Version of the saved index this build writes and reads.
pub const IVF_FORMAT_VERSION: u32 = 2;

impl IvfIndex {
    /// Writes the index (not the vectors).
    pub fn write(&self, w: &mut TensorWriter) -> Result<()> {
        let ids: Vec<u32> = self.slot_ids.iter().copied().filter(|&id| id != NO_ID).collect();
        w.f32("centroids", &[self.nlist(), self.dim], &self.centroids);
        w.u32("offsets", &self.offsets);
        w.u32("ids", &ids);
        w.f32("codebooks", &[fastscan::subspaces(self.dim), CODES, SUB_DIM], self.pq.codebooks());
        w.u8("codes", &self.codes);
        w.meta_str("format", FORMAT);
        w.meta_str("format_version", &IVF_FORMAT_VERSION.to_string());
        w.meta_str("nprobe", &self.nprobe.to_string());
        w.meta_str("reorder", &self.reorder.to_string());
        Ok(())
    }

    /// Reads an index written by [`IvfIndex::write`] over `vectors` (`n × dim`), checking that
    /// it is one and that it fits them (every id exactly once); errors name the file.
    pub fn read(r: &TensorReader, vectors: &[f32], dim: usize) -> Result<IvfIndex> {
        let bad = |m: String| r.error(m);
        if r.meta_str("format") != Some(FORMAT) {
            return Err(bad(format!("not a {FORMAT} index")));
        }
        let number = |key: &str| -> usize { r.meta_str(key).and_then(|v| v.parse().ok()).unwrap_or(0) };
        let version = number("format_version") as u32;
        if version != IVF_FORMAT_VERSION {
            return Err(bad(format!(
                "index format version {version}; this towers reads version {IVF_FORMAT_VERSION} (rebuild it with `towers index build`)"
            )));
        }
        let (nprobe, reorder) = (number("nprobe"), number("reorder"));
        let (centroids, cs) = r.f32_any("centroids")?;
        let offsets = r.u32("offsets", None)?;
        let ids = r.u32("ids", None)?;
        let (codebooks, ps) = r.f32_any("codebooks")?;
        let codes = r.u8("codes")?;
        let n = vectors.len() / dim.max(1);
        if cs.len() != 2 || cs[1] != dim || cs[0] == 0 {
            return Err(bad(format!("centroids are {cs:?}, expected [nlist, {dim}]")));
        }
        let nlist = cs[0];
        if offsets.len() != nlist + 1
            || offsets[0] != 0
            || offsets.windows(2).any(|w| w[0] > w[1])
            || offsets[nlist] as usize != ids.len()
        {
            return Err(bad("inconsistent list offsets".into()));
        }
        if ids.len() != n {
            return Err(bad(format!("the index holds {} vectors, the model {n}: rebuild it", ids.len())));
        }
        let mut seen = vec![false; n];
        for &id in &ids {
            if id as usize >= n || std::mem::replace(&mut seen[id as usize], true) {
                return Err(bad(format!("id {id} is out of range or listed twice")));
            }
        }
        if nprobe == 0 || nprobe > nlist {
            return Err(bad(format!("nprobe {nprobe} is not in 1..={nlist}")));
        }
        if ps != [fastscan::subspaces(dim), CODES, SUB_DIM] {
            return Err(bad(format!(
                "codebooks are {ps:?}, expected [{}, {CODES}, {SUB_DIM}]",
                fastscan::subspaces(dim)
            )));
        }
        if reorder == 0 {
            return Err(bad("reorder must be at least 1".into()));
        }
        let pq = Pq4::from_codebooks(dim, codebooks).ok_or_else(|| bad("codebooks do not fit the dimension".into()))?;
        IvfIndex::from_lists(vectors, dim, Lists { centroids, offsets, ids }, pq, Some(codes), (nprobe, reorder))
            .map_err(|e| match e {
                Error::Data(m) => bad(m),
                other => other,
            })
    }
}
