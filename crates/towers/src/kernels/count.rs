//! Counting the candidates that score strictly higher than given thresholds — a test pair's rank
//! is 1 + that count (TFRS's tie rule) — without a score matrix.
//!
//! Scores are the exact ones of [`exact_dot`] (the FMA chain in dimension order, as the fused
//! top-k computes them); counts are exactly those of the naive loop over them (tested, ties
//! included). With AVX-512 VNNI (detected at run time):
//!
//! - **Integer prefilter.** Candidates and queries are quantised ([`Quantized`]: 13-bit values
//!   at dim 32), and one `vpdpwssd` adds two dimensions of 16 candidates — twice an f32 FMA's
//!   work per instruction. Each query's rigorous bound `margin` on |exact − step·integer score|
//!   splits the candidates of a threshold `s` three ways: surely higher (`step·acc − margin >
//!   s`: counted, never scored), surely not (`step·acc + margin < s`), and the few in between
//!   (~0.06% on a trained model), which are scored exactly afterwards, eight FMA chains
//!   interleaved. The comparisons are on integers: the bounds become integer limits, with a
//!   step of slack each way, in f64.
//! - **Norm pruning.** Candidates are sorted by norm, largest first. Once `‖q‖·‖c‖` (with room
//!   for rounding) is below `|s|` for every threshold `s` of a query, no later candidate can
//!   score above a positive threshold, and all are above a negative one (Cauchy–Schwarz): the
//!   query stops there. Queries are grouped by where they stop, so that a tile's rows stop
//!   together (on the 10M-row synthetic model, 59% of the candidate panels are scanned).
//!
//! Elsewhere (or beyond 512 dimensions) the f32 panel scan ([`scan`]: AVX2 or portable) scores
//! every candidate and reports those at or above a query's lowest threshold.
//!
//! Parallel over fixed blocks of queries; each block passes over the candidates a chunk at a
//! time (kept in L2). Counts are integers: the thread count cannot change them.

use super::panel::{LANES, Quantized, exact_dot, exact_dots8, pack, scan};
use rayon::prelude::*;

/// Queries per parallel block.
const QUERY_BLOCK: usize = 96;
/// Panels per chunk: 2,048 candidates (128 KiB of 16-bit values at dim 32).
const CHUNK: usize = 128;

/// Candidates prepared for counting (see the module documentation); build once, count many
/// times.
pub struct Counter<'a> {
    vectors: &'a [f32],
    dim: usize,
    how: How<'a>,
}

enum How<'a> {
    /// The integer prefilter over candidates sorted by norm (AVX-512 VNNI).
    #[cfg(target_arch = "x86_64")]
    Pruned(Pruned<'a>),
    /// Every score exact, f32 panels.
    Exact(Vec<f32>),
}

impl<'a> Counter<'a> {
    /// The `vectors.len() / dim` candidates of `vectors` (row-major), with the fastest method
    /// this machine has.
    pub fn new(vectors: &'a [f32], dim: usize) -> Self {
        #[cfg(target_arch = "x86_64")]
        if vnni::available()
            && let Some(p) = Pruned::new(vectors, dim)
        {
            return Counter { vectors, dim, how: How::Pruned(p) };
        }
        Self::exact(vectors, dim)
    }

    /// Without the prefilter: every score from the f32 panel scan.
    fn exact(vectors: &'a [f32], dim: usize) -> Self {
        let n = vectors.len() / dim;
        Counter { vectors, dim, how: How::Exact(pack(n, dim, |i| &vectors[i * dim..(i + 1) * dim])) }
    }

    /// For each query `q` (rows of `queries`, `nq × dim`) and each of its thresholds
    /// `scores[starts[q]..starts[q + 1]]`, the number of candidates whose exact score
    /// ([`exact_dot`]) is strictly higher. A NaN threshold counts nothing.
    pub fn count(&self, queries: &[f32], starts: &[usize], scores: &[f32]) -> Vec<u32> {
        let nq = starts.len().saturating_sub(1);
        assert!(queries.len() >= nq * self.dim && starts.last().copied().unwrap_or(0) == scores.len());
        match &self.how {
            #[cfg(target_arch = "x86_64")]
            How::Pruned(p) => p.count(queries, starts, scores),
            How::Exact(panels) => self.count_exact(panels, queries, starts, scores),
        }
    }

