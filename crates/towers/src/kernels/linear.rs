//! A dense layer `y = x·W + b` over many rows, and the position-wise helpers of the attention
//! encoder (layer norm, ReLU, dropout), parallel over fixed blocks of rows: every output row and
//! every summed gradient is computed in the same order whatever the number of threads.

use super::{gemm_acc_atb, matmul_ab, matmul_abt};
use crate::rng::Rng;
use rayon::prelude::*;

/// Rows per parallel block.
pub const ROW_BLOCK: usize = 256;

/// A dense layer: `input × output` weights (row-major) and `output` biases.
#[derive(Debug, Clone, PartialEq)]
pub struct Linear {
    /// Input width.
    pub input: usize,
    /// Output width.
    pub output: usize,
    /// `input × output` weights.
    pub w: Vec<f32>,
    /// `output` biases.
    pub b: Vec<f32>,
}

/// Sums per-block partial results in block order.
fn sum_blocks(parts: Vec<Vec<f32>>, len: usize) -> Vec<f32> {
    let mut total = vec![0f32; len];
    for p in parts {
        total.iter_mut().zip(&p).for_each(|(a, b)| *a += b);
    }
    total
}

impl Linear {
    /// Glorot-uniform weights and zero biases (Keras' `Dense`).
    pub fn new(input: usize, output: usize, rng: &mut Rng) -> Self {
        let limit = (6.0 / (input + output) as f32).sqrt();
        let w = (0..input * output).map(|_| (rng.next_f32() * 2.0 - 1.0) * limit).collect();
        Linear { input, output, w, b: vec![0.0; output] }
    }

    /// `x·W + b` for `x` of `rows × input`.
    pub fn forward(&self, x: &[f32]) -> Vec<f32> {
        let (i, o) = (self.input, self.output);
        let mut y = vec![0f32; x.len() / i * o];
        y.par_chunks_mut(ROW_BLOCK * o).zip(x.par_chunks(ROW_BLOCK * i)).for_each(|(y, x)| {
            let rows = x.len() / i;
            matmul_ab(x, &self.w, y, rows, o, i);
            y.chunks_exact_mut(o).for_each(|r| r.iter_mut().zip(&self.b).for_each(|(a, b)| *a += b));
        });
        y
    }

    /// From `∂L/∂y`: `(∂L/∂W, ∂L/∂b, ∂L/∂x)`.
    pub fn backward(&self, x: &[f32], dy: &[f32]) -> (Vec<f32>, Vec<f32>, Vec<f32>) {
        let (i, o) = (self.input, self.output);
        let mut dx = vec![0f32; x.len()];
        let parts: Vec<(Vec<f32>, Vec<f32>)> = dx
            .par_chunks_mut(ROW_BLOCK * i)
            .zip(x.par_chunks(ROW_BLOCK * i).zip(dy.par_chunks(ROW_BLOCK * o)))
            .map(|(dx, (x, dy))| {
                let rows = x.len() / i;
                matmul_abt(dy, &self.w, dx, rows, i, o);
                let mut dw = vec![0f32; i * o];
                gemm_acc_atb(x, dy, &mut dw, i, o, rows);
                let mut db = vec![0f32; o];
                dy.chunks_exact(o).for_each(|r| db.iter_mut().zip(r).for_each(|(a, b)| *a += b));
                (dw, db)
            })
            .collect();
        let (dw, db): (Vec<_>, Vec<_>) = parts.into_iter().unzip();
        (sum_blocks(dw, i * o), sum_blocks(db, o), dx)
    }
}

/// Layer normalisation over the last axis, `ε = 1e-6`, with a learned scale and shift.
#[derive(Debug, Clone, PartialEq)]
pub struct LayerNorm {
    /// Scale, initially ones.
    pub gamma: Vec<f32>,
    /// Shift, initially zeros.
    pub beta: Vec<f32>,
}

/// What [`LayerNorm::backward`] needs: the normalised inputs and each row's `1/σ`.
#[derive(Debug, Clone, Default)]
pub struct NormCache {
    xhat: Vec<f32>,
    inv_std: Vec<f32>,
}

