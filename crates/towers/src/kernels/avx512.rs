//! AVX-512 micro-kernels of the fused in-batch softmax ([`super::fused`]) and a vectorised `exp`,
//! chosen at run time (`avx512f`); [`super::fused`] keeps a portable path on `gemm` beside them.
//!
//! Operands are laid out once per step so that no kernel packs anything: candidates in panels
//! of 16 (`panel[j·16 + lane]` = dimension `j` of candidate `lane`, as in [`super::panel`]),
//! and the 32-float rows of the gradient products padded to a multiple of 16 floats (`W`
//! vectors). Each kernel keeps a tile of 16–24 accumulators in registers:
//!
//! - [`logits`]: `out[r][c] = (q_r · c_c)·inv_t − lq[c]` for a block of query rows against all
//!   candidate panels (tiles of 6 rows × 4 panels, chunks of 32 panels kept in L2), with each
//!   row's maximum taken in the epilogue. Every score is the FMA chain over dimensions in order.
//! - [`exp_row`]: `e = exp(x − m)` in place and `Σ counts·e`.
//! - [`rows_dot`]: `out[r] = Σ_c e[r][c]·b[c]` (the query gradients), tiles of 12 rows.
//! - [`cols_acc`]: `acc[c] += Σ_r e[r][c]·a[r]` (the candidate gradients), tiles of 12 columns,
//!   rows added in order.
//!
//! Zen 4 runs 512-bit operations as two 256-bit halves, so the gain over AVX2 is in the
//! instructions saved (embedded broadcasts, `vscalefps` in `exp`, no packing), not in FMA width.

use std::arch::x86_64::*;

/// Whether these kernels run on this machine.
pub(super) fn available() -> bool {
    std::is_x86_feature_detected!("avx512f")
}

/// Panels per chunk of [`logits`]: 512 candidates, 64 KiB at dim 32.
const CHUNK: usize = 32;
/// Candidates per chunk of [`rows_dot`].
const DOT_CHUNK: usize = 512;

/// `e^x` of 16 lanes: `x = n·ln2 + r`, a degree-6 polynomial for `e^r`, `vscalefps` for `2ⁿ`.
/// Relative error below 2e-7 on [−87, 88] (the range is clamped, as `exp_in_place` does).
#[target_feature(enable = "avx512f")]
#[inline]
pub(super) fn exp16(x: __m512) -> __m512 {
    let x = _mm512_min_ps(_mm512_max_ps(x, _mm512_set1_ps(-87.0)), _mm512_set1_ps(88.0));
    let n = _mm512_roundscale_ps::<{ _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC }>(_mm512_mul_ps(
        x,
        _mm512_set1_ps(std::f32::consts::LOG2_E),
    ));
    let r = _mm512_fnmadd_ps(n, _mm512_set1_ps(0.693_145_75), x);
    let r = _mm512_fnmadd_ps(n, _mm512_set1_ps(1.428_606_8e-6), r);
    let mut p = _mm512_set1_ps(0.001_388_889);
    for c in [0.008_333_334, 0.041_666_668, 0.166_666_67, 0.5, 1.0, 1.0] {
        p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(c));
    }
    _mm512_scalef_ps(p, n)
}

/// `e^x` for every element (see [`exp16`]); the tail through a mask.
#[target_feature(enable = "avx512f")]
pub(super) unsafe fn exp_in_place(xs: &mut [f32]) {
    let mut chunks = xs.chunks_exact_mut(16);
    for c in &mut chunks {
        // SAFETY: 16 floats.
        unsafe { _mm512_storeu_ps(c.as_mut_ptr(), exp16(_mm512_loadu_ps(c.as_ptr()))) };
    }
    let tail = chunks.into_remainder();
    if !tail.is_empty() {
        let m: __mmask16 = (1u32 << tail.len()).wrapping_sub(1) as u16;
        // SAFETY: the mask covers exactly the tail's elements.
        unsafe {
            let v = _mm512_maskz_loadu_ps(m, tail.as_ptr());
            _mm512_mask_storeu_ps(tail.as_mut_ptr(), m, exp16(v));
        }
    }
}

