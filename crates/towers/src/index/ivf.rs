//! Approximate top-k by inner product: an inverted file (IVF). A k-means coarse quantiser
//! (trained on a sample, distances by GEMM) splits the vectors into `nlist` lists; a query
//! scores the centroids by inner product, scans its `nprobe` best lists with the fused exact
//! kernel (`kernels::panel`, f32, no quantisation: the scores it returns are exact) and keeps
//! the top k, ties by lower id.
//!
//! A batch of queries is searched list by list (each list is read once for all the queries
//! that probe it), so batches run near the kernel's peak. Filters apply during the scan; a
//! query left with fewer than `k` results after filtering is searched again over every list.
//! Saved as safetensors (`to_bytes` / `from_bytes`): the centroids, list offsets and the ids in
//! list order; the vectors themselves come from the caller (the model's candidate embeddings).

use super::{Filter, Index};
use crate::kernels::matmul_abt;
use crate::kernels::panel::{LANES, Quantized, QuantizedQueries, exact_dot, pack, scan};
use crate::kernels::topk::{Scored, TopK};
use crate::rng::Rng;
use crate::{Error, Result};
use rayon::prelude::*;
use safetensors::tensor::{Dtype, SafeTensors, TensorView};
use std::collections::HashMap;

/// Format name and version of the saved index.
const FORMAT: &str = "towers-ivf";
/// Version of the saved index this build writes and reads.
pub const IVF_FORMAT_VERSION: u32 = 1;
/// Padding slot of a list's last panel.
const NO_ID: u32 = u32::MAX;

/// Build and search settings of an [`IvfIndex`]; 0 means "choose from the data size".
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct IvfParams {
    /// Lists (k-means centroids). 0: `4·√n`.
    pub nlist: usize,
    /// Lists scanned per query. 0: `nlist / 6` (recall@10 0.96 on 1M × 32 Gaussian vectors).
    pub nprobe: usize,
    /// k-means iterations.
    pub iterations: usize,
    /// k-means training sample per list.
    pub sample_per_list: usize,
    /// Seed of the sample and the initial centroids.
    pub seed: u64,
}

impl Default for IvfParams {
    fn default() -> Self {
        IvfParams { nlist: 0, nprobe: 0, iterations: 10, sample_per_list: 100, seed: 42 }
    }
}

impl IvfParams {
    /// `nlist` for `n` vectors.
    pub fn nlist_for(&self, n: usize) -> usize {
        let auto = (4.0 * (n as f64).sqrt()).round() as usize;
        (if self.nlist == 0 { auto } else { self.nlist }).clamp(1, n.max(1))
    }

    /// `nprobe` for `nlist` lists.
    pub fn nprobe_for(&self, nlist: usize) -> usize {
        (if self.nprobe == 0 { nlist.div_ceil(6) } else { self.nprobe }).clamp(1, nlist.max(1))
    }
}

/// An approximate inner-product index: k-means lists scanned exactly. See the module docs.
#[derive(Debug, Clone)]
pub struct IvfIndex {
    dim: usize,
    n: usize,
    /// `nlist × dim`.
    centroids: Vec<f32>,
    /// List `l` holds `ids[offsets[l]..offsets[l + 1]]`.
    offsets: Vec<u32>,
    /// Vector ids in list order.
    ids: Vec<u32>,
    /// List `l` starts at panel `panel_offsets[l]`.
    panel_offsets: Vec<u32>,
    /// Every list's vectors packed in panels of 16 (without the prefilter).
    panels: Vec<f32>,
    /// With AVX2: the i16 prefilter's panels and the vectors in slot order, scored exactly.
    quantized: Option<(Quantized, Vec<f32>)>,
    /// The id of each panel slot (`NO_ID` for padding).
    slot_ids: Vec<u32>,
    /// Lists scanned per query.
    nprobe: usize,
}

