//! One tower: an id-embedding table followed by an optional normalisation of its output.
//!
//! Forward and backward work on the *distinct* rows of a batch with their multiplicities
//! (see `kernels::softmax`), which is what batch normalisation needs to compute the batch's
//! statistics exactly as if every example were there.

use crate::kernels::table::Table;
use crate::rng::Rng;
use serde::{Deserialize, Serialize};

/// Normalisation applied to a tower's output.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[cfg_attr(feature = "clap", derive(clap::ValueEnum))]
#[serde(rename_all = "snake_case")]
pub enum Normalization {
    /// Raw embeddings.
    #[default]
    None,
    /// Unit L2 norm (scores become cosine similarities).
    L2,
    /// Keras `BatchNormalization` (momentum 0.99, ε 0.001) with learned scale and offset.
    #[serde(alias = "batch-norm")]
    BatchNorm,
}

/// Batch-normalisation parameters and moving statistics.
#[derive(Debug, Clone, PartialEq)]
pub struct BatchNorm {
    /// Scale, `1 × dim`.
    pub gamma: Table,
    /// Offset, `1 × dim`.
    pub beta: Table,
    /// Moving mean used at inference.
    pub moving_mean: Vec<f32>,
    /// Moving variance used at inference.
    pub moving_var: Vec<f32>,
}

const BN_MOMENTUM: f32 = 0.99;
const BN_EPS: f32 = 1e-3;
const L2_EPS: f32 = 1e-12;

impl BatchNorm {
    fn new(dim: usize) -> Self {
        BatchNorm {
            gamma: Table::filled(1, dim, 1.0),
            beta: Table::zeros(1, dim),
            moving_mean: vec![0.0; dim],
            moving_var: vec![1.0; dim],
        }
    }
}

/// An id tower.
#[derive(Debug, Clone, PartialEq)]
pub struct Tower {
    /// The embedding table, one row per vocabulary index (row 0 = OOV).
    pub embedding: Table,
    /// Output normalisation.
    pub normalization: Normalization,
    /// Present when `normalization` is [`Normalization::BatchNorm`].
    pub batch_norm: Option<BatchNorm>,
}

/// Gradients of a tower's parameters for the rows of one batch.
#[derive(Debug, Clone)]
pub struct TowerGrads {
    /// Gradient of each row's embedding, `rows × dim`.
    pub embedding: Vec<f32>,
    /// Batch norm's `(dγ, dβ)`, when the tower has batch norm.
    pub batch_norm: Option<(Vec<f32>, Vec<f32>)>,
}

/// What the backward pass needs from a training forward pass.
#[derive(Debug, Clone)]
pub struct TowerCache {
    output: Vec<f32>,
    /// L2: the row norms. Batch norm: `1/σ` per dimension.
    scale: Vec<f32>,
    /// Batch norm: the normalised inputs `x̂`.
    xhat: Vec<f32>,
    weights: Vec<f32>,
}

impl Tower {
    /// A tower with `rows` embeddings of width `dim`, initialised uniform(−0.05, 0.05) as Keras does.
    pub fn new(rows: usize, dim: usize, normalization: Normalization, rng: &mut Rng) -> Self {
        Tower {
            embedding: Table::uniform(rows, dim, 0.05, rng),
            normalization,
            batch_norm: (normalization == Normalization::BatchNorm).then(|| BatchNorm::new(dim)),
        }
    }

    /// Output width.
    pub fn dim(&self) -> usize {
        self.embedding.dim
    }

    /// Inference: the outputs for the given rows (`rows.len() × dim`).
    pub fn embed(&self, rows: &[u32]) -> Vec<f32> {
        let d = self.dim();
        let mut x = self.embedding.gather(rows);
        match (self.normalization, &self.batch_norm) {
            (Normalization::L2, _) => x.chunks_exact_mut(d).for_each(|r| {
                let n = r.iter().map(|v| v * v).sum::<f32>().max(L2_EPS).sqrt();
                r.iter_mut().for_each(|v| *v /= n);
            }),
            (Normalization::BatchNorm, Some(bn)) => x.chunks_exact_mut(d).for_each(|r| {
                for j in 0..d {
                    r[j] = bn.gamma.data[j] * (r[j] - bn.moving_mean[j]) / (bn.moving_var[j] + BN_EPS).sqrt()
                        + bn.beta.data[j];
                }
            }),
            _ => {}
        }
        x
    }

    /// Inference over the whole vocabulary.
    pub fn embed_all(&self) -> Vec<f32> {
        self.embed(&(0..self.embedding.rows as u32).collect::<Vec<_>>())
    }

