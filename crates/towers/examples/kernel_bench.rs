//! Times the numeric kernels at the shapes of training and evaluation at scale (a batch of
//! 4,096 rows of a 1M-user, 200k-item Zipf set: ~4,030 distinct queries, ~3,200 distinct
//! candidates; 100k test pairs against 200k items), on random embeddings. Wall and CPU time,
//! median of several runs; the thread count is rayon's (`RAYON_NUM_THREADS`).
//!
//! ```sh
//! cargo run --release --example kernel_bench -- softmax 20    # the fused in-batch softmax
//! cargo run --release --example kernel_bench -- ranks 3       # ranking test pairs
//! cargo run --release --example kernel_bench -- eval 3 MODEL_DIR TEST.tsv   # `evaluate`
//! ```

use std::time::Instant;
use towers::EvalOptions;
use towers::kernels::softmax::{InBatchSoftmax, Precision};
use towers::metrics::ranks;
use towers::rng::Rng;

fn cpu_seconds() -> f64 {
    let mut u: libc::rusage = unsafe { std::mem::zeroed() };
    // SAFETY: getrusage writes the struct it is given.
    unsafe { libc::getrusage(libc::RUSAGE_SELF, &mut u) };
    let t = |v: libc::timeval| v.tv_sec as f64 + v.tv_usec as f64 * 1e-6;
    t(u.ru_utime) + t(u.ru_stime)
}

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(f64::total_cmp);
    v[v.len() / 2]
}

fn time(runs: usize, mut f: impl FnMut() -> f64) {
    let (mut wall, mut cpu) = (Vec::new(), Vec::new());
    let mut check = 0.0;
    for _ in 0..runs {
        let (w, c) = (Instant::now(), cpu_seconds());
        check += f();
        wall.push(w.elapsed().as_secs_f64());
        cpu.push(cpu_seconds() - c);
    }
    println!(
        "  wall {:.2} ms (min {:.2}), cpu {:.2} ms, threads {} [{check:.6e}]",
        median(wall.clone()) * 1e3,
        wall.iter().copied().fold(f64::INFINITY, f64::min) * 1e3,
        median(cpu) * 1e3,
        rayon::current_num_threads()
    );
}

fn main() {
    let args: Vec<String> = std::env::args().collect();
    let what = args.get(1).map_or("softmax", String::as_str);
    let runs: usize = args.get(2).and_then(|s| s.parse().ok()).unwrap_or(10);
    let mut rng = Rng::new(1);
    let d = 32;
    match what {
        "softmax" => {
            let (nq, nc, b) = (4030, 3200, 4096);
            let q: Vec<f32> = (0..nq * d).map(|_| rng.next_f32() - 0.5).collect();
            let c: Vec<f32> = (0..nc * d).map(|_| rng.next_f32() - 0.5).collect();
            let mut pairs: Vec<(u32, u32)> = (0..b).map(|i| ((i % nq) as u32, (i % nc) as u32)).collect();
            for p in pairs.iter_mut().skip(nc) {
                p.1 = (rng.below(nc) * rng.below(nc) / nc) as u32; // skewed repeats
            }
            rng.shuffle(&mut pairs);
            let lq: Vec<f32> = (0..nc).map(|i| -((i + 2) as f32).ln()).collect();
            let cases = [
                ("tfrs", false, false, Precision::F32),
                ("defaults", true, true, Precision::F32),
                ("tfrs bf16", false, false, Precision::Bf16),
            ];
            for (name, logq, remove, precision) in cases {
                println!("softmax {name}: nq {nq} nc {nc} batch {b} dim {d}");
                let s = InBatchSoftmax {
                    queries: &q,
                    candidates: &c,
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
                time(runs, || {
                    let g = s.forward_backward();
                    g.loss + g.d_queries[7] as f64 + g.d_candidates[5] as f64
                });
            }
        }
        "ranks" => {
            let (nq, nc, n) = (95_000, 200_000, 100_000);
            let q: Vec<f32> = (0..nq * d).map(|_| rng.next_f32() - 0.5).collect();
            let c: Vec<f32> = (0..nc * d).map(|_| rng.next_f32() - 0.5).collect();
            let pairs: Vec<(u32, u32)> =
                (0..n).map(|i| ((i % nq) as u32, (rng.below(nc) * rng.below(nc) / nc) as u32)).collect();
            println!("ranks: {n} pairs, {nq} queries, {nc} candidates, dim {d}");
            time(runs, || ranks(&q, &c, d, &pairs, &[]).iter().map(|r| r.unwrap_or(0) as f64).sum::<f64>());
        }
        "eval" => {
            let (model, test) = (&args[3], &args[4]);
            let artifact = towers::Artifact::load(model).expect("model");
            let table = towers::data::Interactions::read(test, &Default::default()).expect("test table");
            println!("evaluate {model} on {test}");
            time(runs, || {
                towers::evaluate(&artifact, &table, &EvalOptions::new()).expect("evaluate").ranked().unwrap().model.mrr
            });
        }
        other => eprintln!("unknown benchmark {other}: softmax, ranks or eval"),
    }
}