impl PartialEq for IvfIndex {
    fn eq(&self, o: &Self) -> bool {
        (self.dim, self.n, &self.centroids, &self.offsets, &self.ids, self.nprobe)
            == (o.dim, o.n, &o.centroids, &o.offsets, &o.ids, o.nprobe)
    }
}

fn progress_bar(on: bool, len: u64) -> indicatif::ProgressBar {
    if !on {
        return indicatif::ProgressBar::hidden();
    }
    let bar = indicatif::ProgressBar::new(len);
    if let Ok(style) =
        indicatif::ProgressStyle::with_template("{spinner} IVF index [{bar:30}] {pos}/{len} {msg} ({elapsed})")
    {
        bar.set_style(style.progress_chars("=> "));
    }
    bar
}

/// The nearest centroid (L2) of each point: `argmax_c (x·c − |c|²/2)`, ties to the lower
/// centroid, as an inner product of `[x, 1]` with `[c, −|c|²/2]` in the fused panel kernel (no
/// score matrix). Parallel over blocks of points; the result does not depend on the thread count.
fn assign(points: &[f32], centroids: &[f32], dim: usize) -> Vec<u32> {
    const BLOCK: usize = 1024;
    let (nc, w) = (centroids.len() / dim, dim + 1);
    let aug: Vec<f32> = centroids
        .chunks_exact(dim)
        .flat_map(|c| c.iter().copied().chain(std::iter::once(-0.5 * c.iter().map(|x| x * x).sum::<f32>())))
        .collect();
    let panels = pack(nc, w, |i| &aug[i * w..(i + 1) * w]);
    points
        .par_chunks(BLOCK * dim)
        .flat_map_iter(|block| {
            let rows = block.len() / dim;
            let x: Vec<f32> =
                block.chunks_exact(dim).flat_map(|p| p.iter().copied().chain(std::iter::once(1.0))).collect();
            let mut best = vec![(0u32, f32::NEG_INFINITY); rows];
            let mut t = vec![f32::NEG_INFINITY; rows];
            // centroids a chunk at a time, so that the chunk stays in L2 while every row passes
            let n_panels = nc.div_ceil(LANES);
            for p0 in (0..n_panels).step_by(64) {
                let np = 64.min(n_panels - p0);
                scan(&x, rows, w, &panels[p0 * LANES * w..], np, &mut t, |r, slot, s| {
                    let (b, c) = (&mut best[r], p0 * LANES + slot);
                    if c < nc && (s > b.1 || (s == b.1 && (c as u32) < b.0)) {
                        *b = (c as u32, s);
                    }
                    b.1
                });
            }
            best.into_iter().map(|b| b.0)
        })
        .collect()
}

/// Lloyd's k-means on `sample` (`m × dim`), `nlist` centroids initialised on distinct sample
/// points; an emptied list takes half of the largest one (its centroid split in two).
fn kmeans(
    sample: &[f32],
    dim: usize,
    nlist: usize,
    iterations: usize,
    rng: &mut Rng,
    bar: &indicatif::ProgressBar,
) -> Vec<f32> {
    let m = sample.len() / dim;
    let mut order: Vec<usize> = (0..m).collect();
    rng.shuffle(&mut order);
    let mut centroids: Vec<f32> =
        order[..nlist].iter().flat_map(|&i| sample[i * dim..(i + 1) * dim].iter().copied()).collect();
    for it in 0..iterations {
        let a = assign(sample, &centroids, dim);
        let mut sums = vec![0f64; nlist * dim];
        let mut counts = vec![0usize; nlist];
        for (i, &c) in a.iter().enumerate() {
            counts[c as usize] += 1;
            for (s, &x) in
                sums[c as usize * dim..(c as usize + 1) * dim].iter_mut().zip(&sample[i * dim..(i + 1) * dim])
            {
                *s += x as f64;
            }
        }
        for c in 0..nlist {
            if counts[c] > 0 {
                for j in 0..dim {
                    centroids[c * dim + j] = (sums[c * dim + j] / counts[c] as f64) as f32;
                }
            }
        }
        for c in 0..nlist {
            if counts[c] == 0 {
                let big = (0..nlist).max_by_key(|&b| (counts[b], std::cmp::Reverse(b))).unwrap_or(0);
                for j in 0..dim {
                    let x = centroids[big * dim + j];
                    let e = if j % 2 == 0 { 1.0 / 1024.0 } else { -1.0 / 1024.0 };
                    centroids[c * dim + j] = x * (1.0 + e);
                    centroids[big * dim + j] = x * (1.0 - e);
                }
                counts[c] = counts[big] / 2;
                counts[big] -= counts[c];
            }
        }
        bar.set_message(format!("k-means iteration {}", it + 1));
        bar.inc(1);
    }
    centroids
}

