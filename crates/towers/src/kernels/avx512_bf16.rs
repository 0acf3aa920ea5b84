//! The products of the fused softmax ([`super::fused`]) with bf16 operands and f32 accumulators
//! (`vdpbf16ps`: two products of 16 lanes per instruction, twice an f32 FMA's work), for the
//! `Precision::Bf16` backend; chosen at run time where `avx512_bf16` is present.
//!
//! `vdpbf16ps` adds, in each f32 lane, the products of a *pair* of bf16 values, so every
//! operand is laid out with the summed dimension in pairs:
//!
//! - [`logits`]: candidates in panels of 16 with dimension pairs interleaved
//!   (`[panel][pair][lane][2]`), queries as one 32-bit pair per broadcast; f32 logits out, as the
//!   f32 kernel writes them (row maxima, positives, exponentials stay f32).
//! - [`exp_pair`]: the exponentials of two rows at once, summed in f32 and written twice in
//!   bf16: row-major (pairs of columns, for `dQ`) and rows interleaved (pairs of rows, for `dC`).
//! - [`rows_dot`]: `out[r] = Σ_c e[r][c]·b[c]` over pairs of columns, `b` as `[pair][dim][2]`.
//! - [`cols_acc`]: `acc[c] += Σ_r e[r][c]·a[r]` over pairs of rows, `a` as `[pair][dim][2]`.
//!
//! Rounding to bf16 (8 significant bits) is to nearest even, here and in [`to_bf16`].

use std::arch::x86_64::*;

/// Whether these kernels run on this machine.
pub(super) fn available() -> bool {
    super::avx512::available()
        && std::is_x86_feature_detected!("avx512bw")
        && std::is_x86_feature_detected!("avx512bf16")
}

/// `x` rounded to the nearest bf16 (ties to even), as its 16 bits.
pub(super) fn to_bf16(x: f32) -> u16 {
    let b = x.to_bits();
    if x.is_nan() {
        return (b >> 16) as u16 | 0x40;
    }
    ((b + 0x7fff + ((b >> 16) & 1)) >> 16) as u16
}

/// Panels per chunk of [`logits`].
const CHUNK: usize = 32;
/// Column pairs per chunk of [`rows_dot`].
const DOT_CHUNK: usize = 256;

#[inline(always)]
unsafe fn bh(v: __m512i) -> __m512bh {
    // SAFETY: the same 512 bits, read as 32 bf16 values.
    unsafe { std::mem::transmute::<__m512i, __m512bh>(v) }
}

