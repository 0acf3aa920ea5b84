//! One pass of the in-batch softmax over blocks of query rows: each block's logits are computed
//! once into a buffer that stays in L2 (`ROW_BLOCK` rows × the distinct candidates), turned
//! into exponentials in place, and used for both gradients before the next block:
//!
//! - logits `l = Q_b·Cᵀ/T − log q` and each row's maximum `m`;
//! - `E = exp(l − m)` and `Z = Σ_c k_c·E` (`k_c`: column multiplicities), the loss, and
//!   `a_r = Σ n/Z` over the row's positives;
//! - `dQ_r = s·(a_r·Σ_c E[r,c]·k_c·C_c − Σ_p amount_p·C_{c_p})` (`s` = grad scale / T);
//! - `acc_c += Σ_r E[r,c]·a_r·Q_r`, and at the end `dC_c = s·(k_c·acc_c − Σ_p amount_p·Q_{q_p})`.
//!
//! The gradient of the logits is never written: its dense part `k_c·a_r·E[r,c]` is folded into
//! the operands (`k∘C`, `a∘Q`), its sparse part (the positives, and accidental hits) is added as
//! rank-one corrections. So a step is 3 GEMM-shaped products over the logits (the previous
//! two-pass kernel recomputed them: 4) and one exponential per logit (it took 2).
//!
//! Materialising a block's logits (48 × ~3,200 floats, 600 KiB) beats recomputing them: the
//! buffer is read 3 more times from L2, each pass far cheaper than a product over `dim`.
//!
//! Determinism: row blocks are fixed, and they are split into `GROUPS` fixed runs of blocks,
//! each with its own candidate accumulator, summed in group order — whatever the thread count.
//! Three backends do the block products, chosen at run time: AVX-512 micro-kernels
//! ([`super::avx512`], dimensions up to 64), the same with bf16 operands and f32 sums
//! ([`super::avx512_bf16`], `Precision::Bf16` where the CPU has `avx512_bf16`), and a portable
//! one on `gemm` (AVX2 where present). The f32 ones agree within float rounding, bf16 within
//! its precision (~1% of the largest gradient; tested).

use super::softmax::{InBatchSoftmax, Positive, Precision, SoftmaxGrads, csr_starts};
use super::{gemm_acc_atb, matmul_ab, matmul_abt};
use rayon::prelude::*;

/// Query rows per block: the block's logits (`ROW_BLOCK × candidates` floats) stay in L2.
const ROW_BLOCK: usize = 48;
/// Fixed runs of row blocks, each accumulating the candidate gradients on its own.
const GROUPS: usize = 8;
/// The padding of candidate columns: their logit, which `exp` takes to ~0.
const PAD_LOGIT: f32 = -1e30;

/// Which block products run.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Backend {
    /// `gemm` and portable loops.
    Portable,
    /// AVX-512 micro-kernels.
    #[cfg(target_arch = "x86_64")]
    Avx512,
    /// AVX-512 micro-kernels with bf16 operands (`vdpbf16ps`), f32 accumulators.
    #[cfg(target_arch = "x86_64")]
    Avx512Bf16,
}

impl Backend {
    /// The fastest backend for rows of `dim` floats at `precision` on this machine (bf16 falls
    /// back to f32 where the CPU lacks it).
    pub(super) fn best(dim: usize, precision: Precision) -> Backend {
        #[cfg(target_arch = "x86_64")]
        if dim <= 64 && super::avx512::available() {
            if precision == Precision::Bf16 && super::avx512_bf16::available() {
                return Backend::Avx512Bf16;
            }
            return Backend::Avx512;
        }
        let _ = (dim, precision);
        Backend::Portable
    }
}

