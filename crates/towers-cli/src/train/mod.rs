//! `towers train`: the options, the trainer they give (one model kind or a pipeline), and the
//! report.

mod data;

use crate::common::{TableArgs, print_json, print_report};
use crate::progress::Bar;
use clap::Args as ClapArgs;
use std::path::PathBuf;
use towers::data::Catalog;
use towers::{Error, EvalOptions, Report, Served, TrainOptions};

/// Options of `towers train`: the files, and the model's options ([`TrainOptions`], shared with
/// the Python package). Unset options take the value of `--config`, else of the recipe:
/// `--recipe`, or `tfrs` when `--optimizer adagrad` is given, else `towers` (see the README).
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
    #[command(flatten)]
    pub options: TrainOptions,
    #[command(flatten)]
    pub table: TableArgs,
    /// Print one JSON object with the training figures (and test metrics) as the last line.
    #[arg(long)]
    pub json: bool,
}

pub fn run(a: Args) -> towers::Result<()> {
    let features = a.options.read_features(crate::common::movielens_dir(None))?;
    let trainer = a.options.trainer(features.as_ref())?;
    // one writer per model directory, from the start: a second fails at once (or waits)
    let lock = a.out.as_deref().map(|o| crate::common::lock_model_dir(o, a.wait)).transpose()?;
    let catalog = a.items.as_ref().map(Catalog::read).transpose()?;
    let (train, test) = data::read(&a, trainer.seed())?;
    let mut bar = Bar::new(!a.json);
    let mut trainer = trainer.catalog(catalog.as_ref()).observer(&mut bar);
    if let Some(t) = &test {
        trainer = trainer.validation(t);
    }
    let served = trainer.fit_served(&train)?;
    if let Some(lock) = &lock {
        served.save_locked(lock)?;
    }
    let evaluation = test.as_ref().map(|t| served.evaluate(t, &EvalOptions::new())).transpose()?;
    report(&a, &served, evaluation.as_ref())
}

/// Prints the training figures, the evaluation on the test data, and where the model went.
fn report(a: &Args, served: &Served, evaluation: Option<&Report>) -> towers::Result<()> {
    let model = served.retriever().artifact();
    if a.json {
        let mut v = serde_json::to_value(&model.summary).map_err(Error::internal)?;
        if let Some(obj) = v.as_object_mut() {
            obj.insert("max_rss_mb".into(), serde_json::json!(crate::common::max_rss_mb()));
            if let Some(e) = evaluation {
                obj.insert("test".into(), serde_json::to_value(e).map_err(Error::internal)?);
            }
        }
        return print_json(&v);
    }
    for e in &model.history.epochs {
        let val = e
            .validation
            .map(|m| format!("  test top-10 {:.4} top-100 {:.4} MRR@20 {:.4}", m.top_10, m.top_100, m.mrr_20))
            .unwrap_or_default();
        crate::outln!("epoch {:>3}  loss {:>12.4}  {:>7.3} s{val}", e.epoch, e.loss, e.seconds)?;
    }
    let s = &model.summary;
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
