//! Basic retrieval on MovieLens 100K, as in TFRS's tutorial, with the library alone:
//! read the split, train towers' defaults and TFRS's recipe, evaluate both beside the
//! popularity baseline, recommend for user 42, save and reload the model.
//!
//! ```sh
//! cargo run --release --example movielens [-- ../shared/data/ml-100k-splits/tfrs-80-20]
//! ```

use towers::data::{CandidateKey, Catalog, Interactions, TableFormat};
use towers::{Artifact, TrainConfig};

fn main() -> towers::Result<()> {
    let dir = std::env::args().nth(1).unwrap_or_else(|| "../shared/data/ml-100k-splits/tfrs-80-20".into());
    let format = TableFormat::default(); // headerless: user, item, rating, timestamp
    let train = Interactions::read(format!("{dir}/train.tsv"), &format)?;
    let test = Interactions::read(format!("{dir}/test.tsv"), &format)?;
    let movies = Catalog::read(format!("{dir}/movies.tsv"))?;

    let tfrs = TrainConfig { key: CandidateKey::Title, ..TrainConfig::tfrs() };
    for (name, config) in [("TFRS tutorial", tfrs), ("towers defaults", TrainConfig::default())] {
        let model = Artifact::train(config, &train, Some(&movies), None, false)?;
        let e = model.evaluate(&test, false)?;
        let x = model.evaluate(&test, true)?;
        println!(
            "{name:<16} top-100 {:.4} (popularity {:.4})  top-10 with seen items excluded {:.4} (popularity {:.4})  {:.2} s training",
            e.model.top_100, e.baseline.top_100, x.model.top_10, x.baseline.top_10, model.summary.train_s
        );
    }

    let model = Artifact::train(TrainConfig::default(), &train, Some(&movies), None, false)?;
    println!("\nfor user 42:");
    for r in model.recommend("42", 10, true)?.items {
        println!("  {:.3}  {}", r.score, r.title);
    }
    let path = std::env::temp_dir().join("towers-example-movielens");
    model.save(&path)?;
    let again = Artifact::load(&path)?;
    assert_eq!(again.recommend("42", 10, true)?, model.recommend("42", 10, true)?);
    println!("saved to and reloaded from {}", path.display());
    Ok(())
}