/// The operands of one step, padded: `ncp` columns (a multiple of 16), rows of `dp` floats.
struct Operands {
    backend: Backend,
    ncp: usize,
    dp: usize,
    /// Candidates as the f32 logits product reads them: panels of 16 (AVX-512) or `ncp × d`.
    cands: Vec<f32>,
    /// `k_c·C_c`, `ncp × dp` (f32 backends).
    ck: Vec<f32>,
    /// bf16: the candidates' panels with dimension pairs interleaved, `w` values a candidate.
    cands16: Vec<u16>,
    w: usize,
    /// bf16: `k∘C` with pairs of candidates interleaved, `[ncp/2][dp][2]`.
    ck16: Vec<u16>,
    /// `log q` (0 without logQ), `PAD_LOGIT`'s opposite on padding columns.
    lq: Vec<f32>,
    /// Column multiplicities, 0 on padding.
    counts: Vec<f32>,
}

/// A worker's buffers for one block, kept between blocks and steps.
#[derive(Default)]
struct Scratch {
    /// Logits, then their exponentials, `ROW_BLOCK × ncp`.
    e: Vec<f32>,
    /// `a_r·Q_r`, `ROW_BLOCK × dp`.
    qa: Vec<f32>,
    /// `Σ_c E[r,c]·k_c·C_c`, `ROW_BLOCK × dp`.
    raw: Vec<f32>,
    /// bf16: the block's queries, a pair of dimensions a word.
    q16: Vec<u32>,
    /// bf16: the exponentials row-major, and with pairs of rows interleaved.
    e1: Vec<u16>,
    e2: Vec<u16>,
    /// bf16: `qa` with pairs of rows interleaved, `[ROW_BLOCK/2][dp][2]`.
    qa2: Vec<u16>,
}

thread_local! {
    static SCRATCH: std::cell::RefCell<Scratch> = std::cell::RefCell::default();
}

impl Operands {
    fn new(s: &InBatchSoftmax, counts: &[f32], backend: Backend) -> Self {
        let (nc, d) = (s.nc(), s.dim);
        let ncp = nc.next_multiple_of(16).max(16);
        let dp = d.next_multiple_of(16).max(16);
        let row = |c: usize| &s.candidates[c * d..(c + 1) * d];
        let mut ops = Operands {
            backend,
            ncp,
            dp,
            cands: Vec::new(),
            ck: Vec::new(),
            cands16: Vec::new(),
            w: d.next_multiple_of(2),
            ck16: Vec::new(),
            lq: vec![-PAD_LOGIT; ncp],
            counts: counts.to_vec(),
        };
        ops.lq[..nc].iter_mut().enumerate().for_each(|(c, l)| *l = s.log_q.map_or(0.0, |q| q[c]));
        ops.counts.resize(ncp, 0.0);
        match backend {
            Backend::Portable => {
                ops.cands = s.candidates.to_vec();
                ops.cands.resize(ncp * d, 0.0);
            }
            #[cfg(target_arch = "x86_64")]
            Backend::Avx512 => ops.cands = super::panel::pack(nc, d, row),
            #[cfg(target_arch = "x86_64")]
            Backend::Avx512Bf16 => {
                let (w, to) = (ops.w, super::avx512_bf16::to_bf16);
                ops.cands16 = vec![0u16; ncp * w];
                ops.ck16 = vec![0u16; ncp * dp];
                for c in 0..nc {
                    let (panel, lane) = (c / 16, c % 16);
                    for (j, &x) in row(c).iter().enumerate() {
                        ops.cands16[panel * 16 * w + (j / 2) * 32 + lane * 2 + j % 2] = to(x);
                        ops.ck16[(c / 2) * 2 * dp + j * 2 + c % 2] = to(counts[c] * x);
                    }
                }
                return ops;
            }
        }
        ops.ck = vec![0f32; ncp * dp];
        for c in 0..nc {
            ops.ck[c * dp..c * dp + d].iter_mut().zip(row(c)).for_each(|(o, &x)| *o = counts[c] * x);
        }
        ops
    }

