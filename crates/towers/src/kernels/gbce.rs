//! gBCE (Petrov & Macdonald 2023, gSASRec): binary cross-entropy over each position's positive
//! and `k` negatives sampled uniformly from the catalogue, with the positive's probability raised
//! to the power `β = α·(t·(1 − 1/α) + 1/α)`, `α = k / (items − 1)`: BCE over sampled negatives is
//! overconfident by `1/α`, and `t` says how much of that to undo (`t = 1` fully, `t = 0`: BCE).
//!
//! `loss = Σ_positions −β·ln σ(s⁺) − Σ_negatives ln(1 − σ(s⁻))`. A negative equal to its
//! position's positive is skipped.

use rayon::prelude::*;

/// `β` for `k` negatives among `items` candidates, calibration `t`.
pub fn beta(k: usize, items: usize, t: f32) -> f32 {
    let alpha = k as f64 / (items.max(2) - 1) as f64;
    (alpha * (t as f64 * (1.0 - 1.0 / alpha) + 1.0 / alpha)) as f32
}

/// `ln σ(x)`, stable for large `|x|`.
fn log_sigmoid(x: f64) -> f64 {
    if x >= 0.0 { -(-x).exp().ln_1p() } else { x - x.exp().ln_1p() }
}

/// The loss and its gradients for `n` queries (`n × dim`) and, per query, its positive item row
/// then `k` negative rows (`rows`: `n × (k + 1)`) of `table` (`rows × dim`): the summed loss,
/// `d loss / d query` (`n × dim`), and `d loss / d score` of each (query, row) pair (`n × (k + 1)`;
/// the row's gradient is that times the query).
pub fn forward_backward(
    queries: &[f32],
    table: &[f32],
    dim: usize,
    rows: &[u32],
    beta: f32,
) -> (f64, Vec<f32>, Vec<f32>) {
    let n = queries.len() / dim;
    let k1 = rows.len() / n.max(1);
    let mut d_queries = vec![0f32; queries.len()];
    let mut d_scores = vec![0f32; rows.len()];
    let losses: Vec<f64> = d_queries
        .par_chunks_mut(dim)
        .zip(d_scores.par_chunks_mut(k1))
        .enumerate()
        .map(|(i, (dq, ds))| {
            let q = &queries[i * dim..(i + 1) * dim];
            let r = &rows[i * k1..(i + 1) * k1];
            let mut loss = 0f64;
            for (j, &row) in r.iter().enumerate() {
                if j > 0 && row == r[0] {
                    continue;
                }
                let c = &table[row as usize * dim..(row as usize + 1) * dim];
                let s: f64 = q.iter().zip(c).map(|(a, b)| (a * b) as f64).sum();
                let sig = 1.0 / (1.0 + (-s).exp());
                let g = if j == 0 {
                    loss -= beta as f64 * log_sigmoid(s);
                    -(beta as f64) * (1.0 - sig)
                } else {
                    loss -= log_sigmoid(-s);
                    sig
                };
                ds[j] = g as f32;
                dq.iter_mut().zip(c).for_each(|(d, &v)| *d += g as f32 * v);
            }
            loss
        })
        .collect();
    (losses.iter().sum(), d_queries, d_scores)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::rng::Rng;

    fn naive(q: &[f64], c: &[f64], dim: usize, rows: &[u32], beta: f64) -> f64 {
        let n = q.len() / dim;
        let k1 = rows.len() / n;
        let sigma = |x: f64| 1.0 / (1.0 + (-x).exp());
        let mut loss = 0.0;
        for i in 0..n {
            for j in 0..k1 {
                let row = rows[i * k1 + j] as usize;
                if j > 0 && row == rows[i * k1] as usize {
                    continue;
                }
                let s: f64 = (0..dim).map(|p| q[i * dim + p] * c[row * dim + p]).sum();
                loss -= if j == 0 { beta * sigma(s).ln() } else { (1.0 - sigma(s)).ln() };
            }
        }
        loss
    }

    #[test]
    fn matches_naive_loss_and_finite_differences() {
        let mut rng = Rng::new(4);
        let (n, items, dim, k) = (3, 6, 4, 3);
        let q: Vec<f32> = (0..n * dim).map(|_| rng.next_f32() * 2.0 - 1.0).collect();
        let c: Vec<f32> = (0..items * dim).map(|_| rng.next_f32() * 2.0 - 1.0).collect();
        // query 1 has its positive among its negatives: skipped
        let rows = [1u32, 2, 3, 4, 5, 5, 1, 2, 2, 0, 3, 4];
        let b = beta(k, items, 0.75);
        assert!((beta(k, items, 0.0) - 1.0).abs() < 1e-6 && (beta(k, items, 1.0) - k as f32 / 5.0).abs() < 1e-6);
        let (loss, dq, ds) = forward_backward(&q, &c, dim, &rows, b);
        let (qf, cf): (Vec<f64>, Vec<f64>) =
            (q.iter().map(|&x| x as f64).collect(), c.iter().map(|&x| x as f64).collect());
        let want = naive(&qf, &cf, dim, &rows, b as f64);
        assert!((loss - want).abs() < 1e-5, "{loss} vs {want}");
        let h = 1e-5;
        for i in 0..qf.len() {
            let (mut up, mut down) = (qf.clone(), qf.clone());
            up[i] += h;
            down[i] -= h;
            let fd = (naive(&up, &cf, dim, &rows, b as f64) - naive(&down, &cf, dim, &rows, b as f64)) / (2.0 * h);
            assert!((fd - dq[i] as f64).abs() < 1e-4, "dq[{i}] {fd} vs {}", dq[i]);
        }
        // a row's gradient is Σ d_score · query
        let mut dc = vec![0f64; cf.len()];
        for (p, &row) in rows.iter().enumerate() {
            let i = p / (k + 1);
            (0..dim).for_each(|x| dc[row as usize * dim + x] += ds[p] as f64 * qf[i * dim + x]);
        }
        for i in 0..cf.len() {
            let (mut up, mut down) = (cf.clone(), cf.clone());
            up[i] += h;
            down[i] -= h;
            let fd = (naive(&qf, &up, dim, &rows, b as f64) - naive(&qf, &down, dim, &rows, b as f64)) / (2.0 * h);
            assert!((fd - dc[i]).abs() < 1e-4, "dc[{i}] {fd} vs {}", dc[i]);
        }
    }
}