impl IvfIndex {
    /// Builds an index over `vectors` (`n × dim`, row-major): k-means on a sample, then every
    /// vector into its nearest list. Deterministic for a given seed (whatever the thread count).
    pub fn build(vectors: &[f32], dim: usize, params: &IvfParams, progress: bool) -> Result<IvfIndex> {
        if dim == 0 || vectors.len() % dim != 0 {
            return Err(Error::Invalid("vectors must be a whole number of rows of width dim".into()));
        }
        let n = vectors.len() / dim;
        if n == 0 {
            return Err(Error::Invalid("cannot build an index over no vectors".into()));
        }
        if n > NO_ID as usize {
            return Err(Error::Invalid(format!("{n} vectors: an IVF index holds at most {}", NO_ID - 1)));
        }
        let nlist = params.nlist_for(n);
        let nprobe = params.nprobe_for(nlist);
        let bar = progress_bar(progress, params.iterations as u64 + 1);
        let mut rng = Rng::new(params.seed);
        let m = (nlist * params.sample_per_list.max(1)).clamp(nlist, n);
        let mut rows: Vec<usize> = (0..n).collect();
        if m < n {
            // a partial Fisher–Yates: the first m rows are a uniform sample
            for i in 0..m {
                let j = i + rng.below(n - i);
                rows.swap(i, j);
            }
            rows.truncate(m);
            rows.sort_unstable();
        }
        let sample: Vec<f32> = rows.iter().flat_map(|&i| vectors[i * dim..(i + 1) * dim].iter().copied()).collect();
        let centroids = kmeans(&sample, dim, nlist, params.iterations, &mut rng, &bar);
        bar.set_message("assigning every vector");
        let a = assign(vectors, &centroids, dim);
        bar.inc(1);
        bar.finish_and_clear();
        let mut offsets = vec![0u32; nlist + 1];
        a.iter().for_each(|&l| offsets[l as usize + 1] += 1);
        for l in 0..nlist {
            offsets[l + 1] += offsets[l];
        }
        let mut next = offsets.clone();
        let mut ids = vec![0u32; n];
        for (i, &l) in a.iter().enumerate() {
            ids[next[l as usize] as usize] = i as u32;
            next[l as usize] += 1;
        }
        tracing::info!(n, dim, nlist, nprobe, "IVF index built");
        Ok(IvfIndex::from_lists(vectors, dim, centroids, offsets, ids, nprobe, true))
    }

