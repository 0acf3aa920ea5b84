//! Exact scoring of queries against a whole catalogue: blocked GEMM over candidate chunks,
//! a bounded per-query selection with a running threshold, parallel over query blocks.

use super::matmul_abt;
use super::panel::{LANES, Quantized, exact_dots8, scan};
use rayon::prelude::*;
use std::cmp::Ordering;

/// Candidate rows scored per GEMM call.
const CAND_CHUNK: usize = 2048;
/// Queries per block: GEMM packs each candidate chunk once per block, so larger blocks amortise it.
const QUERY_BLOCK: usize = 256;
/// Upper bound on the floats of one block of full score rows.
const ROWS_BUDGET: usize = 1 << 22;

/// One scored candidate.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Scored {
    /// Candidate row.
    pub id: u32,
    /// Dot-product score.
    pub score: f32,
}

/// Best first: higher score, then lower id.
fn better(a: &Scored, b: &Scored) -> bool {
    match a.score.partial_cmp(&b.score) {
        Some(Ordering::Greater) => true,
        Some(Ordering::Equal) => a.id < b.id,
        _ => false,
    }
}

/// Keeps the `k` best of a stream, worst at the top of a binary heap.
pub(crate) struct TopK {
    k: usize,
    heap: Vec<Scored>,
}

impl TopK {
    pub(crate) fn new(k: usize) -> Self {
        TopK { k, heap: Vec::with_capacity(k + 1) }
    }

    #[inline]
    pub(crate) fn push(&mut self, s: Scored) {
        if self.heap.len() < self.k {
            self.heap.push(s);
            let mut i = self.heap.len() - 1;
            while i > 0 && better(&self.heap[(i - 1) / 2], &self.heap[i]) {
                self.heap.swap(i, (i - 1) / 2);
                i = (i - 1) / 2;
            }
        } else if self.k > 0 && better(&s, &self.heap[0]) {
            self.heap[0] = s;
            let (mut i, n) = (0, self.heap.len());
            loop {
                let (l, r) = (2 * i + 1, 2 * i + 2);
                let mut w = i;
                if l < n && better(&self.heap[w], &self.heap[l]) {
                    w = l;
                }
                if r < n && better(&self.heap[w], &self.heap[r]) {
                    w = r;
                }
                if w == i {
                    break;
                }
                self.heap.swap(i, w);
                i = w;
            }
        }
    }

    /// The score a newcomer must beat once the selection is full.
    #[inline]
    pub(crate) fn threshold(&self) -> f32 {
        match self.heap.first() {
            _ if self.k == 0 => f32::INFINITY,
            Some(worst) if self.heap.len() == self.k => worst.score,
            _ => f32::NEG_INFINITY,
        }
    }

    pub(crate) fn into_sorted(mut self) -> Vec<Scored> {
        self.heap.sort_by(|a, b| if better(a, b) { Ordering::Less } else { Ordering::Greater });
        self.heap
    }
}

/// The top `k` candidates by dot product for each query, best first, ties broken by lower id.
/// `queries` is `nq × dim`, `candidates` `nc × dim`; `skip(query, candidate)` removes a
/// candidate from one query's results (seen items, the OOV row).
pub fn top_k(
    queries: &[f32],
    candidates: &[f32],
    dim: usize,
    k: usize,
    skip: impl Fn(usize, u32) -> bool + Sync,
) -> Vec<Vec<Scored>> {
    let (nq, nc) = (queries.len() / dim, candidates.len() / dim);
    // at least two blocks when there are enough queries, so that both cores work
    let qb = QUERY_BLOCK.min(nq.div_ceil(2)).max(1);
    let block = |b: usize| -> Vec<Vec<Scored>> {
        let (q0, q1) = (b * qb, ((b + 1) * qb).min(nq));
        let rows = q1 - q0;
        let mut heaps: Vec<TopK> = (0..rows).map(|_| TopK::new(k)).collect();
        let mut buf = vec![0f32; rows * CAND_CHUNK];
        for c0 in (0..nc).step_by(CAND_CHUNK) {
            let cn = CAND_CHUNK.min(nc - c0);
            matmul_abt(&queries[q0 * dim..q1 * dim], &candidates[c0 * dim..(c0 + cn) * dim], &mut buf, rows, cn, dim);
            for (r, heap) in heaps.iter_mut().enumerate() {
                let mut t = heap.threshold();
                for (g, group) in buf[r * cn..(r + 1) * cn].chunks(16).enumerate() {
                    // most groups hold nothing above the threshold: one vectorised max skips them
                    if group.iter().fold(f32::NEG_INFINITY, |m, &x| if x > m { x } else { m }) < t {
                        continue;
                    }
                    for (j, &s) in group.iter().enumerate() {
                        if s >= t {
                            let id = (c0 + g * 16 + j) as u32;
                            if !skip(q0 + r, id) {
                                heap.push(Scored { id, score: s });
                                t = heap.threshold();
                            }
                        }
                    }
                }
            }
        }
        heaps.into_iter().map(TopK::into_sorted).collect()
    };
    // one block (a single query, as when serving) runs on the calling thread
    let n_blocks = nq.div_ceil(qb);
    let blocks: Vec<Vec<Vec<Scored>>> = if n_blocks <= 1 {
        (0..n_blocks).map(block).collect()
    } else {
        (0..n_blocks).into_par_iter().map(block).collect()
    };
    blocks.into_iter().flatten().collect()
}

