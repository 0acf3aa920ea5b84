//! Hand-written hot paths on `gemm` + `rayon` (see the design's NUMERIC-CORE.md): embedding
//! tables with row-sparse optimizer updates, the fused in-batch softmax loss, and blocked
//! exact top-k scoring. Plain `f32` slices in and out, row-major, no framework types.

pub mod gru;
pub mod softmax;
pub mod table;
pub mod topk;

/// `out (m×n) = a (m×k) · bᵀ` where `b` is `n×k`; all row-major. Single-threaded: callers
/// parallelise over blocks so that results do not depend on the number of threads.
pub fn matmul_abt(a: &[f32], b: &[f32], out: &mut [f32], m: usize, n: usize, k: usize) {
    assert!(a.len() >= m * k && b.len() >= n * k && out.len() >= m * n);
    if m == 0 || n == 0 {
        return;
    }
    // SAFETY: the asserts above keep every strided access inside the three slices.
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
            1,
            k as isize,
            b.as_ptr(),
            k as isize,
            1,
            0.0,
            1.0,
            false,
            false,
            false,
            gemm::Parallelism::None,
        )
    }
}

/// `out (m×n) = a (m×k) · b (k×n)`; all row-major, single-threaded.
pub fn matmul_ab(a: &[f32], b: &[f32], out: &mut [f32], m: usize, n: usize, k: usize) {
    assert!(a.len() >= m * k && b.len() >= k * n && out.len() >= m * n);
    if m == 0 || n == 0 {
        return;
    }
    // SAFETY: as above.
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
            1,
            k as isize,
            b.as_ptr(),
            1,
            n as isize,
            0.0,
            1.0,
            false,
            false,
            false,
            gemm::Parallelism::None,
        )
    }
}

/// `out (m×n) = aᵀ · b` where `a` is `k×m` and `b` is `k×n`; all row-major, single-threaded.
pub fn matmul_atb(a: &[f32], b: &[f32], out: &mut [f32], m: usize, n: usize, k: usize) {
    assert!(a.len() >= k * m && b.len() >= k * n && out.len() >= m * n);
    if m == 0 || n == 0 {
        return;
    }
    // SAFETY: as above; aᵀ is read through strides (row stride 1, column stride m).
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
            m as isize,
            1,
            b.as_ptr(),
            1,
            n as isize,
            0.0,
            1.0,
            false,
            false,
            false,
            gemm::Parallelism::None,
        )
    }
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
