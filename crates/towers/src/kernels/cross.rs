//! Cross layers of DCN-v2 (Wang et al. 2021; TFRS `tfrs.layers.dcn.Cross`):
//! `x_{l+1} = x₀ ⊙ (x_l·W + b) + x_l`, with `W` full (`d × d`) or of low rank (`U·V`,
//! `d × r` then `r × d`), and their backward pass. Row-major batches of `rows × d`.

use super::table::Table;
use super::{matmul_ab, matmul_abt, matmul_atb};
use crate::rng::Rng;

/// One cross layer's parameters.
#[derive(Debug, Clone, PartialEq)]
pub enum CrossLayer {
    /// `x_l·W + b` with a full `d × d` matrix.
    Full {
        /// `d × d`.
        w: Table,
        /// `1 × d`.
        b: Table,
    },
    /// `x_l·U·V + b` with `U` `d × r` and `V` `r × d` (TFRS `projection_dim = r`).
    LowRank {
        /// `d × r`.
        u: Table,
        /// `r × d`.
        v: Table,
        /// `1 × d`.
        b: Table,
    },
}

/// A stack of cross layers over inputs of width `dim`.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Cross {
    /// The layers, first to last.
    pub layers: Vec<CrossLayer>,
}

/// What the backward pass needs: each layer's input and its `x_l·W + b`.
#[derive(Debug, Clone)]
pub struct CrossCache {
    /// `x₀ … x_L` (the last is the output).
    xs: Vec<Vec<f32>>,
    /// `z_l = x_l·W_l + b_l` per layer.
    zs: Vec<Vec<f32>>,
    /// Low-rank layers: `p_l = x_l·U_l`.
    ps: Vec<Vec<f32>>,
    rows: usize,
}

/// Gradients of every layer's parameters, in the order of [`Cross::params_mut`].
#[derive(Debug, Clone)]
pub struct CrossGrads {
    /// One gradient per parameter table.
    pub params: Vec<Vec<f32>>,
}

impl Cross {
    /// `layers` cross layers over width `dim`, full-rank (`rank` = None) or of rank `r`;
    /// Glorot-uniform matrices and zero biases, as Keras initialises `Dense`.
    pub fn new(dim: usize, layers: usize, rank: Option<usize>, rng: &mut Rng) -> Self {
        let glorot = |a: usize, b: usize, rng: &mut Rng| Table::uniform(a, b, (6.0 / (a + b) as f32).sqrt(), rng);
        let layers = (0..layers)
            .map(|_| match rank {
                None => CrossLayer::Full { w: glorot(dim, dim, rng), b: Table::zeros(1, dim) },
                Some(r) => {
                    CrossLayer::LowRank { u: glorot(dim, r, rng), v: glorot(r, dim, rng), b: Table::zeros(1, dim) }
                }
            })
            .collect();
        Cross { layers }
    }

    /// Every parameter table, layer by layer (`W, b` or `U, V, b`).
    pub fn params(&self) -> Vec<&Table> {
        self.layers
            .iter()
            .flat_map(|l| match l {
                CrossLayer::Full { w, b } => vec![w, b],
                CrossLayer::LowRank { u, v, b } => vec![u, v, b],
            })
            .collect()
    }

    /// [`Cross::params`], mutable.
    pub fn params_mut(&mut self) -> Vec<&mut Table> {
        self.layers
            .iter_mut()
            .flat_map(|l| match l {
                CrossLayer::Full { w, b } => vec![w, b],
                CrossLayer::LowRank { u, v, b } => vec![u, v, b],
            })
            .collect()
    }

    /// The `d × d` matrix of layer `l` (low rank: `U·V`), row `i` = input feature, column `j` =
    /// output feature.
    pub fn matrix(&self, l: usize) -> Option<Vec<f32>> {
        Some(match self.layers.get(l)? {
            CrossLayer::Full { w, .. } => w.data.clone(),
            CrossLayer::LowRank { u, v, .. } => {
                let mut m = vec![0f32; u.rows * v.dim];
                matmul_ab(&u.data, &v.data, &mut m, u.rows, v.dim, u.dim);
                m
            }
        })
    }

