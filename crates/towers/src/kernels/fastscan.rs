//! 4-bit product quantisation scanned with byte shuffles ("fast scan", after faiss and ScaNN).
//!
//! A vector is split into subspaces of [`SUB_DIM`] dimensions; each subspace has 16 codewords,
//! so a vector is stored as one 4-bit code per subspace. For a query, the inner products of its
//! subspaces with the codewords form a table of 16 entries per subspace, quantised to 5 bits;
//! the approximate score of a vector is the sum of its subspaces' entries. Vectors are stored in
//! blocks of [`BLOCK`]: for each pair of subspaces, 32 bytes whose byte `j` holds the codes of
//! vector `j` (low nibble: the even subspace). With AVX2 one block costs two `vpshufb` per pair
//! of subspaces; the sums are exact integers, so the portable loop gives the same results.

/// Vectors per block.
pub const BLOCK: usize = 32;
/// Dimensions per subspace.
pub const SUB_DIM: usize = 2;
/// Codewords per subspace.
pub const CODES: usize = 16;
/// Weight of the quantisation error along the vector, relative to the error across it.
const ETA: f32 = 4.0;
/// Pairs of subspaces whose entries the SIMD kernel adds up in bytes (entries are ≤ 31).
const BYTE_PAIRS: usize = 4;
/// Coordinate-descent passes of the score-aware encoding.
const ANISOTROPIC_PASSES: usize = 3;

/// A trained 4-bit product quantiser over vectors of width `dim`.
#[derive(Debug, Clone, PartialEq)]
pub struct Pq4 {
    dim: usize,
    /// Subspaces (even: the last one may be all padding).
    m: usize,
    /// `m × 16 × SUB_DIM` codewords; dimensions past `dim` are zero.
    codebooks: Vec<f32>,
}

/// Number of subspaces for vectors of width `dim` (rounded up to an even number).
pub fn subspaces(dim: usize) -> usize {
    dim.div_ceil(SUB_DIM).div_ceil(2) * 2
}

/// A query's quantised table: `approx = bias + sum / scale` where `sum` adds one byte per
/// subspace.
#[derive(Debug, Clone)]
pub struct Lut {
    /// `m × 32` bytes: each subspace's 16 entries, twice (one copy per 128-bit lane).
    table: Vec<u8>,
    /// Sum of every subspace's smallest entry.
    pub bias: f32,
    /// Table units per unit of score.
    pub scale: f32,
    /// The largest possible sum.
    pub max_sum: u32,
}

impl Lut {
    /// The smallest sum whose approximate score (over a list of base score `base`) may reach
    /// `threshold`; `max_sum + 1` when none can.
    #[inline]
    pub fn threshold(&self, threshold: f32, base: f32) -> u32 {
        let t = (threshold - base - self.bias) * self.scale;
        if t.is_nan() || t <= 0.0 {
            return 0;
        }
        if t > self.max_sum as f32 {
            return self.max_sum + 1;
        }
        // the ceiling, without a libm call
        let floor = t as u32;
        if (floor as f32) < t { floor + 1 } else { floor }
    }

    /// The approximate score of a sum over a list of base score `base`.
    #[inline]
    pub fn score(&self, sum: u32, base: f32) -> f32 {
        base + self.bias + sum as f32 / self.scale
    }
}

impl Pq4 {
    /// A quantiser from its codewords (`subspaces(dim) × 16 × SUB_DIM`), or `None` if the
    /// length does not match.
    pub fn from_codebooks(dim: usize, codebooks: Vec<f32>) -> Option<Pq4> {
        let m = subspaces(dim);
        (codebooks.len() == m * CODES * SUB_DIM).then_some(Pq4 { dim, m, codebooks })
    }

    /// The codewords, `subspaces(dim) × 16 × SUB_DIM`.
    pub fn codebooks(&self) -> &[f32] {
        &self.codebooks
    }

    /// Bytes per block of [`BLOCK`] vectors.
    pub fn block_bytes(&self) -> usize {
        self.m / 2 * BLOCK
    }

    /// Codeword `c` of subspace `s`.
    #[inline]
    fn word(&self, s: usize, c: usize) -> &[f32] {
        &self.codebooks[(s * CODES + c) * SUB_DIM..(s * CODES + c + 1) * SUB_DIM]
    }