    /// Sizes the scratch buffers for this step.
    fn prepare(&self, sc: &mut Scratch) {
        let (ncp, dp) = (self.ncp, self.dp);
        sc.e.resize(ROW_BLOCK * ncp, 0.0);
        sc.qa.clear();
        sc.qa.resize(ROW_BLOCK * dp, 0.0);
        sc.raw.resize(ROW_BLOCK * dp, 0.0);
        #[cfg(target_arch = "x86_64")]
        if self.backend == Backend::Avx512Bf16 {
            sc.e1.resize(ROW_BLOCK.next_multiple_of(2) * ncp, 0);
            sc.e2.resize(ROW_BLOCK.next_multiple_of(2) * ncp, 0);
            sc.qa2.resize(ROW_BLOCK.next_multiple_of(2) * dp, 0);
        }
    }

    /// Logits of `rows` queries into `sc.e` (`rows × ncp`) and their row maxima.
    fn logits(&self, q: &[f32], rows: usize, d: usize, inv_t: f32, sc: &mut Scratch, maxes: &mut [f32]) {
        let (ncp, e) = (self.ncp, &mut sc.e);
        match self.backend {
            Backend::Portable => {
                matmul_abt(q, &self.cands, e, rows, ncp, d);
                for (row, m) in e.chunks_exact_mut(ncp).zip(maxes.iter_mut()).take(rows) {
                    row.iter_mut().zip(&self.lq).for_each(|(l, q)| *l = *l * inv_t - q);
                    *m = super::softmax::max(row);
                }
            }
            #[cfg(target_arch = "x86_64")]
            // SAFETY: `Backend::Avx512` is only chosen where AVX-512F is present.
            Backend::Avx512 => unsafe {
                super::avx512::logits((q, rows, d), (&self.cands, ncp / 16), (inv_t, &self.lq), (e, ncp), maxes)
            },
            #[cfg(target_arch = "x86_64")]
            // SAFETY: `Backend::Avx512Bf16` is only chosen where AVX-512 BF16 is present.
            Backend::Avx512Bf16 => unsafe {
                let to = super::avx512_bf16::to_bf16;
                let w = self.w;
                sc.q16.clear();
                for r in q.chunks_exact(d).take(rows) {
                    let at = |j: usize| r.get(j).map_or(0, |&x| to(x) as u32);
                    sc.q16.extend((0..w / 2).map(|j| at(2 * j) | (at(2 * j + 1) << 16)));
                }
                let (panels, lq) = ((&self.cands16[..], ncp / 16), (inv_t, &self.lq[..]));
                super::avx512_bf16::logits((&sc.q16, rows, w), panels, lq, (e, ncp), maxes)
            },
        }
    }

    /// `e = exp(e − m)` row by row in place, each row's `Σ counts·e` into `fulls`.
    fn exps(&self, sc: &mut Scratch, rows: usize, maxes: &[f32], fulls: &mut [f64]) {
        let ncp = self.ncp;
        match self.backend {
            Backend::Portable => {
                for (r, row) in sc.e.chunks_exact_mut(ncp).take(rows).enumerate() {
                    row.iter_mut().for_each(|l| *l -= maxes[r]);
                    super::softmax::exp_portable(row);
                    fulls[r] = super::softmax::dot(row, &self.counts);
                }
            }
            #[cfg(target_arch = "x86_64")]
            Backend::Avx512 => {
                for (r, row) in sc.e.chunks_exact_mut(ncp).take(rows).enumerate() {
                    // SAFETY: AVX-512F is present (see `Backend::best`).
                    fulls[r] = unsafe { super::avx512::exp_row(row, maxes[r], &self.counts) };
                }
            }
            #[cfg(target_arch = "x86_64")]
            Backend::Avx512Bf16 => {
                let mut rows_e = sc.e.chunks_exact_mut(ncp).take(rows);
                let (mut s1, mut s2) = (sc.e1.chunks_exact_mut(ncp), sc.e2.chunks_exact_mut(2 * ncp));
                for r in (0..rows).step_by(2) {
                    let Some(r0) = rows_e.next() else { break };
                    let r1 = rows_e.next();
                    let (a, b, pair) = (s1.next(), s1.next(), s2.next());
                    let (Some(a), Some(b), Some(pair)) = (a, b, pair) else { unreachable!("sized by prepare") };
                    let m1 = maxes.get(r + 1).copied().unwrap_or(0.0);
                    // SAFETY: AVX-512 BF16 is present (see `Backend::best`).
                    let (f0, f1) =
                        unsafe { super::avx512_bf16::exp_pair((r0, r1), (maxes[r], m1), &self.counts, (a, b), pair) };
                    fulls[r] = f0;
                    if r + 1 < rows {
                        fulls[r + 1] = f1;
                    }
                }
            }
        }
    }