    fn z(layer: &CrossLayer, x: &[f32], rows: usize) -> (Vec<f32>, Vec<f32>) {
        let (z, p, b) = match layer {
            CrossLayer::Full { w, b } => {
                let mut z = vec![0f32; rows * w.dim];
                matmul_ab(x, &w.data, &mut z, rows, w.dim, w.rows);
                (z, Vec::new(), b)
            }
            CrossLayer::LowRank { u, v, b } => {
                let mut p = vec![0f32; rows * u.dim];
                matmul_ab(x, &u.data, &mut p, rows, u.dim, u.rows);
                let mut z = vec![0f32; rows * v.dim];
                matmul_ab(&p, &v.data, &mut z, rows, v.dim, v.rows);
                (z, p, b)
            }
        };
        let mut z = z;
        z.chunks_exact_mut(b.dim).for_each(|r| r.iter_mut().zip(&b.data).for_each(|(a, b)| *a += b));
        (z, p)
    }

    /// Inference on `rows` inputs.
    pub fn forward(&self, x0: &[f32], rows: usize) -> Vec<f32> {
        let mut x = x0.to_vec();
        for layer in &self.layers {
            let (z, _) = Self::z(layer, &x, rows);
            x.iter_mut().zip(z.iter().zip(x0)).for_each(|(x, (z, x0))| *x += x0 * z);
        }
        x
    }

    /// Training forward pass: the output and the cache.
    pub fn forward_train(&self, x0: Vec<f32>, rows: usize) -> (Vec<f32>, CrossCache) {
        let mut cache = CrossCache { xs: vec![x0], zs: Vec::new(), ps: Vec::new(), rows };
        for layer in &self.layers {
            let x = cache.xs.last().expect("input");
            let (z, p) = Self::z(layer, x, rows);
            let next: Vec<f32> = x.iter().zip(z.iter().zip(&cache.xs[0])).map(|(x, (z, x0))| x + x0 * z).collect();
            cache.zs.push(z);
            cache.ps.push(p);
            cache.xs.push(next);
        }
        (cache.xs.last().expect("output").clone(), cache)
    }

    /// Backward pass from `∂L/∂x_L`: the parameter gradients and `∂L/∂x₀`.
    pub fn backward(&self, cache: &CrossCache, d_out: &[f32]) -> (CrossGrads, Vec<f32>) {
        let n = cache.rows;
        let x0 = &cache.xs[0];
        let mut d = d_out.to_vec(); // ∂L/∂x_{l+1}
        let mut d_x0 = vec![0f32; x0.len()];
        let mut per_layer: Vec<Vec<Vec<f32>>> = Vec::new();
        for l in (0..self.layers.len()).rev() {
            let (x, z) = (&cache.xs[l], &cache.zs[l]);
            // x_{l+1} = x0 ⊙ z + x_l
            let dz: Vec<f32> = d.iter().zip(x0).map(|(g, a)| g * a).collect();
            d_x0.iter_mut().zip(d.iter().zip(z)).for_each(|(o, (g, z))| *o += g * z);
            let mut db = vec![0f32; z.len() / n.max(1)];
            dz.chunks_exact(db.len().max(1)).for_each(|r| db.iter_mut().zip(r).for_each(|(a, b)| *a += b));
            let mut dx = d; // the residual path
            match &self.layers[l] {
                CrossLayer::Full { w, .. } => {
                    let mut dw = vec![0f32; w.rows * w.dim];
                    matmul_atb(x, &dz, &mut dw, w.rows, w.dim, n);
                    let mut back = vec![0f32; n * w.rows];
                    matmul_abt(&dz, &w.data, &mut back, n, w.rows, w.dim);
                    dx.iter_mut().zip(&back).for_each(|(a, b)| *a += b);
                    per_layer.push(vec![dw, db]);
                }
                CrossLayer::LowRank { u, v, .. } => {
                    let p = &cache.ps[l];
                    let mut dv = vec![0f32; v.rows * v.dim];
                    matmul_atb(p, &dz, &mut dv, v.rows, v.dim, n);
                    let mut dp = vec![0f32; n * v.rows];
                    matmul_abt(&dz, &v.data, &mut dp, n, v.rows, v.dim);
                    let mut du = vec![0f32; u.rows * u.dim];
                    matmul_atb(x, &dp, &mut du, u.rows, u.dim, n);
                    let mut back = vec![0f32; n * u.rows];
                    matmul_abt(&dp, &u.data, &mut back, n, u.rows, u.dim);
                    dx.iter_mut().zip(&back).for_each(|(a, b)| *a += b);
                    per_layer.push(vec![du, dv, db]);
                }
            }
            d = dx;
        }
        d_x0.iter_mut().zip(&d).for_each(|(a, b)| *a += b);
        per_layer.reverse();
        (CrossGrads { params: per_layer.into_iter().flatten().collect() }, d_x0)
    }
}

