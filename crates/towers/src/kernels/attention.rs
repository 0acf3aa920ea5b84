//! Causal multi-head self-attention over packed sequences (SASRec's), with its backward pass.
//!
//! Sequences of different lengths lie one after another (`offsets`, no padding): position `i`
//! of a sequence attends to positions `0..=i` of the same sequence. The input is each
//! position's `[q | k | v]` (`rows × 3d`, head `h` in columns `h·d/heads..`), the output the
//! heads' outputs side by side (`rows × d`). Parallel over sequences, each computed whole by one
//! thread, so the result does not depend on the number of threads.

use crate::rng::Rng;
use rayon::prelude::*;

/// The attention probabilities of a forward pass (before and after dropout), per sequence and
/// head, for the backward pass.
#[derive(Debug, Clone, Default)]
pub struct AttentionCache {
    /// Per sequence: `heads × len × len` probabilities (upper triangle 0).
    probs: Vec<Vec<f32>>,
    /// The same after dropout (empty without dropout).
    dropped: Vec<Vec<f32>>,
}

/// Shape of one call: model width, heads, and the dropout rate of the probabilities.
#[derive(Debug, Clone, Copy)]
pub struct Heads {
    /// Model width `d` (the sum of the heads' widths).
    pub dim: usize,
    /// Number of heads; divides `dim`.
    pub heads: usize,
    /// Dropout rate of the attention probabilities (training only).
    pub dropout: f32,
}

impl Heads {
    fn width(&self) -> usize {
        self.dim / self.heads
    }
}

/// The sequences of `offsets` (`n + 1` row offsets) split into groups of about `rows` rows: each
/// group's sequence range.
fn groups(offsets: &[usize], rows: usize) -> Vec<(usize, usize)> {
    let mut out = Vec::new();
    let mut start = 0;
    for s in 1..offsets.len() {
        if offsets[s] - offsets[start] >= rows || s + 1 == offsets.len() {
            out.push((start, s));
            start = s;
        }
    }
    out
}

/// Splits `data` (`width` values per row) into the groups' row ranges.
fn split_rows<'a>(
    mut data: &'a mut [f32],
    offsets: &[usize],
    groups: &[(usize, usize)],
    width: usize,
) -> Vec<&'a mut [f32]> {
    let mut out = Vec::with_capacity(groups.len());
    for &(a, b) in groups {
        let (head, tail) = data.split_at_mut((offsets[b] - offsets[a]) * width);
        out.push(head);
        data = tail;
    }
    out
}

const GROUP_ROWS: usize = 256;

/// Causal attention of every sequence. With `seed` and a dropout rate, the probabilities are
/// dropped out with a generator per sequence derived from `seed`.
pub fn forward(qkv: &[f32], offsets: &[usize], shape: Heads, seed: Option<u64>) -> (Vec<f32>, AttentionCache) {
    let d = shape.dim;
    let rows = offsets.last().copied().unwrap_or(0);
    let mut out = vec![0f32; rows * d];
    let groups = groups(offsets, GROUP_ROWS);
    let parts: Vec<Vec<(Vec<f32>, Vec<f32>)>> = split_rows(&mut out, offsets, &groups, d)
        .into_par_iter()
        .zip(groups.par_iter())
        .map(|(out, &(a, b))| {
            let base = offsets[a];
            (a..b)
                .map(|s| {
                    let (r0, r1) = (offsets[s], offsets[s + 1]);
                    let rng = seed
                        .filter(|_| shape.dropout > 0.0)
                        .map(|x| Rng::new(x ^ (s as u64).wrapping_mul(0x9E37_79B9_7F4A_7C15)));
                    one_forward(&qkv[r0 * 3 * d..r1 * 3 * d], &mut out[(r0 - base) * d..(r1 - base) * d], shape, rng)
                })
                .collect()
        })
        .collect();
    let (probs, dropped) = parts.into_iter().flatten().unzip();
    (out, AttentionCache { probs, dropped })
}

