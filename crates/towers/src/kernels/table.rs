//! Embedding tables and row-sparse optimizer updates: only the rows a batch touched are read
//! and written, so a step costs the same for a 1,000-row and a 1,000,000-row catalogue.

use crate::rng::Rng;

/// A dense `rows × dim` table of `f32`, row-major.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Table {
    /// Number of rows.
    pub rows: usize,
    /// Row width.
    pub dim: usize,
    /// `rows * dim` values.
    pub data: Vec<f32>,
}

impl Table {
    /// A table of zeros.
    pub fn zeros(rows: usize, dim: usize) -> Self {
        Table { rows, dim, data: vec![0.0; rows * dim] }
    }

    /// A table filled with a constant.
    pub fn filled(rows: usize, dim: usize, value: f32) -> Self {
        Table { rows, dim, data: vec![value; rows * dim] }
    }

    /// Uniform in `[-scale, scale)` (Keras' `Embedding` default is `uniform(-0.05, 0.05)`).
    pub fn uniform(rows: usize, dim: usize, scale: f32, rng: &mut Rng) -> Self {
        let data = (0..rows * dim).map(|_| (rng.next_f32() * 2.0 - 1.0) * scale).collect();
        Table { rows, dim, data }
    }

    /// One row.
    pub fn row(&self, i: usize) -> &[f32] {
        &self.data[i * self.dim..(i + 1) * self.dim]
    }

    /// Copies the given rows into a new `ids.len() × dim` block.
    pub fn gather(&self, ids: &[u32]) -> Vec<f32> {
        let mut out = Vec::with_capacity(ids.len() * self.dim);
        for &i in ids {
            out.extend_from_slice(self.row(i as usize));
        }
        out
    }
}

/// Adagrad on the given rows, with TensorFlow's semantics: `acc += g²; w -= lr·g/(√acc + ε)`.
/// `rows` must be distinct; `grads` holds one gradient row per entry of `rows`.
pub fn adagrad_rows(w: &mut Table, acc: &mut Table, rows: &[u32], grads: &[f32], lr: f32, eps: f32) {
    let d = w.dim;
    for (r, g) in rows.iter().zip(grads.chunks_exact(d)) {
        let o = *r as usize * d;
        let (wr, ar) = (&mut w.data[o..o + d], &mut acc.data[o..o + d]);
        for j in 0..d {
            ar[j] += g[j] * g[j];
            wr[j] -= lr * g[j] / (ar[j].sqrt() + eps);
        }
    }
}

/// The constants of one Adam step.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct AdamStep {
    /// The learning rate with the bias correction of step `t`: `lr·√(1−β₂ᵗ)/(1−β₁ᵗ)`.
    pub lr_t: f32,
    /// β₁.
    pub beta1: f32,
    /// β₂.
    pub beta2: f32,
    /// ε.
    pub epsilon: f32,
}

/// Lazy Adam on the given rows (moments of untouched rows are left as they are, as in
/// TensorFlow Addons' `LazyAdam`).
pub fn adam_rows(w: &mut Table, m: &mut Table, v: &mut Table, rows: &[u32], grads: &[f32], step: AdamStep) {
    let AdamStep { lr_t, beta1: b1, beta2: b2, epsilon: eps } = step;
    let d = w.dim;
    for (r, g) in rows.iter().zip(grads.chunks_exact(d)) {
        let o = *r as usize * d;
        for j in 0..d {
            let (mj, vj) = (&mut m.data[o + j], &mut v.data[o + j]);
            *mj = b1 * *mj + (1.0 - b1) * g[j];
            *vj = b2 * *vj + (1.0 - b2) * g[j] * g[j];
            w.data[o + j] -= lr_t * *mj / (vj.sqrt() + eps);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn one_adagrad_step_by_hand() {
        let mut w = Table { rows: 3, dim: 2, data: vec![1.0, 2.0, 3.0, 4.0, 5.0, 6.0] };
        let mut acc = Table::filled(3, 2, 0.1);
        adagrad_rows(&mut w, &mut acc, &[2], &[0.5, -1.0], 0.1, 1e-7);
        // acc = 0.1 + 0.25 = 0.35; w = 5 - 0.1*0.5/sqrt(0.35); acc = 1.1; w = 6 + 0.1/sqrt(1.1)
        assert!((acc.data[4] - 0.35).abs() < 1e-7 && (acc.data[5] - 1.1).abs() < 1e-6);
        assert!((w.data[4] - (5.0 - 0.05 / 0.35f32.sqrt())).abs() < 1e-6);
        assert!((w.data[5] - (6.0 + 0.1 / 1.1f32.sqrt())).abs() < 1e-6);
        assert_eq!(&w.data[..4], &[1.0, 2.0, 3.0, 4.0]); // untouched rows stay
    }

    #[test]
    fn one_adam_step_by_hand() {
        let mut w = Table { rows: 2, dim: 1, data: vec![1.0, 1.0] };
        let (mut m, mut v) = (Table::zeros(2, 1), Table::zeros(2, 1));
        let lr_t = 0.01 * (1.0f32 - 0.999).sqrt() / (1.0 - 0.9);
        adam_rows(&mut w, &mut m, &mut v, &[1], &[2.0], AdamStep { lr_t, beta1: 0.9, beta2: 0.999, epsilon: 1e-7 });
        // first step of Adam moves by ~lr·sign(g)
        assert!((w.data[1] - (1.0 - 0.01)).abs() < 1e-5, "{}", w.data[1]);
        assert_eq!(w.data[0], 1.0);
    }

    #[test]
    fn gather_and_uniform_range() {
        let t = Table::uniform(10, 4, 0.05, &mut Rng::new(1));
        assert!(t.data.iter().all(|x| x.abs() <= 0.05));
        assert_eq!(t.gather(&[3, 1]), [t.row(3), t.row(1)].concat());
    }
}
