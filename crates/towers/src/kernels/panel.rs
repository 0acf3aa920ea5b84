//! Fused scoring and selection over candidates packed in panels: a panel holds 16 candidates
//! interleaved per dimension (`panel[j·16 + lane]` = dimension `j` of candidate `lane`), so that
//! a tile of a few queries × 16 candidates stays in registers while the dot products accumulate
//! in dimension order. Only lanes that beat a query's current threshold leave the registers.
//!
//! With AVX2 and FMA (detected at run time) every score is the FMA chain
//! `s = fma(c[j], q[j], s)` for `j = 0..dim` from `s = 0`, i.e. exactly what a scalar loop with
//! `f32::mul_add` in that order gives. Without them a portable loop (multiply, then add) runs.
//!
//! [`Quantized`] adds an integer prefilter (13-bit values at dim 32, 12-bit at 512, `vpmaddwd`)
//! with a rigorous bound on its error: only candidates that may reach a threshold are then scored with the f32 chain
//! ([`exact_dot`]), so results stay exact.

/// Candidates per panel.
pub const LANES: usize = 16;

/// Packs `n` rows of width `dim` (`row(i)`) into `ceil(n / 16)` panels; the missing lanes of
/// the last panel are zeros.
pub fn pack<'a>(n: usize, dim: usize, row: impl Fn(usize) -> &'a [f32]) -> Vec<f32> {
    let panels = n.div_ceil(LANES);
    let mut out = vec![0f32; panels * LANES * dim];
    for i in 0..n {
        let (p, lane) = (i / LANES, i % LANES);
        let base = p * LANES * dim;
        for (j, &x) in row(i).iter().enumerate() {
            out[base + j * LANES + lane] = x;
        }
    }
    out
}

/// Whether the AVX2 + FMA kernel runs on this machine.
pub fn simd_available() -> bool {
    #[cfg(target_arch = "x86_64")]
    {
        std::is_x86_feature_detected!("avx2") && std::is_x86_feature_detected!("fma")
    }
    #[cfg(not(target_arch = "x86_64"))]
    {
        false
    }
}

/// Scores `rows` queries (`queries`, `rows × dim`, row-major) against `n_panels` panels of
/// `panels`. For each score not below `thresholds[r]`, calls `hit(r, slot, score)` (`slot`:
/// candidate position in `panels`), which returns that query's new threshold. Padding lanes are
/// scored too (as zero vectors): `hit` must ignore slots past the last candidate.
pub fn scan(
    queries: &[f32],
    rows: usize,
    dim: usize,
    panels: &[f32],
    n_panels: usize,
    thresholds: &mut [f32],
    mut hit: impl FnMut(usize, usize, f32) -> f32,
) {
    assert!(queries.len() >= rows * dim && panels.len() >= n_panels * LANES * dim && thresholds.len() >= rows);
    #[cfg(target_arch = "x86_64")]
    if simd_available() {
        // SAFETY: AVX2 and FMA are present; the assert bounds every access.
        unsafe { avx2::scan(queries, rows, dim, panels, n_panels, thresholds, &mut hit) };
        return;
    }
    scan_portable(queries, rows, dim, panels, n_panels, thresholds, &mut hit)
}

fn scan_portable(
    queries: &[f32],
    rows: usize,
    dim: usize,
    panels: &[f32],
    n_panels: usize,
    thresholds: &mut [f32],
    hit: &mut impl FnMut(usize, usize, f32) -> f32,
) {
    for p in 0..n_panels {
        let panel = &panels[p * LANES * dim..(p + 1) * LANES * dim];
        for r in 0..rows {
            let q = &queries[r * dim..(r + 1) * dim];
            let mut acc = [0f32; LANES];
            for (j, &qj) in q.iter().enumerate() {
                for (a, &c) in acc.iter_mut().zip(&panel[j * LANES..(j + 1) * LANES]) {
                    *a += c * qj;
                }
            }
            for (lane, &s) in acc.iter().enumerate() {
                if s >= thresholds[r] {
                    thresholds[r] = hit(r, p * LANES + lane, s);
                }
            }
        }
    }
}

#[cfg(target_arch = "x86_64")]
mod avx2 {
    use super::LANES;
    use std::arch::x86_64::*;

