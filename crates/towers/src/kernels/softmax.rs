//! The in-batch softmax retrieval loss, forward and backward fused over blocks.
//!
//! TFRS `Retrieval` semantics: for a batch of `B` (query, candidate) pairs the logits are
//! `Q·Cᵀ / temperature` (minus `log q` with logQ correction), the label of row `i` is column
//! `i`, and the loss is the cross-entropy summed over rows (scaled by `grad_scale`, e.g. `1/B`
//! for a mean). With `remove_accidental_hits`, a column holding the same candidate as the
//! row's positive is not a negative.
//!
//! **Extra shared negatives.** `extra_counts[c]` more copies of candidate `c` can be appended
//! to every row as negatives only (e.g. candidates sampled by popularity, never a positive).
//! They are columns like the batch's own: divided by the temperature, minus `log q` with logQ
//! correction (the right correction when they are drawn from the same distribution `q` as the
//! batch's candidates: both kinds of column are then samples of `q`), and with
//! `remove_accidental_hits` a sampled copy of a row's positive is not a negative either.
//!
//! **Deduplication.** A batch row depends only on its query and a column only on its
//! candidate, so the `B×B` logits are the `Uq×Uc` logits of the *distinct* queries and
//! candidates with each column counted as often as it occurs. The kernel works on those
//! (exactly the same loss and gradients, for any batch): on MovieLens a batch of 8,192 has at
//! most 943 distinct users and 1,682 movies, 40× fewer logits. It never materialises even
//! that matrix whole: pass 1 walks blocks of query rows (row statistics, loss, `dQ`), pass 2
//! walks blocks of candidate columns recomputing the logits (`dC`), as flash-attention does.
//! Both passes are parallel over blocks and deterministic: every output is written by one
//! block, and block results are summed in a fixed order.

use super::{matmul_ab, matmul_abt};
use rayon::prelude::*;

const ROW_BLOCK: usize = 32;
const COL_BLOCK: usize = 64;

/// Inputs of one loss evaluation.
#[derive(Debug, Clone, Copy)]
pub struct InBatchSoftmax<'a> {
    /// Distinct query embeddings, `nq × dim`.
    pub queries: &'a [f32],
    /// Distinct candidate embeddings, `nc × dim`.
    pub candidates: &'a [f32],
    /// Embedding width.
    pub dim: usize,
    /// The batch: for each example, (row in `queries`, row in `candidates`).
    pub pairs: &'a [(u32, u32)],
    /// `log q` of each distinct candidate (logQ correction), subtracted from its logits.
    pub log_q: Option<&'a [f32]>,
    /// Logits are divided by this.
    pub temperature: f32,
    /// Do not count other occurrences of a row's positive candidate as negatives.
    pub remove_accidental_hits: bool,
    /// Multiplies the loss and the gradients (1 = sum over the batch, `1/B` = mean).
    pub grad_scale: f32,
    /// Weight of each example's loss (TFRS `sample_weight`); `None` = 1 each.
    pub weights: Option<&'a [f32]>,
    /// Hard-negative mining (TFRS `num_hard_negatives`): each example's softmax keeps only its
    /// positive and the `n` highest-scoring other columns of the batch.
    pub hard_negatives: Option<usize>,
    /// Extra shared negatives: how many more times each distinct candidate is a column of
    /// every row (as a negative only); `None` = none.
    pub extra_counts: Option<&'a [f32]>,
}

/// Loss and gradients with respect to the distinct query and candidate embeddings.
#[derive(Debug, Clone)]
pub struct SoftmaxGrads {
    /// The (scaled) loss.
    pub loss: f64,
    /// `nq × dim`.
    pub d_queries: Vec<f32>,
    /// `nc × dim`.
    pub d_candidates: Vec<f32>,
}

/// A distinct (query, candidate) positive pair of the batch: `n` examples (their summed
/// weights), and `n/Z` after pass 1.
#[derive(Debug, Clone, Copy)]
pub(super) struct Positive {
    pub(super) q: u32,
    pub(super) c: u32,
    pub(super) n: f32,
    b: f32,
}

