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
//! that matrix whole: one pass over blocks of 48 query rows computes each block's logits once
//! into a buffer that stays in L2, and takes from it the row statistics, the loss, `dQ` and
//! the block's share of `dC` (`kernels::fused`: 3 GEMM-shaped products and one exponential per
//! logit; AVX-512 micro-kernels where the CPU has them, `gemm` elsewhere). It is parallel over
//! fixed runs of blocks and deterministic: every output is written by one block or summed over
//! the runs in a fixed order, whatever the thread count.
//!
//! Measured on a 2-core Zen 4 at a batch of 4,096 with ~4,030 distinct queries and ~3,200
//! distinct candidates (dim 32; `cargo run --release --example kernel_bench -- softmax`):
//! ~28 ms of CPU per step, against ~95 ms for the two-pass kernel on `gemm` it replaced
//! (which recomputed the logits for `dC`: 4 products and 2 exponentials per logit).

use super::fused::{self, Backend};
use serde::{Deserialize, Serialize};

/// The arithmetic of the loss's three products (the logits and the two gradients).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
#[cfg_attr(feature = "clap", derive(clap::ValueEnum))]
pub enum Precision {
    /// f32 throughout.
    #[default]
    F32,
    /// bf16 operands (8 significant bits, rounded to nearest even) and f32 sums, where the CPU
    /// has `avx512_bf16` (`vdpbf16ps`: twice the products per instruction); f32 elsewhere. Row
    /// maxima, exponentials, their sums and the loss stay f32; a logit is off by up to
    /// ~2⁻⁸·Σ|q_j·c_j|/T, a gradient by ~1% of the largest.
    Bf16,
}

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
    /// The arithmetic of the products.
    pub precision: Precision,
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
/// weights).
#[derive(Debug, Clone, Copy)]
pub(super) struct Positive {
    pub(super) q: u32,
    pub(super) c: u32,
    pub(super) n: f32,
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
                _ => pos.push(Positive { q, c, n: w }),
            }
        }
        (counts, pos)
    }

    /// Computes the loss and both gradients.
    pub fn forward_backward(&self) -> SoftmaxGrads {
        if let Some(n) = self.hard_negatives {
            return super::hard_negatives::forward_backward(self, n);
        }
        fused::forward_backward(self, Backend::best(self.dim, self.precision))
    }

    /// Logits of one row of raw scores: divided by the temperature, minus `log q`.
    pub(super) fn transform(&self, row: &mut [f32]) {
        let inv_t = 1.0 / self.temperature;
        match self.log_q {
            Some(lq) => row.iter_mut().zip(lq).for_each(|(l, q)| *l = *l * inv_t - q),
            None => row.iter_mut().for_each(|l| *l *= inv_t),
        }
    }
}

/// Largest element (lane-wise, so that it vectorises); −∞ for an empty slice.
pub(super) fn max(xs: &[f32]) -> f32 {
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
pub(crate) fn dot(a: &[f32], b: &[f32]) -> f64 {
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

/// `e^x` for every element: `x = n·ln2 + r` with `|r| ≤ ln2/2`, a degree-6 polynomial for
/// `e^r`, times `2^n`. Relative error below 2e-7 on the clamped range [−87, 88]; below −87 it
/// returns ~0. With AVX-512 (detected at run time) 16 lanes at a time with `vscalefps`, else
/// the portable loop, which the compiler vectorises.
pub fn exp_in_place(xs: &mut [f32]) {
    #[cfg(target_arch = "x86_64")]
    if super::avx512::available() {
        // SAFETY: AVX-512F is present.
        return unsafe { super::avx512::exp_in_place(xs) };
    }
    exp_portable(xs)
}

/// [`exp_in_place`] without SIMD intrinsics, branch-free so that the loop vectorises: `2^n` is
/// put into the exponent bits.
pub(super) fn exp_portable(xs: &mut [f32]) {
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

pub(super) fn csr_starts(n: usize, keys: impl Iterator<Item = usize>) -> Vec<usize> {
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
            precision: Precision::F32,
        };
        // every backend of the fused kernel (portable, AVX-512 where present) when it applies
        let mut outs = vec![s.forward_backward()];
        if hard_negatives.is_none() {
            outs.push(fused::forward_backward(&s, Backend::Portable));
        }
        for out in outs {
            check_against(&s, &out, &queries, &candidates, naive_loss);
        }
    }

    fn check_against(
        s: &InBatchSoftmax,
        out: &SoftmaxGrads,
        queries: &[f32],
        candidates: &[f32],
        naive_loss: fn(&InBatchSoftmax, &[f64], &[f64]) -> f64,
    ) {
        let qf: Vec<f64> = queries.iter().map(|&x| x as f64).collect();
        let cf: Vec<f64> = candidates.iter().map(|&x| x as f64).collect();
        let base = naive_loss(s, &qf, &cf);
        assert!((out.loss - base).abs() < 1e-4 * base.abs().max(1.0), "loss {} vs naive {}", out.loss, base);
        let h = 1e-5;
        for i in 0..qf.len() {
            let mut p = qf.clone();
            p[i] += h;
            let mut m = qf.clone();
            m[i] -= h;
            let fd = (naive_loss(s, &p, &cf) - naive_loss(s, &m, &cf)) / (2.0 * h);
            assert!((fd - out.d_queries[i] as f64).abs() < 1e-3, "dQ[{i}] fd {fd} vs {}", out.d_queries[i]);
        }
        for i in 0..cf.len() {
            let mut p = cf.clone();
            p[i] += h;
            let mut m = cf.clone();
            m[i] -= h;
            let fd = (naive_loss(s, &qf, &p) - naive_loss(s, &qf, &m)) / (2.0 * h);
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
        fast_exp_is_accurate_with(exp_in_place);
        fast_exp_is_accurate_with(exp_portable);
    }

    fn fast_exp_is_accurate_with(exp_in_place: fn(&mut [f32])) {
        // 17,501 values: the SIMD path's masked tail is exercised too
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
            precision: Precision::F32,
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
            precision: Precision::F32,
        };
        let distinct: &[(u32, u32)] = &[(0, 0), (1, 1)];
        assert!(
            (mk(distinct, true).forward_backward().loss - mk(distinct, false).forward_backward().loss).abs() < 1e-9
        );
        let repeated: &[(u32, u32)] = &[(0, 0), (1, 0)];
        assert!(mk(repeated, true).forward_backward().loss < mk(repeated, false).forward_backward().loss);
    }
}
