//! A GRU layer over a batch of padded sequences, forward and backward (backpropagation
//! through time), on `gemm`: the input projections of all steps are one GEMM, each step one
//! `B×H · H×3H` GEMM, and batch rows are independent through time, so blocks of rows run in
//! parallel (parameter gradients are summed in block order: deterministic).
//!
//! Keras' `GRU` with `reset_after=True` (its default, cuDNN-compatible), gates ordered z, r, h:
//! ```text
//! z  = σ(x·W_z + b_z + h·U_z + b'_z)
//! r  = σ(x·W_r + b_r + h·U_r + b'_r)
//! h̃ = tanh(x·W_h + b_h + r ⊙ (h·U_h + b'_h))
//! h' = z ⊙ h + (1 − z) ⊙ h̃
//! ```
//! A masked step (padding) leaves the state unchanged, as Keras' masking does, so the final
//! state is the state after the last real item.

use super::softmax::exp_in_place;
use super::{matmul_ab, matmul_abt, matmul_atb};
use crate::rng::Rng;
use rayon::prelude::*;

const ROW_BLOCK: usize = 256;

/// GRU parameters.
#[derive(Debug, Clone, PartialEq)]
pub struct GruWeights {
    /// Input width `D`.
    pub input: usize,
    /// Hidden width `H`.
    pub hidden: usize,
    /// `D × 3H` input kernel.
    pub w: Vec<f32>,
    /// `H × 3H` recurrent kernel.
    pub u: Vec<f32>,
    /// `3H` input bias.
    pub b_in: Vec<f32>,
    /// `3H` recurrent bias.
    pub b_rec: Vec<f32>,
}

/// Gradients of the parameters and of the inputs.
#[derive(Debug, Clone, PartialEq)]
pub struct GruGrads {
    /// `D × 3H`.
    pub w: Vec<f32>,
    /// `H × 3H`.
    pub u: Vec<f32>,
    /// `3H`.
    pub b_in: Vec<f32>,
    /// `3H`.
    pub b_rec: Vec<f32>,
    /// `B × T × D`: gradient of every input vector (zero at masked steps).
    pub x: Vec<f32>,
}

/// What the backward pass needs, per block of batch rows.
#[derive(Debug, Clone)]
pub struct GruCache {
    steps: usize,
    blocks: Vec<BlockCache>,
}

#[derive(Debug, Clone)]
struct BlockCache {
    rows: usize,
    /// states h_0..h_T, `(T+1) × rows × H` (h_0 = 0)
    h: Vec<f32>,
    /// z, r, h̃ and (h·U_h + b'_h) per step, `T × rows × 4H`
    gates: Vec<f32>,
}

impl GruWeights {
    /// Keras' initialisation: Glorot-uniform input kernel, orthogonal recurrent kernel, zero biases.
    pub fn new(input: usize, hidden: usize, rng: &mut Rng) -> Self {
        let limit = (6.0 / (input + 3 * hidden) as f32).sqrt();
        let w = (0..input * 3 * hidden).map(|_| (rng.next_f32() * 2.0 - 1.0) * limit).collect();
        // orthogonal H × 3H: Gram–Schmidt on the rows of a random matrix
        let cols = 3 * hidden;
        let mut u: Vec<f32> = (0..hidden * cols).map(|_| rng.next_f32() * 2.0 - 1.0).collect();
        for i in 0..hidden {
            for j in 0..i {
                let dot: f32 = (0..cols).map(|c| u[i * cols + c] * u[j * cols + c]).sum();
                for c in 0..cols {
                    u[i * cols + c] -= dot * u[j * cols + c];
                }
            }
            let n = (0..cols).map(|c| u[i * cols + c].powi(2)).sum::<f32>().sqrt().max(1e-12);
            (0..cols).for_each(|c| u[i * cols + c] /= n);
        }
        GruWeights { input, hidden, w, u, b_in: vec![0.0; cols], b_rec: vec![0.0; cols] }
    }

    /// Runs the GRU over `x` (`batch × steps × D`, row-major) with `mask[b·steps + t]` true for
    /// real items; returns the final states (`batch × H`) and the cache for [`Self::backward`].
    pub fn forward(&self, x: &[f32], mask: &[bool], batch: usize, steps: usize) -> (Vec<f32>, GruCache) {
        let (d, h) = (self.input, self.hidden);
        assert_eq!(x.len(), batch * steps * d);
        assert_eq!(mask.len(), batch * steps);
        let mut out = vec![0f32; batch * h];
        let blocks: Vec<BlockCache> = out
            .par_chunks_mut(ROW_BLOCK * h)
            .enumerate()
            .map(|(bi, out)| {
                let b0 = bi * ROW_BLOCK;
                let rows = out.len() / h;
                self.forward_block(
                    &x[b0 * steps * d..(b0 + rows) * steps * d],
                    &mask[b0 * steps..(b0 + rows) * steps],
                    rows,
                    steps,
                    out,
                )
            })
            .collect();
        (out, GruCache { steps, blocks })
    }

