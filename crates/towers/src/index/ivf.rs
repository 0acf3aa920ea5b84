//! Approximate top-k by inner product: an inverted file (IVF) with 4-bit product-quantised
//! lists. A k-means coarse quantiser (trained on a sample) splits the vectors into `nlist`
//! lists; each vector's residual from its list's centroid is stored as 4-bit codes
//! ([`kernels::fastscan`](crate::kernels::fastscan)). A query scores the centroids, scans the
//! codes of its `nprobe` best lists with byte shuffles (an approximate score per vector), keeps
//! the `reorder` best approximate scores and re-scores them exactly from the f32 vectors
//! (`panel::exact_dot`, the same FMA chain as the exact index); the top k of those, ties by lower
//! id, is the answer.
//!
//! The codes are score-aware (see [`Pq4::encode`]); the codewords start from k-means on a sample
//! of residuals and are refined for the same loss ([`Pq4::refine`]). One query scans its lists in
//! memory order, fetching ahead; a batch is searched 64 queries at a time, list by list, so that
//! a list's codes are read once for all the queries of the block that probe it. Either way a
//! query's answer does not depend on the batch. Filters apply before re-ranking; a query left
//! with fewer than `k` results is searched again over every list. Saved as safetensors
//! (`to_bytes` / `from_bytes`): the centroids, list offsets, ids in list order, the codewords and
//! the codes; the f32 vectors come from the caller (the model's candidate embeddings).

use super::{Filter, Index};
use crate::kernels::fastscan::{self, BLOCK, CODES, Pq4, SUB_DIM};
use crate::kernels::panel::{LANES, exact_dot, pack, scan};
use crate::kernels::topk::{Scored, TopK};
use crate::kernels::{matmul_abt, with_huge_pages};
use crate::rng::Rng;
use crate::{Error, Result};
use rayon::prelude::*;
use safetensors::tensor::{Dtype, SafeTensors, TensorView};
use std::collections::HashMap;

/// Format name and version of the saved index.
const FORMAT: &str = "towers-ivf";
/// Version of the saved index this build writes and reads.
pub const IVF_FORMAT_VERSION: u32 = 2;
/// Padding slot of a list's last block.
const NO_ID: u32 = u32::MAX;
/// Product-quantiser training: residuals sampled, k-means iterations.
const PQ_SAMPLE: usize = 65_536;
const PQ_ITERATIONS: usize = 20;
/// Passes of score-aware codebook training after k-means.
const PQ_REFINE: usize = 2;

/// Build and search settings of an [`IvfIndex`]; 0 means "choose from the data size".
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct IvfParams {
    /// Lists (k-means centroids). 0: `min(4·√n, n / 32)`.
    pub nlist: usize,
    /// Lists scanned per query. 0: 22% of `nlist`.
    pub nprobe: usize,
    /// Candidates re-scored exactly per query (at least `k`). 0: 300.
    pub reorder: usize,
    /// k-means iterations.
    pub iterations: usize,
    /// k-means training sample per list.
    pub sample_per_list: usize,
    /// Seed of the samples and the initial centroids.
    pub seed: u64,
}

impl Default for IvfParams {
    fn default() -> Self {
        IvfParams { nlist: 0, nprobe: 0, reorder: 0, iterations: 10, sample_per_list: 100, seed: 42 }
    }
}

impl IvfParams {
    /// `nlist` for `n` vectors.
    pub fn nlist_for(&self, n: usize) -> usize {
        let auto = ((4.0 * (n as f64).sqrt()).round() as usize).min(n / 32);
        (if self.nlist == 0 { auto } else { self.nlist }).clamp(1, n.max(1))
    }

    /// `nprobe` for `nlist` lists.
    pub fn nprobe_for(&self, nlist: usize) -> usize {
        (if self.nprobe == 0 { (nlist * 22).div_ceil(100) } else { self.nprobe }).clamp(1, nlist.max(1))
    }

