//! Searching the index: probing lists, scanning their codes, re-ranking exactly.

use super::{IvfIndex, group_by_list};
use crate::index::{Filter, Index};
use crate::kernels::fastscan::{self, BLOCK};
use crate::kernels::matmul_abt;
use crate::kernels::panel::exact_dot;
use crate::kernels::topk::{Scored, TopK};
use rayon::prelude::*;

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

impl IvfIndex {
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
        assert!(queries.len().is_multiple_of(self.dim), "queries must be rows of width dim");
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
        let keep = ivf.reorder.max(k).clamp(1, ivf.len().max(1));
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