    fn forward_block(&self, x: &[f32], mask: &[bool], rows: usize, steps: usize, out: &mut [f32]) -> BlockCache {
        let (d, hd) = (self.input, self.hidden);
        let g3 = 3 * hd;
        // input projections of every step at once: (rows·T × D) · (D × 3H)
        let mut xw = vec![0f32; rows * steps * g3];
        matmul_ab(x, &self.w, &mut xw, rows * steps, g3, d);
        let mut hs = vec![0f32; (steps + 1) * rows * hd];
        let mut gates = vec![0f32; steps * rows * 4 * hd];
        let mut hu = vec![0f32; rows * g3];
        let mut act = vec![0f32; rows * 2 * hd];
        let mut cand = vec![0f32; rows * hd];
        for t in 0..steps {
            let (prev, next) = hs.split_at_mut((t + 1) * rows * hd);
            let prev = &prev[t * rows * hd..];
            let next = &mut next[..rows * hd];
            matmul_ab(prev, &self.u, &mut hu, rows, g3, hd);
            // pre-activations of z and r, then one vectorised exp for both sigmoids: σ(a) = 1/(1+e^−a)
            for r in 0..rows {
                let a = &xw[(r * steps + t) * g3..(r * steps + t + 1) * g3];
                let b = &hu[r * g3..(r + 1) * g3];
                let e = &mut act[r * 2 * hd..(r + 1) * 2 * hd];
                for j in 0..2 * hd {
                    e[j] = -(a[j] + self.b_in[j] + b[j] + self.b_rec[j]);
                }
            }
            exp_in_place(&mut act);
            act.iter_mut().for_each(|v| *v = 1.0 / (1.0 + *v));
            // candidate pre-activation, then tanh(a) = 2σ(2a) − 1
            for r in 0..rows {
                let a = &xw[(r * steps + t) * g3..(r * steps + t + 1) * g3];
                let b = &hu[r * g3..(r + 1) * g3];
                for j in 0..hd {
                    let uh = b[2 * hd + j] + self.b_rec[2 * hd + j];
                    cand[r * hd + j] = -2.0 * (a[2 * hd + j] + self.b_in[2 * hd + j] + act[r * 2 * hd + hd + j] * uh);
                }
            }
            exp_in_place(&mut cand);
            cand.iter_mut().for_each(|v| *v = 2.0 / (1.0 + *v) - 1.0);
            for r in 0..rows {
                let (hp, hn) = (&prev[r * hd..(r + 1) * hd], &mut next[r * hd..(r + 1) * hd]);
                if !mask[r * steps + t] {
                    hn.copy_from_slice(hp);
                    continue;
                }
                let b = &hu[r * g3..(r + 1) * g3];
                let gt = &mut gates[(t * rows + r) * 4 * hd..(t * rows + r + 1) * 4 * hd];
                for j in 0..hd {
                    let (z, rr, c) = (act[r * 2 * hd + j], act[r * 2 * hd + hd + j], cand[r * hd + j]);
                    hn[j] = z * hp[j] + (1.0 - z) * c;
                    gt[j] = z;
                    gt[hd + j] = rr;
                    gt[2 * hd + j] = c;
                    gt[3 * hd + j] = b[2 * hd + j] + self.b_rec[2 * hd + j];
                }
            }
        }
        out.copy_from_slice(&hs[steps * rows * hd..]);
        BlockCache { rows, h: hs, gates }
    }

