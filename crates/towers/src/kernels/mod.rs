//! Hand-written hot paths on `gemm` + `rayon` (see the design's NUMERIC-CORE.md): embedding
//! tables with row-sparse optimizer updates, the fused in-batch softmax loss, and blocked
//! exact top-k scoring. Plain `f32` slices in and out, row-major, no framework types.

pub mod attention;
#[cfg(target_arch = "x86_64")]
mod avx512;
#[cfg(target_arch = "x86_64")]
mod avx512_bf16;
pub mod count;
pub mod cross;
pub mod dense;
pub mod fastscan;
mod fused;
pub mod gbce;
pub mod gru;
mod hard_negatives;
pub mod linear;
pub mod panel;
pub mod softmax;
pub mod table;
pub mod topk;

/// An empty vector with room for `len` items whose memory the kernel is asked (Linux) to back
/// with 2 MiB pages, so that random reads over a large table miss the TLB less. Only a hint:
/// elsewhere, or if refused, it is an ordinary vector.
pub fn with_huge_pages<T>(len: usize) -> Vec<T> {
    let v: Vec<T> = Vec::with_capacity(len);
    #[cfg(target_os = "linux")]
    {
        const HUGE: usize = 2 << 20;
        let (start, bytes) = (v.as_ptr() as usize, len * std::mem::size_of::<T>());
        let (a, b) = (start.next_multiple_of(HUGE), (start + bytes) / HUGE * HUGE);
        if b > a {
            // SAFETY: advice on whole pages inside an allocation that nothing has touched yet.
            unsafe { libc::madvise(a as *mut libc::c_void, b - a, libc::MADV_HUGEPAGE) };
        }
    }
    v
}

/// A matrix operand read through strides: element `(i, j)` is `data[i·rows + j·cols]`.
#[derive(Clone, Copy)]
struct Strided<'a> {
    data: &'a [f32],
    rows: usize,
    cols: usize,
}

impl Strided<'_> {
    /// Whether an `r × c` matrix fits in `data`.
    fn holds(&self, r: usize, c: usize) -> bool {
        self.data.len() > (r.max(1) - 1) * self.rows + (c.max(1) - 1) * self.cols
    }
}

/// `out (m×n) = A (m×k) · B (k×n)`. Single-threaded: callers parallelise over blocks, so that
/// results do not depend on the number of threads.
fn gemm_strided(out: &mut [f32], (m, n, k): (usize, usize, usize), a: Strided, b: Strided) {
    gemm_into(out, (m, n, k), a, b, false)
}

/// `out (m×n) = A·B`, or `out += A·B` with `accumulate`.
fn gemm_into(out: &mut [f32], (m, n, k): (usize, usize, usize), a: Strided, b: Strided, accumulate: bool) {
    assert!(out.len() >= m * n, "output too small");
    if m == 0 || n == 0 {
        return;
    }
    assert!(k == 0 || (a.holds(m, k) && b.holds(k, n)), "operand too small");
    // SAFETY: the asserts keep every strided access inside the three slices.
    unsafe {
        gemm::gemm(
            m,
            n,
            k,
            out.as_mut_ptr(),
            1,
            n as isize,
            accumulate,
            a.data.as_ptr(),
            a.cols as isize,
            a.rows as isize,
            b.data.as_ptr(),
            b.cols as isize,
            b.rows as isize,
            if accumulate { 1.0 } else { 0.0 },
            1.0,
            false,
            false,
            false,
            gemm::Parallelism::None,
        )
    }
}

/// `out (m×n) = a (m×k) · bᵀ` where `b` is `n×k`; all row-major.
pub fn matmul_abt(a: &[f32], b: &[f32], out: &mut [f32], m: usize, n: usize, k: usize) {
    gemm_strided(out, (m, n, k), Strided { data: a, rows: k, cols: 1 }, Strided { data: b, rows: 1, cols: k })
}

/// `out (m×n) = a (m×k) · b (k×n)`; all row-major.
pub fn matmul_ab(a: &[f32], b: &[f32], out: &mut [f32], m: usize, n: usize, k: usize) {
    gemm_strided(out, (m, n, k), Strided { data: a, rows: k, cols: 1 }, Strided { data: b, rows: n, cols: 1 })
}

/// `out (m×n) = aᵀ · b` where `a` is `k×m` and `b` is `k×n`; all row-major.
pub fn matmul_atb(a: &[f32], b: &[f32], out: &mut [f32], m: usize, n: usize, k: usize) {
    gemm_strided(out, (m, n, k), Strided { data: a, rows: 1, cols: m }, Strided { data: b, rows: n, cols: 1 })
}

/// `out (m×n) += aᵀ · b` where `a` is `k×m` and `b` is `k×n`; all row-major.
pub(crate) fn gemm_acc_atb(a: &[f32], b: &[f32], out: &mut [f32], m: usize, n: usize, k: usize) {
    let (a, b) = (Strided { data: a, rows: 1, cols: m }, Strided { data: b, rows: n, cols: 1 });
    gemm_into(out, (m, n, k), a, b, true)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn matmuls_match_naive() {
        let (m, n, k) = (5, 7, 3);
        let a: Vec<f32> = (0..m * k).map(|i| (i as f32 * 0.37).sin()).collect();
        let b: Vec<f32> = (0..n * k).map(|i| (i as f32 * 0.11).cos()).collect();
        let mut out = vec![0.0; m * n];
        matmul_abt(&a, &b, &mut out, m, n, k);
        for i in 0..m {
            for j in 0..n {
                let s: f32 = (0..k).map(|p| a[i * k + p] * b[j * k + p]).sum();
                assert!((out[i * n + j] - s).abs() < 1e-5);
            }
        }
        let bt: Vec<f32> = (0..k * n).map(|i| b[(i % n) * k + i / n]).collect(); // k×n
        let mut out2 = vec![0.0; m * n];
        matmul_ab(&a, &bt, &mut out2, m, n, k);
        assert!(out.iter().zip(&out2).all(|(x, y)| (x - y).abs() < 1e-5));
        let at: Vec<f32> = (0..k * m).map(|i| a[(i % m) * k + i / m]).collect(); // k×m
        let mut out3 = vec![0.0; m * n];
        matmul_atb(&at, &bt, &mut out3, m, n, k);
        assert!(out.iter().zip(&out3).all(|(x, y)| (x - y).abs() < 1e-5));
    }
}
