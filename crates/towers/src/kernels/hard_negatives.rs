//! The in-batch softmax with hard-negative mining (TFRS `Retrieval(num_hard_negatives=n)`):
//! each example's softmax runs over its positive and the `n` highest-scoring *other* columns
//! of the batch (after temperature, logQ correction and the removal of accidental hits, in
//! TFRS's order). Works on the distinct queries and candidates like the fused kernel: a
//! column of multiplicity `k` stands for `k` columns of equal logit.

use super::softmax::{InBatchSoftmax, SoftmaxGrads};
use super::{matmul_ab, matmul_abt, matmul_atb};
use rayon::prelude::*;

/// Loss and gradients; see the module documentation.
pub(super) fn forward_backward(s: &InBatchSoftmax, n_hard: usize) -> SoftmaxGrads {
    let (nq, nc, d) = (s.nq(), s.nc(), s.dim);
    let (counts, positives) = s.positives();
    let mut logits = vec![0f32; nq * nc];
    matmul_abt(s.queries, s.candidates, &mut logits, nq, nc, d);
    let mut first = vec![positives.len(); nq + 1];
    for (i, p) in positives.iter().enumerate().rev() {
        first[p.q as usize] = i;
    }
    for q in (0..nq).rev() {
        first[q] = first[q].min(first[q + 1]);
    }
    let mut grad = vec![0f32; nq * nc];
    // rows are independent: parallel over rows, losses summed in row order (deterministic)
    let losses: Vec<f64> = grad
        .par_chunks_mut(nc)
        .zip(logits.par_chunks_mut(nc))
        .enumerate()
        .map(|(q, (g, row))| {
            let mine = &positives[first[q]..first[q + 1]];
            if mine.is_empty() {
                return 0.0;
            }
            s.transform(row);
            // the row's columns by logit, best first (ties by column)
            let mut order: Vec<u32> = (0..nc as u32).filter(|&j| counts[j as usize] > 0.0).collect();
            order.sort_by(|&a, &b| row[b as usize].total_cmp(&row[a as usize]).then(a.cmp(&b)));
            let mut kept: Vec<(usize, f64)> = Vec::new();
            let mut loss = 0f64;
            for p in mine {
                let c = p.c as usize;
                // the n best other columns: c itself k−1 times (0 with accidental hits removed)
                kept.clear();
                let mut left = n_hard as f64;
                for &j in &order {
                    if left <= 0.0 {
                        break;
                    }
                    let j = j as usize;
                    let k = if j != c {
                        counts[j] as f64
                    } else if s.remove_accidental_hits {
                        0.0
                    } else {
                        counts[j] as f64 - 1.0
                    };
                    let take = k.min(left);
                    if take > 0.0 {
                        kept.push((j, take));
                        left -= take;
                    }
                }
                let m = kept.iter().map(|&(j, _)| row[j]).fold(row[c], f32::max) as f64;
                let e = |j: usize| (row[j] as f64 - m).exp();
                let z = e(c) + kept.iter().map(|&(j, k)| k * e(j)).sum::<f64>();
                let w = p.n as f64;
                loss += w * (z.ln() + m - row[c] as f64);
                g[c] += (w * (e(c) / z - 1.0)) as f32;
                for &(j, k) in &kept {
                    g[j] += (w * k * e(j) / z) as f32;
                }
            }
            loss
        })
        .collect();
    let loss: f64 = losses.iter().sum();
    let scale = s.grad_scale / s.temperature;
    grad.iter_mut().for_each(|g| *g *= scale);
    let mut d_queries = vec![0f32; nq * d];
    matmul_ab(&grad, s.candidates, &mut d_queries, nq, d, nc);
    let mut d_candidates = vec![0f32; nc * d];
    matmul_atb(&grad, s.queries, &mut d_candidates, nc, d, nq);
    SoftmaxGrads { loss: loss * s.grad_scale as f64, d_queries, d_candidates }
}

#[cfg(test)]
mod tests {
    use crate::kernels::softmax::InBatchSoftmax;
    use crate::kernels::softmax::tests::check;

    /// TFRS's hard-negative loss on the full B×B logits: per example, accidental hits masked,
    /// then its positive and the `n` best other columns.
    fn naive(s: &InBatchSoftmax, q: &[f64], c: &[f64]) -> f64 {
        let (d, b, n) = (s.dim, s.pairs.len(), s.hard_negatives.unwrap());
        let mut total = 0.0;
        for i in 0..b {
            let (qi, ci) = s.pairs[i];
            let logit = |j: usize| {
                let cj = s.pairs[j].1 as usize;
                let dot: f64 = (0..d).map(|p| q[qi as usize * d + p] * c[cj * d + p]).sum();
                dot / s.temperature as f64 - s.log_q.map_or(0.0, |l| l[cj] as f64)
            };
            let mut others: Vec<f64> =
                (0..b).filter(|&j| j != i && !(s.remove_accidental_hits && s.pairs[j].1 == ci)).map(logit).collect();
            others.sort_by(|a, b| b.total_cmp(a));
            let z: f64 = logit(i).exp() + others.iter().take(n).map(|l| l.exp()).sum::<f64>();
            total += s.weights.map_or(1.0, |w| w[i] as f64) * (z.ln() - logit(i));
        }
        total * s.grad_scale as f64
    }

    #[test]
    fn matches_tfrs_hard_negative_mining() {
        for n in [1, 3, 20] {
            check(false, false, 1.0, false, false, Some(n), naive);
            check(true, true, 0.5, true, false, Some(n), naive);
            check(true, false, 1.0, false, false, Some(n), naive);
        }
    }
}
