//! The network of a ranking model, from its concatenated inputs to one score: an MLP, or a
//! deep & cross network (cross layers stacked before the dense layers, or beside them).

use super::spec::{RankerKind, RankingSpec, Structure};
use crate::Result;
use crate::kernels::cross::{Cross, CrossCache, CrossGrads, CrossLayer};
use crate::kernels::dense::{Mlp, MlpCache, MlpGrads};
use crate::kernels::table::Table;
use crate::model::{put_mlp, put_table, read_mlp, read_table};
use crate::rng::Rng;
use crate::tensors::{TensorReader, TensorWriter};

/// `input → score`: an MLP (`cross` none), or a DCN.
#[derive(Debug, Clone, PartialEq)]
pub struct Scorer {
    /// The cross layers of a DCN.
    pub cross: Option<Cross>,
    /// The dense layers; with a parallel DCN they end in a hidden layer (ReLU), otherwise in
    /// the 1-wide output.
    pub deep: Mlp,
    /// A parallel DCN's output layer on `[cross output, dense output]`.
    pub head: Option<Mlp>,
}

/// What the backward pass needs.
#[derive(Debug, Clone)]
pub struct ScorerCache {
    cross: Option<CrossCache>,
    deep: MlpCache,
    head: Option<(MlpCache, Vec<f32>)>,
    rows: usize,
}

/// Gradients of every parameter of a [`Scorer`].
#[derive(Debug, Clone)]
pub struct ScorerGrads {
    /// Of the cross layers.
    pub cross: Option<CrossGrads>,
    /// Of the dense layers.
    pub deep: MlpGrads,
    /// Of a parallel DCN's output layer.
    pub head: Option<MlpGrads>,
}

impl Scorer {
    /// A fresh network over inputs of width `input`; the output bias starts at `bias`.
    pub fn new(spec: &RankingSpec, input: usize, bias: f32, rng: &mut Rng) -> Self {
        let cross = (spec.ranker == RankerKind::Dcn)
            .then(|| Cross::new(input, spec.cross.layers, spec.cross.projection_dim, rng));
        let parallel = cross.is_some() && spec.cross.structure == Structure::Parallel;
        let mut s = if parallel {
            let deep = Mlp::new(input, &spec.layers, rng);
            let head = Mlp::new(input + deep.output_dim(input), &[1], rng);
            Scorer { cross, deep, head: Some(head) }
        } else {
            let widths: Vec<usize> = spec.layers.iter().copied().chain([1]).collect();
            Scorer { cross, deep: Mlp::new(input, &widths, rng), head: None }
        };
        let out = s.head.as_mut().unwrap_or(&mut s.deep);
        if let Some(b) = out.biases.last_mut() {
            b.data[0] = bias;
        }
        s
    }

    /// Inference on `rows` inputs: one score each.
    pub fn forward(&self, x: &[f32], rows: usize) -> Vec<f32> {
        let c = self.cross.as_ref().map(|c| c.forward(x, rows));
        match &self.head {
            None => self.deep.forward(c.as_deref().unwrap_or(x), rows),
            Some(head) => {
                let mut h = self.deep.forward(x, rows);
                relu_if_hidden(&self.deep, &mut h);
                head.forward(&concat(c.as_deref().unwrap_or(x), &h, rows), rows)
            }
        }
    }

    /// Training forward pass.
    pub fn forward_train(&self, x: Vec<f32>, rows: usize) -> (Vec<f32>, ScorerCache) {
        match &self.head {
            None => {
                let (c, cross) = match &self.cross {
                    Some(cr) => {
                        let (c, cache) = cr.forward_train(x, rows);
                        (c, Some(cache))
                    }
                    None => (x, None),
                };
                let (out, deep) = self.deep.forward_train(c, rows);
                (out, ScorerCache { cross, deep, head: None, rows })
            }
            Some(head) => {
                let (c, cross) = match &self.cross {
                    Some(cr) => {
                        let (c, cache) = cr.forward_train(x.clone(), rows);
                        (c, Some(cache))
                    }
                    None => (x.clone(), None),
                };
                let (mut h, deep) = self.deep.forward_train(x, rows);
                relu_if_hidden(&self.deep, &mut h);
                let (out, hc) = head.forward_train(concat(&c, &h, rows), rows);
                (out, ScorerCache { cross, deep, head: Some((hc, h)), rows })
            }
        }
    }