    /// Gradients from the gradient of the final states (`batch × H`).
    pub fn backward(&self, x: &[f32], mask: &[bool], cache: &GruCache, d_out: &[f32]) -> GruGrads {
        let (d, hd, steps) = (self.input, self.hidden, cache.steps);
        let g3 = 3 * hd;
        let mut dx = vec![0f32; x.len()];
        let parts: Vec<GruGrads> = dx
            .par_chunks_mut(ROW_BLOCK * steps * d)
            .zip(cache.blocks.par_iter())
            .enumerate()
            .map(|(bi, (dx, block))| {
                let b0 = bi * ROW_BLOCK;
                let rows = block.rows;
                self.backward_block(
                    &x[b0 * steps * d..(b0 + rows) * steps * d],
                    &mask[b0 * steps..(b0 + rows) * steps],
                    block,
                    steps,
                    &d_out[b0 * hd..(b0 + rows) * hd],
                    dx,
                )
            })
            .collect();
        let mut g = GruGrads {
            w: vec![0.0; d * g3],
            u: vec![0.0; hd * g3],
            b_in: vec![0.0; g3],
            b_rec: vec![0.0; g3],
            x: Vec::new(),
        };
        let add = |acc: &mut [f32], part: &[f32]| acc.iter_mut().zip(part).for_each(|(a, b)| *a += b);
        for p in parts {
            add(&mut g.w, &p.w);
            add(&mut g.u, &p.u);
            add(&mut g.b_in, &p.b_in);
            add(&mut g.b_rec, &p.b_rec);
        }
        g.x = dx;
        g
    }