    /// Dimension `j` of subspace `s` of `x` (zero past the vector's width).
    #[inline]
    fn part(&self, x: &[f32], s: usize, j: usize) -> f32 {
        x.get(s * SUB_DIM + j).copied().unwrap_or(0.0)
    }

    /// The codes of residual `r` of vector `x` (both of width `dim`), score-aware: they
    /// minimise `|e|² + (ETA − 1)·(e·x̂)²`, `e` the quantisation error, so that the error along
    /// `x` (which moves the scores of the queries that rank `x` high) weighs `ETA` times more
    /// (anisotropic quantisation, as ScaNN's). Nearest codewords first, then a few passes of
    /// coordinate descent; ties to the lower code.
    pub fn encode(&self, r: &[f32], x: &[f32]) -> Vec<u8> {
        let norm = x.iter().map(|v| v * v).sum::<f32>().sqrt();
        let unit = |s: usize, j: usize| if norm > 0.0 { self.part(x, s, j) / norm } else { 0.0 };
        // error of subspace s with codeword c: (squared norm, component along x)
        let err = |s: usize, c: usize| {
            let w = self.word(s, c);
            (0..SUB_DIM).fold((0f32, 0f32), |(sq, par), j| {
                let e = self.part(r, s, j) - w[j];
                (sq + e * e, par + e * unit(s, j))
            })
        };
        let best = |key: &dyn Fn(usize) -> f32| {
            (0..CODES).map(|c| (key(c), c)).fold((f32::INFINITY, 0), |b, k| if k.0 < b.0 { k } else { b }).1
        };
        let mut codes: Vec<usize> = (0..self.m).map(|s| best(&|c| err(s, c).0)).collect();
        let mut par: f32 = (0..self.m).map(|s| err(s, codes[s]).1).sum();
        for _ in 0..ANISOTROPIC_PASSES {
            for s in 0..self.m {
                let others = par - err(s, codes[s]).1;
                codes[s] = best(&|c| {
                    let (sq, p) = err(s, c);
                    sq + (ETA - 1.0) * (others + p) * (others + p)
                });
                par = others + err(s, codes[s]).1;
            }
        }
        codes.into_iter().map(|c| c as u8).collect()
    }

    /// One pass of score-aware codebook training over `residuals` of `vectors` (both
    /// `n × dim`): encodes them, then moves each codeword to the minimiser of the loss of
    /// [`Pq4::encode`] over the residuals it encodes (the other subspaces' errors held fixed: a
    /// `SUB_DIM × SUB_DIM` linear system per codeword). Unused codewords stay.
    pub fn refine(&self, residuals: &[f32], vectors: &[f32]) -> Pq4 {
        use rayon::prelude::*;
        let (dim, m, w) = (self.dim, self.m, SUB_DIM);
        let n = residuals.len() / dim;
        let codes: Vec<Vec<u8>> = (0..n)
            .into_par_iter()
            .map(|i| self.encode(&residuals[i * dim..(i + 1) * dim], &vectors[i * dim..(i + 1) * dim]))
            .collect();
        // per codeword: the normal equations a·c = b, summed in f64 in row order
        let mut a = vec![0f64; m * CODES * w * w];
        let mut b = vec![0f64; m * CODES * w];
        let mut used = vec![false; m * CODES];
        let eta = f64::from(ETA) - 1.0;
        for (i, codes) in codes.iter().enumerate() {
            let (r, x) = (&residuals[i * dim..(i + 1) * dim], &vectors[i * dim..(i + 1) * dim]);
            let norm = x.iter().map(|v| v * v).sum::<f32>().sqrt();
            if norm == 0.0 {
                continue;
            }
            let unit = |s: usize, j: usize| f64::from(self.part(x, s, j) / norm);
            // each subspace's error along x with its current codeword
            let along: Vec<f64> = (0..m)
                .map(|s| {
                    let word = self.word(s, codes[s] as usize);
                    (0..w).map(|j| f64::from(self.part(r, s, j) - word[j]) * unit(s, j)).sum()
                })
                .collect();
            let total: f64 = along.iter().sum();
            for s in 0..m {
                let c = s * CODES + codes[s] as usize;
                used[c] = true;
                let others = total - along[s];
                let r_along: f64 = (0..w).map(|j| f64::from(self.part(r, s, j)) * unit(s, j)).sum();
                for j in 0..w {
                    for k in 0..w {
                        a[(c * w + j) * w + k] += f64::from(u8::from(j == k)) + eta * unit(s, j) * unit(s, k);
                    }
                    b[c * w + j] += f64::from(self.part(r, s, j)) + eta * (others + r_along) * unit(s, j);
                }
            }
        }
        let mut codebooks = self.codebooks.clone();
        for c in (0..m * CODES).filter(|&c| used[c]) {
            if let Some(word) = solve(&mut a[c * w * w..(c + 1) * w * w], &mut b[c * w..(c + 1) * w]) {
                for (dst, v) in codebooks[c * w..(c + 1) * w].iter_mut().zip(word) {
                    *dst = v as f32;
                }
            }
        }
        Pq4 { dim, m, codebooks }
    }