/// Panels per chunk of the fused scan: 2,048 candidates, 256 KiB at dim 32, kept in L2 while
/// every query tile passes over them.
const PANEL_CHUNK: usize = 128;

/// The same as [`top_k`] over candidates packed in panels (`panel::pack` of `n` rows), with the
/// fused kernel: no score matrix, exact FMA-chain scores. Parallel over candidate ranges (each
/// range read from memory once for all queries), merged per query; a few queries run on the
/// calling thread.
pub fn top_k_panels(
    queries: &[f32],
    panels: &[f32],
    n: usize,
    dim: usize,
    k: usize,
    skip: impl Fn(usize, u32) -> bool + Sync,
) -> Vec<Vec<Scored>> {
    let nq = queries.len() / dim;
    by_chunks(nq, n.div_ceil(LANES), k, true, |p0, p1, heaps, t| {
        let first = p0 * LANES;
        scan(queries, nq, dim, &panels[p0 * LANES * dim..], p1 - p0, t, |r, slot, score| {
            let id = first + slot;
            if id < n && !skip(r, id as u32) {
                heaps[r].push(Scored { id: id as u32, score });
            }
            heaps[r].threshold()
        });
    })
}

/// The same as [`top_k_panels`] with the i16 prefilter (`panel::Quantized` of the same `n`
/// rows as `vectors`): each candidate that may reach a query's threshold is scored exactly
/// (the same FMA chain) from `vectors`, so the results are the exact ones.
pub fn top_k_quantized(
    queries: &[f32],
    quantized: &Quantized,
    vectors: &[f32],
    dim: usize,
    k: usize,
    skip: impl Fn(usize, u32) -> bool + Sync,
) -> Vec<Vec<Scored>> {
    let nq = queries.len() / dim;
    if nq < 2 * QUERY_GROUP {
        return quantized_part(queries, quantized, vectors, dim, k, true, &skip);
    }
    // many queries (recommendations for every user): groups of them in parallel, each group
    // over every candidate with one selection per query; split over candidate ranges instead,
    // each query would fill a selection per range, and a stream of n candidates offers a
    // selection of k about k·(1 + ln(n/k)) newcomers: several times the work at k = 100
    let groups: Vec<usize> = (0..nq).step_by(QUERY_GROUP).collect();
    let parts: Vec<Vec<Vec<Scored>>> = groups
        .into_par_iter()
        .map(|q0| {
            let q1 = (q0 + QUERY_GROUP).min(nq);
            quantized_part(&queries[q0 * dim..q1 * dim], quantized, vectors, dim, k, false, &|r, id| skip(q0 + r, id))
        })
        .collect();
    parts.into_iter().flatten().collect()
}

/// Queries searched together by one thread when there are many.
const QUERY_GROUP: usize = 64;