    /// The index from its lists, packing the vectors; the parts must be consistent.
    fn from_lists(
        vectors: &[f32],
        dim: usize,
        centroids: Vec<f32>,
        offsets: Vec<u32>,
        ids: Vec<u32>,
        nprobe: usize,
        prefilter: bool,
    ) -> IvfIndex {
        let nlist = offsets.len() - 1;
        let mut panel_offsets = vec![0u32; nlist + 1];
        for l in 0..nlist {
            panel_offsets[l + 1] = panel_offsets[l] + (offsets[l + 1] - offsets[l]).div_ceil(LANES as u32);
        }
        let total = panel_offsets[nlist] as usize;
        let mut slot_ids = vec![NO_ID; total * LANES];
        for l in 0..nlist {
            let members = &ids[offsets[l] as usize..offsets[l + 1] as usize];
            let s0 = panel_offsets[l] as usize * LANES;
            slot_ids[s0..s0 + members.len()].copy_from_slice(members);
        }
        let zeros = vec![0f32; dim];
        let row = |s: usize| match slot_ids[s] {
            NO_ID => &zeros[..],
            id => &vectors[id as usize * dim..(id as usize + 1) * dim],
        };
        // with the prefilter the rows are kept as they are (quantised beside), else packed in panels
        let (panels, quantized) = match Quantized::new(total * LANES, dim, row).filter(|_| prefilter) {
            Some(qz) => {
                let rows: Vec<f32> = (0..total * LANES).flat_map(|s| row(s).iter().copied()).collect();
                (Vec::new(), Some((qz, rows)))
            }
            None => {
                let mut panels = vec![0f32; total * LANES * dim];
                let work: Vec<(&mut [f32], usize)> = {
                    let mut out = Vec::with_capacity(nlist);
                    let mut rest = panels.as_mut_slice();
                    for l in 0..nlist {
                        let np = (panel_offsets[l + 1] - panel_offsets[l]) as usize;
                        let (p, r) = rest.split_at_mut(np * LANES * dim);
                        out.push((p, l));
                        rest = r;
                    }
                    out
                };
                work.into_par_iter().for_each(|(p, l)| {
                    let members = &ids[offsets[l] as usize..offsets[l + 1] as usize];
                    p.copy_from_slice(&pack(members.len(), dim, |i| {
                        let id = members[i] as usize;
                        &vectors[id * dim..(id + 1) * dim]
                    }));
                });
                (panels, None)
            }
        };
        IvfIndex { dim, n: ids.len(), centroids, offsets, ids, panel_offsets, panels, quantized, slot_ids, nprobe }
    }

    /// Number of lists.
    pub fn nlist(&self) -> usize {
        self.offsets.len() - 1
    }

    /// Lists scanned per query.
    pub fn nprobe(&self) -> usize {
        self.nprobe
    }

    /// Sets the lists scanned per query (clamped to `1..=nlist`); `nlist` makes the search exact.
    pub fn set_nprobe(&mut self, nprobe: usize) {
        self.nprobe = nprobe.clamp(1, self.nlist());
    }

    /// The size of each list.
    pub fn list_sizes(&self) -> Vec<usize> {
        self.offsets.windows(2).map(|w| (w[1] - w[0]) as usize).collect()
    }

    /// The `nprobe` lists of each query whose centroids score highest (ties: lower list).
    fn probes(&self, queries: &[f32], nprobe: usize) -> Vec<Vec<u32>> {
        let (nq, nlist) = (queries.len() / self.dim, self.nlist());
        let nprobe = nprobe.min(nlist);
        let mut out = Vec::with_capacity(nq);
        let mut s = Vec::new();
        for block in queries.chunks(256 * self.dim) {
            let rows = block.len() / self.dim;
            s.resize(rows * nlist, 0f32);
            matmul_abt(block, &self.centroids, &mut s, rows, nlist, self.dim);
            let mut keys: Vec<u64> = Vec::with_capacity(nlist);
            for row in s.chunks_exact(nlist).take(rows) {
                // ascending keys = descending scores, ties to the lower list
                keys.clear();
                keys.extend(row.iter().enumerate().map(|(l, &x)| {
                    let b = x.to_bits();
                    let ascending = if b >> 31 == 1 { !b } else { b | 1 << 31 };
                    (u64::from(!ascending) << 32) | l as u64
                }));
                if nprobe < nlist {
                    keys.select_nth_unstable(nprobe - 1);
                }
                let lists: Vec<u32> = keys[..nprobe].iter().map(|&k| k as u32).collect();
                out.push(lists);
            }
        }
        out
    }