impl InBatchSoftmax<'_> {
    pub(super) fn nq(&self) -> usize {
        self.queries.len() / self.dim
    }
    pub(super) fn nc(&self) -> usize {
        self.candidates.len() / self.dim
    }

    /// Column multiplicities (extra negatives included), and the distinct positive pairs sorted by (q, c) with their
    /// examples' summed weights.
    pub(super) fn positives(&self) -> (Vec<f32>, Vec<Positive>) {
        let mut counts = vec![0f32; self.nc()];
        for &(_, c) in self.pairs {
            counts[c as usize] += 1.0;
        }
        if let Some(extra) = self.extra_counts {
            counts.iter_mut().zip(extra).for_each(|(k, e)| *k += e);
        }
        let mut sorted: Vec<(u32, u32, f32)> = (0..self.pairs.len())
            .map(|i| (self.pairs[i].0, self.pairs[i].1, self.weights.map_or(1.0, |w| w[i])))
            .collect();
        sorted.sort_unstable_by_key(|&(q, c, _)| (q, c));
        let mut pos: Vec<Positive> = Vec::new();
        for &(q, c, w) in &sorted {
            match pos.last_mut() {
                Some(p) if p.q == q && p.c == c => p.n += w,
                _ => pos.push(Positive { q, c, n: w, b: 0.0 }),
            }
        }
        (counts, pos)
    }

    /// Computes the loss and both gradients.
    pub fn forward_backward(&self) -> SoftmaxGrads {
        if let Some(n) = self.hard_negatives {
            return super::hard_negatives::forward_backward(self, n);
        }
        let (nq, nc, d) = (self.nq(), self.nc(), self.dim);
        let (counts, mut pos) = self.positives();
        let row_start = csr_starts(nq, pos.iter().map(|p| p.q as usize));
        let inv_t = 1.0 / self.temperature;
        let scale = self.grad_scale * inv_t;

        // Pass 1: blocks of query rows -> row max, A_q = Σ n/Z, per-positive n/Z, loss, dQ.
        let mut row_max = vec![0f32; nq];
        let mut row_a = vec![0f32; nq];
        let mut d_queries = vec![0f32; nq * d];
        let mut pos_b = vec![0f32; pos.len()];
        let blocks: Vec<f64> = row_max
            .par_chunks_mut(ROW_BLOCK)
            .zip(row_a.par_chunks_mut(ROW_BLOCK))
            .zip(d_queries.par_chunks_mut(ROW_BLOCK * d))
            .enumerate()
            .map(|(bi, ((maxes, avals), dq))| {
                let r0 = bi * ROW_BLOCK;
                let rb = maxes.len();
                let mut logits = vec![0f32; rb * nc];
                matmul_abt(&self.queries[r0 * d..(r0 + rb) * d], self.candidates, &mut logits, rb, nc, d);
                let mut loss = 0f64;
                let mut bs = Vec::new();
                for (r, row) in logits.chunks_exact_mut(nc).enumerate() {
                    let q = r0 + r;
                    self.transform(row);
                    let m = max(row);
                    let positives = &pos[row_start[q]..row_start[q + 1]];
                    let pos_logits: Vec<f32> = positives.iter().map(|p| row[p.c as usize] - m).collect();
                    row.iter_mut().for_each(|l| *l -= m);
                    exp_in_place(row);
                    let full = dot(row, &counts);
                    let mut a = 0f64;
                    let mut corrections = Vec::with_capacity(positives.len());
                    for (p, &l) in positives.iter().zip(&pos_logits) {
                        let (c, e) = (p.c as usize, row[p.c as usize] as f64);
                        let z = if self.remove_accidental_hits {
                            (full - (counts[c] as f64 - 1.0) * e).max(e)
                        } else {
                            full
                        };
                        loss += p.n as f64 * (z.ln() - l as f64);
                        a += p.n as f64 / z;
                        let b = (p.n as f64 / z) as f32;
                        bs.push(b);
                        corrections.push((c, self.hit_correction(counts[c], b, e as f32) + p.n));
                    }
                    maxes[r] = m;
                    avals[r] = a as f32;
                    // gradient of the row w.r.t. its logits, in place
                    let a = a as f32;
                    row.iter_mut().zip(&counts).for_each(|(e, &k)| *e *= k * a);
                    for (c, amount) in corrections {
                        row[c] -= amount;
                    }
                    row.iter_mut().for_each(|g| *g *= scale);
                }
                matmul_ab(&logits, self.candidates, dq, rb, d, nc);
                (loss, bs)
            })
            .collect::<Vec<_>>()
            .into_iter()
            .scan(0usize, |off, (loss, bs)| {
                pos_b[*off..*off + bs.len()].copy_from_slice(&bs);
                *off += bs.len();
                Some(loss)
            })
            .collect();
        let loss = blocks.iter().sum::<f64>() * self.grad_scale as f64;
        for (p, b) in pos.iter_mut().zip(&pos_b) {
            p.b = *b;
        }

        // Pass 2: blocks of candidate columns, logits recomputed -> dC.
        let mut by_col: Vec<Positive> = pos.clone();
        by_col.sort_by_key(|p| (p.c, p.q));
        let col_start = csr_starts(nc, by_col.iter().map(|p| p.c as usize));
        let mut d_candidates = vec![0f32; nc * d];
        d_candidates.par_chunks_mut(COL_BLOCK * d).enumerate().for_each(|(bi, dc)| {
            let c0 = bi * COL_BLOCK;
            let cb = dc.len() / d;
            let mut g = vec![0f32; cb * nq];
            matmul_abt(&self.candidates[c0 * d..(c0 + cb) * d], self.queries, &mut g, cb, nq, d);
            for (j, col) in g.chunks_exact_mut(nq).enumerate() {
                let c = c0 + j;
                let k = counts[c];
                let lq = self.log_q.map_or(0.0, |lq| lq[c]);
                let corrections: Vec<(usize, f32)> = by_col[col_start[c]..col_start[c + 1]]
                    .iter()
                    .map(|p| {
                        let q = p.q as usize;
                        let e = (col[q] * inv_t - lq - row_max[q]).exp();
                        (q, self.hit_correction(k, p.b, e) + p.n)
                    })
                    .collect();
                col.iter_mut().zip(&row_max).for_each(|(x, &m)| *x = *x * inv_t - lq - m);
                exp_in_place(col);
                col.iter_mut().zip(&row_a).for_each(|(x, &a)| *x *= k * a);
                for (q, amount) in corrections {
                    col[q] -= amount;
                }
                col.iter_mut().for_each(|x| *x *= scale);
            }
            matmul_ab(&g, self.queries, dc, cb, d, nq);
        });
        SoftmaxGrads { loss, d_queries, d_candidates }
    }

    /// Logits of one row of raw scores: divided by the temperature, minus `log q`.
    pub(super) fn transform(&self, row: &mut [f32]) {
        let inv_t = 1.0 / self.temperature;
        match self.log_q {
            Some(lq) => row.iter_mut().zip(lq).for_each(|(l, q)| *l = *l * inv_t - q),
            None => row.iter_mut().for_each(|l| *l *= inv_t),
        }
    }

    /// With accidental hits removed, the examples whose positive is `c` count column `c` once,
    /// not `count` times: the softmax weight `(count − 1)·(n/Z)·e` is taken back.
    fn hit_correction(&self, count: f32, b: f32, e: f32) -> f32 {
        if self.remove_accidental_hits { (count - 1.0) * b * e } else { 0.0 }
    }
}