    /// `sc.raw (rows × dp) = E (rows × ncp) · ck`.
    fn rows_dot(&self, sc: &mut Scratch, rows: usize) {
        let (ncp, dp, e, out) = (self.ncp, self.dp, &sc.e, &mut sc.raw);
        match self.backend {
            Backend::Portable => matmul_ab(e, &self.ck, out, rows, dp, ncp),
            #[cfg(target_arch = "x86_64")]
            // SAFETY: AVX-512F is present; the kernels check their bounds.
            Backend::Avx512 => unsafe {
                use super::avx512::rows_dot;
                match dp / 16 {
                    1 => rows_dot::<1>((e, ncp), rows, ncp, &self.ck, out),
                    2 => rows_dot::<2>((e, ncp), rows, ncp, &self.ck, out),
                    3 => rows_dot::<3>((e, ncp), rows, ncp, &self.ck, out),
                    _ => rows_dot::<4>((e, ncp), rows, ncp, &self.ck, out),
                }
            },
            #[cfg(target_arch = "x86_64")]
            // SAFETY: AVX-512 BF16 is present; the kernels check their bounds.
            Backend::Avx512Bf16 => unsafe {
                use super::avx512_bf16::rows_dot;
                let e1 = &sc.e1;
                match dp / 16 {
                    1 => rows_dot::<1>((e1, ncp), rows, ncp, &self.ck16, out),
                    2 => rows_dot::<2>((e1, ncp), rows, ncp, &self.ck16, out),
                    3 => rows_dot::<3>((e1, ncp), rows, ncp, &self.ck16, out),
                    _ => rows_dot::<4>((e1, ncp), rows, ncp, &self.ck16, out),
                }
            },
        }
    }

    /// `acc (ncp × dp) += Eᵀ · sc.qa` (`E` is `rows × ncp`, `qa` `rows × dp`).
    fn cols_acc(&self, sc: &mut Scratch, rows: usize, acc: &mut [f32]) {
        let (ncp, dp, e, a) = (self.ncp, self.dp, &sc.e, &sc.qa);
        match self.backend {
            Backend::Portable => gemm_acc_atb(e, a, acc, ncp, dp, rows),
            #[cfg(target_arch = "x86_64")]
            // SAFETY: AVX-512F is present; the kernels check their bounds.
            Backend::Avx512 => unsafe {
                use super::avx512::cols_acc;
                match dp / 16 {
                    1 => cols_acc::<1>((e, ncp), rows, ncp, a, acc),
                    2 => cols_acc::<2>((e, ncp), rows, ncp, a, acc),
                    3 => cols_acc::<3>((e, ncp), rows, ncp, a, acc),
                    _ => cols_acc::<4>((e, ncp), rows, ncp, a, acc),
                }
            },
            #[cfg(target_arch = "x86_64")]
            // SAFETY: AVX-512 BF16 is present; the kernels check their bounds.
            Backend::Avx512Bf16 => unsafe {
                use super::avx512_bf16::{cols_acc, to_bf16};
                let pairs = rows.div_ceil(2);
                for p in 0..pairs {
                    for j in 0..dp {
                        let at = |r: usize| if r < rows { to_bf16(a[r * dp + j]) } else { 0 };
                        sc.qa2[p * 2 * dp + 2 * j] = at(2 * p);
                        sc.qa2[p * 2 * dp + 2 * j + 1] = at(2 * p + 1);
                    }
                }
                let (e2, qa2) = (&sc.e2, &sc.qa2);
                match dp / 16 {
                    1 => cols_acc::<1>(e2, pairs, ncp, qa2, acc),
                    2 => cols_acc::<2>(e2, pairs, ncp, qa2, acc),
                    3 => cols_acc::<3>(e2, pairs, ncp, qa2, acc),
                    _ => cols_acc::<4>(e2, pairs, ncp, qa2, acc),
                }
            },
        }
    }
}