    fn count_exact(&self, panels: &[f32], queries: &[f32], starts: &[usize], scores: &[f32]) -> Vec<u32> {
        let (dim, n) = (self.dim, self.vectors.len() / self.dim);
        let (nq, np) = (starts.len() - 1, n.div_ceil(LANES));
        let lowest = |q: usize| scores[starts[q]..starts[q + 1]].iter().copied().fold(f32::INFINITY, f32::min);
        let parts: Vec<Vec<u32>> = (0..nq.div_ceil(QUERY_BLOCK))
            .into_par_iter()
            .map(|b| {
                let (q0, q1) = (b * QUERY_BLOCK, ((b + 1) * QUERY_BLOCK).min(nq));
                let mut out = vec![0u32; starts[q1] - starts[q0]];
                let queries = &queries[q0 * dim..q1 * dim];
                for p0 in (0..np).step_by(CHUNK) {
                    let mut t: Vec<f32> = (q0..q1).map(lowest).collect();
                    let chunk = &panels[p0 * LANES * dim..];
                    scan(queries, q1 - q0, dim, chunk, CHUNK.min(np - p0), &mut t, |r, slot, s| {
                        let (q, slot) = (q0 + r, p0 * LANES + slot);
                        if slot < n {
                            for k in starts[q]..starts[q + 1] {
                                out[k - starts[q0]] += (s > scores[k]) as u32;
                            }
                        }
                        lowest(q)
                    });
                }
                out
            })
            .collect();
        parts.concat()
    }
}

/// [`Counter::count`] of `vectors` (`n × dim`), prepared for one call.
pub fn count_higher(queries: &[f32], vectors: &[f32], dim: usize, starts: &[usize], scores: &[f32]) -> Vec<u32> {
    Counter::new(vectors, dim).count(queries, starts, scores)
}

/// The candidates sorted by norm, largest first, and quantised in that order: a query whose
/// thresholds all exceed `‖q‖·‖c‖` in absolute value (with room for rounding) needs no score
/// of `c` or of anything after it — by Cauchy–Schwarz, none of them is above a positive
/// threshold and all of them are above a negative one.
#[cfg(target_arch = "x86_64")]
struct Pruned<'a> {
    vectors: &'a [f32],
    dim: usize,
    /// Candidate row of each slot.
    order: Vec<u32>,
    /// Largest norm of each panel (its first slot's).
    panel_norm: Vec<f64>,
    quantized: Quantized,
}

#[cfg(target_arch = "x86_64")]
impl<'a> Pruned<'a> {
    fn new(vectors: &'a [f32], dim: usize) -> Option<Self> {
        let n = vectors.len() / dim;
        let row = |i: usize| &vectors[i * dim..(i + 1) * dim];
        let norm = |i: usize| row(i).iter().map(|&x| x as f64 * x as f64).sum::<f64>().sqrt();
        let norms: Vec<f64> = (0..n).map(norm).collect();
        let mut order: Vec<u32> = (0..n as u32).collect();
        order.sort_by(|&a, &b| norms[b as usize].total_cmp(&norms[a as usize]).then(a.cmp(&b)));
        let quantized = Quantized::new(n, dim, |i| row(order[i] as usize))?;
        let panel_norm = order.iter().step_by(LANES).map(|&i| norms[i as usize]).collect();
        Some(Pruned { vectors, dim, order, panel_norm, quantized })
    }

    fn n(&self) -> usize {
        self.order.len()
    }