/// [`top_k_quantized`] of some queries, split over candidate ranges when `split`.
fn quantized_part(
    queries: &[f32],
    quantized: &Quantized,
    vectors: &[f32],
    dim: usize,
    k: usize,
    split: bool,
    skip: &(dyn Fn(usize, u32) -> bool + Sync),
) -> Vec<Vec<Scored>> {
    let (nq, n) = (queries.len() / dim, vectors.len() / dim);
    let qq = quantized.queries(queries, nq, dim);
    by_chunks(nq, quantized.n_panels(), k, split, |p0, p1, heaps, t| {
        let first = p0 * LANES;
        // the prefilter's survivors of each query, re-scored eight at a time: eight FMA chains
        // side by side instead of one after the other (the same scores, bit for bit)
        let mut pending = Pending::new(heaps.len());
        quantized.scan(&qq, p0, p1, t, |r, slot| {
            let id = first + slot;
            if id < n && !skip(r, id as u32) && pending.add(r, id as u32) {
                pending.flush(r, &queries[r * dim..(r + 1) * dim], vectors, dim, &mut heaps[r]);
            }
            heaps[r].threshold()
        });
        for (r, heap) in heaps.iter_mut().enumerate() {
            pending.flush(r, &queries[r * dim..(r + 1) * dim], vectors, dim, heap);
        }
    })
}

/// Up to eight candidates per query waiting to be scored exactly.
struct Pending {
    ids: Vec<[u32; 8]>,
    len: Vec<u8>,
}

impl Pending {
    fn new(queries: usize) -> Self {
        Pending { ids: vec![[0; 8]; queries], len: vec![0; queries] }
    }

    /// Adds a candidate of query `r`; true when its eight are there.
    #[inline]
    fn add(&mut self, r: usize, id: u32) -> bool {
        let l = self.len[r] as usize;
        self.ids[r][l] = id;
        self.len[r] += 1;
        l == 7
    }

    /// Scores query `r`'s waiting candidates exactly and offers those that reach its threshold.
    fn flush(&mut self, r: usize, query: &[f32], vectors: &[f32], dim: usize, heap: &mut TopK) {
        let l = self.len[r] as usize;
        if l == 0 {
            return;
        }
        let ids = self.ids[r];
        let row = |i: usize| &vectors[ids[i.min(l - 1)] as usize * dim..][..dim];
        let scores = exact_dots8([query; 8], std::array::from_fn(row));
        for (&id, &score) in ids[..l].iter().zip(&scores) {
            if score >= heap.threshold() {
                heap.push(Scored { id, score });
            }
        }
        self.len[r] = 0;
    }
}

/// The top `k` of `nq` queries over `n_panels` panels: `scan(p0, p1, heaps, thresholds)` scores
/// panels `p0..p1` into the per-query heaps, a chunk of [`PANEL_CHUNK`] panels at a time.
/// Parallel over candidate ranges (each read from memory once for all queries) when `split`,
/// merged per query; a few queries run on the calling thread.
fn by_chunks(
    nq: usize,
    n_panels: usize,
    k: usize,
    split: bool,
    scan: impl Fn(usize, usize, &mut [TopK], &mut [f32]) + Sync,
) -> Vec<Vec<Scored>> {
    let chunks = n_panels.div_ceil(PANEL_CHUNK);
    let parts = if nq < 4 || !split { 1 } else { (rayon::current_num_threads() * 2).min(chunks).max(1) };
    let part = |i: usize| -> Vec<TopK> {
        let (c0, c1) = (i * chunks / parts, (i + 1) * chunks / parts);
        let mut heaps: Vec<TopK> = (0..nq).map(|_| TopK::new(k)).collect();
        let mut t: Vec<f32> = vec![f32::NEG_INFINITY; nq];
        for c in c0..c1 {
            let p0 = c * PANEL_CHUNK;
            scan(p0, (p0 + PANEL_CHUNK).min(n_panels), &mut heaps, &mut t);
            // a heap that is not yet full keeps its threshold at -inf
            for (tr, h) in t.iter_mut().zip(&heaps) {
                *tr = h.threshold();
            }
        }
        heaps
    };
    merge(if parts == 1 { vec![part(0)] } else { (0..parts).into_par_iter().map(part).collect() }, nq, k)
}

/// Per query, the top k of the parts' selections.
fn merge(mut results: Vec<Vec<TopK>>, nq: usize, k: usize) -> Vec<Vec<Scored>> {
    if results.len() == 1 {
        return results.pop().unwrap_or_default().into_iter().map(TopK::into_sorted).collect();
    }
    (0..nq)
        .map(|q| {
            let mut all = TopK::new(k);
            for r in &results {
                r[q].heap.iter().for_each(|&s| all.push(s));
            }
            all.into_sorted()
        })
        .collect()
}