fn one_forward(qkv: &[f32], out: &mut [f32], shape: Heads, mut rng: Option<Rng>) -> (Vec<f32>, Vec<f32>) {
    let (d, w) = (shape.dim, shape.width());
    let n = qkv.len() / (3 * d);
    let scale = 1.0 / (w as f32).sqrt();
    let mut probs = vec![0f32; shape.heads * n * n];
    let mut dropped = if rng.is_some() { vec![0f32; probs.len()] } else { Vec::new() };
    let keep = 1.0 / (1.0 - shape.dropout);
    for h in 0..shape.heads {
        for i in 0..n {
            let q = &qkv[i * 3 * d + h * w..][..w];
            let p = &mut probs[(h * n + i) * n..][..=i];
            for (j, pj) in p.iter_mut().enumerate() {
                let k = &qkv[j * 3 * d + d + h * w..][..w];
                *pj = q.iter().zip(k).map(|(a, b)| a * b).sum::<f32>() * scale;
            }
            let max = p.iter().fold(f32::NEG_INFINITY, |m, &v| m.max(v));
            let mut total = 0.0;
            p.iter_mut().for_each(|v| {
                *v = (*v - max).exp();
                total += *v;
            });
            p.iter_mut().for_each(|v| *v /= total);
            let used: &[f32] = match rng.as_mut() {
                Some(rng) => {
                    let dp = &mut dropped[(h * n + i) * n..][..=i];
                    for (a, &b) in dp.iter_mut().zip(p.iter()) {
                        *a = if rng.next_f32() < shape.dropout { 0.0 } else { b * keep };
                    }
                    dp
                }
                None => p,
            };
            let o = &mut out[i * d + h * w..][..w];
            for (j, &pj) in used.iter().enumerate() {
                let v = &qkv[j * 3 * d + 2 * d + h * w..][..w];
                o.iter_mut().zip(v).for_each(|(a, b)| *a += pj * b);
            }
        }
    }
    (probs, dropped)
}

/// `∂L/∂qkv` (`rows × 3d`) from the output's gradient `d_out` (`rows × d`).
pub fn backward(qkv: &[f32], offsets: &[usize], shape: Heads, cache: &AttentionCache, d_out: &[f32]) -> Vec<f32> {
    let d = shape.dim;
    let rows = offsets.last().copied().unwrap_or(0);
    let mut d_qkv = vec![0f32; rows * 3 * d];
    let groups = groups(offsets, GROUP_ROWS);
    split_rows(&mut d_qkv, offsets, &groups, 3 * d).into_par_iter().zip(groups.par_iter()).for_each(|(dq, &(a, b))| {
        let base = offsets[a];
        for s in a..b {
            let (r0, r1) = (offsets[s], offsets[s + 1]);
            let dropped = cache.dropped.get(s).filter(|v| !v.is_empty()).map(Vec::as_slice);
            let q = &qkv[r0 * 3 * d..r1 * 3 * d];
            one_backward(
                q,
                &d_out[r0 * d..r1 * d],
                shape,
                (&cache.probs[s], dropped),
                &mut dq[(r0 - base) * 3 * d..(r1 - base) * 3 * d],
            );
        }
    });
    d_qkv
}