    /// The first panel from which no candidate can score within `|s|` of zero for any
    /// threshold `s` of a query of norm `qn` (`t` = the smallest `|s|`).
    fn stop(&self, qn: f64, t: f64) -> usize {
        // |exact| ≤ ‖q‖·‖c‖·(1 + 32·dim·ε) by Cauchy–Schwarz and the FMA chain's rounding
        let slack = 1.0 + 64.0 * self.dim as f64 * f32::EPSILON as f64;
        self.panel_norm.partition_point(|&cn| qn * cn * slack + 1e-30 >= t || cn.is_nan())
    }

    fn count(&self, queries: &[f32], starts: &[usize], scores: &[f32]) -> Vec<u32> {
        let (d, n, nq) = (self.dim, self.n(), starts.len() - 1);
        let q = |i: usize| &queries[i * d..(i + 1) * d];
        let stops: Vec<usize> = (0..nq)
            .map(|i| {
                let t = scores[starts[i]..starts[i + 1]]
                    .iter()
                    .filter(|s| !s.is_nan())
                    .fold(f64::INFINITY, |m, &s| m.min((s as f64).abs()));
                let qn = q(i).iter().map(|&x| x as f64 * x as f64).sum::<f64>().sqrt();
                self.stop(qn, t)
            })
            .collect();
        // queries that stop alike go together, so that their tiles stop early together
        let mut by_stop: Vec<u32> = (0..nq as u32).collect();
        by_stop.sort_by_key(|&i| (std::cmp::Reverse(stops[i as usize]), i));
        let parts: Vec<Vec<(usize, u32)>> = by_stop
            .par_chunks(QUERY_BLOCK)
            .map(|block| {
                let gathered: Vec<f32> = block.iter().flat_map(|&i| q(i as usize)).copied().collect();
                let qq = self.quantized.queries(&gathered, block.len(), d);
                let mut local = vec![0usize];
                let mut limit = Vec::new();
                for (r, &i) in block.iter().enumerate() {
                    let i = i as usize;
                    scores[starts[i]..starts[i + 1]]
                        .iter()
                        .for_each(|&s| limit.push(limits(s, qq.step[r], qq.margin[r])));
                    local.push(limit.len());
                }
                let block_stops: Vec<usize> = block.iter().map(|&i| stops[i as usize]).collect();
                let b = vnni::Block {
                    qi: &qq.qi,
                    w: self.quantized.width,
                    panels: &self.quantized.panels,
                    starts: &local,
                    limits: &limit,
                    stops: &block_stops,
                };
                let mut out = vec![0u32; limit.len()];
                let mut unsure = Vec::new();
                // SAFETY: `vnni::available()` was checked; `Block` holds consistent shapes.
                unsafe { vnni::count(&b, &mut out, &mut unsure) };
                // the candidates within the bound, scored exactly
                let threshold = |r: usize, k: usize| scores[starts[block[r] as usize] + k - local[r]];
                let above = exact_above(&unsure, |&(r, _, slot)| {
                    let c = self.order.get(slot as usize).map(|&c| &self.vectors[c as usize * d..(c as usize + 1) * d]);
                    (q(block[r as usize] as usize), c)
                });
                for (&(r, k, _), a) in unsure.iter().zip(above) {
                    let s = threshold(r as usize, k as usize);
                    out[k as usize] += (a > s) as u32;
                }
                // what was not scanned: above every negative threshold; padding lanes (zero
                // vectors, scanned only with the last panel) were counted iff 0 > s
                let pad = self.quantized.panels.len() / (LANES * self.quantized.width) * LANES - n;
                let mut res = Vec::with_capacity(out.len());
                for (r, &i) in block.iter().enumerate() {
                    let stop = block_stops[r];
                    for k in local[r]..local[r + 1] {
                        let s = threshold(r, k);
                        let mut c = out[k];
                        if s < 0.0 {
                            c += n.saturating_sub(stop * LANES) as u32;
                            if stop == self.panel_norm.len() {
                                c -= pad as u32;
                            }
                        }
                        res.push((starts[i as usize] + k - local[r], c));
                    }
                }
                res
            })
            .collect();
        let mut counts = vec![0u32; scores.len()];
        parts.into_iter().flatten().for_each(|(k, c)| counts[k] = c);
        counts
    }
}