    /// Candidates re-scored exactly.
    pub fn reorder(&self) -> usize {
        if self.reorder == 0 { 300 } else { self.reorder }
    }
}

/// An approximate inner-product index: k-means lists of 4-bit codes, re-ranked exactly. See the
/// module docs.
#[derive(Debug, Clone)]
pub struct IvfIndex {
    dim: usize,
    /// The vectors in slot order (zeros for padding), `slots × dim`: the exact re-ranking
    /// reads them, near each other when they share a list.
    rows: Vec<f32>,
    /// `nlist × dim`.
    centroids: Vec<f32>,
    /// List `l` holds `offsets[l + 1] − offsets[l]` vectors.
    offsets: Vec<u32>,
    /// The residual quantiser.
    pq: Pq4,
    /// List `l` is blocks `block_offsets[l]..block_offsets[l + 1]` of `codes`.
    block_offsets: Vec<u32>,
    /// Every list's residual codes, in blocks of 32.
    codes: Vec<u8>,
    /// The id of each block slot (`NO_ID` for padding).
    slot_ids: Vec<u32>,
    /// Lists scanned per query.
    nprobe: usize,
    /// Candidates re-scored exactly per query.
    reorder: usize,
}

impl PartialEq for IvfIndex {
    fn eq(&self, o: &Self) -> bool {
        (self.dim, &self.centroids, &self.offsets, &self.slot_ids, &self.pq, &self.codes, self.nprobe, self.reorder)
            == (o.dim, &o.centroids, &o.offsets, &o.slot_ids, &o.pq, &o.codes, o.nprobe, o.reorder)
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
    const POINTS: usize = 1024;
    let (nc, w) = (centroids.len() / dim, dim + 1);
    let aug: Vec<f32> = centroids
        .chunks_exact(dim)
        .flat_map(|c| c.iter().copied().chain(std::iter::once(-0.5 * c.iter().map(|x| x * x).sum::<f32>())))
        .collect();
    let panels = pack(nc, w, |i| &aug[i * w..(i + 1) * w]);
    points
        .par_chunks(POINTS * dim)
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

/// `x` as a key whose unsigned order is the order of the floats.
#[inline]
fn to_key(x: f32) -> u32 {
    let b = x.to_bits();
    if b >> 31 == 1 { !b } else { b | 1 << 31 }
}

/// The float of a [`to_key`] key.
#[inline]
fn from_key(k: u32) -> f32 {
    f32::from_bits(if k >> 31 == 1 { k & !(1 << 31) } else { !k })
}

/// Groups `(list, value)` pairs by list, in their order within a list (a counting sort): list `l`
/// holds `values[start[l]..start[l + 1]]`; returns `(start, values)`.
fn group_by_list<T: Copy + Default>(
    nlist: usize,
    items: impl Iterator<Item = (u32, T)> + Clone,
) -> (Vec<usize>, Vec<T>) {
    let mut start = vec![0usize; nlist + 1];
    items.clone().for_each(|(l, _)| start[l as usize + 1] += 1);
    for l in 0..nlist {
        start[l + 1] += start[l];
    }
    let mut next = start.clone();
    let mut values = vec![T::default(); start[nlist]];
    for (l, v) in items {
        values[next[l as usize]] = v;
        next[l as usize] += 1;
    }
    (start, values)
}

/// Rows `rows` of `vectors` (width `dim`), in that order.
fn gather(vectors: &[f32], dim: usize, rows: &[usize]) -> Vec<f32> {
    rows.iter().flat_map(|&i| vectors[i * dim..(i + 1) * dim].iter().copied()).collect()
}

/// A uniform sample of `m` of the rows `0..n` (all of them if `m ≥ n`), in increasing order.
fn sample_rows(n: usize, m: usize, rng: &mut Rng) -> Vec<usize> {
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
    rows
}

/// The residual quantiser: k-means with 16 codewords in each subspace of a sample of residuals.
fn train_pq(vectors: &[f32], dim: usize, centroids: &[f32], lists: &[u32], rng: &mut Rng) -> Pq4 {
    let n = vectors.len() / dim;
    let rows = sample_rows(n, PQ_SAMPLE, rng);
    let xs = gather(vectors, dim, &rows);
    let residuals: Vec<f32> = rows
        .iter()
        .flat_map(|&i| {
            let c = &centroids[lists[i] as usize * dim..(lists[i] as usize + 1) * dim];
            vectors[i * dim..(i + 1) * dim].iter().zip(c).map(|(x, c)| x - c)
        })
        .collect();
    let m = fastscan::subspaces(dim);
    let mut codebooks = Vec::with_capacity(m * CODES * SUB_DIM);
    let residual = |i: usize, j: usize| if j < dim { residuals[i * dim + j] } else { 0.0 };
    for s in 0..m {
        let part: Vec<f32> =
            (0..rows.len()).flat_map(|i| (s * SUB_DIM..(s + 1) * SUB_DIM).map(move |j| residual(i, j))).collect();
        if rows.len() >= CODES {
            codebooks.extend(kmeans(&part, SUB_DIM, CODES, PQ_ITERATIONS, rng, &indicatif::ProgressBar::hidden()));
        } else {
            codebooks.extend(part.iter().copied().chain(std::iter::repeat(0.0)).take(CODES * SUB_DIM));
        }
    }
    let pq = Pq4::from_codebooks(dim, codebooks).expect("subspaces × 16 codewords");
    (0..PQ_REFINE).fold(pq, |pq, _| pq.refine(&residuals, &xs))
}

impl IvfIndex {
    /// Builds an index over `vectors` (`n × dim`, row-major): k-means on a sample, every vector
    /// into its nearest list, then the residual quantiser. Deterministic for a given seed
    /// (whatever the thread count).
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
        let bar = progress_bar(progress, params.iterations as u64 + 2);
        let mut rng = Rng::new(params.seed);
        let rows = sample_rows(n, (nlist * params.sample_per_list.max(1)).clamp(nlist, n), &mut rng);
        let centroids = kmeans(&gather(vectors, dim, &rows), dim, nlist, params.iterations, &mut rng, &bar);
        bar.set_message("assigning every vector");
        let a = assign(vectors, &centroids, dim);
        bar.inc(1);
        bar.set_message("training the residual quantiser");
        let pq = train_pq(vectors, dim, &centroids, &a, &mut rng);
        bar.inc(1);
        let (start, ids) = group_by_list(nlist, a.iter().enumerate().map(|(i, &l)| (l, i as u32)));
        let offsets = start.into_iter().map(|o| o as u32).collect();
        bar.set_message("encoding");
        let ivf = IvfIndex::from_lists(vectors, dim, centroids, offsets, ids, pq, None, nprobe, params.reorder())?;
        bar.finish_and_clear();
        tracing::info!(n, dim, nlist, nprobe, reorder = ivf.reorder, "IVF index built");
        Ok(ivf)
    }

    /// The index from its lists and their codes (`None`: encode the residuals); the lists must
    /// be consistent, codes of the wrong size are refused.
    #[allow(clippy::too_many_arguments)]
    fn from_lists(
        vectors: &[f32],
        dim: usize,
        centroids: Vec<f32>,
        offsets: Vec<u32>,
        ids: Vec<u32>,
        pq: Pq4,
        codes: Option<Vec<u8>>,
        nprobe: usize,
        reorder: usize,
    ) -> Result<IvfIndex> {
        let nlist = offsets.len() - 1;
        let mut block_offsets = vec![0u32; nlist + 1];
        for l in 0..nlist {
            block_offsets[l + 1] = block_offsets[l] + (offsets[l + 1] - offsets[l]).div_ceil(BLOCK as u32);
        }
        let mut slot_ids = vec![NO_ID; block_offsets[nlist] as usize * BLOCK];
        for l in 0..nlist {
            let members = &ids[offsets[l] as usize..offsets[l + 1] as usize];
            let s0 = block_offsets[l] as usize * BLOCK;
            slot_ids[s0..s0 + members.len()].copy_from_slice(members);
        }
        let encode = || -> Vec<u8> {
            (0..nlist)
                .into_par_iter()
                .flat_map_iter(|l| {
                    let slots = &slot_ids[block_offsets[l] as usize * BLOCK..block_offsets[l + 1] as usize * BLOCK];
                    let c = &centroids[l * dim..(l + 1) * dim];
                    pq.pack(slots.len(), |i| match slots[i] {
                        NO_ID => None,
                        id => {
                            let x = &vectors[id as usize * dim..(id as usize + 1) * dim];
                            let r: Vec<f32> = x.iter().zip(c).map(|(x, c)| x - c).collect();
                            Some(pq.encode(&r, x))
                        }
                    })
                })
                .collect()
        };
        let codes = codes.unwrap_or_else(encode);
        if codes.len() != block_offsets[nlist] as usize * pq.block_bytes() {
            return Err(Error::Invalid(format!(
                "{} bytes of codes, expected {}",
                codes.len(),
                block_offsets[nlist] as usize * pq.block_bytes()
            )));
        }
        let zeros = vec![0f32; dim];
        let mut rows = with_huge_pages(slot_ids.len() * dim);
        rows.extend(slot_ids.iter().flat_map(|&id| match id {
            NO_ID => &zeros[..],
            id => &vectors[id as usize * dim..(id as usize + 1) * dim],
        }));
        Ok(IvfIndex {
            dim,
            rows,
            centroids,
            offsets,
            pq,
            block_offsets,
            codes,
            slot_ids,
            nprobe,
            reorder: reorder.max(1),
        })
    }

    /// Number of lists.
    pub fn nlist(&self) -> usize {
        self.offsets.len() - 1
    }

    /// Lists scanned per query.
    pub fn nprobe(&self) -> usize {
        self.nprobe
    }

    /// Sets the lists scanned per query (clamped to `1..=nlist`).
    pub fn set_nprobe(&mut self, nprobe: usize) {
        self.nprobe = nprobe.clamp(1, self.nlist());
    }

    /// Candidates re-scored exactly per query.
    pub fn reorder(&self) -> usize {
        self.reorder
    }

    /// Sets the candidates re-scored exactly per query (at least 1); with `nprobe = nlist` and
    /// `reorder ≥ n` the search is exact.
    pub fn set_reorder(&mut self, reorder: usize) {
        self.reorder = reorder.max(1);
    }

    /// The size of each list.
    pub fn list_sizes(&self) -> Vec<usize> {
        self.offsets.windows(2).map(|w| (w[1] - w[0]) as usize).collect()
    }

    /// The `nprobe` lists whose centroid scores (`scores`, one per list) are highest (ties:
    /// lower list), in list order, with their scores.
    fn probes(scores: &[f32], nprobe: usize) -> Vec<(u32, f32)> {
        let nprobe = nprobe.clamp(1, scores.len());
        let keys: Vec<u32> = scores.iter().map(|&x| to_key(x)).collect();
        let mut sorted = keys.clone();
        let (_, &mut pivot, _) = sorted.select_nth_unstable_by(nprobe - 1, |a, b| b.cmp(a));
        // every list above the pivot, then those at it, lowest first
        let mut at = nprobe - keys.iter().filter(|&&k| k > pivot).count();
        let mut out = Vec::with_capacity(nprobe);
        for (l, (&k, &x)) in keys.iter().zip(scores).enumerate() {
            if k > pivot || (k == pivot && at > 0) {
                at -= usize::from(k == pivot);
                out.push((l as u32, x));
            }
        }
        out
    }

    /// The blocks of list `l`.
    fn blocks(&self, l: u32) -> std::ops::Range<usize> {
        self.block_offsets[l as usize] as usize..self.block_offsets[l as usize + 1] as usize
    }

    /// The `k` best candidates of one query: approximate scores over `nprobe` lists (scanned in
    /// list order, the list after next fetched ahead), the `reorder` best re-scored exactly.
    fn search_one(&self, query: &[f32], k: usize, filter: &Filter, nprobe: usize) -> Vec<Scored> {
        let mut scores = vec![0f32; self.nlist()];
        matmul_abt(query, &self.centroids, &mut scores, 1, self.nlist(), self.dim);
        let lists = Self::probes(&scores, nprobe);
        let mut search = Search::new(self, query, k, filter);
        for (i, &(l, base)) in lists.iter().enumerate() {
            if let Some(&(ahead, _)) = lists.get(i + 2) {
                let b = self.blocks(ahead);
                fastscan::prefetch(&self.codes[b.start * self.pq.block_bytes()..b.end * self.pq.block_bytes()]);
            }
            search.scan(l, base);
        }
        search.finish()
    }

    /// The `k` best candidates of each query scanning `nprobe` lists per query. Queries are
    /// searched in blocks, list by list, so that a list's codes are read once for every query
    /// of the block that probes it; each query's answer is the one it gets alone.
    pub fn search_batch_with(&self, queries: &[f32], k: usize, filters: &[Filter], nprobe: usize) -> Vec<Vec<Scored>> {
        const QUERIES: usize = 64;
        assert!(queries.len() % self.dim == 0, "queries must be rows of width dim");
        let (d, nlist) = (self.dim, self.nlist());
        let filter = |i: usize| match filters.len() {
            0 => Filter::default(),
            1 => filters[0],
            _ => filters[i],
        };
        // filtered out of the probed lists: search every list
        let complete = |got: Vec<Scored>, q: &[f32], f: &Filter| {
            if got.len() < k.min(self.len()) && nprobe < nlist {
                return self.search_one(q, k, f, nlist);
            }
            got
        };
        if queries.len() == d {
            let f = filter(0);
            return vec![complete(self.search_one(queries, k, &f, nprobe), queries, &f)];
        }
        let block = |(b, qs): (usize, &[f32])| -> Vec<Vec<Scored>> {
            let rows = qs.len() / d;
            let fs: Vec<Filter> = (0..rows).map(|r| filter(b * QUERIES + r)).collect();
            let mut scores = vec![0f32; rows * nlist];
            matmul_abt(qs, &self.centroids, &mut scores, rows, nlist, d);
            let probes: Vec<Vec<(u32, f32)>> =
                scores.chunks_exact(nlist).map(|row| Self::probes(row, nprobe)).collect();
            // (query, centroid score) list by list, queries in order
            let (start, by_list) = group_by_list(
                nlist,
                probes
                    .iter()
                    .enumerate()
                    .flat_map(|(r, lists)| lists.iter().map(move |&(l, base)| (l, (r as u32, base)))),
            );
            let mut searches: Vec<Search> =
                (0..rows).map(|r| Search::new(self, &qs[r * d..(r + 1) * d], k, &fs[r])).collect();
            for l in 0..nlist {
                for &(r, base) in &by_list[start[l]..start[l + 1]] {
                    searches[r as usize].scan(l as u32, base);
                }
            }
            searches
                .into_iter()
                .enumerate()
                .map(|(r, s)| complete(s.finish(), &qs[r * d..(r + 1) * d], &fs[r]))
                .collect()
        };
        let blocks = queries.chunks(QUERIES * d).enumerate();
        if queries.len() <= QUERIES * d {
            return blocks.flat_map(block).collect();
        }
        blocks.collect::<Vec<_>>().into_par_iter().flat_map_iter(block).collect()
    }

    /// Serialises the index (not the vectors): safetensors with `centroids`, `offsets`, `ids`,
    /// `codebooks`, `codes` and the format, version, `nprobe` and `reorder` in its metadata.
    pub fn to_bytes(&self) -> Result<Vec<u8>> {
        let ids: Vec<u32> = self.slot_ids.iter().copied().filter(|&id| id != NO_ID).collect();
        let f = |v: &[f32]| v.iter().flat_map(|x| x.to_le_bytes()).collect::<Vec<u8>>();
        let u = |v: &[u32]| v.iter().flat_map(|x| x.to_le_bytes()).collect::<Vec<u8>>();
        let data = [
            ("centroids", Dtype::F32, vec![self.nlist(), self.dim], f(&self.centroids)),
            ("offsets", Dtype::U32, vec![self.offsets.len()], u(&self.offsets)),
            ("ids", Dtype::U32, vec![ids.len()], u(&ids)),
            ("codebooks", Dtype::F32, vec![fastscan::subspaces(self.dim), CODES, SUB_DIM], f(self.pq.codebooks())),
            ("codes", Dtype::U8, vec![self.codes.len()], self.codes.clone()),
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
            ("reorder".to_string(), self.reorder.to_string()),
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
        let number = |key: &str| -> usize { meta.get(key).and_then(|v| v.parse().ok()).unwrap_or(0) };
        let (nprobe, reorder) = (number("nprobe"), number("reorder"));
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
        let (ps, pb) = tensor("codebooks", Dtype::F32)?;
        let (_, codes) = tensor("codes", Dtype::U8)?;
        let centroids: Vec<f32> = words(cb).into_iter().map(f32::from_le_bytes).collect();
        let offsets: Vec<u32> = words(ob).into_iter().map(u32::from_le_bytes).collect();
        let ids: Vec<u32> = words(ib).into_iter().map(u32::from_le_bytes).collect();
        let codebooks: Vec<f32> = words(pb).into_iter().map(f32::from_le_bytes).collect();
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
        IvfIndex::from_lists(vectors, dim, centroids, offsets, ids, pq, Some(codes), nprobe, reorder)
    }
}

/// One query's search in progress: its quantised table and its best approximate candidates.
struct Search<'a> {
    ivf: &'a IvfIndex,
    query: &'a [f32],
    filter: &'a Filter<'a>,
    k: usize,
    lut: fastscan::Lut,
    /// Candidates kept for re-scoring.
    keep: usize,
    /// (approximate score as an ordered key) << 32 | slot; at 2·keep entries it is cut back to
    /// the keep best, and `worst` rises to the worst kept.
    cand: Vec<u64>,
    worst: f32,
}

impl<'a> Search<'a> {
    fn new(ivf: &'a IvfIndex, query: &'a [f32], k: usize, filter: &'a Filter<'a>) -> Search<'a> {
        let keep = ivf.reorder.max(k).max(1);
        let lut = ivf.pq.lut(query);
        Search { ivf, query, filter, k, lut, keep, cand: Vec::with_capacity(2 * keep), worst: f32::NEG_INFINITY }
    }