const EPS: f32 = 1e-6;

impl LayerNorm {
    /// Scale 1, shift 0.
    pub fn new(dim: usize) -> Self {
        LayerNorm { gamma: vec![1.0; dim], beta: vec![0.0; dim] }
    }

    /// Normalises every row of `x`.
    pub fn forward(&self, x: &[f32]) -> (Vec<f32>, NormCache) {
        let d = self.gamma.len();
        let mut y = vec![0f32; x.len()];
        let mut xhat = vec![0f32; x.len()];
        let mut inv_std = vec![0f32; x.len() / d];
        y.par_chunks_mut(ROW_BLOCK * d)
            .zip(xhat.par_chunks_mut(ROW_BLOCK * d))
            .zip(inv_std.par_chunks_mut(ROW_BLOCK).zip(x.par_chunks(ROW_BLOCK * d)))
            .for_each(|((y, xh), (inv, x))| {
                for (((y, xh), inv), x) in
                    y.chunks_exact_mut(d).zip(xh.chunks_exact_mut(d)).zip(inv).zip(x.chunks_exact(d))
                {
                    let mean = x.iter().sum::<f32>() / d as f32;
                    let var = x.iter().map(|v| (v - mean) * (v - mean)).sum::<f32>() / d as f32;
                    *inv = 1.0 / (var + EPS).sqrt();
                    for j in 0..d {
                        xh[j] = (x[j] - mean) * *inv;
                        y[j] = xh[j] * self.gamma[j] + self.beta[j];
                    }
                }
            });
        (y, NormCache { xhat, inv_std })
    }

    /// From `∂L/∂y`: `(∂L/∂γ, ∂L/∂β, ∂L/∂x)`.
    pub fn backward(&self, cache: &NormCache, dy: &[f32]) -> (Vec<f32>, Vec<f32>, Vec<f32>) {
        let d = self.gamma.len();
        let mut dx = vec![0f32; dy.len()];
        let parts: Vec<(Vec<f32>, Vec<f32>)> = dx
            .par_chunks_mut(ROW_BLOCK * d)
            .zip(dy.par_chunks(ROW_BLOCK * d))
            .zip(cache.xhat.par_chunks(ROW_BLOCK * d).zip(cache.inv_std.par_chunks(ROW_BLOCK)))
            .map(|((dx, dy), (xhat, inv))| {
                let (mut dg, mut db) = (vec![0f32; d], vec![0f32; d]);
                let mut g = vec![0f32; d];
                for (((dx, dy), xh), inv) in
                    dx.chunks_exact_mut(d).zip(dy.chunks_exact(d)).zip(xhat.chunks_exact(d)).zip(inv)
                {
                    for j in 0..d {
                        dg[j] += dy[j] * xh[j];
                        db[j] += dy[j];
                        g[j] = dy[j] * self.gamma[j];
                    }
                    let mean_g = g.iter().sum::<f32>() / d as f32;
                    let mean_gx = g.iter().zip(xh).map(|(a, b)| a * b).sum::<f32>() / d as f32;
                    for j in 0..d {
                        dx[j] = inv * (g[j] - mean_g - xh[j] * mean_gx);
                    }
                }
                (dg, db)
            })
            .collect();
        let (dg, db): (Vec<_>, Vec<_>) = parts.into_iter().unzip();
        (sum_blocks(dg, d), sum_blocks(db, d), dx)
    }
}

/// Inverted dropout: a mask of `0` or `1/(1−p)` per value, drawn in order from `rng` (so the
/// same seed gives the same mask whatever the threads); `None` when `p` is 0.
pub fn dropout_mask(len: usize, p: f32, rng: &mut Rng) -> Option<Vec<f32>> {
    (p > 0.0).then(|| {
        let keep = 1.0 / (1.0 - p);
        (0..len).map(|_| if rng.next_f32() < p { 0.0 } else { keep }).collect()
    })
}