/// The exact score ([`exact_dot`]) of each item's (query, candidate) pair (a missing candidate
/// is a zero vector), eight chains interleaved so that their FMA latencies overlap.
fn exact_above<'v, T>(items: &[T], pair: impl Fn(&T) -> (&'v [f32], Option<&'v [f32]>)) -> Vec<f32> {
    let mut out = Vec::with_capacity(items.len());
    for group in items.chunks(8) {
        let pairs: Vec<(&'v [f32], Option<&'v [f32]>)> = group.iter().map(&pair).collect();
        if pairs.len() == 8 && pairs.iter().all(|p| p.1.is_some()) {
            let q: [&[f32]; 8] = std::array::from_fn(|l| pairs[l].0);
            let c: [&[f32]; 8] = std::array::from_fn(|l| pairs[l].1.unwrap_or(&[]));
            out.extend(exact_dots8(q, c));
        } else {
            out.extend(pairs.iter().map(|&(q, c)| c.map_or(0.0, |c| exact_dot(q, c))));
        }
    }
    out
}

/// Integer limits `(hi, lo)` of the prefilter for threshold `s`: an integer score `acc ≥ hi`
/// is surely higher (`step·acc − margin > s`), `acc ≤ lo` surely not (`step·acc + margin < s`).
/// Computed in f64 with a step of slack each way, so that their own rounding cannot matter.
fn limits(s: f32, step: f32, margin: f32) -> (i32, i32) {
    let clamp = |x: f64| x.clamp(i32::MIN as f64, i32::MAX as f64) as i32;
    if s.is_nan() || s == f32::INFINITY {
        return (i32::MAX, i32::MAX); // nothing is higher
    }
    if s == f32::NEG_INFINITY {
        return (i32::MIN, i32::MIN); // every (finite) score is higher
    }
    if !(margin.is_finite() && step > 0.0) {
        return (i32::MAX, i32::MIN); // no bound: every candidate is scored exactly
    }
    let (s, step, margin) = (s as f64, step as f64, margin as f64);
    (clamp(((s + margin) / step).floor() + 2.0), clamp(((s - margin) / step).floor() - 1.0))
}

#[cfg(target_arch = "x86_64")]
mod vnni {
    use super::{CHUNK, LANES};
    use std::arch::x86_64::*;

    pub(super) fn available() -> bool {
        std::is_x86_feature_detected!("avx512f") && std::is_x86_feature_detected!("avx512vnni")
    }