/// Scores every query against every candidate, a block of full rows at a time, and calls
/// `f(query, scores)` for each query; returns the results in query order.
pub fn map_score_rows<R: Send>(
    queries: &[f32],
    candidates: &[f32],
    dim: usize,
    f: impl Fn(usize, &[f32]) -> R + Sync,
) -> Vec<R> {
    let (nq, nc) = (queries.len() / dim, candidates.len() / dim);
    let qb = (ROWS_BUDGET / nc.max(1)).clamp(1, 64);
    let blocks: Vec<Vec<R>> = (0..nq.div_ceil(qb))
        .into_par_iter()
        .map(|b| {
            let (q0, q1) = (b * qb, ((b + 1) * qb).min(nq));
            let mut buf = vec![0f32; (q1 - q0) * nc];
            matmul_abt(&queries[q0 * dim..q1 * dim], candidates, &mut buf, q1 - q0, nc, dim);
            buf.chunks_exact(nc.max(1)).take(q1 - q0).enumerate().map(|(r, row)| f(q0 + r, row)).collect()
        })
        .collect();
    blocks.into_iter().flatten().collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::rng::Rng;

    fn naive(q: &[f32], c: &[f32], d: usize, k: usize, skip: impl Fn(usize, u32) -> bool) -> Vec<Vec<Scored>> {
        q.chunks(d)
            .enumerate()
            .map(|(qi, qr)| {
                let mut all: Vec<Scored> = c
                    .chunks(d)
                    .enumerate()
                    .filter(|(j, _)| !skip(qi, *j as u32))
                    .map(|(j, cr)| {
                        let mut s = 0f32;
                        let mut buf = vec![0f32; 1];
                        matmul_abt(qr, cr, &mut buf, 1, 1, d);
                        s += buf[0];
                        Scored { id: j as u32, score: s }
                    })
                    .collect();
                all.sort_by(|a, b| b.score.partial_cmp(&a.score).unwrap().then(a.id.cmp(&b.id)));
                all.truncate(k);
                all
            })
            .collect()
    }

    #[test]
    fn top_k_matches_naive_with_ties_and_skips() {
        let mut rng = Rng::new(11);
        let d = 8;
        // more queries than two groups of `QUERY_GROUP`: the quantised kernel's grouped path
        let (nq, nc) = (2 * QUERY_GROUP + 9, 9000);
        // values on a coarse grid so that ties happen
        let q: Vec<f32> = (0..nq * d).map(|_| (rng.below(5) as f32 - 2.0) * 0.5).collect();
        let c: Vec<f32> = (0..nc * d).map(|_| (rng.below(5) as f32 - 2.0) * 0.5).collect();
        let skip = |qi: usize, id: u32| (id as usize + qi).is_multiple_of(7);
        let got = top_k(&q, &c, d, 10, skip);
        let want = naive(&q, &c, d, 10, skip);
        assert_eq!(got, want);
        assert!(top_k(&q, &c, d, 0, |_, _| false).iter().all(Vec::is_empty));
        // the fused kernel over panels: the same, one query or many
        let panels = super::super::panel::pack(nc, d, |i| &c[i * d..(i + 1) * d]);
        assert_eq!(top_k_panels(&q, &panels, nc, d, 10, skip), want);
        assert_eq!(top_k_panels(&q[..d], &panels, nc, d, 10, skip)[0], want[0]);
        if let Some(qz) = Quantized::new(nc, d, |i| &c[i * d..(i + 1) * d]) {
            assert_eq!(top_k_quantized(&q, &qz, &c, d, 10, skip), want);
            // a few queries: split over candidate ranges instead
            assert_eq!(top_k_quantized(&q[..5 * d], &qz, &c, d, 10, skip), want[..5]);
        }
    }

    #[test]
    fn score_rows_are_full_dot_products() {
        let q = [1.0f32, 0.0, 0.0, 2.0];
        let c = [1.0f32, 1.0, 3.0, -1.0, 0.0, 0.5];
        let rows = map_score_rows(&q, &c, 2, |i, r| (i, r.to_vec()));
        assert_eq!(rows, vec![(0, vec![1.0, 3.0, 0.0]), (1, vec![2.0, -2.0, 1.0])]);
    }
}