    /// Training forward pass over distinct `rows`, each standing for `weights[i]` examples.
    /// Updates batch-norm moving statistics.
    pub fn forward_train(&mut self, rows: &[u32], weights: &[f32]) -> TowerCache {
        let d = self.dim();
        let mut x = self.embedding.gather(rows);
        let mut cache =
            TowerCache { output: Vec::new(), scale: Vec::new(), xhat: Vec::new(), weights: weights.to_vec() };
        match self.normalization {
            Normalization::None => {}
            Normalization::L2 => {
                for r in x.chunks_exact_mut(d) {
                    let n = r.iter().map(|v| v * v).sum::<f32>().max(L2_EPS).sqrt();
                    r.iter_mut().for_each(|v| *v /= n);
                    cache.scale.push(n);
                }
            }
            Normalization::BatchNorm => {
                let bn = self.batch_norm.get_or_insert_with(|| BatchNorm::new(d));
                let total: f64 = weights.iter().map(|&w| w as f64).sum();
                let mut mean = vec![0f64; d];
                let mut var = vec![0f64; d];
                for (r, &w) in x.chunks_exact(d).zip(weights) {
                    (0..d).for_each(|j| mean[j] += w as f64 * r[j] as f64);
                }
                mean.iter_mut().for_each(|m| *m /= total);
                for (r, &w) in x.chunks_exact(d).zip(weights) {
                    (0..d).for_each(|j| var[j] += w as f64 * (r[j] as f64 - mean[j]).powi(2));
                }
                var.iter_mut().for_each(|v| *v /= total);
                cache.scale = var.iter().map(|&v| 1.0 / (v as f32 + BN_EPS).sqrt()).collect();
                for j in 0..d {
                    bn.moving_mean[j] = BN_MOMENTUM * bn.moving_mean[j] + (1.0 - BN_MOMENTUM) * mean[j] as f32;
                    bn.moving_var[j] = BN_MOMENTUM * bn.moving_var[j] + (1.0 - BN_MOMENTUM) * var[j] as f32;
                }
                cache.xhat = x.clone();
                for (r, xh) in x.chunks_exact_mut(d).zip(cache.xhat.chunks_exact_mut(d)) {
                    for j in 0..d {
                        xh[j] = (r[j] - mean[j] as f32) * cache.scale[j];
                        r[j] = bn.gamma.data[j] * xh[j] + bn.beta.data[j];
                    }
                }
            }
        }
        cache.output = x;
        cache
    }

    /// The outputs of the last training forward pass.
    pub fn outputs(cache: &TowerCache) -> &[f32] {
        &cache.output
    }

    /// Backward pass: from the gradient w.r.t. the outputs (summed over each row's examples)
    /// to the gradient w.r.t. the embedding rows, and batch norm's `(dγ, dβ)`.
    pub fn backward(&self, cache: &TowerCache, d_out: &[f32]) -> TowerGrads {
        let d = self.dim();
        match self.normalization {
            Normalization::None => TowerGrads { embedding: d_out.to_vec(), batch_norm: None },
            Normalization::L2 => {
                let mut dx = d_out.to_vec();
                for ((g, y), &n) in dx.chunks_exact_mut(d).zip(cache.output.chunks_exact(d)).zip(&cache.scale) {
                    let dot: f32 = g.iter().zip(y).map(|(a, b)| a * b).sum();
                    g.iter_mut().zip(y).for_each(|(gj, yj)| *gj = (*gj - yj * dot) / n);
                }
                TowerGrads { embedding: dx, batch_norm: None }
            }
            Normalization::BatchNorm => {
                let bn = self.batch_norm.as_ref().expect("batch-norm tower has parameters");
                let total: f32 = cache.weights.iter().sum();
                let (mut dgamma, mut dbeta) = (vec![0f32; d], vec![0f32; d]);
                for (g, xh) in d_out.chunks_exact(d).zip(cache.xhat.chunks_exact(d)) {
                    for j in 0..d {
                        dbeta[j] += g[j];
                        dgamma[j] += g[j] * xh[j];
                    }
                }
                let mut dx = vec![0f32; d_out.len()];
                for ((dxr, g), (xh, &w)) in dx
                    .chunks_exact_mut(d)
                    .zip(d_out.chunks_exact(d))
                    .zip(cache.xhat.chunks_exact(d).zip(&cache.weights))
                {
                    for j in 0..d {
                        dxr[j] = bn.gamma.data[j]
                            * cache.scale[j]
                            * (g[j] - w * dbeta[j] / total - w * xh[j] * dgamma[j] / total);
                    }
                }
                TowerGrads { embedding: dx, batch_norm: Some((dgamma, dbeta)) }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// loss = Σ_i w_i · (c · y_i) over distinct rows with weights: checks the backward pass
    /// against finite differences of the forward pass.
    fn check(norm: Normalization) {
        let mut rng = Rng::new(3);
        let d = 4;
        let mut t = Tower::new(6, d, norm, &mut rng);
        if let Some(bn) = t.batch_norm.as_mut() {
            bn.gamma.data = vec![1.5, 0.5, 1.0, 2.0];
        }
        let rows = [1u32, 4, 5];
        let w = [2.0f32, 1.0, 3.0];
        let c: Vec<f32> = (0..rows.len() * d).map(|i| ((i * 7 % 5) as f32 - 2.0) * 0.3).collect();
        let loss = |t: &Tower| {
            let mut t = t.clone();
            let cache = t.forward_train(&rows, &w);
            Tower::outputs(&cache).iter().zip(&c).map(|(a, b)| (a * b) as f64).sum::<f64>()
        };
        let mut probe = t.clone();
        let cache = probe.forward_train(&rows, &w);
        let dx = t.backward(&cache, &c).embedding;
        for (k, &r) in rows.iter().enumerate() {
            for j in 0..d {
                let h = 1e-3;
                let idx = r as usize * d + j;
                let mut p = t.clone();
                p.embedding.data[idx] += h;
                let mut m = t.clone();
                m.embedding.data[idx] -= h;
                let fd = (loss(&p) - loss(&m)) / (2.0 * h as f64);
                assert!(
                    (fd - dx[k * d + j] as f64).abs() < 2e-2 * fd.abs().max(1.0),
                    "{norm:?} row {r} dim {j}: fd {fd} vs {}",
                    dx[k * d + j]
                );
            }
        }
    }

    #[test]
    fn backward_matches_finite_differences() {
        check(Normalization::None);
        check(Normalization::L2);
        check(Normalization::BatchNorm);
    }

    #[test]
    fn l2_outputs_have_unit_norm() {
        let t = Tower::new(5, 8, Normalization::L2, &mut Rng::new(1));
        for r in t.embed_all().chunks(8) {
            assert!((r.iter().map(|v| v * v).sum::<f32>() - 1.0).abs() < 1e-5);
        }
    }
}