    /// Tiles of up to 6 queries; fewer rows take several panels at once so that at least 8
    /// independent FMA chains are in flight.
    #[target_feature(enable = "avx2,fma")]
    pub(super) unsafe fn scan(
        queries: &[f32],
        rows: usize,
        dim: usize,
        panels: &[f32],
        n_panels: usize,
        thresholds: &mut [f32],
        hit: &mut impl FnMut(usize, usize, f32) -> f32,
    ) {
        let mut r0 = 0;
        while r0 < rows {
            let q = &queries[r0 * dim..];
            let t = &mut thresholds[r0..];
            let mut h = |r: usize, slot: usize, s: f32| hit(r0 + r, slot, s);
            // SAFETY (all arms): the caller checked the slice lengths; each tile reads rows
            // r0..r0+R of `queries` and panels 0..n_panels.
            let done = unsafe {
                match rows - r0 {
                    6.. => tiles::<6, 1>(q, dim, panels, n_panels, t, &mut h),
                    5 => tiles::<5, 1>(q, dim, panels, n_panels, t, &mut h),
                    4 => tiles::<4, 1>(q, dim, panels, n_panels, t, &mut h),
                    3 => tiles::<3, 2>(q, dim, panels, n_panels, t, &mut h),
                    2 => tiles::<2, 3>(q, dim, panels, n_panels, t, &mut h),
                    _ => tiles::<1, 4>(q, dim, panels, n_panels, t, &mut h),
                }
            };
            r0 += done;
        }
    }

    /// Rows `0..R` against every panel, `P` panels at a time (the remainder one at a time).
    /// Returns `R`.
    #[target_feature(enable = "avx2,fma")]
    unsafe fn tiles<const R: usize, const P: usize>(
        q: &[f32],
        dim: usize,
        panels: &[f32],
        n_panels: usize,
        thresholds: &mut [f32],
        hit: &mut impl FnMut(usize, usize, f32) -> f32,
    ) -> usize {
        let mut p = 0;
        while p + P <= n_panels {
            unsafe { tile::<R, P>(q, dim, panels, p, thresholds, hit) };
            p += P;
        }
        while p < n_panels {
            unsafe { tile::<R, 1>(q, dim, panels, p, thresholds, hit) };
            p += 1;
        }
        R
    }

    #[inline(always)]
    unsafe fn tile<const R: usize, const P: usize>(
        q: &[f32],
        dim: usize,
        panels: &[f32],
        p0: usize,
        thresholds: &mut [f32],
        hit: &mut impl FnMut(usize, usize, f32) -> f32,
    ) {
        unsafe {
            let mut acc = [[[_mm256_setzero_ps(); 2]; P]; R];
            let qp = q.as_ptr();
            let base = panels.as_ptr().add(p0 * LANES * dim);
            for j in 0..dim {
                let mut c = [[_mm256_setzero_ps(); 2]; P];
                for (pp, cv) in c.iter_mut().enumerate() {
                    let at = base.add(pp * LANES * dim + j * LANES);
                    *cv = [_mm256_loadu_ps(at), _mm256_loadu_ps(at.add(8))];
                }
                for (r, ar) in acc.iter_mut().enumerate() {
                    let qv = _mm256_broadcast_ss(&*qp.add(r * dim + j));
                    for (a, cv) in ar.iter_mut().zip(&c) {
                        a[0] = _mm256_fmadd_ps(cv[0], qv, a[0]);
                        a[1] = _mm256_fmadd_ps(cv[1], qv, a[1]);
                    }
                }
            }
            for (r, ar) in acc.iter().enumerate() {
                for (pp, a) in ar.iter().enumerate() {
                    let t = _mm256_set1_ps(thresholds[r]);
                    let m = _mm256_movemask_ps(_mm256_cmp_ps::<_CMP_GE_OQ>(a[0], t)) as u32
                        | ((_mm256_movemask_ps(_mm256_cmp_ps::<_CMP_GE_OQ>(a[1], t)) as u32) << 8);
                    if m == 0 {
                        continue;
                    }
                    let mut s = [0f32; LANES];
                    _mm256_storeu_ps(s.as_mut_ptr(), a[0]);
                    _mm256_storeu_ps(s.as_mut_ptr().add(8), a[1]);
                    let mut bits = m;
                    while bits != 0 {
                        let lane = bits.trailing_zeros() as usize;
                        bits &= bits - 1;
                        // the threshold may have risen since the mask was taken
                        if s[lane] >= thresholds[r] {
                            thresholds[r] = hit(r, (p0 + pp) * LANES + lane, s[lane]);
                        }
                    }
                }
            }
        }
    }