    /// Backward pass from `∂L/∂score`: the parameter gradients and `∂L/∂input`.
    pub fn backward(&self, cache: &ScorerCache, d_out: &[f32]) -> (ScorerGrads, Vec<f32>) {
        let n = cache.rows;
        match (&self.head, &cache.head) {
            (Some(head), Some((hc, h))) => {
                let (hg, d_cat) = head.backward(hc, d_out);
                let hw = h.len() / n.max(1);
                let cw = d_cat.len() / n.max(1) - hw;
                let (mut dc, mut dh) = (Vec::with_capacity(n * cw), Vec::with_capacity(n * hw));
                for r in d_cat.chunks_exact(cw + hw) {
                    dc.extend_from_slice(&r[..cw]);
                    dh.extend_from_slice(&r[cw..]);
                }
                if !self.deep.is_empty() {
                    dh.iter_mut().zip(h).for_each(|(g, &a)| {
                        if a <= 0.0 {
                            *g = 0.0
                        }
                    });
                }
                let (dg, mut dx) = self.deep.backward(&cache.deep, &dh);
                let cg = match (&self.cross, &cache.cross) {
                    (Some(c), Some(cc)) => {
                        let (g, dxc) = c.backward(cc, &dc);
                        dx.iter_mut().zip(&dxc).for_each(|(a, b)| *a += b);
                        Some(g)
                    }
                    _ => {
                        dx.iter_mut().zip(&dc).for_each(|(a, b)| *a += b);
                        None
                    }
                };
                (ScorerGrads { cross: cg, deep: dg, head: Some(hg) }, dx)
            }
            _ => {
                let (dg, dc) = self.deep.backward(&cache.deep, d_out);
                match (&self.cross, &cache.cross) {
                    (Some(c), Some(cc)) => {
                        let (g, dx) = c.backward(cc, &dc);
                        (ScorerGrads { cross: Some(g), deep: dg, head: None }, dx)
                    }
                    _ => (ScorerGrads { cross: None, deep: dg, head: None }, dc),
                }
            }
        }
    }

    /// The widths of the dense layers as the spec gives them (without the output layer).
    pub fn layers(&self) -> Vec<usize> {
        let w: Vec<usize> = self.deep.weights.iter().map(|w| w.dim).collect();
        match self.head {
            Some(_) => w,
            None => w[..w.len().saturating_sub(1)].to_vec(),
        }
    }

    /// Writes `mlp.*` (the dense layers, as TFRS basic ranking's), `cross.*` and `head.*`.
    pub fn save(&self, w: &mut TensorWriter) {
        put_mlp(w, "mlp", &self.deep);
        if let Some(c) = &self.cross {
            for (l, layer) in c.layers.iter().enumerate() {
                match layer {
                    CrossLayer::Full { w: m, b } => {
                        put_table(w, &format!("cross.{l}.w"), m);
                        put_table(w, &format!("cross.{l}.b"), b);
                    }
                    CrossLayer::LowRank { u, v, b } => {
                        put_table(w, &format!("cross.{l}.u"), u);
                        put_table(w, &format!("cross.{l}.v"), v);
                        put_table(w, &format!("cross.{l}.b"), b);
                    }
                }
            }
        }
        if let Some(h) = &self.head {
            put_mlp(w, "head", h);
        }
    }

    /// Reads the network `spec` describes over inputs of width `input`.
    pub fn load(r: &TensorReader, spec: &RankingSpec, input: usize) -> Result<Self> {
        let cross = match spec.ranker {
            RankerKind::Mlp => None,
            RankerKind::Dcn => {
                let mut layers = Vec::new();
                for l in 0..spec.cross.layers {
                    let b = read_table(r, &format!("cross.{l}.b"), 1, input)?;
                    layers.push(match spec.cross.projection_dim {
                        None => CrossLayer::Full { w: read_table(r, &format!("cross.{l}.w"), input, input)?, b },
                        Some(k) => CrossLayer::LowRank {
                            u: read_table(r, &format!("cross.{l}.u"), input, k)?,
                            v: read_table(r, &format!("cross.{l}.v"), k, input)?,
                            b,
                        },
                    });
                }
                Some(Cross { layers })
            }
        };
        if cross.is_some() && spec.cross.structure == Structure::Parallel {
            let deep = read_mlp(r, "mlp", input, &spec.layers)?;
            let head = read_mlp(r, "head", input + deep.output_dim(input), &[1])?;
            return Ok(Scorer { cross, deep, head: Some(head) });
        }
        let widths: Vec<usize> = spec.layers.iter().copied().chain([1]).collect();
        Ok(Scorer { cross, deep: read_mlp(r, "mlp", input, &widths)?, head: None })
    }