/// Largest element (lane-wise, so that it vectorises); −∞ for an empty slice.
fn max(xs: &[f32]) -> f32 {
    let mut lanes = [f32::NEG_INFINITY; 8];
    let chunks = xs.chunks_exact(8);
    let tail = chunks.remainder();
    for c in chunks {
        for j in 0..8 {
            lanes[j] = if c[j] > lanes[j] { c[j] } else { lanes[j] };
        }
    }
    tail.iter().chain(&lanes).copied().fold(f32::NEG_INFINITY, f32::max)
}

/// `Σ aᵢ·bᵢ` over 8 independent f32 lanes (vectorises), summed in f64.
fn dot(a: &[f32], b: &[f32]) -> f64 {
    let mut lanes = [0f32; 8];
    let (ca, cb) = (a.chunks_exact(8), b.chunks_exact(8));
    let tail: f64 = ca.remainder().iter().zip(cb.remainder()).map(|(&x, &y)| (x * y) as f64).sum();
    for (x, y) in ca.zip(cb) {
        for j in 0..8 {
            lanes[j] += x[j] * y[j];
        }
    }
    tail + lanes.iter().map(|&l| l as f64).sum::<f64>()
}

/// `e^x` for every element, branch-free so that the loop vectorises: `x = n·ln2 + r` with
/// `|r| ≤ ln2/2`, a degree-6 polynomial for `e^r`, and `2^n` put into the exponent bits.
/// Relative error below 2e-7 on the clamped range [−87, 88]; below −87 it returns ~0.
pub fn exp_in_place(xs: &mut [f32]) {
    for x in xs {
        let v = x.clamp(-87.0, 88.0);
        // Round to nearest by adding 1.5·2²³: the integer n then sits in the low mantissa bits
        // of `t`, so 2ⁿ is built with integer ops alone (no libm, no float→int cast: the loop vectorises).
        const MAGIC: f32 = 12_582_912.0;
        let t = v * std::f32::consts::LOG2_E + MAGIC;
        let n = t - MAGIC;
        let r = v - n * 0.693_145_75 - n * 1.428_606_8e-6;
        let p = 1.0
            + r * (1.0
                + r * (0.5 + r * (0.166_666_67 + r * (0.041_666_668 + r * (0.008_333_334 + r * 0.001_388_889)))));
        *x = p * f32::from_bits(t.to_bits().wrapping_sub(MAGIC.to_bits()).wrapping_add(127) << 23);
    }
}

