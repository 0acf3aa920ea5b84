//! `towers bench train`: training and evaluation speed on MovieLens, beside TFRS.

use super::{median, peer, warm_epoch};
use crate::common::print_json;
use clap::Args as ClapArgs;
use serde_json::{Value, json};
use std::path::PathBuf;
use towers::data::{CandidateKey, Catalog, InputFormat, Interactions, Row, Sessions, TableFormat};
use towers::model::SequenceConfig;
use towers::rng::Rng;
use towers::{Error, EvalOptions, ModelSpec, TrainConfig, Trainer, evaluate};

/// Options of `towers bench train`.
#[derive(ClapArgs, Debug)]
pub struct TrainArgs {
    /// The TFRS split directory (train.tsv, test.tsv, movies.tsv).
    #[arg(long, default_value = "../shared/data/ml-100k-splits/tfrs-80-20")]
    pub splits: PathBuf,
    #[command(flatten)]
    pub peer: peer::PeerArgs,
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

/// Epoch seconds of training on `n` random pairs over `items` candidates at batch 1024.
fn synthetic_epoch(items: usize, n: usize, epochs: usize) -> towers::Result<f64> {
    let mut rng = Rng::new(1);
    let pairs: Vec<(String, String)> =
        (0..n).map(|_| (rng.below(10_000).to_string(), rng.below(items).to_string())).collect();
    let table =
        Interactions::from_rows(pairs.iter().map(|(q, c)| Row { query: q, candidate: c, ..Default::default() }))?;
    // the whole catalogue is in the tables, not only the items the sample happened to draw
    let catalog = Catalog::from_pairs((0..items).map(|i| (i.to_string(), String::new())));
    let config = TrainConfig { batch_size: 1024, epochs, ..TrainConfig::tfrs() };
    let model = Trainer::new(ModelSpec::Retrieval).config(config).catalog(&catalog).fit(&table)?;
    Ok(warm_epoch(&model.summary.epoch_s))
}

pub fn run(a: TrainArgs) -> towers::Result<()> {
    let fmt = TableFormat::default();
    let train = Interactions::read(a.splits.join("train.tsv"), &fmt)?;
    let test = Interactions::read(a.splits.join("test.tsv"), &fmt)?;
    let movies = Catalog::read(a.splits.join("movies.tsv"))?;
    let threads = rayon::current_num_threads();
    let peer = a.peer.python();
    let mut report = json!({ "threads": threads, "train_examples": train.len(), "test_pairs": test.len() });
    let say = |s: String| -> towers::Result<()> {
        if !a.json {
            crate::outln!("{s}")?;
        }
        Ok(())
    };
    say(format!(
        "towers bench: {} training pairs, {} test pairs, {threads} threads; TFRS peer: {}",
        train.len(),
        test.len(),
        peer.as_ref().map_or("not set up (../shared/peer/setup.sh)".into(), |p| p.display().to_string())
    ))?;
    let mut eval_s = f64::NAN;
    for batch in [4096usize, 8192] {
        let config =
            TrainConfig { batch_size: batch, epochs: a.epochs, key: CandidateKey::Title, ..TrainConfig::tfrs() };
        let model = Trainer::new(ModelSpec::Retrieval).config(config).catalog(&movies).fit(&train)?;
        let ours = warm_epoch(&model.summary.epoch_s);
        if batch == 8192 {
            let runs: towers::Result<Vec<f64>> =
                (0..7).map(|_| Ok(evaluate(&model, &test, &EvalOptions::new())?.ranked()?.eval_s)).collect();
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
        let peer_run = a.peer.run("tfrs_basic.py", &args);
        let theirs = peer_run
            .as_ref()
            .and_then(|p| p["epoch_s"].as_array())
            .map(|v| warm_epoch(&v.iter().filter_map(Value::as_f64).collect::<Vec<_>>()));
        say(format!(
            "train, batch {batch:>5}: {:.4} s/epoch{}",
            ours,
            theirs.map(|t| format!("   TFRS {t:.3} s/epoch   speed-up {:.1}x", t / ours)).unwrap_or_default()
        ))?;
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
            ))?;
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
    let spec = ModelSpec::Sequential(SequenceConfig { format: InputFormat::Examples, ..SequenceConfig::tfrs() });
    let model = Trainer::new(spec).config(config).fit(&seq_train)?;
    let ours = warm_epoch(&model.summary.epoch_s);
    let args = ["--data", &a.sequential.to_string_lossy(), "--epochs", &a.peer_epochs.to_string(), "--batch", "4096"]
        .map(String::from);
    let theirs = a.peer.run("tfrs_sequential.py", &args).and_then(|p| {
        p["epoch_s"].as_array().map(|v| warm_epoch(&v.iter().filter_map(Value::as_f64).collect::<Vec<_>>()))
    });
    say(format!(
        "sequential GRU(32), batch 4096: {ours:.3} s/epoch{}",
        theirs.map(|t| format!("   TFRS {t:.3} s/epoch   speed-up {:.1}x", t / ours)).unwrap_or_default()
    ))?;
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
    ))?;
    report["synthetic_epoch_s_10k_items"] = json!(small);
    report["synthetic_epoch_s_large_items"] = json!(large);
    report["large_items"] = json!(a.large_items);
    if a.json {
        print_json(&report)?;
    }
    if !eval_s.is_finite() {
        return Err(Error::Internal("evaluation did not run".into()));
    }
    Ok(())
}
