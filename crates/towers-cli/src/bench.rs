//! `towers bench`: training and evaluation speed, beside TFRS when its peer is set up.

use crate::common::print_json;
use clap::{Args as ClapArgs, Subcommand};
use serde_json::{Value, json};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Instant;
use towers::data::{CandidateKey, Catalog, Dataset, Interactions, Positions, Sessions, TableFormat, npy};
use towers::index::{BruteForceIndex, Filter, Index, IvfIndex, IvfParams, Metric, Scored, recall_at_k};
use towers::kernels::gru::GruWeights;
use towers::rng::Rng;
use towers::train::SequenceConfig;
use towers::{Artifact, Error, TrainConfig, Trainer};

/// What to measure.
#[derive(Subcommand, Debug)]
pub enum Args {
    /// Training and evaluation speed on MovieLens, beside TFRS when its peer is set up.
    Train(TrainArgs),
    /// Exact and approximate (IVF) top-k search over vectors from .npy files (e.g.
    /// ../shared/peer/ann_peers.py --save-dir): speed, and the IVF index's recall.
    Index(IndexArgs),
    /// GRU forward + backward over a batch of sequences (the sequential query tower's cost).
    Gru(GruArgs),
}

/// Options of `towers bench gru` (defaults: TFRS's sequential tutorial, batch 4096, 10 steps, 32 wide).
#[derive(ClapArgs, Debug)]
pub struct GruArgs {
    /// Sequences per batch.
    #[arg(long, default_value_t = 4096)]
    pub batch: usize,
    /// Steps per sequence.
    #[arg(long, default_value_t = 10)]
    pub steps: usize,
    /// Input and hidden width.
    #[arg(long, default_value_t = 32)]
    pub dim: usize,
    /// Timed repetitions (after one warm-up).
    #[arg(long, default_value_t = 10)]
    pub repeat: usize,
}

fn gru(a: GruArgs) -> towers::Result<()> {
    let mut rng = Rng::new(3);
    let w = GruWeights::new(a.dim, a.dim, &mut rng);
    let x: Vec<f32> = (0..a.batch * a.steps * a.dim).map(|_| rng.next_f32() - 0.5).collect();
    // padding as in short histories: sequence i has 1 + i % steps real items
    let mask: Vec<bool> = (0..a.batch * a.steps).map(|i| i % a.steps <= (i / a.steps) % a.steps).collect();
    let d_out: Vec<f32> = (0..a.batch * a.dim).map(|_| rng.next_f32() - 0.5).collect();
    let mut times = Vec::new();
    for _ in 0..=a.repeat {
        let start = Instant::now();
        let (_, cache) = w.forward(&x, &mask, a.batch, a.steps);
        let g = w.backward(&x, &mask, &cache, &d_out);
        times.push(start.elapsed().as_secs_f64());
        std::hint::black_box(g);
    }
    times.remove(0);
    println!(
        "GRU({}) over {} sequences x {} steps: {:.2} ms forward + backward (median of {})",
        a.dim,
        a.batch,
        a.steps,
        median(times) * 1e3,
        a.repeat
    );
    Ok(())
}

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

/// Options of `towers bench train`.
#[derive(ClapArgs, Debug)]
pub struct TrainArgs {
    /// The TFRS split directory (train.tsv, test.tsv, movies.tsv).
    #[arg(long, default_value = "../shared/data/ml-100k-splits/tfrs-80-20")]
    pub splits: PathBuf,
    /// Python of the TFRS peer venv; default $PEER_VENV/tf/bin/python or ~/.cache/towers-peer/tf/bin/python.
    #[arg(long)]
    pub peer: Option<PathBuf>,
    /// The peer's scripts.
    #[arg(long, default_value = "../shared/peer")]
    pub peer_dir: PathBuf,
    /// Skip the peer even when it is set up.
    #[arg(long)]
    pub no_peer: bool,
    /// Epochs per timed training run of towers (the first is a warm-up; the median of the rest counts).
    #[arg(long, default_value_t = 6)]
    pub epochs: usize,
    /// The sequential split (examples format) for the GRU comparison.
    #[arg(long, default_value = "../shared/data/ml-100k-splits/seq-last-out")]
    pub sequential: PathBuf,
    /// Epochs of each TFRS run (the first is a warm-up).
    #[arg(long, default_value_t = 3)]
    pub peer_epochs: usize,
    /// Items of the synthetic large catalogue.
    #[arg(long, default_value_t = 1_000_000)]
    pub large_items: usize,
    /// Print one JSON object.
    #[arg(long)]
    pub json: bool,
}

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(|a, b| a.total_cmp(b));
    if v.is_empty() { f64::NAN } else { v[v.len() / 2] }
}

/// Median epoch seconds after the first (warm-up) epoch.
fn warm_epoch(epoch_s: &[f64]) -> f64 {
    median(epoch_s.iter().skip(usize::from(epoch_s.len() > 1)).copied().collect())
}

