//! Hand-written hot paths on `gemm` + `rayon` (see the design's NUMERIC-CORE.md): embedding
//! tables with row-sparse optimizer updates, the fused in-batch softmax loss, and blocked
//! exact top-k scoring. Plain `f32` slices in and out, row-major, no framework types.

pub mod dense;
pub mod fastscan;
pub mod gru;
mod hard_negatives;
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

/// `out (m×n) = A (m×k) · B (k×n)` with `A[i][p] = a[i·a_rs + p·a_cs]` and
/// `B[p][j] = b[p·b_rs + j·b_cs]`. Single-threaded: callers parallelise over blocks, so that
/// results do not depend on the number of threads.
#[allow(clippy::too_many_arguments)]
fn gemm_strided(
    out: &mut [f32],
    m: usize,
    n: usize,
    k: usize,
    a: &[f32],
    a_rs: usize,
    a_cs: usize,
    b: &[f32],
    b_rs: usize,
    b_cs: usize,
) {
    let last = |rs: usize, cs: usize, rows: usize, cols: usize| (rows.max(1) - 1) * rs + (cols.max(1) - 1) * cs;
    assert!(out.len() >= m * n, "output too small");
    if m == 0 || n == 0 {
        return;
    }
    assert!(k == 0 || (a.len() > last(a_rs, a_cs, m, k) && b.len() > last(b_rs, b_cs, k, n)), "operand too small");
    // SAFETY: the asserts keep every strided access inside the three slices.
    unsafe {
        gemm::gemm(
            m,
            n,
            k,
            out.as_mut_ptr(),
            1,
            n as isize,
            false,
            a.as_ptr(),
            a_cs as isize,
            a_rs as isize,
            b.as_ptr(),
            b_cs as isize,
            b_rs as isize,
            0.0,
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
    gemm_strided(out, m, n, k, a, k, 1, b, 1, k)
}

/// `out (m×n) = a (m×k) · b (k×n)`; all row-major.
pub fn matmul_ab(a: &[f32], b: &[f32], out: &mut [f32], m: usize, n: usize, k: usize) {
    gemm_strided(out, m, n, k, a, k, 1, b, n, 1)
}

/// `out (m×n) = aᵀ · b` where `a` is `k×m` and `b` is `k×n`; all row-major.
pub fn matmul_atb(a: &[f32], b: &[f32], out: &mut [f32], m: usize, n: usize, k: usize) {
    gemm_strided(out, m, n, k, a, 1, m, b, n, 1)
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