/// `row[c] = exp(row[c] − m)` in place; returns `Σ counts[c]·row[c]`. `row.len()` is a
/// multiple of 16 and `counts` as long.
#[target_feature(enable = "avx512f")]
pub(super) unsafe fn exp_row(row: &mut [f32], m: f32, counts: &[f32]) -> f64 {
    assert!(row.len().is_multiple_of(16) && counts.len() >= row.len());
    let (mv, mut acc0, mut acc1) = (_mm512_set1_ps(m), _mm512_setzero_ps(), _mm512_setzero_ps());
    let (p, k) = (row.as_mut_ptr(), counts.as_ptr());
    let mut c = 0;
    // SAFETY: every access is below `row.len()`, checked above.
    unsafe {
        while c + 32 <= row.len() {
            let e0 = exp16(_mm512_sub_ps(_mm512_loadu_ps(p.add(c)), mv));
            let e1 = exp16(_mm512_sub_ps(_mm512_loadu_ps(p.add(c + 16)), mv));
            _mm512_storeu_ps(p.add(c), e0);
            _mm512_storeu_ps(p.add(c + 16), e1);
            acc0 = _mm512_fmadd_ps(e0, _mm512_loadu_ps(k.add(c)), acc0);
            acc1 = _mm512_fmadd_ps(e1, _mm512_loadu_ps(k.add(c + 16)), acc1);
            c += 32;
        }
        if c < row.len() {
            let e0 = exp16(_mm512_sub_ps(_mm512_loadu_ps(p.add(c)), mv));
            _mm512_storeu_ps(p.add(c), e0);
            acc0 = _mm512_fmadd_ps(e0, _mm512_loadu_ps(k.add(c)), acc0);
        }
    }
    let mut lanes = [0f32; 16];
    // SAFETY: 16 floats.
    unsafe { _mm512_storeu_ps(lanes.as_mut_ptr(), _mm512_add_ps(acc0, acc1)) };
    lanes.iter().map(|&x| x as f64).sum()
}

/// Logits of `rows` queries (`q`, `rows × d`) against `np` panels: `out[r·ldo + c] =
/// (q_r·cand_c)·inv_t − lq[c]` for `c < np·16`, and `row_max[r]` their maximum.
#[target_feature(enable = "avx512f")]
pub(super) unsafe fn logits(
    (q, rows, d): (&[f32], usize, usize),
    (panels, np): (&[f32], usize),
    (inv_t, lq): (f32, &[f32]),
    (out, ldo): (&mut [f32], usize),
    row_max: &mut [f32],
) {
    assert!(q.len() >= rows * d && panels.len() >= np * 16 * d && lq.len() >= np * 16 && ldo >= np * 16);
    assert!(rows == 0 || out.len() >= (rows - 1) * ldo + np * 16);
    assert!(row_max.len() >= rows);
    let mut mx = vec![f32::NEG_INFINITY; rows * 16];
    let ctx = Logits { d, inv_t, ldo };
    for p0 in (0..np).step_by(CHUNK) {
        let p1 = (p0 + CHUNK).min(np);
        let mut r = 0;
        while r < rows {
            let n = match rows - r {
                6.. => 6,
                4 | 5 => 4,
                2 | 3 => 2,
                _ => 1,
            };
            let mut p = p0;
            while p < p1 {
                let m = match p1 - p {
                    4.. => 4,
                    2 | 3 => 2,
                    _ => 1,
                };
                // SAFETY: rows r..r+n and panels p..p+m are inside the asserted bounds.
                unsafe {
                    let at = (q.as_ptr().add(r * d), panels.as_ptr().add(p * 16 * d), lq.as_ptr().add(p * 16));
                    let o = (out.as_mut_ptr().add(r * ldo + p * 16), mx.as_mut_ptr().add(r * 16));
                    match (n, m) {
                        (6, 4) => ctx.tile::<6, 4>(at, o),
                        (6, 2) => ctx.tile::<6, 2>(at, o),
                        (6, _) => ctx.tile::<6, 1>(at, o),
                        (4, 4) => ctx.tile::<4, 4>(at, o),
                        (4, 2) => ctx.tile::<4, 2>(at, o),
                        (4, _) => ctx.tile::<4, 1>(at, o),
                        (2, 4) => ctx.tile::<2, 4>(at, o),
                        (2, 2) => ctx.tile::<2, 2>(at, o),
                        (2, _) => ctx.tile::<2, 1>(at, o),
                        (_, 4) => ctx.tile::<1, 4>(at, o),
                        (_, 2) => ctx.tile::<1, 2>(at, o),
                        _ => ctx.tile::<1, 1>(at, o),
                    }
                }
                p += m;
            }
            r += n;
        }
    }
    for (r, m) in row_max.iter_mut().take(rows).enumerate() {
        *m = mx[r * 16..(r + 1) * 16].iter().copied().fold(f32::NEG_INFINITY, f32::max);
    }
}