    /// Top-k of queries `q0..q0 + probes.len()` over their lists, list by list.
    fn scan_lists<'f>(
        &self,
        queries: &[f32],
        q0: usize,
        probes: &[Vec<u32>],
        k: usize,
        filter: &(impl Fn(usize) -> Filter<'f> + Sync),
    ) -> Vec<Vec<Scored>> {
        let (d, nq) = (self.dim, probes.len());
        let mut members: Vec<Vec<u32>> = vec![Vec::new(); self.nlist()];
        for (i, p) in probes.iter().enumerate() {
            p.iter().for_each(|&l| members[l as usize].push(i as u32));
        }
        let mut heaps: Vec<TopK> = (0..nq).map(|_| TopK::new(k)).collect();
        let (mut buf, mut t) = (Vec::new(), Vec::new());
        if let Some((qz, rows)) = &self.quantized {
            let qs = &queries[q0 * d..(q0 + nq) * d];
            let all = qz.queries(qs, nq, d);
            let mut these = QuantizedQueries::default();
            for (l, m) in members.iter().enumerate() {
                if m.is_empty() {
                    continue;
                }
                t.clear();
                t.extend(m.iter().map(|&i| heaps[i as usize].threshold()));
                let (p0, p1) = (self.panel_offsets[l] as usize, self.panel_offsets[l + 1] as usize);
                these.gather_from(&all, m);
                qz.scan(&these, p0, p1, &mut t, |r, slot| {
                    let i = m[r] as usize;
                    let s = p0 * LANES + slot;
                    let id = self.slot_ids[s];
                    if id != NO_ID && !filter(q0 + i).skips(id) {
                        let score = exact_dot(&qs[i * d..(i + 1) * d], &rows[s * d..(s + 1) * d]);
                        if score >= heaps[i].threshold() {
                            heaps[i].push(Scored { id, score });
                        }
                    }
                    heaps[i].threshold()
                });
            }
            return heaps.into_iter().map(TopK::into_sorted).collect();
        }
        for (l, m) in members.iter().enumerate() {
            if m.is_empty() {
                continue;
            }
            buf.clear();
            t.clear();
            for &i in m {
                let q = q0 + i as usize;
                buf.extend_from_slice(&queries[q * d..(q + 1) * d]);
                t.push(heaps[i as usize].threshold());
            }
            let (p0, p1) = (self.panel_offsets[l] as usize, self.panel_offsets[l + 1] as usize);
            let slots = &self.slot_ids[p0 * LANES..p1 * LANES];
            scan(&buf, m.len(), d, &self.panels[p0 * LANES * d..], p1 - p0, &mut t, |r, slot, score| {
                let (i, id) = (m[r] as usize, slots[slot]);
                if id != NO_ID && !filter(q0 + i).skips(id) {
                    heaps[i].push(Scored { id, score });
                }
                heaps[i].threshold()
            });
        }
        heaps.into_iter().map(TopK::into_sorted).collect()
    }