    /// Every parameter table, in a fixed order (cross, dense weights and biases, head).
    pub fn params_mut(&mut self) -> Vec<&mut Table> {
        let mut out: Vec<&mut Table> = Vec::new();
        if let Some(c) = self.cross.as_mut() {
            out.extend(c.params_mut());
        }
        for mlp in std::iter::once(&mut self.deep).chain(self.head.as_mut()) {
            for (w, b) in mlp.weights.iter_mut().zip(mlp.biases.iter_mut()) {
                out.push(w);
                out.push(b);
            }
        }
        out
    }
}

impl ScorerGrads {
    /// The gradients in the order of [`Scorer::params_mut`].
    pub fn flat(self) -> Vec<Vec<f32>> {
        let mut out = Vec::new();
        if let Some(c) = self.cross {
            out.extend(c.params);
        }
        for g in std::iter::once(self.deep).chain(self.head) {
            for (w, b) in g.weights.into_iter().zip(g.biases) {
                out.push(w);
                out.push(b);
            }
        }
        out
    }
}

/// A parallel DCN's dense part ends in a hidden layer: ReLU on it (the MLP leaves its last
/// layer linear).
fn relu_if_hidden(deep: &Mlp, h: &mut [f32]) {
    if !deep.is_empty() {
        h.iter_mut().for_each(|v| *v = v.max(0.0));
    }
}

fn concat(a: &[f32], b: &[f32], rows: usize) -> Vec<f32> {
    let (wa, wb) = (a.len() / rows.max(1), b.len() / rows.max(1));
    let mut out = Vec::with_capacity(a.len() + b.len());
    for r in 0..rows {
        out.extend_from_slice(&a[r * wa..(r + 1) * wa]);
        out.extend_from_slice(&b[r * wb..(r + 1) * wb]);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::ranking::spec::CrossSpec;

    #[test]
    fn every_network_matches_finite_differences() {
        let (n, input) = (3, 4);
        let dcn = |structure, projection_dim| RankingSpec {
            layers: vec![5],
            ranker: RankerKind::Dcn,
            cross: CrossSpec { layers: 2, projection_dim, structure },
            ..RankingSpec::default()
        };
        for spec in [
            RankingSpec::mlp(vec![5, 3]),
            dcn(Structure::Stacked, None),
            dcn(Structure::Parallel, None),
            dcn(Structure::Parallel, Some(2)),
            RankingSpec { layers: vec![], ..dcn(Structure::Parallel, None) },
        ] {
            let mut s = Scorer::new(&spec, input, 0.3, &mut Rng::new(4));
            for (k, p) in s.params_mut().into_iter().enumerate() {
                p.data.iter_mut().enumerate().for_each(|(i, v)| *v += ((i * 3 + k) as f32 * 0.7).sin() * 0.2);
            }
            let x: Vec<f32> = (0..n * input).map(|i| ((i * 5 % 7) as f32 - 3.0) * 0.3).collect();
            let c = [0.7f32, -0.4, 1.1];
            let loss = |s: &Scorer, x: &[f32]| s.forward(x, n).iter().zip(&c).map(|(a, b)| (a * b) as f64).sum::<f64>();
            let (out, cache) = s.forward_train(x.clone(), n);
            assert_eq!(out, s.forward(&x, n), "{spec:?}");
            let (g, dx) = s.backward(&cache, &c);
            let h = 1e-3;
            for i in 0..x.len() {
                let (mut p, mut m) = (x.clone(), x.clone());
                p[i] += h;
                m[i] -= h;
                let fd = (loss(&s, &p) - loss(&s, &m)) / (2.0 * h as f64);
                assert!((fd - dx[i] as f64).abs() < 3e-3, "{spec:?} x[{i}]: fd {fd} vs {}", dx[i]);
            }
            let flat = g.flat();
            for k in 0..flat.len() {
                for i in 0..flat[k].len() {
                    let (mut p, mut m) = (s.clone(), s.clone());
                    p.params_mut()[k].data[i] += h;
                    m.params_mut()[k].data[i] -= h;
                    let fd = (loss(&p, &x) - loss(&m, &x)) / (2.0 * h as f64);
                    assert!(
                        (fd - flat[k][i] as f64).abs() < 3e-3,
                        "{spec:?} param {k}[{i}]: fd {fd} vs {}",
                        flat[k][i]
                    );
                }
            }
            // saved and read back
            let mut w = TensorWriter::default();
            s.save(&mut w);
            let bytes = w.to_bytes().unwrap();
            let r = TensorReader::parse(std::path::Path::new("s"), &bytes).unwrap();
            assert_eq!(Scorer::load(&r, &spec, input).unwrap(), s);
            assert_eq!(s.layers(), spec.layers);
        }
    }
}
