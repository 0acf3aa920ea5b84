//! Training the index: k-means for the coarse lists, and the residual quantiser.

use super::{PQ_ITERATIONS, PQ_REFINE, PQ_SAMPLE};
use crate::kernels::fastscan::{self, CODES, Pq4, SUB_DIM};
use crate::kernels::panel::{LANES, pack, scan};
use crate::progress::Event;
use crate::rng::Rng;
use rayon::prelude::*;

/// The nearest centroid (L2) of each point: `argmax_c (x·c − |c|²/2)`, ties to the lower
/// centroid, as an inner product of `[x, 1]` with `[c, −|c|²/2]` in the fused panel kernel (no
/// score matrix). Parallel over blocks of points; the result does not depend on the thread count.
pub(super) fn assign(points: &[f32], centroids: &[f32], dim: usize) -> Vec<u32> {
    const POINTS: usize = 1024;
    let (nc, w) = (centroids.len() / dim, dim + 1);
    let aug: Vec<f32> = centroids
        .chunks_exact(dim)
        .flat_map(|c| c.iter().copied().chain(std::iter::once(-0.5 * c.iter().map(|x| x * x).sum::<f32>())))
        .collect();
    let panels = pack(nc, w, |i| &aug[i * w..(i + 1) * w]);
    points
        .par_chunks(POINTS * dim)
        .flat_map_iter(|block| {
            let rows = block.len() / dim;
            let x: Vec<f32> =
                block.chunks_exact(dim).flat_map(|p| p.iter().copied().chain(std::iter::once(1.0))).collect();
            let mut best = vec![(0u32, f32::NEG_INFINITY); rows];
            let mut t = vec![f32::NEG_INFINITY; rows];
            // centroids a chunk at a time, so that the chunk stays in L2 while every row passes
            let n_panels = nc.div_ceil(LANES);
            for p0 in (0..n_panels).step_by(64) {
                let np = 64.min(n_panels - p0);
                scan(&x, rows, w, &panels[p0 * LANES * w..], np, &mut t, |r, slot, s| {
                    let (b, c) = (&mut best[r], p0 * LANES + slot);
                    if c < nc && (s > b.1 || (s == b.1 && (c as u32) < b.0)) {
                        *b = (c as u32, s);
                    }
                    b.1
                });
            }
            best.into_iter().map(|b| b.0)
        })
        .collect()
}

/// Lloyd's k-means on `sample` (`m × dim`), `nlist` centroids initialised on distinct sample
/// points; an emptied list takes half of the largest one (its centroid split in two).
pub(super) fn kmeans(
    sample: &[f32],
    dim: usize,
    nlist: usize,
    iterations: usize,
    rng: &mut Rng,
    progress: &mut dyn FnMut(Event),
) -> Vec<f32> {
    let m = sample.len() / dim;
    let mut order: Vec<usize> = (0..m).collect();
    rng.shuffle(&mut order);
    let mut centroids: Vec<f32> =
        order[..nlist].iter().flat_map(|&i| sample[i * dim..(i + 1) * dim].iter().copied()).collect();
    for it in 0..iterations {
        let a = assign(sample, &centroids, dim);
        let mut sums = vec![0f64; nlist * dim];
        let mut counts = vec![0usize; nlist];
        for (i, &c) in a.iter().enumerate() {
            counts[c as usize] += 1;
            for (s, &x) in
                sums[c as usize * dim..(c as usize + 1) * dim].iter_mut().zip(&sample[i * dim..(i + 1) * dim])
            {
                *s += x as f64;
            }
        }
        for c in 0..nlist {
            if counts[c] > 0 {
                for j in 0..dim {
                    centroids[c * dim + j] = (sums[c * dim + j] / counts[c] as f64) as f32;
                }
            }
        }
        for c in 0..nlist {
            if counts[c] == 0 {
                let big = (0..nlist).max_by_key(|&b| (counts[b], std::cmp::Reverse(b))).unwrap_or(0);
                for j in 0..dim {
                    let x = centroids[big * dim + j];
                    let e = if j % 2 == 0 { 1.0 / 1024.0 } else { -1.0 / 1024.0 };
                    centroids[c * dim + j] = x * (1.0 + e);
                    centroids[big * dim + j] = x * (1.0 - e);
                }
                counts[c] = counts[big] / 2;
                counts[big] -= counts[c];
            }
        }
        progress(Event::Message(&format!("k-means iteration {}", it + 1)));
        progress(Event::Step);
    }
    centroids
}

/// Rows `rows` of `vectors` (width `dim`), in that order.
pub(super) fn gather(vectors: &[f32], dim: usize, rows: &[usize]) -> Vec<f32> {
    rows.iter().flat_map(|&i| vectors[i * dim..(i + 1) * dim].iter().copied()).collect()
}

/// A uniform sample of `m` of the rows `0..n` (all of them if `m ≥ n`), in increasing order.
pub(super) fn sample_rows(n: usize, m: usize, rng: &mut Rng) -> Vec<usize> {
    let mut rows: Vec<usize> = (0..n).collect();
    if m < n {
        // a partial Fisher–Yates: the first m rows are a uniform sample
        for i in 0..m {
            let j = i + rng.below(n - i);
            rows.swap(i, j);
        }
        rows.truncate(m);
        rows.sort_unstable();
    }
    rows
}

/// The residual quantiser: k-means with 16 codewords in each subspace of a sample of residuals.
pub(super) fn train_pq(vectors: &[f32], dim: usize, centroids: &[f32], lists: &[u32], rng: &mut Rng) -> Pq4 {
    let n = vectors.len() / dim;
    let rows = sample_rows(n, PQ_SAMPLE, rng);
    let xs = gather(vectors, dim, &rows);
    let residuals: Vec<f32> = rows
        .iter()
        .flat_map(|&i| {
            let c = &centroids[lists[i] as usize * dim..(lists[i] as usize + 1) * dim];
            vectors[i * dim..(i + 1) * dim].iter().zip(c).map(|(x, c)| x - c)
        })
        .collect();
    let m = fastscan::subspaces(dim);
    let mut codebooks = Vec::with_capacity(m * CODES * SUB_DIM);
    let residual = |i: usize, j: usize| if j < dim { residuals[i * dim + j] } else { 0.0 };
    for s in 0..m {
        let part: Vec<f32> =
            (0..rows.len()).flat_map(|i| (s * SUB_DIM..(s + 1) * SUB_DIM).map(move |j| residual(i, j))).collect();
        if rows.len() >= CODES {
            codebooks.extend(kmeans(&part, SUB_DIM, CODES, PQ_ITERATIONS, rng, &mut |_| {}));
        } else {
            codebooks.extend(part.iter().copied().chain(std::iter::repeat(0.0)).take(CODES * SUB_DIM));
        }
    }
    let pq = Pq4::from_codebooks(dim, codebooks).expect("subspaces × 16 codewords");
    (0..PQ_REFINE).fold(pq, |pq, _| pq.refine(&residuals, &xs))
}
