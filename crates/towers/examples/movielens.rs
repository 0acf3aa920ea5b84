//! Basic retrieval on MovieLens 100K, as in TFRS's tutorial, with the library alone:
//! read the split, train towers' defaults and TFRS's recipe, evaluate both beside the
//! popularity baseline, recommend for user 42, save and reload the model.
//!
//! ```sh
//! cargo run --release --example movielens [-- ../shared/data/ml-100k-splits/tfrs-80-20]
//! ```

use towers::EvalOptions;
use towers::data::{CandidateKey, Catalog, Interactions, TableFormat};
use towers::{Artifact, ModelSpec, Query, Recommender, Request, TrainConfig, Trainer, evaluate};

fn main() -> towers::Result<()> {
    let dir = std::env::args().nth(1).unwrap_or_else(|| "../shared/data/ml-100k-splits/tfrs-80-20".into());
    let format = TableFormat::default(); // headerless: user, item, rating, timestamp
    let train = Interactions::read(format!("{dir}/train.tsv"), &format)?;
    let test = Interactions::read(format!("{dir}/test.tsv"), &format)?;
    let movies = Catalog::read(format!("{dir}/movies.tsv"))?;

    let tfrs = TrainConfig { key: CandidateKey::Title, ..TrainConfig::tfrs() };
    for (name, config) in [("TFRS tutorial", tfrs), ("towers defaults", TrainConfig::default())] {
        let model = Trainer::new(ModelSpec::Retrieval).config(config).catalog(&movies).fit(&train)?;
        let (e, x) = (
            evaluate(&model, &test, &EvalOptions::new())?,
            evaluate(&model, &test, &EvalOptions::new().exclude_seen(true))?,
        );
        let (e, x) = (e.ranked()?, x.ranked()?);
        println!(
            "{name:<16} top-100 {:.4} (popularity {:.4})  top-10 with seen items excluded {:.4} (popularity {:.4})  {:.2} s training",
            e.model.top_100, e.baseline.top_100, x.model.top_10, x.baseline.top_10, model.summary.train_s
        );
    }

    let model = Trainer::new(ModelSpec::Retrieval).catalog(&movies).fit(&train)?;
    let path = std::env::temp_dir().join("towers-example-movielens");
    model.save(&path)?;
    let request = Request::top(10).exclude_seen(true);
    let recs = Recommender::new(model).recommend(Query::User("42"), &request)?;
    println!("\nfor user 42:");
    for r in &recs.items {
        println!("  {:.3}  {}", r.score, r.title);
    }
    let again = Recommender::new(Artifact::load(&path)?).recommend(Query::User("42"), &request)?;
    assert_eq!(again, recs);
    println!("saved to and reloaded from {}", path.display());
    Ok(())
}