/// Multiplies `x` by a dropout mask, if any.
pub fn apply_mask(x: &mut [f32], mask: Option<&[f32]>) {
    if let Some(m) = mask {
        x.iter_mut().zip(m).for_each(|(a, b)| *a *= b);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn values(n: usize, seed: u64) -> Vec<f32> {
        let mut rng = Rng::new(seed);
        (0..n).map(|_| rng.next_f32() * 2.0 - 1.0).collect()
    }

    /// `Σ y ⊙ c` in f64.
    fn dot(y: &[f32], c: &[f32]) -> f64 {
        y.iter().zip(c).map(|(a, b)| *a as f64 * *b as f64).sum()
    }

    fn check(name: &str, analytic: &[f32], f: &dyn Fn(usize, f32) -> f64) {
        let h = 1e-2f32;
        for (i, &a) in analytic.iter().enumerate() {
            let fd = (f(i, h) - f(i, -h)) / (2.0 * h as f64);
            assert!((fd - a as f64).abs() < 2e-3 * fd.abs().max(1.0), "{name}[{i}]: fd {fd} vs {a}");
        }
    }

    #[test]
    fn linear_matches_naive_and_finite_differences() {
        let (rows, i, o) = (ROW_BLOCK + 3, 4, 3);
        let mut l = Linear::new(i, o, &mut Rng::new(1));
        l.b = values(o, 9);
        let x = values(rows * i, 2);
        let y = l.forward(&x);
        for r in [0, 7, rows - 1] {
            for k in 0..o {
                let s: f32 = l.b[k] + (0..i).map(|j| x[r * i + j] * l.w[j * o + k]).sum::<f32>();
                assert!((y[r * o + k] - s).abs() < 1e-5);
            }
        }
        let c = values(rows * o, 3);
        let (dw, db, dx) = l.backward(&x, &c);
        check("w", &dw, &|k, e| {
            let mut l2 = l.clone();
            l2.w[k] += e;
            dot(&l2.forward(&x), &c)
        });
        check("b", &db, &|k, e| {
            let mut l2 = l.clone();
            l2.b[k] += e;
            dot(&l2.forward(&x), &c)
        });
        check("x", &dx[..40], &|k, e| {
            let mut x2 = x.clone();
            x2[k] += e;
            dot(&l.forward(&x2), &c)
        });
    }

    #[test]
    fn layer_norm_matches_naive_and_finite_differences() {
        let (rows, d) = (5, 6);
        let mut n = LayerNorm::new(d);
        n.gamma = values(d, 4);
        n.beta = values(d, 5);
        let x = values(rows * d, 6);
        let (y, cache) = n.forward(&x);
        let r = &x[d..2 * d];
        let mean = r.iter().sum::<f32>() / d as f32;
        let sd = (r.iter().map(|v| (v - mean).powi(2)).sum::<f32>() / d as f32 + EPS).sqrt();
        assert!((y[d + 2] - ((r[2] - mean) / sd * n.gamma[2] + n.beta[2])).abs() < 1e-5);
        let c = values(rows * d, 7);
        let (dg, db, dx) = n.backward(&cache, &c);
        check("gamma", &dg, &|k, e| {
            let mut n2 = n.clone();
            n2.gamma[k] += e;
            dot(&n2.forward(&x).0, &c)
        });
        check("beta", &db, &|k, e| {
            let mut n2 = n.clone();
            n2.beta[k] += e;
            dot(&n2.forward(&x).0, &c)
        });
        check("x", &dx, &|k, e| {
            let mut x2 = x.clone();
            x2[k] += e;
            dot(&n.forward(&x2).0, &c)
        });
    }

    #[test]
    fn dropout_keeps_the_expectation() {
        let m = dropout_mask(10_000, 0.2, &mut Rng::new(3)).unwrap();
        let mean = m.iter().sum::<f32>() / m.len() as f32;
        assert!((mean - 1.0).abs() < 0.03, "{mean}");
        assert!(dropout_mask(5, 0.0, &mut Rng::new(3)).is_none());
    }
}