struct Logits {
    d: usize,
    inv_t: f32,
    ldo: usize,
}

impl Logits {
    #[inline(always)]
    unsafe fn tile<const R: usize, const P: usize>(
        &self,
        (q, panels, lq): (*const f32, *const f32, *const f32),
        (out, mx): (*mut f32, *mut f32),
    ) {
        let d = self.d;
        // SAFETY: the caller keeps rows 0..R of `q`, panels 0..P and the output tile in bounds.
        unsafe {
            let mut acc = [[_mm512_setzero_ps(); P]; R];
            for j in 0..d {
                let mut c = [_mm512_setzero_ps(); P];
                for (pp, cv) in c.iter_mut().enumerate() {
                    *cv = _mm512_loadu_ps(panels.add(pp * 16 * d + j * 16));
                }
                for (r, ar) in acc.iter_mut().enumerate() {
                    let qv = _mm512_set1_ps(*q.add(r * d + j));
                    for (a, cv) in ar.iter_mut().zip(&c) {
                        *a = _mm512_fmadd_ps(*cv, qv, *a);
                    }
                }
            }
            let it = _mm512_set1_ps(self.inv_t);
            let mut l = [_mm512_setzero_ps(); P];
            for (pp, v) in l.iter_mut().enumerate() {
                *v = _mm512_loadu_ps(lq.add(pp * 16));
            }
            for (r, ar) in acc.iter().enumerate() {
                let m = mx.add(r * 16);
                let mut top = _mm512_loadu_ps(m);
                for (pp, (a, l)) in ar.iter().zip(&l).enumerate() {
                    let v = _mm512_fmsub_ps(*a, it, *l);
                    _mm512_storeu_ps(out.add(r * self.ldo + pp * 16), v);
                    top = _mm512_max_ps(top, v);
                }
                _mm512_storeu_ps(m, top);
            }
        }
    }
}

/// `out[r] = Σ_c e[r·lde + c]·b[c]` for `rows` rows and `n` columns, rows of `16·W` floats
/// (`b` is `n × 16W`, `out` `rows × 16W`).
#[target_feature(enable = "avx512f")]
pub(super) unsafe fn rows_dot<const W: usize>(
    (e, lde): (&[f32], usize),
    rows: usize,
    n: usize,
    b: &[f32],
    out: &mut [f32],
) {
    assert!(rows == 0 || e.len() >= (rows - 1) * lde + n);
    assert!(b.len() >= n * 16 * W && out.len() >= rows * 16 * W);
    out[..rows * 16 * W].fill(0.0);
    for c0 in (0..n).step_by(DOT_CHUNK) {
        let c1 = (c0 + DOT_CHUNK).min(n);
        let mut r = 0;
        while r < rows {
            // SAFETY: rows r..r+R, columns c0..c1 are inside the asserted bounds.
            r += unsafe {
                let at = (e.as_ptr().add(r * lde + c0), lde, c1 - c0, b.as_ptr().add(c0 * 16 * W));
                let o = out.as_mut_ptr().add(r * 16 * W);
                match rows - r {
                    12.. => dot_tile::<12, W>(at, o),
                    8..=11 => dot_tile::<8, W>(at, o),
                    4..=7 => dot_tile::<4, W>(at, o),
                    _ => dot_tile::<1, W>(at, o),
                }
            };
        }
    }
}