fn peer_python(a: &TrainArgs) -> Option<PathBuf> {
    if a.no_peer {
        return None;
    }
    let venv = std::env::var_os("PEER_VENV")
        .map(PathBuf::from)
        .or_else(|| std::env::var_os("HOME").map(|h| Path::new(&h).join(".cache/towers-peer")));
    a.peer.clone().or_else(|| venv.map(|v| v.join("tf/bin/python"))).filter(|p| p.is_file())
}

/// Runs one of the peer's scripts and returns the JSON object it prints last.
fn run_peer(py: &Path, script: &Path, args: &[String]) -> Option<Value> {
    let out = Command::new(py).arg(script).args(args).env("TF_USE_LEGACY_KERAS", "1").output().ok()?;
    let text = String::from_utf8_lossy(&out.stdout);
    text.lines().rev().find_map(|l| serde_json::from_str::<Value>(l).ok())
}

/// Epoch seconds of training on `n` random pairs over `items` candidates at batch 1024.
fn synthetic_epoch(items: usize, n: usize, epochs: usize) -> towers::Result<f64> {
    let mut rng = Rng::new(1);
    let table = Interactions {
        queries: (0..n).map(|_| rng.below(10_000).to_string()).collect(),
        candidates: (0..n).map(|_| rng.below(items).to_string()).collect(),
        ..Default::default()
    };
    let mut data = Dataset::build(&table, None, Default::default())?;
    // the whole catalogue is in the tables, not only the items the sample happened to draw
    while data.items.len() <= items {
        let id = format!("unseen-{}", data.items.len());
        data.items.rows.insert(id.clone(), data.items.len() as u32);
        data.items.ids.push(id);
        data.items.titles.push(String::new());
    }
    let config = TrainConfig { batch_size: 1024, epochs, ..TrainConfig::tfrs() };
    let (_, history) = Trainer::new(config)?.fit(&data, None)?;
    Ok(warm_epoch(&history.epochs.iter().map(|e| e.seconds).collect::<Vec<_>>()))
}