    /// One block's parameter gradients (its input gradients go to `dx`).
    fn backward_block(
        &self,
        x: &[f32],
        mask: &[bool],
        c: &BlockCache,
        steps: usize,
        d_out: &[f32],
        dx: &mut [f32],
    ) -> GruGrads {
        let (d, hd, rows) = (self.input, self.hidden, c.rows);
        let g3 = 3 * hd;
        let mut dh = d_out.to_vec();
        // gradients of the input projections (all steps) and of h·U (one step at a time)
        let mut dxw = vec![0f32; rows * steps * g3];
        let mut dhu = vec![0f32; rows * g3];
        let mut du = vec![0f32; hd * g3];
        let mut db_rec = vec![0f32; g3];
        let mut dh_prev = vec![0f32; rows * hd];
        let mut du_step = vec![0f32; hd * g3];
        let mut back = vec![0f32; rows * hd];
        for t in (0..steps).rev() {
            let prev = &c.h[t * rows * hd..(t + 1) * rows * hd];
            dhu.iter_mut().for_each(|v| *v = 0.0);
            for r in 0..rows {
                let dhr = &dh[r * hd..(r + 1) * hd];
                let dpr = &mut dh_prev[r * hd..(r + 1) * hd];
                if !mask[r * steps + t] {
                    dpr.copy_from_slice(dhr);
                    continue;
                }
                let hp = &prev[r * hd..(r + 1) * hd];
                let gt = &c.gates[(t * rows + r) * 4 * hd..(t * rows + r + 1) * 4 * hd];
                let da = &mut dxw[(r * steps + t) * g3..(r * steps + t + 1) * g3];
                let db = &mut dhu[r * g3..(r + 1) * g3];
                for j in 0..hd {
                    let (z, rr, cand, uh) = (gt[j], gt[hd + j], gt[2 * hd + j], gt[3 * hd + j]);
                    let dz = dhr[j] * (hp[j] - cand);
                    let dcand = dhr[j] * (1.0 - z);
                    let dac = dcand * (1.0 - cand * cand);
                    let drr = dac * uh;
                    let daz = dz * z * (1.0 - z);
                    let dar = drr * rr * (1.0 - rr);
                    da[j] = daz;
                    da[hd + j] = dar;
                    da[2 * hd + j] = dac;
                    db[j] = daz;
                    db[hd + j] = dar;
                    db[2 * hd + j] = dac * rr;
                    dpr[j] = dhr[j] * z;
                }
            }
            // dh_prev += dHU · Uᵀ ; dU += h_prevᵀ · dHU (masked rows have dHU = 0)
            matmul_abt(&dhu, &self.u, &mut back, rows, hd, g3);
            dh_prev.iter_mut().zip(&back).for_each(|(a, b)| *a += b);
            matmul_atb(prev, &dhu, &mut du_step, hd, g3, rows);
            du.iter_mut().zip(&du_step).for_each(|(a, b)| *a += b);
            for r in 0..rows {
                db_rec.iter_mut().zip(&dhu[r * g3..(r + 1) * g3]).for_each(|(a, b)| *a += b);
            }
            std::mem::swap(&mut dh, &mut dh_prev);
        }
        // dW = Xᵀ · dXW ; dX = dXW · Wᵀ ; db_in = Σ dXW
        let mut dw = vec![0f32; d * g3];
        matmul_atb(x, &dxw, &mut dw, d, g3, rows * steps);
        matmul_abt(&dxw, &self.w, dx, rows * steps, d, g3);
        let mut db_in = vec![0f32; g3];
        for row in dxw.chunks_exact(g3) {
            db_in.iter_mut().zip(row).for_each(|(a, b)| *a += b);
        }
        GruGrads { w: dw, u: du, b_in: db_in, b_rec: db_rec, x: Vec::new() }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sigmoid(x: f32) -> f32 {
        1.0 / (1.0 + (-x).exp())
    }

    fn loss(w: &GruWeights, x: &[f32], mask: &[bool], b: usize, t: usize, c: &[f32]) -> f64 {
        let (h, _) = w.forward(x, mask, b, t);
        h.iter().zip(c).map(|(a, b)| (a * b) as f64).sum()
    }

    #[test]
    fn one_step_by_hand() {
        // D = H = 1, x = 1, h0 = 0: z = σ(w_z), r = σ(w_r), h̃ = tanh(w_h), h1 = (1 − z)·h̃
        let w = GruWeights {
            input: 1,
            hidden: 1,
            w: vec![0.5, -0.3, 0.8],
            u: vec![0.1, 0.2, 0.3],
            b_in: vec![0.0; 3],
            b_rec: vec![0.0; 3],
        };
        let (h, _) = w.forward(&[1.0], &[true], 1, 1);
        let want = (1.0 - sigmoid(0.5)) * 0.8f32.tanh();
        assert!((h[0] - want).abs() < 1e-6, "{} vs {want}", h[0]);
        // a padded step leaves the state as it was
        let (h2, _) = w.forward(&[1.0, 7.0], &[true, false], 1, 2);
        assert_eq!(h2, h);
    }

    #[test]
    fn backward_matches_finite_differences() {
        let mut rng = Rng::new(4);
        let (b, t, d, hd) = (3, 4, 3, 2);
        let mut w = GruWeights::new(d, hd, &mut rng);
        w.b_in = (0..3 * hd).map(|_| rng.next_f32() - 0.5).collect();
        w.b_rec = (0..3 * hd).map(|_| rng.next_f32() - 0.5).collect();
        let x: Vec<f32> = (0..b * t * d).map(|_| rng.next_f32() * 2.0 - 1.0).collect();
        let mask = [true, true, true, true, true, true, false, false, true, false, true, true];
        let c: Vec<f32> = (0..b * hd).map(|_| rng.next_f32() * 2.0 - 1.0).collect();
        let (_, cache) = w.forward(&x, &mask, b, t);
        let g = w.backward(&x, &mask, &cache, &c);
        let h = 1e-3f32;
        let check = |name: &str, analytic: &[f32], perturb: &dyn Fn(usize, f32) -> f64| {
            for (i, &a) in analytic.iter().enumerate() {
                let fd = (perturb(i, h) - perturb(i, -h)) / (2.0 * h as f64);
                assert!((fd - a as f64).abs() < 2e-3 * fd.abs().max(1.0), "{name}[{i}]: fd {fd} vs {a}");
            }
        };
        check("w", &g.w, &|i, e| {
            let mut p = w.clone();
            p.w[i] += e;
            loss(&p, &x, &mask, b, t, &c)
        });
        check("u", &g.u, &|i, e| {
            let mut p = w.clone();
            p.u[i] += e;
            loss(&p, &x, &mask, b, t, &c)
        });
        check("b_in", &g.b_in, &|i, e| {
            let mut p = w.clone();
            p.b_in[i] += e;
            loss(&p, &x, &mask, b, t, &c)
        });
        check("b_rec", &g.b_rec, &|i, e| {
            let mut p = w.clone();
            p.b_rec[i] += e;
            loss(&p, &x, &mask, b, t, &c)
        });
        check("x", &g.x, &|i, e| {
            let mut p = x.clone();
            p[i] += e;
            loss(&w, &p, &mask, b, t, &c)
        });
        // masked inputs get no gradient
        for (s, &m) in mask.iter().enumerate() {
            if !m {
                assert!(g.x[s * d..(s + 1) * d].iter().all(|&v| v == 0.0));
            }
        }
    }

    #[test]
    fn blocks_give_the_same_result_as_one() {
        let mut rng = Rng::new(8);
        let (b, t, d, hd) = (ROW_BLOCK + 7, 3, 4, 3);
        let w = GruWeights::new(d, hd, &mut rng);
        let x: Vec<f32> = (0..b * t * d).map(|_| rng.next_f32() - 0.5).collect();
        let mask = vec![true; b * t];
        let (h, _) = w.forward(&x, &mask, b, t);
        let (h_last, _) = w.forward(&x[(b - 1) * t * d..], &mask[(b - 1) * t..], 1, t);
        assert!(h[(b - 1) * hd..].iter().zip(&h_last).all(|(a, b)| (a - b).abs() < 1e-6));
    }
}