/// What one run of row blocks gives back (its candidate accumulator is a slice of the caller's).
struct GroupOut {
    loss: f64,
    /// The query gradients of its rows.
    d_queries: Vec<f32>,
    /// Per positive of its rows (in order): the amount taken from its logit's gradient.
    amounts: Vec<f32>,
}

/// Loss and gradients of `s` (no hard negatives) with the given backend.
pub(super) fn forward_backward(s: &InBatchSoftmax, backend: Backend) -> SoftmaxGrads {
    let (nq, nc, d) = (s.nq(), s.nc(), s.dim);
    let (counts, pos) = s.positives();
    let row_start = csr_starts(nq, pos.iter().map(|p| p.q as usize));
    let ops = Operands::new(s, &counts, backend);
    let n_blocks = nq.div_ceil(ROW_BLOCK);
    let groups = GROUPS.min(n_blocks).max(1);
    // Σ_r E[r,c]·a_r·Q_r of each group, `ncp × dp` each
    let mut accs = vec![0f32; groups * ops.ncp * ops.dp];
    let outs: Vec<GroupOut> = accs
        .par_chunks_mut(ops.ncp * ops.dp)
        .enumerate()
        .map(|(g, acc)| {
            let (b0, b1) = (g * n_blocks / groups, (g + 1) * n_blocks / groups);
            let (r0, r1) = ((b0 * ROW_BLOCK).min(nq), (b1 * ROW_BLOCK).min(nq));
            SCRATCH.with_borrow_mut(|sc| block_run(s, &ops, (&pos, &row_start), r0..r1, acc, sc))
        })
        .collect();
    let loss = outs.iter().map(|o| o.loss).sum::<f64>() * s.grad_scale as f64;
    let mut d_queries = Vec::with_capacity(nq * d);
    outs.iter().for_each(|o| d_queries.extend_from_slice(&o.d_queries));
    let amounts: Vec<f32> = outs.iter().flat_map(|o| o.amounts.iter().copied()).collect();

    // dC_c = s·(k_c·Σ_groups acc_c − Σ_p amount_p·Q_{q_p}), parallel over fixed column chunks
    let scale = s.grad_scale / s.temperature;
    let mut by_col: Vec<(Positive, f32)> = pos.iter().copied().zip(amounts).collect();
    by_col.sort_by_key(|(p, _)| (p.c, p.q));
    let col_start = csr_starts(nc, by_col.iter().map(|(p, _)| p.c as usize));
    let mut d_candidates = vec![0f32; nc * d];
    let (dp, group_len) = (ops.dp, ops.ncp * ops.dp);
    d_candidates.par_chunks_mut(256 * d).enumerate().for_each(|(chunk, out)| {
        let mut sum = vec![0f32; d];
        for (i, row) in out.chunks_exact_mut(d).enumerate() {
            let c = chunk * 256 + i;
            sum.fill(0.0);
            for acc in accs.chunks_exact(group_len) {
                sum.iter_mut().zip(&acc[c * dp..c * dp + d]).for_each(|(x, &a)| *x += a);
            }
            sum.iter_mut().for_each(|x| *x *= counts[c]);
            for (p, amount) in &by_col[col_start[c]..col_start[c + 1]] {
                let q = &s.queries[p.q as usize * d..(p.q as usize + 1) * d];
                sum.iter_mut().zip(q).for_each(|(x, &y)| *x -= amount * y);
            }
            row.iter_mut().zip(&sum).for_each(|(o, &x)| *o = x * scale);
        }
    });
    SoftmaxGrads { loss, d_queries, d_candidates }
}

