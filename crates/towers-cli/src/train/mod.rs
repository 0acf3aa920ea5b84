//! `towers train`: the options, the trainer they give (one model kind or a pipeline), and the
//! report.

mod data;
mod distributed;

use crate::common::{TableArgs, print_json, print_report};
use crate::progress::Bar;
use clap::Args as ClapArgs;
use std::path::{Path, PathBuf};
use towers::artifact::{History, TrainSummary};
use towers::data::Catalog;
use towers::train::Checkpoints;
use towers::{Error, EvalOptions, Report, Served, TrainOptions};

/// Options of `towers train`: the files, and the model's options ([`TrainOptions`], shared with
/// the Python package). Unset options take the value of `--config`, else of the recipe:
/// `--recipe`, or `tfrs` when `--optimizer adagrad` is given, else `towers` (see the book's retrieval guide).
#[derive(ClapArgs, Debug)]
pub struct Args {
    /// Training data: interactions (CSV/TSV), or sequences for --task sequential.
    #[arg(long)]
    pub train: PathBuf,
    /// Item catalogue: id and title per line (movies.tsv, u.item, movies.csv).
    #[arg(long)]
    pub items: Option<PathBuf>,
    /// Test data (same layout as --train): evaluated after every epoch and at the end.
    #[arg(long)]
    pub test: Option<PathBuf>,
    /// Split the training file instead: random:FRACTION[:SEED], time:FRACTION, cutoff:TS or last
    /// (--task sequential with an interaction table: last only, each user's last item).
    #[arg(long, conflicts_with = "test")]
    pub split: Option<String>,
    /// Write the model directory here (atomically; the directory is locked while training).
    #[arg(long)]
    pub out: Option<PathBuf>,
    /// If another process is writing --out, wait for it instead of failing.
    #[arg(long, requires = "out")]
    pub wait: bool,
    /// Continue this model (or pipeline), trained before on earlier data, with the same
    /// options: known ids start from its embeddings and optimizer state, new ids get new rows,
    /// seen items and item counts carry over. With --distributed every rank reads it (tables
    /// replicated).
    #[arg(long)]
    pub init_from: Option<PathBuf>,
    /// With --init-from: what an item occurrence counted by the old model weighs now in the
    /// popularity and logQ counts, in [0, 1] (0 forgets them).
    #[arg(long, requires = "init_from", default_value_t = 1.0)]
    pub count_decay: f32,
    /// Write a checkpoint every N steps (batches) to OUT.checkpoint beside --out, atomically;
    /// deleted once the model is written. With --distributed rank 0 writes it (tables
    /// replicated) and every rank resumes from it.
    #[arg(long, requires = "out", value_parser = clap::value_parser!(u64).range(1..))]
    pub checkpoint_every: Option<u64>,
    /// Resume from OUT.checkpoint (left by a killed run with the same options and data), or
    /// start from the beginning when there is none; the model is the one an uninterrupted run
    /// writes.
    #[arg(long, requires = "out")]
    pub resume: bool,
    #[command(flatten)]
    pub options: TrainOptions,
    #[command(flatten)]
    pub table: TableArgs,
    /// Print one JSON object with the training figures (and test metrics) as the last line.
    #[arg(long)]
    pub json: bool,
    /// Train as one rank of an MPI job: `mpirun -np N towers train … --distributed` (a build
    /// with `--features mpi`). Each rank reads its share of --train (a table, or a sessions or
    /// examples file); the global batch is the union of the ranks' batches; rank 0 writes --out.
    /// Every kind but SASRec, pipelines, and rankers over attribute or context features.
    #[arg(long)]
    pub distributed: bool,
    /// With --distributed: shard id tables of at least --shard-min-rows rows across the ranks
    /// (row-wise, with their optimizer state) instead of replicating them. Rank 0 writes --out
    /// as the ranks send the rows, never holding a sharded table whole; --test is then measured
    /// after every epoch only (evaluate the model with `towers evaluate`).
    #[arg(long, requires = "distributed")]
    pub shard_tables: bool,
    /// With --shard-tables: the smallest table that is sharded, in rows.
    #[arg(long, requires = "shard_tables", default_value_t = towers::train::Sharding::default().min_rows)]
    pub shard_min_rows: usize,
}