#[inline(always)]
unsafe fn dot_tile<const R: usize, const W: usize>(
    (e, lde, n, b): (*const f32, usize, usize, *const f32),
    out: *mut f32,
) -> usize {
    // SAFETY: the caller keeps rows 0..R of `e` (n columns), n rows of `b` and R rows of `out`
    // in bounds.
    unsafe {
        let mut acc = [[_mm512_setzero_ps(); W]; R];
        for (r, ar) in acc.iter_mut().enumerate() {
            for (w, a) in ar.iter_mut().enumerate() {
                *a = _mm512_loadu_ps(out.add(r * 16 * W + w * 16));
            }
        }
        for c in 0..n {
            let mut bv = [_mm512_setzero_ps(); W];
            for (w, v) in bv.iter_mut().enumerate() {
                *v = _mm512_loadu_ps(b.add(c * 16 * W + w * 16));
            }
            for (r, ar) in acc.iter_mut().enumerate() {
                let ev = _mm512_set1_ps(*e.add(r * lde + c));
                for (a, v) in ar.iter_mut().zip(&bv) {
                    *a = _mm512_fmadd_ps(ev, *v, *a);
                }
            }
        }
        for (r, ar) in acc.iter().enumerate() {
            for (w, a) in ar.iter().enumerate() {
                _mm512_storeu_ps(out.add(r * 16 * W + w * 16), *a);
            }
        }
    }
    R
}

/// `acc[c] += Σ_r e[r·lde + c]·a[r]` for `rows` rows (added in order) and `n` columns (a
/// multiple of 4), rows of `16·W` floats (`a` is `rows × 16W`, `acc` `n × 16W`).
#[target_feature(enable = "avx512f")]
pub(super) unsafe fn cols_acc<const W: usize>(
    (e, lde): (&[f32], usize),
    rows: usize,
    n: usize,
    a: &[f32],
    acc: &mut [f32],
) {
    assert!(n.is_multiple_of(4) && (rows == 0 || e.len() >= (rows - 1) * lde + n));
    assert!(a.len() >= rows * 16 * W && acc.len() >= n * 16 * W);
    let mut c0 = 0;
    while c0 < n {
        // SAFETY: columns c0..c0+C of rows 0..rows, and rows c0..c0+C of `acc`, are in bounds.
        c0 += unsafe {
            let at = ((e.as_ptr().add(c0), lde, rows), a.as_ptr(), acc.as_mut_ptr().add(c0 * 16 * W));
            match (n - c0, W) {
                (12.., 1) => acc_tile::<12, W>(at.0, at.1, at.2),
                (8.., _) => acc_tile::<8, W>(at.0, at.1, at.2),
                _ => acc_tile::<4, W>(at.0, at.1, at.2),
            }
        };
    }
}

#[inline(always)]
unsafe fn acc_tile<const C: usize, const W: usize>(
    (e, lde, rows): (*const f32, usize, usize),
    a: *const f32,
    acc: *mut f32,
) -> usize {
    // SAFETY: the caller keeps columns 0..C of rows 0..rows of `e`, rows of `a`, and C rows of
    // `acc` in bounds.
    unsafe {
        let mut s = [[_mm512_setzero_ps(); W]; C];
        for (j, sj) in s.iter_mut().enumerate() {
            for (w, v) in sj.iter_mut().enumerate() {
                *v = _mm512_loadu_ps(acc.add(j * 16 * W + w * 16));
            }
        }
        for r in 0..rows {
            let mut av = [_mm512_setzero_ps(); W];
            for (w, v) in av.iter_mut().enumerate() {
                *v = _mm512_loadu_ps(a.add(r * 16 * W + w * 16));
            }
            for (j, sj) in s.iter_mut().enumerate() {
                let ev = _mm512_set1_ps(*e.add(r * lde + j));
                for (v, x) in sj.iter_mut().zip(&av) {
                    *v = _mm512_fmadd_ps(ev, *x, *v);
                }
            }
        }
        for (j, sj) in s.iter().enumerate() {
            for (w, v) in sj.iter().enumerate() {
                _mm512_storeu_ps(acc.add(j * 16 * W + w * 16), *v);
            }
        }
    }
    C
}