    /// Keeps the `keep` best candidates; returns the worst of them.
    fn cut(cand: &mut Vec<u64>, keep: usize) -> f32 {
        cand.select_nth_unstable_by(keep - 1, |a, b| b.cmp(a));
        cand.truncate(keep);
        from_key((cand[keep - 1] >> 32) as u32)
    }

    /// Scans list `l`, whose centroid scores `base`.
    fn scan(&mut self, l: u32, base: f32) {
        let Search { ivf, filter, lut, keep, cand, worst, .. } = self;
        let (keep, ivf, filter) = (*keep, *ivf, *filter);
        let mut t = lut.threshold(*worst, base);
        if t > lut.max_sum {
            return;
        }
        let blocks = ivf.blocks(l);
        let len = (ivf.offsets[l as usize + 1] - ivf.offsets[l as usize]) as usize;
        let s0 = blocks.start * BLOCK;
        let filtering = !filter.exclude.is_empty() || filter.allow.is_some();
        let codes = &ivf.codes[blocks.start * ivf.pq.block_bytes()..];
        fastscan::scan(codes, blocks.len(), lut, t, |i, sum| {
            // past the list's end: padding
            if i < len && !(filtering && filter.skips(ivf.slot_ids[s0 + i])) {
                cand.push(u64::from(to_key(lut.score(sum, base))) << 32 | (s0 + i) as u64);
                if cand.len() == 2 * keep {
                    *worst = Self::cut(cand, keep);
                    t = lut.threshold(*worst, base);
                }
            }
            t
        });
    }