pub fn run(a: Args) -> towers::Result<()> {
    let features = a.options.read_features(crate::common::movielens_dir(None))?;
    if a.distributed {
        return distributed::run(&a, features.as_ref());
    }
    let trainer = a.options.trainer(features.as_ref())?;
    // one writer per model directory, from the start: a second fails at once (or waits)
    let lock = a.out.as_deref().map(|o| crate::common::lock_model_dir(o, a.wait)).transpose()?;
    let catalog = a.items.as_ref().map(Catalog::read).transpose()?;
    let (train, test) = data::read(&a, trainer.seed())?;
    let prior = a.init_from.as_ref().map(Served::load).transpose()?;
    let checkpoints = checkpoints(&a);
    let mut bar = Bar::new(!a.json);
    let mut trainer = trainer.catalog(catalog.as_ref()).observer(&mut bar);
    if let Some(t) = &test {
        trainer = trainer.validation(t);
    }
    if let Some(p) = &prior {
        trainer = trainer.init_from(p).count_decay(a.count_decay);
    }
    if let Some(c) = &checkpoints {
        trainer = trainer.checkpoints(c);
    }
    // the optimizer state waits for the save in a file beside --out, not in memory
    let out_dir = a.out.as_deref().map(|o| o.parent().filter(|p| !p.as_os_str().is_empty()).unwrap_or(Path::new(".")));
    if let Some(dir) = out_dir {
        trainer = trainer.spill_optimizer(dir);
    }
    let served = trainer.fit_served(&train)?;
    if let Some(lock) = &lock {
        served.save_locked(lock)?;
    }
    if let Some(c) = &checkpoints {
        c.remove()?;
    }
    let evaluation = test.as_ref().map(|t| served.evaluate(t, &EvalOptions::new())).transpose()?;
    let model = served.retriever().artifact();
    report(&a, (&model.summary, &model.history), evaluation.as_ref())
}

/// Prints the training figures, the evaluation on the test data, and where the model went.
/// The checkpoints `--checkpoint-every` and `--resume` ask for, beside `--out`.
fn checkpoints(a: &Args) -> Option<Checkpoints> {
    let every = a.checkpoint_every.unwrap_or(0) as usize;
    a.out
        .as_ref()
        .filter(|_| a.checkpoint_every.is_some() || a.resume)
        .map(|out| Checkpoints::beside(out, every).resume(a.resume))
}

pub(super) fn report(
    a: &Args,
    (summary, history): (&TrainSummary, &History),
    evaluation: Option<&Report>,
) -> towers::Result<()> {
    if a.json {
        let mut v = serde_json::to_value(summary).map_err(Error::internal)?;
        if let Some(obj) = v.as_object_mut() {
            obj.insert("max_rss_mb".into(), serde_json::json!(crate::common::max_rss_mb()));
            if let Some(e) = evaluation {
                obj.insert("test".into(), serde_json::to_value(e).map_err(Error::internal)?);
            }
        }
        return print_json(&v);
    }
    for e in &history.epochs {
        let val = e
            .validation
            .map(|m| format!("  test top-10 {:.4} top-100 {:.4} MRR@20 {:.4}", m.top_10, m.top_100, m.mrr_20))
            .unwrap_or_default();
        crate::outln!("epoch {:>3}  loss {:>12.4}  {:>7.3} s{val}", e.epoch, e.loss, e.seconds)?;
    }
    let s = summary;
    crate::outln!(
        "trained on {} examples in {:.2} s ({:.0} examples/s; peak memory {:.0} MB)",
        s.n_train,
        s.train_s,
        s.examples_per_s,
        crate::common::max_rss_mb()
    )?;
    if let Some(e) = evaluation {
        print_report(e)?;
    }
    if let Some(out) = &a.out {
        crate::outln!("model written to {} (training curve: history.svg)", out.display())?;
    }
    Ok(())
}
