//! Fused scoring and selection over candidates packed in panels: a panel holds 16 candidates
//! interleaved per dimension (`panel[j·16 + lane]` = dimension `j` of candidate `lane`), so that
//! a tile of a few queries × 16 candidates stays in registers while the dot products accumulate
//! in dimension order. Only lanes that beat a query's current threshold leave the registers.
//!
//! With AVX2 and FMA (detected at run time) every score is the FMA chain
//! `s = fma(c[j], q[j], s)` for `j = 0..dim` from `s = 0`, i.e. exactly what a scalar loop with
//! `f32::mul_add` in that order gives. Without them a portable loop (multiply, then add) runs.

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
            for r in 0..rows {
                for i in 0..n {
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
}