    /// Packs the codes of `rows` vectors (`codes(i)`, one per subspace; `None`: padding, code 0)
    /// in blocks; `rows` must be a multiple of [`BLOCK`].
    pub fn pack(&self, rows: usize, codes: impl Fn(usize) -> Option<Vec<u8>>) -> Vec<u8> {
        assert!(rows.is_multiple_of(BLOCK), "pack whole blocks");
        let mut out = vec![0u8; rows / BLOCK * self.block_bytes()];
        for (b, block) in out.chunks_exact_mut(self.block_bytes()).enumerate() {
            for j in 0..BLOCK {
                if let Some(codes) = codes(b * BLOCK + j) {
                    for p in 0..self.m / 2 {
                        block[p * BLOCK + j] = codes[2 * p] | codes[2 * p + 1] << 4;
                    }
                }
            }
        }
        out
    }

    /// The quantised table of query `q` (width `dim`).
    pub fn lut(&self, q: &[f32]) -> Lut {
        let m = self.m;
        let exact: Vec<f32> = (0..m * CODES)
            .map(|i| {
                let (s, c) = (i / CODES, i % CODES);
                (0..SUB_DIM).map(|j| self.part(q, s, j) * self.word(s, c)[j]).sum()
            })
            .collect();
        let mins: Vec<f32> =
            exact.chunks_exact(CODES).map(|e| e.iter().copied().fold(f32::INFINITY, f32::min)).collect();
        let range = exact.iter().enumerate().map(|(i, &e)| e - mins[i / CODES]).fold(0f32, f32::max);
        // the entries of BYTE_PAIRS pairs must add up within a byte, and every sum within an i16
        let top = (255 / (2 * BYTE_PAIRS) as u32).min(32_767 / m as u32);
        let scale = if range > 0.0 { top as f32 / range } else { 1.0 };
        let mut table = vec![0u8; m * 32];
        for (i, &e) in exact.iter().enumerate() {
            let (s, c) = (i / CODES, i % CODES);
            let v = (((e - mins[s]) * scale).round() as u32).min(top) as u8;
            table[s * 32 + c] = v;
            table[s * 32 + 16 + c] = v;
        }
        let max_sum = table.chunks_exact(32).map(|t| t[..16].iter().copied().max().unwrap_or(0) as u32).sum();
        Lut { table, bias: mins.iter().sum(), scale, max_sum }
    }
}

/// Solves the `n × n` system `a·x = b` (`a` row-major, `n = b.len()`) by Gaussian elimination
/// with partial pivoting; `None` if it is singular.
fn solve(a: &mut [f64], b: &mut [f64]) -> Option<Vec<f64>> {
    let n = b.len();
    for col in 0..n {
        let p = (col..n).max_by(|&i, &j| a[i * n + col].abs().total_cmp(&a[j * n + col].abs()))?;
        if a[p * n + col].abs() < 1e-12 {
            return None;
        }
        for k in 0..n {
            a.swap(col * n + k, p * n + k);
        }
        b.swap(col, p);
        for row in col + 1..n {
            let f = a[row * n + col] / a[col * n + col];
            for k in col..n {
                a[row * n + k] -= f * a[col * n + k];
            }
            b[row] -= f * b[col];
        }
    }
    let mut x = vec![0f64; n];
    for row in (0..n).rev() {
        let s: f64 = (row + 1..n).map(|k| a[row * n + k] * x[k]).sum();
        x[row] = (b[row] - s) / a[row * n + row];
    }
    Some(x)
}