    /// The `k` best candidates, re-scored exactly (in slot order, a few rows fetched ahead).
    fn finish(mut self) -> Vec<Scored> {
        if self.cand.len() > self.keep {
            Self::cut(&mut self.cand, self.keep);
        }
        let mut slots: Vec<u32> = self.cand.iter().map(|&c| c as u32).collect();
        slots.sort_unstable();
        let (ivf, d) = (self.ivf, self.ivf.dim);
        let row = |slot: u32| &ivf.rows[slot as usize * d..(slot as usize + 1) * d];
        let mut top = TopK::new(self.k);
        for (i, &slot) in slots.iter().enumerate() {
            if let Some(&ahead) = slots.get(i + 8) {
                fastscan::prefetch(row(ahead));
            }
            let score = exact_dot(self.query, row(slot));
            if score >= top.threshold() {
                top.push(Scored { id: ivf.slot_ids[slot as usize], score });
            }
        }
        top.into_sorted()
    }
}

impl Index for IvfIndex {
    fn len(&self) -> usize {
        self.offsets[self.nlist()] as usize
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
        // every list, every candidate re-scored: exact
        ivf.set_nprobe(ivf.nlist());
        ivf.set_reorder(n);
        let all = ivf.search_batch(&q, 10, &[]);
        for (a, w) in all.iter().zip(&want) {
            assert_eq!(a.iter().map(|s| s.id).collect::<Vec<_>>(), w.iter().map(|s| s.id).collect::<Vec<_>>());
            for (x, y) in a.iter().zip(w) {
                assert!((x.score - y.score).abs() < 1e-5);
            }
        }
    }