    /// A block of quantised queries against every panel.
    pub(super) struct Block<'a> {
        /// `rows × w` query values.
        pub qi: &'a [i16],
        /// Values per query and per candidate (dimensions rounded up to even).
        pub w: usize,
        /// Candidate panels, `[panel][pair][lane][2]`.
        pub panels: &'a [i16],
        /// The thresholds of row `r` are `starts[r]..starts[r + 1]`.
        pub starts: &'a [usize],
        /// `(hi, lo)` of each threshold.
        pub limits: &'a [(i32, i32)],
        /// Row `r` needs panels `0..stops[r]` only.
        pub stops: &'a [usize],
    }

    /// Adds to `out[k]` the candidates of panels `0..stops[r]` surely above threshold `k` (of
    /// row `r`), and lists in `unsure` as `(r, k, slot)` those that may be.
    #[target_feature(enable = "avx512f,avx512vnni,popcnt,bmi1")]
    pub(super) unsafe fn count(b: &Block, out: &mut [u32], unsure: &mut Vec<(u32, u32, u32)>) {
        let (w, rows) = (b.w, b.starts.len() - 1);
        let np = b.panels.len() / (LANES * w);
        assert!(w % 2 == 0 && b.qi.len() >= rows * w && out.len() >= b.starts[rows] && b.limits.len() >= out.len());
        assert!(b.stops.len() >= rows && b.stops.iter().all(|&s| s <= np));
        for p0 in (0..np).step_by(CHUNK) {
            let mut r = 0;
            while r < rows {
                let n = match rows - r {
                    6.. => 6,
                    4 | 5 => 4,
                    2 | 3 => 2,
                    _ => 1,
                };
                let p1 = (p0 + CHUNK).min(b.stops[r..r + n].iter().copied().max().unwrap_or(0));
                let mut p = p0;
                while p < p1 {
                    let m = if p1 - p >= 4 { 4 } else { 1 };
                    // SAFETY: rows r..r+n and panels p..p+m are in bounds (asserted above).
                    unsafe {
                        match (n, m) {
                            (6, 4) => tile::<6, 4>(b, r, p, out, unsure),
                            (6, _) => tile::<6, 1>(b, r, p, out, unsure),
                            (4, 4) => tile::<4, 4>(b, r, p, out, unsure),
                            (4, _) => tile::<4, 1>(b, r, p, out, unsure),
                            (2, 4) => tile::<2, 4>(b, r, p, out, unsure),
                            (2, _) => tile::<2, 1>(b, r, p, out, unsure),
                            (_, 4) => tile::<1, 4>(b, r, p, out, unsure),
                            _ => tile::<1, 1>(b, r, p, out, unsure),
                        }
                    }
                    p += m;
                }
                r += n;
            }
        }
    }

    #[inline(always)]
    unsafe fn tile<const R: usize, const P: usize>(
        b: &Block,
        r0: usize,
        p0: usize,
        out: &mut [u32],
        unsure: &mut Vec<(u32, u32, u32)>,
    ) {
        let w = b.w;
        // SAFETY: the caller keeps rows r0..r0+R and panels p0..p0+P in bounds.
        unsafe {
            let mut acc = [[_mm512_setzero_si512(); P]; R];
            let qp = b.qi.as_ptr().add(r0 * w) as *const i32;
            let base = b.panels.as_ptr().add(p0 * LANES * w);
            for pair in 0..w / 2 {
                let mut c = [_mm512_setzero_si512(); P];
                for (pp, cv) in c.iter_mut().enumerate() {
                    *cv = _mm512_loadu_si512(base.add(pp * LANES * w + pair * 2 * LANES) as *const __m512i);
                }
                for (r, ar) in acc.iter_mut().enumerate() {
                    let qv = _mm512_set1_epi32(std::ptr::read_unaligned(qp.add(r * w / 2 + pair)));
                    for (a, cv) in ar.iter_mut().zip(&c) {
                        *a = _mm512_dpwssd_epi32(*a, *cv, qv);
                    }
                }
            }
            for (r, ar) in acc.iter().enumerate() {
                let row = r0 + r;
                // panels from the row's stop on are not its to count
                let live = b.stops[row].saturating_sub(p0).min(P);
                for k in b.starts[row]..b.starts[row + 1] {
                    let (hi, lo) = b.limits[k];
                    // one bit per candidate of the tile's row: above `lo` (most often none)
                    let (lv, mut any) = (_mm512_set1_epi32(lo), 0u64);
                    for (pp, a) in ar.iter().enumerate().take(live) {
                        any |= (_mm512_cmpgt_epi32_mask(*a, lv) as u64) << (16 * pp);
                    }
                    if any == 0 {
                        continue;
                    }
                    let (hv, mut above) = (_mm512_set1_epi32(hi), 0u64);
                    for (pp, a) in ar.iter().enumerate().take(live) {
                        above |= (_mm512_cmpge_epi32_mask(*a, hv) as u64) << (16 * pp);
                    }
                    out[k] += above.count_ones();
                    let mut maybe = any & !above;
                    while maybe != 0 {
                        let bit = maybe.trailing_zeros() as usize;
                        maybe &= maybe - 1;
                        unsure.push((row as u32, k as u32, (p0 * LANES + bit) as u32));
                    }
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::rng::Rng;

    fn naive(queries: &[f32], vectors: &[f32], dim: usize, starts: &[usize], scores: &[f32]) -> Vec<u32> {
        let mut out = vec![0u32; scores.len()];
        for q in 0..starts.len() - 1 {
            for v in vectors.chunks_exact(dim) {
                let s = exact_dot(&queries[q * dim..(q + 1) * dim], v);
                for k in starts[q]..starts[q + 1] {
                    out[k] += (s > scores[k]) as u32;
                }
            }
        }
        out
    }

    /// Exact counts, ties included, against the naive loop: thresholds that are candidates'
    /// own scores (on a coarse grid, so that many candidates tie), others in between, NaN and
    /// infinities; sizes that leave padding lanes and remainder tiles.
    #[test]
    fn counts_match_the_naive_loop() {
        let mut rng = Rng::new(4);
        for (nq, n, dim, grid) in [(23, 1000, 32, true), (200, 333, 7, false), (5, 40, 64, true)] {
            let v = |rng: &mut Rng| {
                if grid { (rng.below(9) as f32 - 4.0) * 0.25 } else { rng.next_f32() * 2.0 - 1.0 }
            };
            let queries: Vec<f32> = (0..nq * dim).map(|_| v(&mut rng)).collect();
            let vectors: Vec<f32> = (0..n * dim).map(|_| v(&mut rng)).collect();
            let mut starts = vec![0usize];
            let mut scores = Vec::new();
            for q in 0..nq {
                for _ in 0..q % 4 {
                    let c = rng.below(n);
                    let s = exact_dot(&queries[q * dim..(q + 1) * dim], &vectors[c * dim..(c + 1) * dim]);
                    scores.push(match rng.below(12) {
                        0 => f32::NAN,
                        1 => f32::INFINITY,
                        2 => f32::NEG_INFINITY,
                        3 => s + 0.01,
                        _ => s,
                    });
                }
                starts.push(scores.len());
            }
            let want = naive(&queries, &vectors, dim, &starts, &scores);
            assert_eq!(count_higher(&queries, &vectors, dim, &starts, &scores), want, "{nq}×{n}×{dim}");
            let exact = Counter::exact(&vectors, dim);
            assert_eq!(exact.count(&queries, &starts, &scores), want, "exact, {nq}×{n}×{dim}");
            // one thread or several: the same
            let one = rayon::ThreadPoolBuilder::new().num_threads(1).build().unwrap();
            assert_eq!(one.install(|| count_higher(&queries, &vectors, dim, &starts, &scores)), want);
        }
    }

    /// Candidates of very different norms and thresholds far from zero on both sides: queries
    /// stop early (norm pruning), and what they skip is counted right.
    #[test]
    fn norm_pruning_counts_what_it_skips() {
        let mut rng = Rng::new(12);
        let (nq, n, dim) = (40, 3000, 16);
        let queries: Vec<f32> = (0..nq * dim).map(|_| rng.next_f32() * 2.0 - 1.0).collect();
        let mut vectors = Vec::with_capacity(n * dim);
        for _ in 0..n {
            let scale = 10f32.powf(-3.0 * rng.next_f32());
            vectors.extend((0..dim).map(|_| (rng.next_f32() * 2.0 - 1.0) * scale));
        }
        let starts: Vec<usize> = (0..=nq).collect();
        let scores: Vec<f32> = (0..nq).map(|q| if q % 2 == 0 { 0.5 } else { -0.5 } * (1 + q % 5) as f32).collect();
        let want = naive(&queries, &vectors, dim, &starts, &scores);
        assert!(want.iter().any(|&c| c > 0 && (c as usize) < n));
        assert_eq!(count_higher(&queries, &vectors, dim, &starts, &scores), want);
        #[cfg(target_arch = "x86_64")]
        if let Some(p) = Pruned::new(&vectors, dim).filter(|_| vnni::available()) {
            // the case does prune: some queries stop before the last panel
            let qn = |q: usize| queries[q * dim..(q + 1) * dim].iter().map(|&x| (x * x) as f64).sum::<f64>().sqrt();
            assert!((0..nq).any(|q| p.stop(qn(q), scores[q].abs() as f64) < n.div_ceil(LANES) / 2));
        }
    }
}