/// Scans `n_blocks` blocks of `codes` with `lut`: calls `hit(vector, sum)` for every vector
/// (position in `codes`) whose sum is at least `threshold`; `hit` returns the new threshold.
/// Stops early once the threshold exceeds `lut.max_sum`.
pub fn scan(codes: &[u8], n_blocks: usize, lut: &Lut, threshold: u32, mut hit: impl FnMut(usize, u32) -> u32) {
    let pairs = lut.table.len() / 64;
    assert!(codes.len() >= n_blocks * pairs * BLOCK);
    #[cfg(target_arch = "x86_64")]
    if std::is_x86_feature_detected!("avx2") {
        // SAFETY: AVX2 is present; the assert bounds every access.
        unsafe { scan_avx2(codes, n_blocks, &lut.table, lut.max_sum, threshold, &mut hit) };
        return;
    }
    scan_portable(codes, n_blocks, &lut.table, lut.max_sum, threshold, &mut hit);
}

/// Asks the cache to fetch `data` (e.g. a list about to be scanned); a no-op where unsupported.
#[inline]
pub fn prefetch<T>(data: &[T]) {
    #[cfg(target_arch = "x86_64")]
    {
        let p = data.as_ptr() as *const i8;
        for off in (0..std::mem::size_of_val(data)).step_by(64) {
            // SAFETY: inside `data`; a prefetch never faults, and SSE is part of x86_64.
            unsafe { std::arch::x86_64::_mm_prefetch::<{ std::arch::x86_64::_MM_HINT_T0 }>(p.add(off)) };
        }
    }
    #[cfg(not(target_arch = "x86_64"))]
    let _ = data;
}

fn scan_portable(
    codes: &[u8],
    n_blocks: usize,
    table: &[u8],
    max_sum: u32,
    mut threshold: u32,
    hit: &mut impl FnMut(usize, u32) -> u32,
) {
    let pairs = table.len() / 64;
    for b in 0..n_blocks {
        let block = &codes[b * pairs * BLOCK..(b + 1) * pairs * BLOCK];
        for j in 0..BLOCK {
            let sum: u32 = (0..pairs)
                .map(|p| {
                    let c = block[p * BLOCK + j];
                    table[2 * p * 32 + (c & 15) as usize] as u32 + table[(2 * p + 1) * 32 + (c >> 4) as usize] as u32
                })
                .sum();
            if sum >= threshold {
                threshold = hit(b * BLOCK + j, sum);
                if threshold > max_sum {
                    return;
                }
            }
        }
    }
}