pub fn run(a: Args) -> towers::Result<()> {
    match a {
        Args::Train(a) => train(a),
        Args::Index(a) => index(a),
        Args::Gru(a) => gru(a),
    }
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

fn index(a: IndexArgs) -> towers::Result<()> {
    let (candidates, n, dim) = npy::read_f32_matrix(&a.candidates)?;
    let (queries, nq, qdim) = npy::read_f32_matrix(&a.queries)?;
    if qdim != dim {
        return Err(Error::Invalid(format!("queries have {qdim} dimensions, candidates {dim}")));
    }
    let one = rayon::ThreadPoolBuilder::new().num_threads(1).build().map_err(|e| Error::Invalid(e.to_string()))?;
    let params = IvfParams { nlist: a.nlist, nprobe: a.nprobe, reorder: a.reorder, ..Default::default() };
    let start = Instant::now();
    let ivf = IvfIndex::build(&candidates, dim, &params, !a.json)?;
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
        return Err(Error::Invalid(format!("single-query and batched results agree on only {agree:.3} of the ids")));
    }
    // approximate: all queries in one call on one thread, then one query per call on one thread
    let (ann, ann_qps) = best(nq, || one.install(|| ivf.search_batch(&queries, a.k, &[])));
    let (ann_single, ann_single_qps) = best(nq, || one_at_a_time(&ivf, nq));
    let recall = recall_at_k(&ann, &batched);
    if ann_single != ann {
        return Err(Error::Invalid("the IVF index answers one query differently alone and in a batch".into()));
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
    println!(
        "exact top-{} over {n} x {dim}: {exact_qps:.0} queries/s batched ({} queries, {} threads), {single_qps:.0} queries/s one at a time on 1 thread",
        a.k,
        nq,
        rayon::current_num_threads()
    );
    println!(
        "IVF (nlist {}, nprobe {}, reorder {}): built in {ann_build_s:.1} s; recall@{} {recall:.4} against exact; {ann_qps:.0} queries/s batched on 1 thread, {ann_single_qps:.0} queries/s one at a time on 1 thread",
        ivf.nlist(),
        ivf.nprobe(),
        ivf.reorder(),
        a.k
    );
    Ok(())
}

fn train(a: TrainArgs) -> towers::Result<()> {
    let fmt = TableFormat::default();
    let train = Interactions::read(a.splits.join("train.tsv"), &fmt)?;
    let test = Interactions::read(a.splits.join("test.tsv"), &fmt)?;
    let movies = Catalog::read(a.splits.join("movies.tsv"))?;
    let threads = rayon::current_num_threads();
    let peer = peer_python(&a);
    let mut report = json!({ "threads": threads, "train_examples": train.len(), "test_pairs": test.len() });
    let say = |s: String| {
        if !a.json {
            println!("{s}")
        }
    };
    say(format!(
        "towers bench: {} training pairs, {} test pairs, {threads} threads; TFRS peer: {}",
        train.len(),
        test.len(),
        peer.as_ref().map_or("not set up (../shared/peer/setup.sh)".into(), |p| p.display().to_string())
    ));
    let mut eval_s = f64::NAN;
    for batch in [4096usize, 8192] {
        let config =
            TrainConfig { batch_size: batch, epochs: a.epochs, key: CandidateKey::Title, ..TrainConfig::tfrs() };
        let model = Artifact::train(config, &train, Some(&movies), None, false)?;
        let ours = warm_epoch(&model.summary.epoch_s);
        if batch == 8192 {
            let runs: towers::Result<Vec<f64>> =
                (0..7).map(|_| model.evaluate(&test, false).map(|e| e.eval_s)).collect();
            eval_s = median(runs?);
        }
        let args = [
            "--data",
            &a.splits.to_string_lossy(),
            "--key",
            "title",
            "--epochs",
            &a.peer_epochs.to_string(),
            "--batch",
            &batch.to_string(),
        ]
        .map(String::from);
        let peer_run = peer.as_ref().and_then(|py| run_peer(py, &a.peer_dir.join("tfrs_basic.py"), &args));
        let theirs = peer_run
            .as_ref()
            .and_then(|p| p["epoch_s"].as_array())
            .map(|v| warm_epoch(&v.iter().filter_map(Value::as_f64).collect::<Vec<_>>()));
        say(format!(
            "train, batch {batch:>5}: {:.4} s/epoch{}",
            ours,
            theirs.map(|t| format!("   TFRS {t:.3} s/epoch   speed-up {:.1}x", t / ours)).unwrap_or_default()
        ));
        report[format!("epoch_s_b{batch}")] = json!(ours);
        if let Some(t) = theirs {
            report[format!("tfrs_epoch_s_b{batch}")] = json!(t);
            report[format!("speedup_epoch_b{batch}")] = json!(t / ours);
        }
        if batch == 8192 {
            let tfrs_eval =
                peer_run.as_ref().and_then(|p| p["eval_s"].as_array()).and_then(|v| v.last()).and_then(Value::as_f64);
            say(format!(
                "evaluate {} pairs: {:.4} s{}",
                test.len(),
                eval_s,
                tfrs_eval.map(|t| format!("   TFRS {t:.3} s (warm)   speed-up {:.0}x", t / eval_s)).unwrap_or_default()
            ));
            report["eval_s"] = json!(eval_s);
            if let Some(t) = tfrs_eval {
                report["tfrs_eval_s"] = json!(t);
                report["speedup_eval"] = json!(t / eval_s);
            }
        }
    }
    // sequential: TFRS's GRU tutorial model (GRU 32, Adagrad 0.1, batch 4096) on seq-last-out
    let seq_train = Sessions::read_examples(a.sequential.join("train.tsv"))?;
    let config = TrainConfig { batch_size: 4096, epochs: a.epochs, ..TrainConfig::tfrs() };
    let model =
        Artifact::train_sequential(config, SequenceConfig::tfrs(), &seq_train, Positions::Last, None, None, false)?;
    let ours = warm_epoch(&model.summary.epoch_s);
    let args = ["--data", &a.sequential.to_string_lossy(), "--epochs", &a.peer_epochs.to_string(), "--batch", "4096"]
        .map(String::from);
    let theirs =
        peer.as_ref().and_then(|py| run_peer(py, &a.peer_dir.join("tfrs_sequential.py"), &args)).and_then(|p| {
            p["epoch_s"].as_array().map(|v| warm_epoch(&v.iter().filter_map(Value::as_f64).collect::<Vec<_>>()))
        });
    say(format!(
        "sequential GRU(32), batch 4096: {ours:.3} s/epoch{}",
        theirs.map(|t| format!("   TFRS {t:.3} s/epoch   speed-up {:.1}x", t / ours)).unwrap_or_default()
    ));
    report["seq_epoch_s"] = json!(ours);
    if let Some(t) = theirs {
        report["tfrs_seq_epoch_s"] = json!(t);
        report["speedup_seq_epoch"] = json!(t / ours);
    }
    // 10,000 items: a batch of 1,024 already holds ~975 distinct items, as with 1,000,000, so the
    // two differ in catalogue size, not in the work of a step.
    let n = 1024 * 20;
    let small = synthetic_epoch(10_000, n, a.epochs)?;
    let large = synthetic_epoch(a.large_items, n, a.epochs)?;
    say(format!(
        "synthetic, batch 1024, {} steps/epoch: {:.4} s/epoch with 10,000 items, {:.4} s/epoch with {} items (ratio {:.2})",
        n / 1024,
        small,
        large,
        a.large_items,
        large / small
    ));
    report["synthetic_epoch_s_10k_items"] = json!(small);
    report["synthetic_epoch_s_large_items"] = json!(large);
    report["large_items"] = json!(a.large_items);
    if a.json {
        print_json(&report)?;
    }
    if !eval_s.is_finite() {
        return Err(Error::Invalid("evaluation did not run".into()));
    }
    Ok(())
}