fn csr_starts(n: usize, keys: impl Iterator<Item = usize>) -> Vec<usize> {
    let mut starts = vec![0usize; n + 1];
    for k in keys {
        starts[k + 1] += 1;
    }
    for i in 0..n {
        starts[i + 1] += starts[i];
    }
    starts
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use crate::rng::Rng;

    /// The textbook loss on the full B×(B + extra) logits, in f64.
    fn naive_loss(s: &InBatchSoftmax, q: &[f64], c: &[f64]) -> f64 {
        let d = s.dim;
        let b = s.pairs.len();
        // the columns: the batch's candidates, then the extra negatives' copies
        let mut cols: Vec<usize> = s.pairs.iter().map(|p| p.1 as usize).collect();
        for (cand, &n) in s.extra_counts.unwrap_or(&[]).iter().enumerate() {
            cols.extend(std::iter::repeat_n(cand, n as usize));
        }
        let mut total = 0.0;
        for i in 0..b {
            let (qi, ci) = s.pairs[i];
            let logit = |j: usize| {
                let cj = cols[j];
                let dot: f64 = (0..d).map(|p| q[qi as usize * d + p] * c[cj * d + p]).sum();
                dot / s.temperature as f64 - s.log_q.map_or(0.0, |l| l[cj] as f64)
            };
            let mut z = 0.0;
            for j in 0..cols.len() {
                if s.remove_accidental_hits && j != i && cols[j] == ci as usize {
                    continue;
                }
                z += logit(j).exp();
            }
            total += s.weights.map_or(1.0, |w| w[i] as f64) * (z.ln() - logit(i));
        }
        total * s.grad_scale as f64
    }

    fn case(remove: bool, log_q: bool, temperature: f32, extra: bool) {
        check(remove, log_q, temperature, false, extra, None, naive_loss);
        check(remove, log_q, temperature, true, extra, None, naive_loss);
    }

    /// Compares the kernel (optionally with sample weights, extra negatives and hard negatives)
    /// with a naive loss and its finite differences.
    pub(crate) fn check(
        remove: bool,
        log_q: bool,
        temperature: f32,
        weighted: bool,
        extra: bool,
        hard_negatives: Option<usize>,
        naive_loss: fn(&InBatchSoftmax, &[f64], &[f64]) -> f64,
    ) {
        let mut rng = Rng::new(5);
        // candidate 5 is only ever an extra negative
        let (nq, nc, d) = (4, 6, 3);
        let queries: Vec<f32> = (0..nq * d).map(|_| rng.next_f32() * 2.0 - 1.0).collect();
        let candidates: Vec<f32> = (0..nc * d).map(|_| rng.next_f32() * 2.0 - 1.0).collect();
        let pairs: Vec<(u32, u32)> = (0..11).map(|_| (rng.below(nq) as u32, rng.below(nc - 1) as u32)).collect();
        let lq: Vec<f32> = (0..nc).map(|i| -(i as f32 + 1.0).ln()).collect();
        let w: Vec<f32> = (0..pairs.len()).map(|i| 0.5 + (i % 3) as f32).collect();
        let extra_counts = [0.0f32, 2.0, 0.0, 1.0, 0.0, 3.0];
        let s = InBatchSoftmax {
            queries: &queries,
            candidates: &candidates,
            dim: d,
            pairs: &pairs,
            log_q: log_q.then_some(&lq[..]),
            temperature,
            remove_accidental_hits: remove,
            grad_scale: 0.5,
            weights: weighted.then_some(&w[..]),
            hard_negatives,
            extra_counts: extra.then_some(&extra_counts[..]),
        };
        let out = s.forward_backward();
        let qf: Vec<f64> = queries.iter().map(|&x| x as f64).collect();
        let cf: Vec<f64> = candidates.iter().map(|&x| x as f64).collect();
        let base = naive_loss(&s, &qf, &cf);
        assert!((out.loss - base).abs() < 1e-4 * base.abs().max(1.0), "loss {} vs naive {}", out.loss, base);
        let h = 1e-5;
        for i in 0..qf.len() {
            let mut p = qf.clone();
            p[i] += h;
            let mut m = qf.clone();
            m[i] -= h;
            let fd = (naive_loss(&s, &p, &cf) - naive_loss(&s, &m, &cf)) / (2.0 * h);
            assert!((fd - out.d_queries[i] as f64).abs() < 1e-3, "dQ[{i}] fd {fd} vs {}", out.d_queries[i]);
        }
        for i in 0..cf.len() {
            let mut p = cf.clone();
            p[i] += h;
            let mut m = cf.clone();
            m[i] -= h;
            let fd = (naive_loss(&s, &qf, &p) - naive_loss(&s, &qf, &m)) / (2.0 * h);
            assert!((fd - out.d_candidates[i] as f64).abs() < 1e-3, "dC[{i}] fd {fd} vs {}", out.d_candidates[i]);
        }
    }

    #[test]
    fn matches_naive_loss_and_finite_differences() {
        for extra in [false, true] {
            case(false, false, 1.0, extra);
            case(true, false, 1.0, extra);
            case(false, true, 0.5, extra);
            case(true, true, 0.2, extra);
        }
    }

    #[test]
    fn fast_exp_is_accurate() {
        let mut xs: Vec<f32> = (-8700..=8800).map(|i| i as f32 * 0.01).collect();
        let want: Vec<f32> = xs.iter().map(|x| x.exp()).collect();
        exp_in_place(&mut xs);
        for (i, (g, w)) in xs.iter().zip(&want).enumerate() {
            assert!(
                (g - w).abs() <= 1e-6 * w.abs() + f32::MIN_POSITIVE,
                "exp({}) = {g}, want {w}",
                i as f32 * 0.01 - 87.0
            );
        }
        let mut tiny = [-1000.0f32, f32::NEG_INFINITY];
        exp_in_place(&mut tiny);
        assert!(tiny.iter().all(|&x| (0.0..1e-37).contains(&x)));
    }

    #[test]
    fn hand_computed_example() {
        // Two examples, 1-d: q = [1, 2], c = [1, 0]; logits [[1, 0], [2, 0]].
        // loss = (ln(e + 1) - 1) + (ln(e² + 1) - 0)
        let s = InBatchSoftmax {
            queries: &[1.0, 2.0],
            candidates: &[1.0, 0.0],
            dim: 1,
            pairs: &[(0, 0), (1, 1)],
            log_q: None,
            temperature: 1.0,
            remove_accidental_hits: false,
            grad_scale: 1.0,
            weights: None,
            hard_negatives: None,
            extra_counts: None,
        };
        let e = std::f64::consts::E;
        let want = ((e + 1.0).ln() - 1.0) + (e * e + 1.0).ln();
        assert!((s.forward_backward().loss - want).abs() < 1e-6);
    }

    #[test]
    fn accidental_hits_change_the_loss_only_with_repeats() {
        let q = [0.3f32, -0.2, 0.5, 0.1];
        let c = [0.4f32, 0.2, -0.3, 0.6];
        let mk = |pairs: &'static [(u32, u32)], remove| InBatchSoftmax {
            queries: &q,
            candidates: &c,
            dim: 2,
            pairs,
            log_q: None,
            temperature: 1.0,
            remove_accidental_hits: remove,
            grad_scale: 1.0,
            weights: None,
            hard_negatives: None,
            extra_counts: None,
        };
        let distinct: &[(u32, u32)] = &[(0, 0), (1, 1)];
        assert!(
            (mk(distinct, true).forward_backward().loss - mk(distinct, false).forward_backward().loss).abs() < 1e-9
        );
        let repeated: &[(u32, u32)] = &[(0, 0), (1, 0)];
        assert!(mk(repeated, true).forward_backward().loss < mk(repeated, false).forward_backward().loss);
    }
}