#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2")]
unsafe fn scan_avx2(
    codes: &[u8],
    n_blocks: usize,
    table: &[u8],
    max_sum: u32,
    mut threshold: u32,
    hit: &mut impl FnMut(usize, u32) -> u32,
) {
    use std::arch::x86_64::*;
    let pairs = table.len() / 64;
    let nibble = _mm256_set1_epi8(0x0f);
    let low_byte = _mm256_set1_epi16(0x00ff);
    let t_ptr = table.as_ptr() as *const __m256i;
    // sums are at most 32,767: compare as i16 against threshold − 1
    let mut t = _mm256_set1_epi16((threshold as i32 - 1) as i16);
    for b in 0..n_blocks {
        let block = unsafe { codes.as_ptr().add(b * pairs * BLOCK) } as *const __m256i;
        let (mut even, mut odd) = (_mm256_setzero_si256(), _mm256_setzero_si256());
        for p0 in (0..pairs).step_by(BYTE_PAIRS) {
            // up to 8 entries of at most 31 add up within a byte, then into the u16 sums
            let mut s = _mm256_setzero_si256();
            for p in p0..pairs.min(p0 + BYTE_PAIRS) {
                // SAFETY (all three loads): p < pairs, inside the block and the table
                let c = unsafe { _mm256_loadu_si256(block.add(p)) };
                let (ta, tb) =
                    unsafe { (_mm256_loadu_si256(t_ptr.add(2 * p)), _mm256_loadu_si256(t_ptr.add(2 * p + 1))) };
                let lo = _mm256_and_si256(c, nibble);
                let hi = _mm256_and_si256(_mm256_srli_epi16::<4>(c), nibble);
                s = _mm256_add_epi8(s, _mm256_add_epi8(_mm256_shuffle_epi8(ta, lo), _mm256_shuffle_epi8(tb, hi)));
            }
            even = _mm256_add_epi16(even, _mm256_and_si256(s, low_byte));
            odd = _mm256_add_epi16(odd, _mm256_srli_epi16::<8>(s));
        }
        let me = _mm256_movemask_epi8(_mm256_cmpgt_epi16(even, t)) as u32 & 0x5555_5555;
        let mo = _mm256_movemask_epi8(_mm256_cmpgt_epi16(odd, t)) as u32 & 0x5555_5555;
        let mut mask = me | mo << 1;
        if mask == 0 {
            continue;
        }
        let (mut e, mut o) = ([0u16; 16], [0u16; 16]);
        // SAFETY: 32-byte stores into 32-byte arrays
        unsafe {
            _mm256_storeu_si256(e.as_mut_ptr() as *mut __m256i, even);
            _mm256_storeu_si256(o.as_mut_ptr() as *mut __m256i, odd);
        }
        while mask != 0 {
            let j = mask.trailing_zeros() as usize;
            mask &= mask - 1;
            let sum = if j.is_multiple_of(2) { e[j / 2] } else { o[j / 2] } as u32;
            if sum >= threshold {
                threshold = hit(b * BLOCK + j, sum);
                if threshold > max_sum {
                    return;
                }
            }
        }
        t = _mm256_set1_epi16((threshold as i32 - 1) as i16);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::rng::Rng;

    fn quantiser(dim: usize, rng: &mut Rng) -> Pq4 {
        let cb = (0..subspaces(dim) * CODES * SUB_DIM).map(|_| 2.0 * rng.next_f32() - 1.0).collect();
        Pq4::from_codebooks(dim, cb).unwrap()
    }

    #[test]
    fn sums_match_the_portable_loop_and_approximate_the_reconstruction() {
        let mut rng = Rng::new(3);
        for dim in [1, 2, 5, 32, 33] {
            let pq = quantiser(dim, &mut rng);
            let n = 3 * BLOCK;
            let x: Vec<f32> = (0..n * dim).map(|_| 2.0 * rng.next_f32() - 1.0).collect();
            // the last block's tail is padding
            let row = |i: usize| &x[i * dim..(i + 1) * dim];
            let codes = pq.pack(n, |i| (i < n - 5).then(|| pq.encode(row(i), row(i))));
            let q: Vec<f32> = (0..dim).map(|_| rng.next_f32() - 0.5).collect();
            let lut = pq.lut(&q);
            let mut simd = vec![None; n];
            scan(&codes, 3, &lut, 0, |i, s| {
                simd[i] = Some(s);
                0
            });
            let mut portable = vec![None; n];
            scan_portable(&codes, 3, &lut.table, lut.max_sum, 0, &mut |i, s| {
                portable[i] = Some(s);
                0
            });
            assert_eq!(simd, portable);
            for i in 0..n - 5 {
                let codes = pq.encode(row(i), row(i));
                let recon: f32 = (0..pq.m)
                    .map(|s| (0..SUB_DIM).map(|j| pq.part(&q, s, j) * pq.word(s, codes[s] as usize)[j]).sum::<f32>())
                    .sum();
                let approx = lut.score(simd[i].unwrap(), 0.0);
                // at most half a table unit of rounding per subspace
                assert!((approx - recon).abs() <= 0.5 * pq.m as f32 / lut.scale + 1e-5, "{approx} vs {recon}");
            }
        }
    }

    #[test]
    fn the_threshold_filters_and_can_stop_the_scan() {
        let mut rng = Rng::new(4);
        let (dim, n) = (16, 4 * BLOCK);
        let pq = quantiser(dim, &mut rng);
        let x: Vec<f32> = (0..n * dim).map(|_| 2.0 * rng.next_f32() - 1.0).collect();
        let codes = pq.pack(n, |i| Some(pq.encode(&x[i * dim..(i + 1) * dim], &x[..dim])));
        let lut = pq.lut(&x[..dim]);
        let mut all = Vec::new();
        scan(&codes, 4, &lut, 0, |_, s| {
            all.push(s);
            0
        });
        let mut sorted = all.clone();
        sorted.sort_unstable();
        let t = sorted[n / 2];
        let mut passed = Vec::new();
        scan(&codes, 4, &lut, t, |i, s| {
            passed.push(i);
            assert!(s >= t);
            t
        });
        assert_eq!(passed, (0..n).filter(|&i| all[i] >= t).collect::<Vec<_>>());
        let mut calls = 0;
        scan(&codes, 4, &lut, 0, |_, _| {
            calls += 1;
            lut.max_sum + 1
        });
        assert_eq!(calls, 1);
        assert_eq!(lut.threshold(f32::NEG_INFINITY, 0.0), 0);
        assert_eq!(lut.threshold(f32::INFINITY, 0.0), lut.max_sum + 1);
    }

    #[test]
    fn score_aware_codes_trade_error_across_the_vector_for_error_along_it() {
        let mut rng = Rng::new(9);
        let dim = 16;
        let pq = quantiser(dim, &mut rng);
        let (mut along, mut plain_along, mut total, mut plain_total) = (0f64, 0f64, 0f64, 0f64);
        for _ in 0..500 {
            let x: Vec<f32> = (0..dim).map(|_| 2.0 * rng.next_f32() - 1.0).collect();
            let norm = x.iter().map(|v| v * v).sum::<f32>().sqrt();
            // with x = 0 there is no direction: the nearest codewords
            let nearest = pq.encode(&x, &vec![0.0; dim]);
            let errors = |codes: &[u8]| {
                let e: Vec<f32> =
                    (0..dim).map(|j| x[j] - pq.word(j / SUB_DIM, codes[j / SUB_DIM] as usize)[j % SUB_DIM]).collect();
                let par = e.iter().zip(&x).map(|(e, x)| e * x).sum::<f32>() / norm;
                (f64::from(par * par), f64::from(e.iter().map(|e| e * e).sum::<f32>()))
            };
            let (a, t) = errors(&pq.encode(&x, &x));
            let (pa, pt) = errors(&nearest);
            along += a;
            plain_along += pa;
            total += t;
            plain_total += pt;
            // never worse on the weighted loss
            assert!(t + f64::from(ETA - 1.0) * a <= pt + f64::from(ETA - 1.0) * pa + 1e-4);
        }
        assert!(along < 0.7 * plain_along, "{along} vs {plain_along}");
        assert!(total >= plain_total);
    }

    #[test]
    fn score_aware_training_lowers_the_score_aware_loss() {
        let mut rng = Rng::new(11);
        let dim = 8;
        let pq = quantiser(dim, &mut rng);
        let n = 2000;
        let x: Vec<f32> = (0..n * dim).map(|_| 2.0 * rng.next_f32() - 1.0).collect();
        // residuals: the vectors less a tenth of themselves, as if from a nearby centroid
        let r: Vec<f32> = x.iter().map(|v| 0.9 * v).collect();
        let loss = |pq: &Pq4| -> f64 {
            (0..n)
                .map(|i| {
                    let (ri, xi) = (&r[i * dim..(i + 1) * dim], &x[i * dim..(i + 1) * dim]);
                    let codes = pq.encode(ri, xi);
                    let e: Vec<f32> = (0..dim)
                        .map(|j| ri[j] - pq.word(j / SUB_DIM, codes[j / SUB_DIM] as usize)[j % SUB_DIM])
                        .collect();
                    let norm = xi.iter().map(|v| v * v).sum::<f32>().sqrt();
                    let par = e.iter().zip(xi).map(|(e, x)| e * x).sum::<f32>() / norm;
                    f64::from(e.iter().map(|e| e * e).sum::<f32>() + (ETA - 1.0) * par * par)
                })
                .sum()
        };
        let once = pq.refine(&r, &x);
        let twice = once.refine(&r, &x);
        assert!(loss(&once) < 0.9 * loss(&pq), "{} vs {}", loss(&once), loss(&pq));
        assert!(loss(&twice) <= loss(&once) * 1.001);
        // deterministic whatever the threads
        let one = rayon::ThreadPoolBuilder::new().num_threads(1).build().unwrap();
        assert_eq!(one.install(|| pq.refine(&r, &x)), once);
    }

    #[test]
    fn solves_small_systems() {
        let mut a = [2.0, 1.0, 1.0, 3.0];
        let mut b = [3.0, 5.0];
        let x = solve(&mut a, &mut b).unwrap();
        assert!((x[0] - 0.8).abs() < 1e-12 && (x[1] - 1.4).abs() < 1e-12);
        assert!(solve(&mut [1.0, 2.0, 2.0, 4.0], &mut [1.0, 2.0]).is_none());
    }
}