/// Rows `rows` of the batch, a block at a time, adding to `acc`.
fn block_run(
    s: &InBatchSoftmax,
    ops: &Operands,
    (pos, row_start): (&[Positive], &[usize]),
    rows: std::ops::Range<usize>,
    acc: &mut [f32],
    sc: &mut Scratch,
) -> GroupOut {
    let (d, ncp, dp) = (s.dim, ops.ncp, ops.dp);
    let inv_t = 1.0 / s.temperature;
    let scale = s.grad_scale * inv_t;
    ops.prepare(sc);
    let (mut maxes, mut fulls, mut a_rows) = ([0f32; ROW_BLOCK], [0f64; ROW_BLOCK], [0f32; ROW_BLOCK]);
    let mut out = GroupOut { loss: 0.0, d_queries: vec![0f32; rows.len() * d], amounts: Vec::new() };
    let mut pos_logits = Vec::new();
    for r0 in rows.clone().step_by(ROW_BLOCK) {
        let rb = ROW_BLOCK.min(rows.end - r0);
        ops.logits(&s.queries[r0 * d..(r0 + rb) * d], rb, d, inv_t, sc, &mut maxes);
        let block_pos = &pos[row_start[r0]..row_start[r0 + rb]];
        pos_logits.clear();
        pos_logits.extend(block_pos.iter().map(|p| {
            let r = p.q as usize - r0;
            sc.e[r * ncp + p.c as usize] - maxes[r]
        }));
        ops.exps(sc, rb, &maxes, &mut fulls);
        let first_amount = out.amounts.len();
        let mut logits = pos_logits.iter();
        for r in 0..rb {
            let q = r0 + r;
            let row = &sc.e[r * ncp..(r + 1) * ncp];
            let mut a = 0f64;
            for (p, &l) in pos[row_start[q]..row_start[q + 1]].iter().zip(&mut logits) {
                let (c, e) = (p.c as usize, row[p.c as usize] as f64);
                let k = ops.counts[c];
                let full = fulls[r];
                let z = if s.remove_accidental_hits { (full - (k as f64 - 1.0) * e).max(e) } else { full };
                out.loss += p.n as f64 * (z.ln() - l as f64);
                a += p.n as f64 / z;
                // with accidental hits removed, the examples whose positive is `c` count column
                // `c` once, not `k` times: its softmax weight (k − 1)·(n/Z)·e is taken back
                let b = (p.n as f64 / z) as f32;
                let hit = if s.remove_accidental_hits { (k - 1.0) * b * e as f32 } else { 0.0 };
                out.amounts.push(hit + p.n);
            }
            a_rows[r] = a as f32;
            let qrow = &s.queries[q * d..(q + 1) * d];
            sc.qa[r * dp..r * dp + d].iter_mut().zip(qrow).for_each(|(o, &x)| *o = a as f32 * x);
        }
        ops.rows_dot(sc, rb);
        let mut amounts = out.amounts[first_amount..].iter();
        for r in 0..rb {
            let q = r0 + r;
            let dq = &mut out.d_queries[(q - rows.start) * d..(q - rows.start + 1) * d];
            dq.iter_mut().zip(&sc.raw[r * dp..r * dp + d]).for_each(|(o, &x)| *o = a_rows[r] * x);
            for (p, amount) in pos[row_start[q]..row_start[q + 1]].iter().zip(&mut amounts) {
                let c = &s.candidates[p.c as usize * d..(p.c as usize + 1) * d];
                dq.iter_mut().zip(c).for_each(|(o, &x)| *o -= amount * x);
            }
            dq.iter_mut().for_each(|o| *o *= scale);
        }
        ops.cols_acc(sc, rb, acc);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::rng::Rng;

    /// Queries, candidates, pairs and `log q`.
    type Batch = (Vec<f32>, Vec<f32>, Vec<(u32, u32)>, Vec<f32>);

    /// A batch of `b` pairs over `nq` queries and `nc` candidates of width `d`, skewed so that
    /// candidates repeat.
    fn batch(nq: usize, nc: usize, d: usize, b: usize, seed: u64) -> Batch {
        let mut rng = Rng::new(seed);
        let q: Vec<f32> = (0..nq * d).map(|_| 2.0 * rng.next_f32() - 1.0).collect();
        let c: Vec<f32> = (0..nc * d).map(|_| 2.0 * rng.next_f32() - 1.0).collect();
        let pairs = (0..b).map(|i| ((i % nq) as u32, (rng.below(nc) * rng.below(nc) / nc) as u32)).collect();
        let lq = (0..nc).map(|i| -((i + 2) as f32).ln()).collect();
        (q, c, pairs, lq)
    }

    fn softmax<'a>((q, c, pairs, lq): &'a Batch, d: usize, remove: bool, temperature: f32) -> InBatchSoftmax<'a> {
        InBatchSoftmax {
            queries: q,
            candidates: c,
            dim: d,
            pairs,
            log_q: remove.then_some(&lq[..]),
            temperature,
            remove_accidental_hits: remove,
            grad_scale: 0.5,
            weights: None,
            hard_negatives: None,
            extra_counts: None,
            precision: Precision::F32,
        }
    }

    /// The backends agree with each other within float rounding (the portable one is checked
    /// against the naive loss and finite differences in `softmax`'s tests), at sizes that take
    /// several blocks and groups, padding and remainder tiles; bf16 within its precision.
    #[test]
    fn backends_agree() {
        for (nq, nc, d) in [(130, 77, 32), (300, 200, 20), (61, 45, 64), (7, 3, 3)] {
            let data = batch(nq, nc, d, nq + 40, 3);
            for (remove, t) in [(false, 1.0), (true, 0.2)] {
                let s = softmax(&data, d, remove, t);
                let want = forward_backward(&s, Backend::Portable);
                // (backend, relative tolerance of the loss, of the gradients (of the largest)):
                // bf16 logits are off by up to ~2⁻⁸·Σ|q_j·c_j|/T, which T = 0.2 magnifies
                let f32_tol = (Backend::best(d, Precision::F32), 1e-5, 1e-5);
                let bf16_tol = (Backend::best(d, Precision::Bf16), 2e-3, if t < 1.0 { 5e-2 } else { 2e-2 });
                for (backend, loss_tol, tol) in [f32_tol, bf16_tol] {
                    let got = forward_backward(&s, backend);
                    let close = |a: &[f32], b: &[f32]| {
                        let big = a.iter().fold(0f32, |m, x| m.max(x.abs()));
                        a.iter().zip(b).all(|(x, y)| (x - y).abs() <= tol * big.max(1.0))
                    };
                    let dl = (got.loss - want.loss).abs();
                    assert!(dl <= loss_tol * want.loss.abs(), "{backend:?}: {} vs {}", got.loss, want.loss);
                    assert!(close(&want.d_queries, &got.d_queries), "{backend:?}: dQ at {nq}×{nc}×{d}");
                    assert!(close(&want.d_candidates, &got.d_candidates), "{backend:?}: dC at {nq}×{nc}×{d}");
                }
            }
        }
    }

    /// Bit for bit the same loss and gradients with 1 and 3 threads, on both backends.
    #[test]
    fn thread_count_does_not_change_results() {
        let data = batch(700, 300, 32, 900, 9);
        let s = softmax(&data, 32, true, 0.5);
        for backend in [Backend::Portable, Backend::best(32, Precision::F32), Backend::best(32, Precision::Bf16)] {
            let run = |threads: usize| {
                let pool = rayon::ThreadPoolBuilder::new().num_threads(threads).build().unwrap();
                pool.install(|| forward_backward(&s, backend))
            };
            let (a, b) = (run(1), run(3));
            assert_eq!(a.loss.to_bits(), b.loss.to_bits());
            assert_eq!(a.d_queries, b.d_queries);
            assert_eq!(a.d_candidates, b.d_candidates);
        }
    }
}