    /// `s = fma(c[j], q[j], s)` for `j = 0..`, from 0.
    #[target_feature(enable = "fma")]
    pub(super) unsafe fn dot_fma(q: &[f32], c: &[f32]) -> f32 {
        q.iter().zip(c).fold(0f32, |s, (a, b)| b.mul_add(*a, s))
    }

    /// The i16 prefilter: tiles of up to 4 queries (8 i32 accumulators); fewer rows take two
    /// panels at once.
    #[target_feature(enable = "avx2,fma")]
    pub(super) unsafe fn scan_i16(
        qi: &[i16],
        rows: usize,
        w: usize,
        panels: &[i16],
        step: &[f32],
        t: &mut [f32],
        hit: &mut impl FnMut(usize, usize) -> f32,
    ) {
        let n_panels = panels.len() / (LANES * w);
        let mut r0 = 0;
        while r0 < rows {
            let q = &qi[r0 * w..];
            let (st, tt) = (&step[r0..], &mut t[r0..]);
            let mut h = |r: usize, slot: usize| hit(r0 + r, slot);
            // SAFETY (all arms): rows r0.. of `qi` and every panel are in bounds.
            let done = unsafe {
                match rows - r0 {
                    4.. => tiles_i16::<4, 1>(q, w, panels, n_panels, st, tt, &mut h),
                    3 => tiles_i16::<3, 1>(q, w, panels, n_panels, st, tt, &mut h),
                    2 => tiles_i16::<2, 2>(q, w, panels, n_panels, st, tt, &mut h),
                    _ => tiles_i16::<1, 4>(q, w, panels, n_panels, st, tt, &mut h),
                }
            };
            r0 += done;
        }
    }

    #[target_feature(enable = "avx2,fma")]
    unsafe fn tiles_i16<const R: usize, const P: usize>(
        q: &[i16],
        w: usize,
        panels: &[i16],
        n_panels: usize,
        step: &[f32],
        t: &mut [f32],
        hit: &mut impl FnMut(usize, usize) -> f32,
    ) -> usize {
        let mut p = 0;
        while p + P <= n_panels {
            unsafe { tile_i16::<R, P>(q, w, panels, p, step, t, hit) };
            p += P;
        }
        while p < n_panels {
            unsafe { tile_i16::<R, 1>(q, w, panels, p, step, t, hit) };
            p += 1;
        }
        R
    }

    #[inline(always)]
    unsafe fn tile_i16<const R: usize, const P: usize>(
        q: &[i16],
        w: usize,
        panels: &[i16],
        p0: usize,
        step: &[f32],
        t: &mut [f32],
        hit: &mut impl FnMut(usize, usize) -> f32,
    ) {
        unsafe {
            let mut acc = [[[_mm256_setzero_si256(); 2]; P]; R];
            let qp = q.as_ptr() as *const i32;
            let base = panels.as_ptr().add(p0 * LANES * w);
            for pair in 0..w / 2 {
                let mut c = [[_mm256_setzero_si256(); 2]; P];
                for (pp, cv) in c.iter_mut().enumerate() {
                    let at = base.add(pp * LANES * w + pair * 2 * LANES) as *const __m256i;
                    *cv = [_mm256_loadu_si256(at), _mm256_loadu_si256(at.add(1))];
                }
                for (r, ar) in acc.iter_mut().enumerate() {
                    let qv = _mm256_set1_epi32(std::ptr::read_unaligned(qp.add(r * w / 2 + pair)));
                    for (a, cv) in ar.iter_mut().zip(&c) {
                        a[0] = _mm256_add_epi32(a[0], _mm256_madd_epi16(cv[0], qv));
                        a[1] = _mm256_add_epi32(a[1], _mm256_madd_epi16(cv[1], qv));
                    }
                }
            }
            for (r, ar) in acc.iter().enumerate() {
                let sv = _mm256_set1_ps(step[r]);
                for (pp, a) in ar.iter().enumerate() {
                    let s0 = _mm256_mul_ps(_mm256_cvtepi32_ps(a[0]), sv);
                    let s1 = _mm256_mul_ps(_mm256_cvtepi32_ps(a[1]), sv);
                    let tv = _mm256_set1_ps(t[r]);
                    let m = _mm256_movemask_ps(_mm256_cmp_ps::<_CMP_GE_OQ>(s0, tv)) as u32
                        | ((_mm256_movemask_ps(_mm256_cmp_ps::<_CMP_GE_OQ>(s1, tv)) as u32) << 8);
                    if m == 0 {
                        continue;
                    }
                    let mut s = [0f32; LANES];
                    _mm256_storeu_ps(s.as_mut_ptr(), s0);
                    _mm256_storeu_ps(s.as_mut_ptr().add(8), s1);
                    let mut bits = m;
                    while bits != 0 {
                        let lane = bits.trailing_zeros() as usize;
                        bits &= bits - 1;
                        if s[lane] >= t[r] {
                            t[r] = hit(r, (p0 + pp) * LANES + lane);
                        }
                    }
                }
            }
        }
    }
}