/// The Frobenius norm of each block of a `d × d` matrix, blocks given by the widths of the
/// input groups (features): `out[a][b]` is the norm of rows of group `a`, columns of group `b`
/// — how strongly feature `a` crosses with feature `b` (the TFRS DCN tutorial's heat map).
pub fn block_norms(matrix: &[f32], widths: &[usize]) -> Vec<Vec<f32>> {
    let d: usize = widths.iter().sum();
    let starts: Vec<usize> = widths.iter().scan(0, |s, &w| Some(std::mem::replace(s, *s + w))).collect();
    let mut out = vec![vec![0f32; widths.len()]; widths.len()];
    if matrix.len() != d * d {
        return out;
    }
    for (a, (&ra, &wa)) in starts.iter().zip(widths).enumerate() {
        for (b, (&cb, &wb)) in starts.iter().zip(widths).enumerate() {
            let mut s = 0f64;
            for i in ra..ra + wa {
                for j in cb..cb + wb {
                    s += (matrix[i * d + j] as f64).powi(2);
                }
            }
            out[a][b] = s.sqrt() as f32;
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn naive(c: &Cross, x0: &[f32], rows: usize, d: usize) -> Vec<f32> {
        let mut x = x0.to_vec();
        for l in 0..c.layers.len() {
            let m = c.matrix(l).unwrap();
            let b = match &c.layers[l] {
                CrossLayer::Full { b, .. } | CrossLayer::LowRank { b, .. } => b.data.clone(),
            };
            let mut next = x.clone();
            for r in 0..rows {
                for j in 0..d {
                    let z: f32 = (0..d).map(|i| x[r * d + i] * m[i * d + j]).sum::<f32>() + b[j];
                    next[r * d + j] = x0[r * d + j] * z + x[r * d + j];
                }
            }
            x = next;
        }
        x
    }

    fn check(rank: Option<usize>) {
        let (n, d) = (3, 5);
        let mut c = Cross::new(d, 2, rank, &mut Rng::new(3));
        for (k, p) in c.params_mut().into_iter().enumerate() {
            p.data.iter_mut().enumerate().for_each(|(i, v)| *v += ((i + k) as f32 * 0.3).sin() * 0.1);
        }
        let x: Vec<f32> = (0..n * d).map(|i| ((i * 7 % 5) as f32 - 2.0) * 0.3).collect();
        let out = c.forward(&x, n);
        assert!(out.iter().zip(naive(&c, &x, n, d)).all(|(a, b)| (a - b).abs() < 1e-5));
        let coef: Vec<f32> = (0..n * d).map(|i| (i as f32 * 0.9).cos()).collect();
        let loss = |c: &Cross, x: &[f32]| c.forward(x, n).iter().zip(&coef).map(|(a, b)| (a * b) as f64).sum::<f64>();
        let (o, cache) = c.forward_train(x.clone(), n);
        assert_eq!(o, out);
        let (g, dx) = c.backward(&cache, &coef);
        let h = 1e-3;
        for i in 0..x.len() {
            let (mut p, mut m) = (x.clone(), x.clone());
            p[i] += h;
            m[i] -= h;
            let fd = (loss(&c, &p) - loss(&c, &m)) / (2.0 * h as f64);
            assert!((fd - dx[i] as f64).abs() < 2e-3, "x[{i}]: fd {fd} vs {}", dx[i]);
        }
        for k in 0..g.params.len() {
            for i in 0..g.params[k].len() {
                let (mut p, mut m) = (c.clone(), c.clone());
                p.params_mut()[k].data[i] += h;
                m.params_mut()[k].data[i] -= h;
                let fd = (loss(&p, &x) - loss(&m, &x)) / (2.0 * h as f64);
                assert!((fd - g.params[k][i] as f64).abs() < 2e-3, "param {k}[{i}]: fd {fd} vs {}", g.params[k][i]);
            }
        }
    }

    #[test]
    fn full_rank_forward_and_gradients_match_naive_and_finite_differences() {
        check(None);
    }

    #[test]
    fn low_rank_forward_and_gradients_match_naive_and_finite_differences() {
        check(Some(2));
    }

    #[test]
    fn block_norms_by_hand() {
        // 3×3 matrix, groups of widths 1 and 2
        let m = [1.0, 2.0, 2.0, 0.0, 3.0, 0.0, 0.0, 0.0, 4.0];
        let b = block_norms(&m, &[1, 2]);
        assert_eq!(b[0][0], 1.0);
        assert_eq!(b[0][1], (8.0f32).sqrt());
        assert_eq!(b[1][0], 0.0);
        assert_eq!(b[1][1], 5.0);
    }
}
