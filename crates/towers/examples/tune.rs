//! How towers' defaults were chosen: candidate configurations are trained on part of the
//! MovieLens training split and compared on a validation share of it — the test set is not
//! looked at. Each argument is a JSON training configuration (keys as in `TrainConfig`);
//! missing keys take towers' defaults.
//!
//! ```sh
//! cargo run --release --example tune -- '{}' '{"l2":0}' '{"retrieval":{"logq_correction":false}}'
//! ```

use towers::EvalOptions;
use towers::data::{Catalog, Interactions, Split, TableFormat};
use towers::{ModelSpec, TrainConfig, Trainer, evaluate};

fn main() -> towers::Result<()> {
    let dir = std::env::var("TOWERS_SPLITS").unwrap_or_else(|_| "../shared/data/ml-100k-splits/tfrs-80-20".into());
    let all = Interactions::read(format!("{dir}/train.tsv"), &TableFormat::default())?;
    let movies = Catalog::read(format!("{dir}/movies.tsv"))?;
    let (train, validation) = Split::Random { test_fraction: 0.15, seed: 7 }.apply(&all)?;
    println!("{} training / {} validation pairs (from train.tsv only)", train.len(), validation.len());
    println!("{:>8} {:>8} {:>14} {:>8}  config", "top-10", "top-100", "excl. top-10", "train s");
    for arg in std::env::args().skip(1) {
        let config: TrainConfig =
            serde_json::from_str(&arg).map_err(|e| towers::Error::Config(format!("{arg}: {e}")))?;
        let model = Trainer::new(ModelSpec::Retrieval).config(config).catalog(&movies).fit(&train)?;
        let (e, x) = (
            evaluate(&model, &validation, &EvalOptions::new())?,
            evaluate(&model, &validation, &EvalOptions::new().exclude_seen(true))?,
        );
        println!(
            "{:>8.4} {:>8.4} {:>14.4} {:>8.2}  {arg}",
            e.ranked()?.model.top_10,
            e.ranked()?.model.top_100,
            x.ranked()?.model.top_10,
            model.summary.train_s
        );
    }
    Ok(())
}
