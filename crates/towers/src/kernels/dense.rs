//! A multi-layer perceptron (Keras `Dense` layers, ReLU between them, linear output) on `gemm`,
//! with its backward pass. Used after the feature concatenation of a tower and by the ranking model.

use super::table::Table;
use super::{matmul_ab, matmul_abt, matmul_atb};
use crate::rng::Rng;

/// Dense layers: `h₁ = relu(x·W₁ + b₁)`, …, `out = h·W_L + b_L` (no activation on the last).
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Mlp {
    /// Weights of each layer, `in × out` (a [`Table`] with `rows = in`, `dim = out`).
    pub weights: Vec<Table>,
    /// Biases of each layer, `1 × out`.
    pub biases: Vec<Table>,
}

/// Activations of a training forward pass, for the backward pass.
#[derive(Debug, Clone)]
pub struct MlpCache {
    /// The input and every layer's output (after ReLU for hidden layers).
    activations: Vec<Vec<f32>>,
    rows: usize,
}

/// Gradients of every layer's weights and biases.
#[derive(Debug, Clone)]
pub struct MlpGrads {
    /// `∂L/∂W` per layer.
    pub weights: Vec<Vec<f32>>,
    /// `∂L/∂b` per layer.
    pub biases: Vec<Vec<f32>>,
}

impl MlpGrads {
    /// Zero gradients of every parameter of `mlp`.
    pub fn zeros(mlp: &Mlp) -> Self {
        let zeros = |t: &Vec<Table>| t.iter().map(|w| vec![0.0; w.data.len()]).collect();
        MlpGrads { weights: zeros(&mlp.weights), biases: zeros(&mlp.biases) }
    }
}

impl Mlp {
    /// Layers of the given widths after an input of width `input`; Glorot-uniform weights and
    /// zero biases, as Keras initialises `Dense`. No widths: the identity.
    pub fn new(input: usize, widths: &[usize], rng: &mut Rng) -> Self {
        let mut mlp = Mlp::default();
        let mut fan_in = input;
        for &w in widths {
            let limit = (6.0 / (fan_in + w) as f32).sqrt();
            mlp.weights.push(Table::uniform(fan_in, w, limit, rng));
            mlp.biases.push(Table::zeros(1, w));
            fan_in = w;
        }
        mlp
    }

    /// Whether there are no layers (the MLP is the identity).
    pub fn is_empty(&self) -> bool {
        self.weights.is_empty()
    }

    /// Output width for an input of width `input`.
    pub fn output_dim(&self, input: usize) -> usize {
        self.weights.last().map_or(input, |w| w.dim)
    }

    /// Inference on `rows` inputs (`rows × input`).
    pub fn forward(&self, x: &[f32], rows: usize) -> Vec<f32> {
        let mut h = x.to_vec();
        for l in 0..self.weights.len() {
            h = self.layer(l, &h, rows);
        }
        h
    }

    fn layer(&self, l: usize, x: &[f32], rows: usize) -> Vec<f32> {
        let (w, b) = (&self.weights[l], &self.biases[l]);
        let mut out = vec![0f32; rows * w.dim];
        matmul_ab(x, &w.data, &mut out, rows, w.dim, w.rows);
        let last = l + 1 == self.weights.len();
        for r in out.chunks_exact_mut(w.dim) {
            r.iter_mut().zip(&b.data).for_each(|(v, b)| *v += b);
            if !last {
                r.iter_mut().for_each(|v| *v = v.max(0.0));
            }
        }
        out
    }

    /// Training forward pass; returns the output and what the backward pass needs.
    pub fn forward_train(&self, x: Vec<f32>, rows: usize) -> (Vec<f32>, MlpCache) {
        let mut activations = vec![x];
        for l in 0..self.weights.len() {
            let h = self.layer(l, activations.last().expect("input"), rows);
            activations.push(h);
        }
        let out = activations.last().expect("output").clone();
        (out, MlpCache { activations, rows })
    }

