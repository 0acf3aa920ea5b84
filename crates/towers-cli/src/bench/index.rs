//! `towers bench index`: exact and approximate top-k over vectors from `.npy` files.

use crate::common::print_json;
use clap::Args as ClapArgs;
use serde_json::json;
use std::path::PathBuf;
use std::time::Instant;
use towers::Error;
use towers::data::npy;
use towers::index::{BruteForceIndex, Filter, Index, IvfIndex, IvfParams, Metric, Scored, recall_at_k};

/// Options of `towers bench index`.
#[derive(ClapArgs, Debug)]
pub struct IndexArgs {
    /// Candidate vectors, an n × dim float32 .npy file.
    #[arg(long)]
    pub candidates: PathBuf,
    /// Query vectors, an nq × dim float32 .npy file.
    #[arg(long)]
    pub queries: PathBuf,
    /// Results per query.
    #[arg(short, default_value_t = 10)]
    pub k: usize,
    /// IVF lists (0: min(4·√n, n / 32)).
    #[arg(long, default_value_t = 0)]
    pub nlist: usize,
    /// IVF lists scanned per query (0: 22% of nlist).
    #[arg(long, default_value_t = 0)]
    pub nprobe: usize,
    /// Candidates re-scored exactly per query (0: 300).
    #[arg(long, default_value_t = 0)]
    pub reorder: usize,
    /// Print one JSON object.
    #[arg(long)]
    pub json: bool,
}

/// Runs `search` (answering `queries` queries) once untimed, then 3 times timed: its last
/// answer and its best queries/s, as ann-benchmarks reports.
fn best(queries: usize, mut search: impl FnMut() -> Vec<Vec<Scored>>) -> (Vec<Vec<Scored>>, f64) {
    let mut out = search();
    let mut qps = 0f64;
    for _ in 0..3 {
        let start = Instant::now();
        out = search();
        qps = qps.max(queries as f64 / start.elapsed().as_secs_f64());
    }
    (out, qps)
}

pub fn run(a: IndexArgs) -> towers::Result<()> {
    let (candidates, n, dim) = npy::read_f32_matrix(&a.candidates)?;
    let (queries, nq, qdim) = npy::read_f32_matrix(&a.queries)?;
    if qdim != dim {
        return Err(Error::Data(format!("queries have {qdim} dimensions, candidates {dim}")));
    }
    let one = rayon::ThreadPoolBuilder::new().num_threads(1).build().map_err(Error::internal)?;
    let params = IvfParams { nlist: a.nlist, nprobe: a.nprobe, reorder: a.reorder, ..Default::default() };
    let start = Instant::now();
    let ivf = IvfIndex::build(&candidates, dim, &params, &mut crate::progress::Bar::new(!a.json))?;
    let ann_build_s = start.elapsed().as_secs_f64();
    let index = BruteForceIndex::new(candidates, dim, Metric::Dot);
    let one_at_a_time = |ix: &dyn Index, n: usize| -> Vec<Vec<Scored>> {
        one.install(|| (0..n).map(|i| ix.search(&queries[i * dim..(i + 1) * dim], a.k, &Filter::default())).collect())
    };
    let (batched, exact_qps) = best(nq, || index.search_batch(&queries, a.k, &[]));
    let sample = nq.min(100);
    let (single, single_qps) = best(sample, || one_at_a_time(&index, sample));
    // the batched and one-query paths may round differently (GEMM fallback): near-ties may swap
    let agree = recall_at_k(&single, &batched[..sample]);
    if agree < 0.99 {
        return Err(Error::Internal(format!("single-query and batched results agree on only {agree:.3} of the ids")));
    }
    // approximate: all queries in one call on one thread, then one query per call on one thread
    let (ann, ann_qps) = best(nq, || one.install(|| ivf.search_batch(&queries, a.k, &[])));
    let (ann_single, ann_single_qps) = best(nq, || one_at_a_time(&ivf, nq));
    let recall = recall_at_k(&ann, &batched);
    if ann_single != ann {
        return Err(Error::Internal("the IVF index answers one query differently alone and in a batch".into()));
    }
    let report = json!({
        "n": n, "dim": dim, "nq": nq, "k": a.k, "threads": rayon::current_num_threads(),
        "exact_qps": exact_qps, "exact_qps_single_1thread": single_qps,
        "ann_kind": "ivf-pq4", "ann_nlist": ivf.nlist(), "ann_nprobe": ivf.nprobe(), "ann_reorder": ivf.reorder(),
        "ann_build_s": ann_build_s, "ann_qps_1thread": ann_qps, "ann_qps_single_1thread": ann_single_qps,
        "ann_recall_10": recall,
    });
    if a.json {
        return print_json(&report);
    }
    crate::outln!(
        "exact top-{} over {n} x {dim}: {exact_qps:.0} queries/s batched ({} queries, {} threads), {single_qps:.0} queries/s one at a time on 1 thread",
        a.k,
        nq,
        rayon::current_num_threads()
    )?;
    crate::outln!(
        "IVF (nlist {}, nprobe {}, reorder {}): built in {ann_build_s:.1} s; recall@{} {recall:.4} against exact; {ann_qps:.0} queries/s batched on 1 thread, {ann_single_qps:.0} queries/s one at a time on 1 thread",
        ivf.nlist(),
        ivf.nprobe(),
        ivf.reorder(),
        a.k
    )?;
    Ok(())
}