/// Candidates quantised to 12- to 15-bit integers (one scale for all) in panels of 16, dimension pairs
/// interleaved (`[pair][lane][2]`), for a prefilter that is twice as fast as the f32 kernel: its
/// scores are within a bound of the exact ones, so a candidate whose prefilter score plus that
/// bound cannot reach a query's threshold is skipped, and only the others are scored exactly.
#[derive(Debug, Clone)]
pub struct Quantized {
    pub(super) panels: Vec<i16>,
    /// Dimensions rounded up to even.
    pub(super) width: usize,
    n_panels: usize,
    /// Value of one integer step.
    scale: f32,
    /// Largest L1 norm of a quantised candidate (in real units).
    l1_max: f32,
    /// Largest absolute coordinate.
    abs_max: f32,
}

/// Queries quantised for [`Quantized::scan`], with their scales and error bounds.
#[derive(Debug, Clone, Default)]
pub struct QuantizedQueries {
    pub(super) qi: Vec<i16>,
    /// Value of one step of a query's integer score.
    pub(super) step: Vec<f32>,
    /// Bound on |exact score − step × integer score| of each query, for every candidate.
    pub(super) margin: Vec<f32>,
    rows: usize,
}

impl QuantizedQueries {
    /// Queries `rows` of `from` (in that order), as if quantised alone, into `self`.
    pub fn gather_from(&mut self, from: &QuantizedQueries, rows: &[u32]) {
        let w = from.qi.len() / from.rows.max(1);
        self.qi.clear();
        self.step.clear();
        self.margin.clear();
        for &r in rows {
            let r = r as usize;
            self.qi.extend_from_slice(&from.qi[r * w..(r + 1) * w]);
            self.step.push(from.step[r]);
            self.margin.push(from.margin[r]);
        }
        self.rows = rows.len();
    }
}

/// Largest integer of the quantised candidates and queries of width `w`: the sum of `w`
/// products of two fits in an i32 (8,191 at 32 dimensions, 2,047 at 512), at most i16's.
fn qmax(w: usize) -> f32 {
    ((i32::MAX as f64 / w.max(1) as f64).sqrt().floor().min(i16::MAX as f64)) as f32
}