    /// Backward pass from `∂L/∂out`: the parameter gradients and `∂L/∂x`.
    pub fn backward(&self, cache: &MlpCache, d_out: &[f32]) -> (MlpGrads, Vec<f32>) {
        let n = cache.rows;
        let mut grads = MlpGrads { weights: Vec::new(), biases: Vec::new() };
        let mut d = d_out.to_vec();
        for l in (0..self.weights.len()).rev() {
            let w = &self.weights[l];
            let x = &cache.activations[l];
            let mut dw = vec![0f32; w.rows * w.dim];
            matmul_atb(x, &d, &mut dw, w.rows, w.dim, n);
            let mut db = vec![0f32; w.dim];
            d.chunks_exact(w.dim).for_each(|r| db.iter_mut().zip(r).for_each(|(a, b)| *a += b));
            let mut dx = vec![0f32; n * w.rows];
            matmul_abt(&d, &w.data, &mut dx, n, w.rows, w.dim);
            if l > 0 {
                // the input of layer l is the ReLU output of layer l−1
                dx.iter_mut().zip(x).for_each(|(g, &a)| {
                    if a <= 0.0 {
                        *g = 0.0
                    }
                });
            }
            grads.weights.push(dw);
            grads.biases.push(db);
            d = dx;
        }
        grads.weights.reverse();
        grads.biases.reverse();
        (grads, d)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backward_matches_finite_differences() {
        let mut rng = Rng::new(5);
        let (n, input) = (3, 4);
        let mlp = Mlp::new(input, &[5, 2], &mut rng);
        let x: Vec<f32> = (0..n * input).map(|i| ((i * 13 % 7) as f32 - 3.0) * 0.4).collect();
        let c: Vec<f32> = (0..n * 2).map(|i| (i as f32 * 0.7).sin()).collect();
        let loss = |m: &Mlp, x: &[f32]| m.forward(x, n).iter().zip(&c).map(|(a, b)| (a * b) as f64).sum::<f64>();
        let (out, cache) = mlp.forward_train(x.clone(), n);
        assert_eq!(out, mlp.forward(&x, n));
        let (g, dx) = mlp.backward(&cache, &c);
        let h = 1e-3;
        for i in 0..x.len() {
            let (mut p, mut m) = (x.clone(), x.clone());
            p[i] += h;
            m[i] -= h;
            let fd = (loss(&mlp, &p) - loss(&mlp, &m)) / (2.0 * h as f64);
            assert!((fd - dx[i] as f64).abs() < 1e-2, "x[{i}]: fd {fd} vs {}", dx[i]);
        }
        for l in 0..2 {
            for i in 0..mlp.weights[l].data.len() {
                let (mut p, mut m) = (mlp.clone(), mlp.clone());
                p.weights[l].data[i] += h;
                m.weights[l].data[i] -= h;
                let fd = (loss(&p, &x) - loss(&m, &x)) / (2.0 * h as f64);
                assert!((fd - g.weights[l][i] as f64).abs() < 1e-2, "W{l}[{i}]: fd {fd} vs {}", g.weights[l][i]);
            }
            for i in 0..mlp.biases[l].data.len() {
                let (mut p, mut m) = (mlp.clone(), mlp.clone());
                p.biases[l].data[i] += h;
                m.biases[l].data[i] -= h;
                let fd = (loss(&p, &x) - loss(&m, &x)) / (2.0 * h as f64);
                assert!((fd - g.biases[l][i] as f64).abs() < 1e-2, "b{l}[{i}]: fd {fd} vs {}", g.biases[l][i]);
            }
        }
    }

    #[test]
    fn no_layers_is_the_identity() {
        let mlp = Mlp::new(3, &[], &mut Rng::new(1));
        assert!(mlp.is_empty());
        assert_eq!(mlp.output_dim(3), 3);
        assert_eq!(mlp.forward(&[1.0, 2.0, 3.0], 1), [1.0, 2.0, 3.0]);
    }
}