fn one_backward(qkv: &[f32], d_out: &[f32], shape: Heads, (probs, dropped): (&[f32], Option<&[f32]>), dq: &mut [f32]) {
    let (d, w) = (shape.dim, shape.width());
    let n = qkv.len() / (3 * d);
    let scale = 1.0 / (w as f32).sqrt();
    let keep = 1.0 / (1.0 - shape.dropout);
    let mut ds = vec![0f32; n];
    for h in 0..shape.heads {
        for i in 0..n {
            let p = &probs[(h * n + i) * n..][..=i];
            let used = dropped.map_or(p, |dp| &dp[(h * n + i) * n..][..=i]);
            let go = &d_out[i * d + h * w..][..w];
            // ∂L/∂v_j += p'_ij · go; ∂L/∂p'_ij = go · v_j
            for j in 0..=i {
                let v = &qkv[j * 3 * d + 2 * d + h * w..][..w];
                let mut g = go.iter().zip(v).map(|(a, b)| a * b).sum::<f32>();
                if dropped.is_some() {
                    g = if used[j] == 0.0 { 0.0 } else { g * keep };
                }
                ds[j] = g;
                let dv = &mut dq[j * 3 * d + 2 * d + h * w..][..w];
                dv.iter_mut().zip(go).for_each(|(a, b)| *a += used[j] * b);
            }
            // softmax: ∂L/∂s_ij = p_ij (g_ij − Σ_k p_ik g_ik)
            let dot: f32 = p.iter().zip(&ds).map(|(a, b)| a * b).sum();
            for j in 0..=i {
                let g = p[j] * (ds[j] - dot) * scale;
                let (qi, kj) = (i * 3 * d + h * w, j * 3 * d + d + h * w);
                for t in 0..w {
                    dq[qi + t] += g * qkv[kj + t];
                    dq[kj + t] += g * qkv[qi + t];
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn values(n: usize, seed: u64) -> Vec<f32> {
        let mut rng = Rng::new(seed);
        (0..n).map(|_| rng.next_f32() * 2.0 - 1.0).collect()
    }

    /// Attention by the book, one sequence and head at a time, in f64.
    fn naive(qkv: &[f32], offsets: &[usize], d: usize, heads: usize) -> Vec<f64> {
        let w = d / heads;
        let mut out = vec![0f64; offsets.last().unwrap() * d];
        for s in 0..offsets.len() - 1 {
            let (a, b) = (offsets[s], offsets[s + 1]);
            for h in 0..heads {
                for i in a..b {
                    let at = |r: usize, part: usize, t: usize| qkv[r * 3 * d + part * d + h * w + t] as f64;
                    let scores: Vec<f64> = (a..=i)
                        .map(|j| (0..w).map(|t| at(i, 0, t) * at(j, 1, t)).sum::<f64>() / (w as f64).sqrt())
                        .collect();
                    let z: f64 = scores.iter().map(|v| v.exp()).sum();
                    for (jj, j) in (a..=i).enumerate() {
                        for t in 0..w {
                            out[i * d + h * w + t] += scores[jj].exp() / z * at(j, 2, t);
                        }
                    }
                }
            }
        }
        out
    }

    /// Every gradient of `qkv` against central differences of step `h`, within `tolerance`.
    fn check(qkv: &[f32], g: &[f32], loss: &dyn Fn(&[f32]) -> f64, h: f32, tolerance: f64) {
        for i in 0..qkv.len() {
            let (mut p, mut m) = (qkv.to_vec(), qkv.to_vec());
            p[i] += h;
            m[i] -= h;
            let fd = (loss(&p) - loss(&m)) / (2.0 * h as f64);
            assert!((fd - g[i] as f64).abs() < tolerance, "qkv[{i}]: fd {fd} vs {}", g[i]);
        }
    }

    #[test]
    fn forward_matches_naive_and_backward_finite_differences() {
        let (d, heads) = (4, 2);
        let offsets = [0, 3, 4, 8];
        let qkv = values(8 * 3 * d, 1);
        let shape = Heads { dim: d, heads, dropout: 0.0 };
        let (out, cache) = forward(&qkv, &offsets, shape, None);
        let want = naive(&qkv, &offsets, d, heads);
        assert!(out.iter().zip(&want).all(|(a, b)| (*a as f64 - b).abs() < 1e-5));
        let c = values(8 * d, 2);
        let loss = |x: &[f32]| -> f64 { naive(x, &offsets, d, heads).iter().zip(&c).map(|(a, b)| a * *b as f64).sum() };
        let g = backward(&qkv, &offsets, shape, &cache, &c);
        check(&qkv, &g, &loss, 1e-3, 1e-3);
    }

    #[test]
    fn dropout_backward_matches_finite_differences_with_the_same_mask() {
        let (d, heads) = (4, 1);
        let offsets = [0, 5, 7];
        let qkv = values(7 * 3 * d, 3);
        let shape = Heads { dim: d, heads, dropout: 0.3 };
        let c = values(7 * d, 4);
        let loss = |x: &[f32]| -> f64 {
            forward(x, &offsets, shape, Some(9)).0.iter().zip(&c).map(|(a, b)| (a * b) as f64).sum()
        };
        let (_, cache) = forward(&qkv, &offsets, shape, Some(9));
        assert!(cache.dropped.iter().flatten().any(|&v| v == 0.0));
        let g = backward(&qkv, &offsets, shape, &cache, &c);
        check(&qkv, &g, &loss, 1e-2, 5e-3);
    }

    #[test]
    fn groups_cover_every_sequence_once() {
        let offsets = [0, 100, 300, 301, 700, 710];
        let g = groups(&offsets, 256);
        assert_eq!(g, vec![(0, 2), (2, 4), (4, 5)]);
        let mut data = vec![0f32; 710];
        let parts = split_rows(&mut data, &offsets, &g, 1);
        assert_eq!(parts.iter().map(|p| p.len()).collect::<Vec<_>>(), vec![300, 400, 10]);
    }
}
