//! The numeric kernels at the shapes of training, evaluation and serving at scale, on random
//! embeddings (`cargo bench -p towers`; the thread count is rayon's, `RAYON_NUM_THREADS`):
//!
//! - `softmax/*`: the fused in-batch softmax, forward and backward, for a batch of 4,096 rows
//!   of a 1M-user, 200k-item Zipf set (~4,030 distinct queries, ~3,200 distinct candidates),
//!   with TFRS's loss, towers' defaults (logQ, accidental hits) and bf16;
//! - `ranks`: ranking 100k test pairs against 200k candidates (evaluation);
//! - `top_k/*`: a query's exact top k over a catalogue (serving: a pipeline's 100 of 1,682 at
//!   128 dimensions, a retriever's 10 of 200k at 32).

use criterion::{Criterion, criterion_group, criterion_main};
use std::hint::black_box;
use towers::index::{BruteForceIndex, Filter, Metric};
use towers::kernels::softmax::{InBatchSoftmax, Precision};
use towers::metrics::ranks;
use towers::rng::Rng;

fn random(rng: &mut Rng, n: usize) -> Vec<f32> {
    (0..n).map(|_| rng.next_f32() - 0.5).collect()
}

fn softmax(c: &mut Criterion) {
    let mut rng = Rng::new(1);
    let (nq, nc, b, d) = (4030, 3200, 4096, 32);
    let (q, cands) = (random(&mut rng, nq * d), random(&mut rng, nc * d));
    let mut pairs: Vec<(u32, u32)> = (0..b).map(|i| ((i % nq) as u32, (i % nc) as u32)).collect();
    for p in pairs.iter_mut().skip(nc) {
        p.1 = (rng.below(nc) * rng.below(nc) / nc) as u32; // skewed repeats
    }
    rng.shuffle(&mut pairs);
    let lq: Vec<f32> = (0..nc).map(|i| -((i + 2) as f32).ln()).collect();
    let mut group = c.benchmark_group("softmax");
    group.sample_size(20);
    for (name, logq, remove, precision) in [
        ("tfrs", false, false, Precision::F32),
        ("defaults", true, true, Precision::F32),
        ("tfrs_bf16", false, false, Precision::Bf16),
    ] {
        let s = InBatchSoftmax {
            queries: &q,
            candidates: &cands,
            dim: d,
            pairs: &pairs,
            log_q: logq.then_some(&lq[..]),
            temperature: 1.0,
            remove_accidental_hits: remove,
            grad_scale: 1.0,
            weights: None,
            hard_negatives: None,
            extra_counts: None,
            precision,
        };
        group.bench_function(name, |bench| bench.iter(|| black_box(s.forward_backward().loss)));
    }
    group.finish();
}

fn evaluation(c: &mut Criterion) {
    let mut rng = Rng::new(2);
    let (nq, nc, n, d) = (95_000, 200_000, 100_000, 32);
    let (q, cands) = (random(&mut rng, nq * d), random(&mut rng, nc * d));
    let pairs: Vec<(u32, u32)> =
        (0..n).map(|i| ((i % nq) as u32, (rng.below(nc) * rng.below(nc) / nc) as u32)).collect();
    let mut group = c.benchmark_group("evaluation");
    group.sample_size(10);
    group.bench_function("ranks", |bench| bench.iter(|| black_box(ranks(&q, &cands, d, &pairs, &[]).len())));
    group.finish();
}

fn top_k(c: &mut Criterion) {
    let mut rng = Rng::new(3);
    let mut group = c.benchmark_group("top_k");
    for (name, n, d, k) in [("pipeline_100_of_1682x128", 1682, 128, 100), ("retriever_10_of_200kx32", 200_000, 32, 10)]
    {
        let index = BruteForceIndex::new(random(&mut rng, n * d), d, Metric::Dot);
        let query = random(&mut rng, d);
        let exclude: Vec<u32> = (0..n as u32).step_by(20).collect();
        let filter = Filter { exclude: &exclude, allow: None };
        index.search(&query, k, &filter); // packs the vectors
        group.bench_function(name, |bench| bench.iter(|| black_box(index.search(&query, k, &filter).len())));
    }
    group.finish();
}

criterion_group!(kernels, softmax, evaluation, top_k);
criterion_main!(kernels);