/// Logits of `rows` queries (`q`: `rows × w/2` pairs of bf16) against `np` panels of `w`
/// values each (`w` = dimensions rounded up to even): as [`super::avx512::logits`].
#[target_feature(enable = "avx512f,avx512bf16")]
pub(super) unsafe fn logits(
    (q, rows, w): (&[u32], usize, usize),
    (panels, np): (&[u16], usize),
    (inv_t, lq): (f32, &[f32]),
    (out, ldo): (&mut [f32], usize),
    row_max: &mut [f32],
) {
    let pairs = w / 2;
    assert!(w.is_multiple_of(2) && q.len() >= rows * pairs && panels.len() >= np * 16 * w);
    assert!(lq.len() >= np * 16 && ldo >= np * 16 && row_max.len() >= rows);
    assert!(rows == 0 || out.len() >= (rows - 1) * ldo + np * 16);
    let mut mx = vec![f32::NEG_INFINITY; rows * 16];
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
                let m = if p1 - p >= 4 { 4 } else { 1 };
                // SAFETY: rows r..r+n and panels p..p+m are inside the asserted bounds.
                unsafe {
                    let at = (q.as_ptr().add(r * pairs), pairs, panels.as_ptr().add(p * 16 * w));
                    let o = (out.as_mut_ptr().add(r * ldo + p * 16), ldo, mx.as_mut_ptr().add(r * 16));
                    let l = (inv_t, lq.as_ptr().add(p * 16));
                    match (n, m) {
                        (6, 4) => logits_tile::<6, 4>(at, l, o),
                        (6, _) => logits_tile::<6, 1>(at, l, o),
                        (4, 4) => logits_tile::<4, 4>(at, l, o),
                        (4, _) => logits_tile::<4, 1>(at, l, o),
                        (2, 4) => logits_tile::<2, 4>(at, l, o),
                        (2, _) => logits_tile::<2, 1>(at, l, o),
                        (_, 4) => logits_tile::<1, 4>(at, l, o),
                        _ => logits_tile::<1, 1>(at, l, o),
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

#[inline(always)]
unsafe fn logits_tile<const R: usize, const P: usize>(
    (q, pairs, panels): (*const u32, usize, *const u16),
    (inv_t, lq): (f32, *const f32),
    (out, ldo, mx): (*mut f32, usize, *mut f32),
) {
    // SAFETY: the caller keeps rows 0..R, panels 0..P and the output tile in bounds.
    unsafe {
        let mut acc = [[_mm512_setzero_ps(); P]; R];
        for j in 0..pairs {
            let mut c = [bh(_mm512_setzero_si512()); P];
            for (pp, cv) in c.iter_mut().enumerate() {
                *cv = bh(_mm512_loadu_si512(panels.add(pp * 32 * pairs + j * 32) as *const __m512i));
            }
            for (r, ar) in acc.iter_mut().enumerate() {
                let qv = bh(_mm512_set1_epi32(*q.add(r * pairs + j) as i32));
                for (a, cv) in ar.iter_mut().zip(&c) {
                    *a = _mm512_dpbf16_ps(*a, *cv, qv);
                }
            }
        }
        let it = _mm512_set1_ps(inv_t);
        let mut l = [_mm512_setzero_ps(); P];
        for (pp, v) in l.iter_mut().enumerate() {
            *v = _mm512_loadu_ps(lq.add(pp * 16));
        }
        for (r, ar) in acc.iter().enumerate() {
            let m = mx.add(r * 16);
            let mut top = _mm512_loadu_ps(m);
            for (pp, (a, l)) in ar.iter().zip(&l).enumerate() {
                let v = _mm512_fmsub_ps(*a, it, *l);
                _mm512_storeu_ps(out.add(r * ldo + pp * 16), v);
                top = _mm512_max_ps(top, v);
            }
            _mm512_storeu_ps(m, top);
        }
    }
}

/// Two rows at once: `rows[i][c] = exp(rows[i][c] − m[i])` in place (f32), their bf16 values
/// row-major into `single[i]` and interleaved (`pair[2c + i]`) into `pair`; returns
/// `Σ counts[c]·rows[i][c]` of each. A missing second row is a row of zeros in the outputs.
#[target_feature(enable = "avx512f,avx512bw,avx512bf16")]
pub(super) unsafe fn exp_pair(
    (r0, r1): (&mut [f32], Option<&mut [f32]>),
    (m0, m1): (f32, f32),
    counts: &[f32],
    (s0, s1): (&mut [u16], &mut [u16]),
    pair: &mut [u16],
) -> (f64, f64) {
    let n = r0.len();
    assert!(n.is_multiple_of(16) && counts.len() >= n && s0.len() >= n && s1.len() >= n && pair.len() >= 2 * n);
    assert!(r1.as_ref().is_none_or(|r| r.len() >= n));
    let idx: [i16; 32] = std::array::from_fn(|i| (i / 2 + (i % 2) * 16) as i16);
    let (mut a0, mut a1) = (_mm512_setzero_ps(), _mm512_setzero_ps());
    let has1 = r1.is_some();
    let p1 = r1.map_or(std::ptr::null_mut(), |r| r.as_mut_ptr());
    // SAFETY: every access is below `n` (rows, counts, singles) or `2n` (pair), checked above.
    unsafe {
        let idx = _mm512_loadu_si512(idx.as_ptr() as *const __m512i);
        let (mv0, mv1) = (_mm512_set1_ps(m0), _mm512_set1_ps(m1));
        for c in (0..n).step_by(16) {
            let k = _mm512_loadu_ps(counts.as_ptr().add(c));
            let e0 = super::avx512::exp16(_mm512_sub_ps(_mm512_loadu_ps(r0.as_ptr().add(c)), mv0));
            _mm512_storeu_ps(r0.as_mut_ptr().add(c), e0);
            a0 = _mm512_fmadd_ps(e0, k, a0);
            let e1 = if has1 {
                let e1 = super::avx512::exp16(_mm512_sub_ps(_mm512_loadu_ps(p1.add(c)), mv1));
                _mm512_storeu_ps(p1.add(c), e1);
                a1 = _mm512_fmadd_ps(e1, k, a1);
                e1
            } else {
                _mm512_setzero_ps()
            };
            // lanes 0..16: row 0, 16..32: row 1
            let both: __m512i = std::mem::transmute(_mm512_cvtne2ps_pbh(e1, e0));
            _mm256_storeu_si256(s0.as_mut_ptr().add(c) as *mut __m256i, _mm512_castsi512_si256(both));
            _mm256_storeu_si256(s1.as_mut_ptr().add(c) as *mut __m256i, _mm512_extracti64x4_epi64::<1>(both));
            let inter = _mm512_permutexvar_epi16(idx, both);
            _mm512_storeu_si512(pair.as_mut_ptr().add(2 * c) as *mut __m512i, inter);
        }
    }
    let sum = |v: __m512| {
        let mut lanes = [0f32; 16];
        // SAFETY: 16 floats.
        unsafe { _mm512_storeu_ps(lanes.as_mut_ptr(), v) };
        lanes.iter().map(|&x| x as f64).sum::<f64>()
    };
    (sum(a0), sum(a1))
}

/// `out[r] = Σ_c e[r·lde + c]·b[c]` for `rows` rows and `n` columns (even), rows of `16·W`
/// floats out; `b` holds pairs of columns, `[n/2][16W][2]`.
#[target_feature(enable = "avx512f,avx512bf16")]
pub(super) unsafe fn rows_dot<const W: usize>(
    (e, lde): (&[u16], usize),
    rows: usize,
    n: usize,
    b: &[u16],
    out: &mut [f32],
) {
    assert!(n.is_multiple_of(2) && lde.is_multiple_of(2) && (rows == 0 || e.len() >= (rows - 1) * lde + n));
    assert!(b.len() >= n * 16 * W && out.len() >= rows * 16 * W);
    out[..rows * 16 * W].fill(0.0);
    let np = n / 2;
    for c0 in (0..np).step_by(DOT_CHUNK) {
        let c1 = (c0 + DOT_CHUNK).min(np);
        let mut r = 0;
        while r < rows {
            // SAFETY: rows r..r+R, column pairs c0..c1 are inside the asserted bounds.
            r += unsafe {
                let at = (e.as_ptr().add(r * lde + 2 * c0) as *const u32, lde / 2, c1 - c0);
                let bp = b.as_ptr().add(c0 * 32 * W);
                let o = out.as_mut_ptr().add(r * 16 * W);
                match rows - r {
                    12.. => dot_tile::<12, W>(at, bp, o),
                    8..=11 => dot_tile::<8, W>(at, bp, o),
                    4..=7 => dot_tile::<4, W>(at, bp, o),
                    _ => dot_tile::<1, W>(at, bp, o),
                }
            };
        }
    }
}

#[inline(always)]
unsafe fn dot_tile<const R: usize, const W: usize>(
    (e, lde, np): (*const u32, usize, usize),
    b: *const u16,
    out: *mut f32,
) -> usize {
    // SAFETY: the caller keeps rows 0..R of `e` (np pairs), np pairs of `b` and R rows of `out`
    // in bounds.
    unsafe {
        let mut acc = [[_mm512_setzero_ps(); W]; R];
        for (r, ar) in acc.iter_mut().enumerate() {
            for (w, a) in ar.iter_mut().enumerate() {
                *a = _mm512_loadu_ps(out.add(r * 16 * W + w * 16));
            }
        }
        for c in 0..np {
            let mut bv = [bh(_mm512_setzero_si512()); W];
            for (w, v) in bv.iter_mut().enumerate() {
                *v = bh(_mm512_loadu_si512(b.add(c * 32 * W + w * 32) as *const __m512i));
            }
            for (r, ar) in acc.iter_mut().enumerate() {
                let ev = bh(_mm512_set1_epi32(*e.add(r * lde + c) as i32));
                for (a, v) in ar.iter_mut().zip(&bv) {
                    *a = _mm512_dpbf16_ps(*a, ev, *v);
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

/// `acc[c] += Σ_r e[r][c]·a[r]` over `pairs` pairs of rows and `n` columns (a multiple of 4):
/// `e` holds the rows interleaved (`[pair][n][2]`), `a` `[pair][16W][2]`, `acc` `n × 16W`.
#[target_feature(enable = "avx512f,avx512bf16")]
pub(super) unsafe fn cols_acc<const W: usize>(e: &[u16], pairs: usize, n: usize, a: &[u16], acc: &mut [f32]) {
    assert!(n.is_multiple_of(4) && e.len() >= pairs * 2 * n);
    assert!(a.len() >= pairs * 32 * W && acc.len() >= n * 16 * W);
    let mut c0 = 0;
    while c0 < n {
        // SAFETY: columns c0..c0+C of every pair, and rows c0..c0+C of `acc`, are in bounds.
        c0 += unsafe {
            let at = (e.as_ptr().add(2 * c0) as *const u32, n, pairs);
            let (ap, o) = (a.as_ptr(), acc.as_mut_ptr().add(c0 * 16 * W));
            match (n - c0, W) {
                (12.., 1) => acc_tile::<12, W>(at, ap, o),
                (8.., _) => acc_tile::<8, W>(at, ap, o),
                _ => acc_tile::<4, W>(at, ap, o),
            }
        };
    }
}

#[inline(always)]
unsafe fn acc_tile<const C: usize, const W: usize>(
    (e, lde, pairs): (*const u32, usize, usize),
    a: *const u16,
    acc: *mut f32,
) -> usize {
    // SAFETY: the caller keeps columns 0..C of every pair of `e`, the pairs of `a`, and C rows
    // of `acc` in bounds.
    unsafe {
        let mut s = [[_mm512_setzero_ps(); W]; C];
        for (j, sj) in s.iter_mut().enumerate() {
            for (w, v) in sj.iter_mut().enumerate() {
                *v = _mm512_loadu_ps(acc.add(j * 16 * W + w * 16));
            }
        }
        for p in 0..pairs {
            let mut av = [bh(_mm512_setzero_si512()); W];
            for (w, v) in av.iter_mut().enumerate() {
                *v = bh(_mm512_loadu_si512(a.add(p * 32 * W + w * 32) as *const __m512i));
            }
            for (j, sj) in s.iter_mut().enumerate() {
                let ev = bh(_mm512_set1_epi32(*e.add(p * lde + j) as i32));
                for (v, x) in sj.iter_mut().zip(&av) {
                    *v = _mm512_dpbf16_ps(*v, ev, *x);
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