impl Quantized {
    /// Quantises `n` rows of width `dim`; `None` where the prefilter does not apply (more than
    /// 512 dimensions, non-finite values, no AVX2).
    pub fn new<'a>(n: usize, dim: usize, row: impl Fn(usize) -> &'a [f32]) -> Option<Quantized> {
        if dim > 512 || !simd_available() {
            return None;
        }
        let abs_max = (0..n).flat_map(|i| row(i).iter().map(|x| x.abs())).fold(0f32, f32::max);
        if !abs_max.is_finite() {
            return None;
        }
        let width = dim.next_multiple_of(2);
        let qm = qmax(width);
        let scale = if abs_max > 0.0 { abs_max / qm } else { 1.0 };
        let n_panels = n.div_ceil(LANES);
        let mut panels = vec![0i16; n_panels * LANES * width];
        let mut l1_max = 0f32;
        for i in 0..n {
            let (p, lane) = (i / LANES, i % LANES);
            let mut l1 = 0f32;
            for (j, &x) in row(i).iter().enumerate() {
                let v = (x / scale).round().clamp(-qm, qm);
                l1 += v.abs();
                panels[p * LANES * width + (j / 2) * 2 * LANES + lane * 2 + j % 2] = v as i16;
            }
            l1_max = l1_max.max(l1 * scale);
        }
        Some(Quantized { panels, width, n_panels, scale, l1_max, abs_max })
    }

    /// Panels.
    pub fn n_panels(&self) -> usize {
        self.n_panels
    }

    /// The queries (`rows × dim`) as the prefilter reads them.
    pub fn queries(&self, queries: &[f32], rows: usize, dim: usize) -> QuantizedQueries {
        assert!(queries.len() >= rows * dim && self.width >= dim && self.width - dim < 2);
        let (w, qm) = (self.width, qmax(self.width));
        let mut qi = vec![0i16; rows * w];
        let mut step = vec![0f32; rows];
        let mut margin = vec![0f32; rows];
        for r in 0..rows {
            let q = &queries[r * dim..(r + 1) * dim];
            let qmax = q.iter().fold(0f32, |m, x| m.max(x.abs()));
            let sq = if qmax > 0.0 { qmax / qm } else { 1.0 };
            for (j, &x) in q.iter().enumerate() {
                qi[r * w + j] = (x / sq).round().clamp(-qm, qm) as i16;
            }
            let l1: f32 = q.iter().map(|x| x.abs()).sum();
            step[r] = sq * self.scale;
            // |q·c − q̂·ĉ| ≤ ‖q‖₁·sc/2 + ‖ĉ‖₁·sq/2, with room for the rounding of both sides
            let slack = (dim as f32 + 8.0) * f32::EPSILON * 2.0 * (l1 * self.abs_max + 1.0);
            margin[r] = (l1 * self.scale / 2.0 + self.l1_max * sq / 2.0) * 1.001 + slack;
            if !margin[r].is_finite() {
                margin[r] = f32::INFINITY;
            }
        }
        QuantizedQueries { qi, step, margin, rows }
    }

    /// Prefilters the queries against panels `p0..p1`: calls `hit(r, slot)` (slot counted from
    /// panel `p0`) for every candidate whose exact score may reach `thresholds[r]`; `hit`
    /// scores it exactly and returns the query's (possibly raised) threshold. Thresholds are
    /// exact scores.
    pub fn scan(
        &self,
        queries: &QuantizedQueries,
        p0: usize,
        p1: usize,
        thresholds: &mut [f32],
        mut hit: impl FnMut(usize, usize) -> f32,
    ) {
        let (rows, w) = (queries.rows, self.width);
        assert!(thresholds.len() >= rows && p0 <= p1 && p1 <= self.n_panels);
        let (qi, step, margin) = (&queries.qi, &queries.step, &queries.margin);
        let mut t: Vec<f32> = (0..rows).map(|r| thresholds[r] - margin[r]).collect();
        let panels = &self.panels[p0 * LANES * w..p1 * LANES * w];
        #[cfg(target_arch = "x86_64")]
        {
            let mut h = |r: usize, slot: usize| {
                thresholds[r] = hit(r, slot);
                thresholds[r] - margin[r]
            };
            // SAFETY: `new` only builds a `Quantized` where AVX2 and FMA are present; the
            // asserts bound every access.
            unsafe { avx2::scan_i16(qi, rows, w, panels, step, &mut t, &mut h) };
        }
        #[cfg(not(target_arch = "x86_64"))]
        {
            let _ = (&mut hit, panels, &step, &mut t);
            unreachable!("Quantized::new returns None without AVX2");
        }
    }
}

/// The exact score of one candidate: the FMA chain in dimension order, as the kernels compute it.
#[inline]
pub fn exact_dot(q: &[f32], c: &[f32]) -> f32 {
    #[cfg(target_arch = "x86_64")]
    if simd_available() {
        // SAFETY: FMA is present.
        return unsafe { avx2::dot_fma(q, c) };
    }
    q.iter().zip(c).fold(0f32, |s, (a, b)| s + a * b)
}