    /// The `k` best candidates of each query scanning `nprobe` lists per query.
    pub fn search_batch_with(&self, queries: &[f32], k: usize, filters: &[Filter], nprobe: usize) -> Vec<Vec<Scored>> {
        assert!(queries.len() % self.dim == 0, "queries must be rows of width dim");
        let nq = queries.len() / self.dim;
        let filter = |i: usize| match filters.len() {
            0 => Filter::default(),
            1 => filters[0],
            _ => filters[i],
        };
        // one block per thread: each block reads every list it probes once
        let threads = rayon::current_num_threads().max(1);
        let block = nq.div_ceil(threads).max(1);
        let run = |b: usize| -> Vec<Vec<Scored>> {
            let (b0, b1) = (b * block, ((b + 1) * block).min(nq));
            let probes = self.probes(&queries[b0 * self.dim..b1 * self.dim], nprobe);
            let mut out = self.scan_lists(queries, b0, &probes, k, &filter);
            // filtered out of the probed lists: search everything for those queries
            if nprobe < self.nlist() {
                let all: Vec<u32> = (0..self.nlist() as u32).collect();
                for (i, r) in out.iter_mut().enumerate() {
                    if r.len() < k.min(self.n) {
                        *r = self.scan_lists(queries, b0 + i, std::slice::from_ref(&all), k, &filter).remove(0);
                    }
                }
            }
            out
        };
        let n_blocks = nq.div_ceil(block);
        let blocks: Vec<Vec<Vec<Scored>>> = if n_blocks <= 1 {
            (0..n_blocks).map(run).collect()
        } else {
            (0..n_blocks).into_par_iter().map(run).collect()
        };
        blocks.into_iter().flatten().collect()
    }

    /// Serialises the index (not the vectors): safetensors with `centroids`, `offsets`, `ids`
    /// and the format, version and `nprobe` in its metadata.
    pub fn to_bytes(&self) -> Result<Vec<u8>> {
        let f = |v: &[f32]| v.iter().flat_map(|x| x.to_le_bytes()).collect::<Vec<u8>>();
        let u = |v: &[u32]| v.iter().flat_map(|x| x.to_le_bytes()).collect::<Vec<u8>>();
        let data = [
            ("centroids", Dtype::F32, vec![self.nlist(), self.dim], f(&self.centroids)),
            ("offsets", Dtype::U32, vec![self.offsets.len()], u(&self.offsets)),
            ("ids", Dtype::U32, vec![self.ids.len()], u(&self.ids)),
        ];
        let views: Vec<(&str, TensorView)> = data
            .iter()
            .map(|(n, dt, s, b)| TensorView::new(*dt, s.clone(), b).map(|v| (*n, v)))
            .collect::<std::result::Result<_, _>>()
            .map_err(|e| Error::Invalid(format!("building the index tensors: {e}")))?;
        let meta = HashMap::from([
            ("format".to_string(), FORMAT.to_string()),
            ("format_version".to_string(), IVF_FORMAT_VERSION.to_string()),
            ("nprobe".to_string(), self.nprobe.to_string()),
        ]);
        safetensors::serialize(views, Some(meta)).map_err(|e| Error::Invalid(format!("serialising the index: {e}")))
    }

    /// Reads an index written by [`IvfIndex::to_bytes`] over `vectors` (`n × dim`), checking
    /// that it is one and that it fits them (every id exactly once). Errors are
    /// [`Error::Invalid`] naming the problem.
    pub fn from_bytes(bytes: &[u8], vectors: &[f32], dim: usize) -> Result<IvfIndex> {
        let bad = |m: String| Error::Invalid(m);
        let st = SafeTensors::deserialize(bytes).map_err(|e| bad(format!("not a safetensors file: {e}")))?;
        let (_, header) = SafeTensors::read_metadata(bytes).map_err(|e| bad(format!("unreadable header: {e}")))?;
        let meta = header.metadata().clone().unwrap_or_default();
        if meta.get("format").map(String::as_str) != Some(FORMAT) {
            return Err(bad(format!("not a {FORMAT} index")));
        }
        let version: u32 = meta.get("format_version").and_then(|v| v.parse().ok()).unwrap_or(0);
        if version != IVF_FORMAT_VERSION {
            return Err(bad(format!(
                "index format version {version}; this towers reads version {IVF_FORMAT_VERSION} (rebuild it with `towers index build`)"
            )));
        }
        let nprobe: usize = meta.get("nprobe").and_then(|v| v.parse().ok()).unwrap_or(0);
        let tensor = |name: &str, dtype: Dtype| -> Result<(Vec<usize>, Vec<u8>)> {
            let v = st.tensor(name).map_err(|_| bad(format!("missing tensor '{name}'")))?;
            if v.dtype() != dtype {
                return Err(bad(format!("tensor '{name}' is {:?}, expected {dtype:?}", v.dtype())));
            }
            Ok((v.shape().to_vec(), v.data().to_vec()))
        };
        let words = |b: Vec<u8>| b.chunks_exact(4).map(|w| [w[0], w[1], w[2], w[3]]).collect::<Vec<[u8; 4]>>();
        let (cs, cb) = tensor("centroids", Dtype::F32)?;
        let (_, ob) = tensor("offsets", Dtype::U32)?;
        let (_, ib) = tensor("ids", Dtype::U32)?;
        let centroids: Vec<f32> = words(cb).into_iter().map(f32::from_le_bytes).collect();
        let offsets: Vec<u32> = words(ob).into_iter().map(u32::from_le_bytes).collect();
        let ids: Vec<u32> = words(ib).into_iter().map(u32::from_le_bytes).collect();
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
        Ok(IvfIndex::from_lists(vectors, dim, centroids, offsets, ids, nprobe, true))
    }
}