    #[test]
    fn a_query_gets_the_same_answer_alone_as_in_a_batch_whatever_the_threads() {
        let (n, d) = (3000, 8);
        let v = clustered(n, d, 5);
        let ivf = IvfIndex::build(&v, d, &IvfParams { nlist: 20, nprobe: 5, reorder: 30, ..Default::default() }, false)
            .unwrap();
        let q = clustered(50, d, 6);
        let exclude: Vec<u32> = (0..n as u32).step_by(3).collect();
        let f = [Filter { exclude: &exclude, allow: None }];
        let batch = ivf.search_batch(&q, 10, &f);
        let one = rayon::ThreadPoolBuilder::new().num_threads(1).build().unwrap();
        assert_eq!(one.install(|| ivf.search_batch(&q, 10, &f)), batch);
        for (i, r) in batch.iter().enumerate() {
            assert_eq!(&ivf.search(&q[i * d..(i + 1) * d], 10, &f[0]), r);
            assert_eq!(r.len(), 10);
            assert!(r.iter().all(|s| s.id % 3 != 0));
            // exact scores, best first
            assert!(r.windows(2).all(|w| w[0].score >= w[1].score));
            for s in r {
                assert_eq!(s.score, exact_dot(&q[i * d..(i + 1) * d], &v[s.id as usize * d..(s.id as usize + 1) * d]));
            }
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
        // codes of another index
        let mut other = ivf.clone();
        other.codes.pop();
        let err = IvfIndex::from_bytes(&other.to_bytes().unwrap(), &v, d).unwrap_err().to_string();
        assert!(err.contains("codes"), "{err}");
        // vectors of another model
        assert!(IvfIndex::from_bytes(&bytes, &v[..(n - 1) * d], d).is_err());
        let err = IvfIndex::from_bytes(&bytes, &v[..n * 4], 4).unwrap_err().to_string();
        assert!(err.contains("centroids"), "{err}");
    }
}