/// [`exact_dot`] of eight pairs at once (the same chains, bit for bit).
pub(crate) fn exact_dots8(q: [&[f32]; 8], c: [&[f32]; 8]) -> [f32; 8] {
    #[cfg(target_arch = "x86_64")]
    if simd_available() {
        #[target_feature(enable = "fma")]
        fn fma8(q: [&[f32]; 8], c: [&[f32]; 8]) -> [f32; 8] {
            let mut s = [0f32; 8];
            for j in 0..q[0].len() {
                for l in 0..8 {
                    s[l] = c[l][j].mul_add(q[l][j], s[l]);
                }
            }
            s
        }
        // SAFETY: FMA is present.
        return unsafe { fma8(q, c) };
    }
    std::array::from_fn(|l| exact_dot(q[l], c[l]))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::rng::Rng;

    #[test]
    fn scan_reports_every_score_at_or_above_the_threshold_and_equals_an_fma_chain() {
        let mut rng = Rng::new(5);
        let (n, d) = (37, 13);
        let c: Vec<f32> = (0..n * d).map(|_| rng.next_f32() - 0.5).collect();
        let panels = pack(n, d, |i| &c[i * d..(i + 1) * d]);
        for rows in 1..=8 {
            let q: Vec<f32> = (0..rows * d).map(|_| rng.next_f32() - 0.5).collect();
            let mut got = vec![vec![f32::NAN; n]; rows];
            let mut t = vec![f32::NEG_INFINITY; rows];
            scan(&q, rows, d, &panels, n.div_ceil(LANES), &mut t, |r, slot, s| {
                if slot < n {
                    got[r][slot] = s;
                }
                f32::NEG_INFINITY
            });
            // the portable path (what runs without AVX2) on the same data
            let mut portable = vec![vec![f32::NAN; n]; rows];
            let mut t = vec![f32::NEG_INFINITY; rows];
            scan_portable(&q, rows, d, &panels, n.div_ceil(LANES), &mut t, &mut |r, slot, s| {
                if slot < n {
                    portable[r][slot] = s;
                }
                f32::NEG_INFINITY
            });
            for r in 0..rows {
                for i in 0..n {
                    assert!((portable[r][i] - got[r][i]).abs() < 1e-5);
                    let want = (0..d).fold(0f32, |s, j| c[i * d + j].mul_add(q[r * d + j], s));
                    let loose = (0..d).map(|j| c[i * d + j] * q[r * d + j]).sum::<f32>();
                    if simd_available() {
                        assert_eq!(got[r][i], want);
                    }
                    assert!((got[r][i] - loose).abs() < 1e-5);
                }
            }
        }
    }

    #[test]
    fn quantized_prefilter_never_drops_a_candidate_at_or_above_the_threshold() {
        let mut rng = Rng::new(8);
        let (n, d) = (300, 11);
        let c: Vec<f32> = (0..n * d).map(|_| 4.0 * (rng.next_f32() - 0.5)).collect();
        let Some(qz) = Quantized::new(n, d, |i| &c[i * d..(i + 1) * d]) else { return };
        for rows in 1..=6 {
            let q: Vec<f32> = (0..rows * d).map(|_| rng.next_f32() - 0.5).collect();
            let exact: Vec<Vec<f32>> = (0..rows)
                .map(|r| (0..n).map(|i| exact_dot(&q[r * d..(r + 1) * d], &c[i * d..(i + 1) * d])).collect())
                .collect();
            // a fixed threshold per query: the 20th best score
            let mut t: Vec<f32> = exact
                .iter()
                .map(|e| {
                    let mut s = e.clone();
                    s.sort_by(|a, b| b.total_cmp(a));
                    s[19]
                })
                .collect();
            let want = t.clone();
            let mut seen = vec![vec![false; n]; rows];
            qz.scan(&qz.queries(&q, rows, d), 0, qz.n_panels(), &mut t, |r, slot| {
                if slot < n {
                    seen[r][slot] = true;
                }
                want[r]
            });
            for r in 0..rows {
                let passed = (0..n).filter(|&i| exact[r][i] >= want[r]).count();
                assert!(passed >= 20);
                assert!((0..n).all(|i| exact[r][i] < want[r] || seen[r][i]), "row {r}");
                // and it does filter: far fewer than all candidates are handed over
                assert!(seen[r].iter().filter(|&&x| x).count() < n / 2);
            }
        }
    }
}
