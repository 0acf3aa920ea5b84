//! `towers-bench tune`: how towers' defaults were chosen. Candidate configurations are trained on
//! part of the MovieLens training split and compared on a validation share of it — the test set
//! is not looked at. Each argument is a JSON training configuration (keys as in `TrainConfig`);
//! missing keys take towers' defaults.
//!
//! ```sh
//! towers-bench tune '{}' '{"l2":0}' '{"retrieval":{"logq_correction":false}}'
//! ```

use clap::Args as ClapArgs;
use std::path::PathBuf;
use towers::data::{Catalog, Interactions, Split, TableFormat};
use towers::{EvalOptions, ModelSpec, TrainConfig, Trainer, evaluate};

/// Options of `towers-bench tune`.
#[derive(ClapArgs, Debug)]
pub struct TuneArgs {
    /// The folder of the split (train.tsv, movies.tsv).
    #[arg(long, env = "TOWERS_SPLITS", default_value = "../shared/data/ml-100k-splits/tfrs-80-20")]
    pub splits: PathBuf,
    /// Training configurations, each as JSON.
    #[arg(required = true)]
    pub configs: Vec<String>,
}

pub fn run(a: TuneArgs) -> towers::Result<()> {
    let all = Interactions::read(a.splits.join("train.tsv"), &TableFormat::default())?;
    let movies = Catalog::read(a.splits.join("movies.tsv"))?;
    let (train, validation) = Split::Random { test_fraction: 0.15, seed: 7 }.apply(&all)?;
    crate::outln!("{} training / {} validation pairs (from train.tsv only)", train.len(), validation.len())?;
    crate::outln!("{:>8} {:>8} {:>14} {:>8}  config", "top-10", "top-100", "excl. top-10", "train s")?;
    for arg in &a.configs {
        let config: TrainConfig =
            serde_json::from_str(arg).map_err(|e| towers::Error::Config(format!("{arg}: {e}")))?;
        let model = Trainer::new(ModelSpec::Retrieval).config(config).catalog(&movies).fit(&train)?;
        let (e, x) = (
            evaluate(&model, &validation, &EvalOptions::new())?,
            evaluate(&model, &validation, &EvalOptions::new().exclude_seen(true))?,
        );
        crate::outln!(
            "{:>8.4} {:>8.4} {:>14.4} {:>8.2}  {arg}",
            e.ranked()?.model.top_10,
            e.ranked()?.model.top_100,
            x.ranked()?.model.top_10,
            model.summary.train_s
        )?;
    }
    Ok(())
}