impl Index for IvfIndex {
    fn len(&self) -> usize {
        self.n
    }

    fn dim(&self) -> usize {
        self.dim
    }

    fn search_batch(&self, queries: &[f32], k: usize, filters: &[Filter]) -> Vec<Vec<Scored>> {
        self.search_batch_with(queries, k, filters, self.nprobe)
    }
}

/// Mean over queries of |approximate top-k ∩ exact top-k| / (size of the exact top-k).
pub fn recall_at_k(approx: &[Vec<Scored>], exact: &[Vec<Scored>]) -> f64 {
    let per: Vec<f64> = approx
        .iter()
        .zip(exact)
        .filter(|(_, e)| !e.is_empty())
        .map(|(a, e)| a.iter().filter(|x| e.iter().any(|y| y.id == x.id)).count() as f64 / e.len() as f64)
        .collect();
    if per.is_empty() { 1.0 } else { per.iter().sum::<f64>() / per.len() as f64 }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::index::{BruteForceIndex, Metric};

    /// Points around 50 random centres, as embeddings cluster.
    fn clustered(n: usize, d: usize, seed: u64) -> Vec<f32> {
        let mut rng = Rng::new(seed);
        let centres: Vec<f32> = (0..50 * d).map(|_| 2.0 * rng.next_f32() - 1.0).collect();
        (0..n)
            .flat_map(|_| {
                let c = rng.below(50);
                (0..d).map(|j| centres[c * d + j] + 0.3 * (rng.next_f32() - 0.5)).collect::<Vec<_>>()
            })
            .collect()
    }

    #[test]
    fn recall_is_high_and_every_list_makes_it_exact() {
        let (n, d, nq) = (20_000, 16, 200);
        let v = clustered(n, d, 1);
        let q = clustered(nq, d, 2);
        let exact = BruteForceIndex::new(v.clone(), d, Metric::Dot);
        let want = exact.search_batch(&q, 10, &[]);
        let mut ivf = IvfIndex::build(&v, d, &IvfParams::default(), false).unwrap();
        assert_eq!(ivf.nlist(), 566);
        assert_eq!(ivf.list_sizes().iter().sum::<usize>(), n);
        let got = ivf.search_batch(&q, 10, &[]);
        let r = recall_at_k(&got, &want);
        assert!(r >= 0.9, "recall@10 {r}");
        // one query at a time gives the same as the batch
        assert_eq!(ivf.search(&q[..d], 10, &Filter::default()), got[0]);
        ivf.set_nprobe(ivf.nlist());
        let all = ivf.search_batch(&q, 10, &[]);
        for (a, w) in all.iter().zip(&want) {
            assert_eq!(a.iter().map(|s| s.id).collect::<Vec<_>>(), w.iter().map(|s| s.id).collect::<Vec<_>>());
            for (x, y) in a.iter().zip(w) {
                assert!((x.score - y.score).abs() < 1e-5);
            }
        }
    }

    #[test]
    fn the_f32_path_without_the_prefilter_gives_the_same_results() {
        let (n, d) = (3000, 8);
        let v = clustered(n, d, 5);
        let ivf = IvfIndex::build(&v, d, &IvfParams { nlist: 20, nprobe: 5, ..Default::default() }, false).unwrap();
        let plain = IvfIndex::from_lists(&v, d, ivf.centroids.clone(), ivf.offsets.clone(), ivf.ids.clone(), 5, false);
        assert!(plain.quantized.is_none() && !plain.panels.is_empty());
        let q = clustered(50, d, 6);
        let exclude: Vec<u32> = (0..n as u32).step_by(3).collect();
        let f = [Filter { exclude: &exclude, allow: None }];
        let (a, b) = (ivf.search_batch(&q, 10, &f), plain.search_batch(&q, 10, &f));
        for (x, y) in a.iter().zip(&b) {
            assert_eq!(x.iter().map(|s| s.id).collect::<Vec<_>>(), y.iter().map(|s| s.id).collect::<Vec<_>>());
            assert!(x.iter().zip(y).all(|(s, t)| (s.score - t.score).abs() < 1e-5));
        }
    }

    #[test]
    fn filters_apply_and_short_results_fall_back_to_every_list() {
        let (n, d) = (3000, 8);
        let v = clustered(n, d, 3);
        let ivf = IvfIndex::build(&v, d, &IvfParams { nprobe: 2, ..Default::default() }, false).unwrap();
        let exact = BruteForceIndex::new(v.clone(), d, Metric::Dot);
        let q = &v[..d];
        let exclude: Vec<u32> = (0..n as u32).filter(|i| i % 2 == 0).collect();
        let f = Filter { exclude: &exclude, allow: None };
        assert!(ivf.search(q, 10, &f).iter().all(|s| s.id % 2 == 1));
        // an allow list far from the query's lists: only the fallback finds them
        let allow: Vec<u32> = vec![5, 17, 2999];
        let f = Filter { exclude: &[], allow: Some(&allow) };
        let got: Vec<u32> = ivf.search(q, 10, &f).iter().map(|s| s.id).collect();
        let want: Vec<u32> = exact.search(q, 10, &f).iter().map(|s| s.id).collect();
        assert_eq!(got, want);
    }

    #[test]
    fn saved_index_round_trips_and_bad_bytes_are_refused() {
        let (n, d) = (2000, 8);
        let v = clustered(n, d, 4);
        let params = IvfParams { nlist: 30, nprobe: 7, ..Default::default() };
        let ivf = IvfIndex::build(&v, d, &params, false).unwrap();
        // deterministic: the same seed builds the same index, whatever the thread count
        let one = rayon::ThreadPoolBuilder::new().num_threads(1).build().unwrap();
        assert_eq!(ivf, one.install(|| IvfIndex::build(&v, d, &params, false)).unwrap());
        let bytes = ivf.to_bytes().unwrap();
        let back = IvfIndex::from_bytes(&bytes, &v, d).unwrap();
        assert_eq!(back, ivf);
        assert_eq!(back.search(&v[..d], 5, &Filter::default()), ivf.search(&v[..d], 5, &Filter::default()));
        assert!(IvfIndex::from_bytes(&bytes[..bytes.len() / 2], &v, d).is_err());
        assert!(IvfIndex::from_bytes(b"not an index", &v, d).is_err());
        // vectors of another model
        assert!(IvfIndex::from_bytes(&bytes, &v[..(n - 1) * d], d).is_err());
        let err = IvfIndex::from_bytes(&bytes, &v[..n * 4], 4).unwrap_err().to_string();
        assert!(err.contains("centroids"), "{err}");
    }
}
