//! Features beyond ids on MovieLens 100K, with the library alone: the id-only default beside
//! the feature model (user attributes and time; movie genres, year and title words) on the
//! TFRS split, then cold start: movies held out of training, ranked by their features alone.
//!
//! ```sh
//! cargo run --release --example features [-- ../shared/data]
//! ```

use towers::EvalOptions;
use towers::data::features::AttributeTable;
use towers::data::movielens::MovieLens;
use towers::data::{Catalog, Interactions, TableFormat};
use towers::eval::Ranked;
use towers::metrics::TopKMetrics;
use towers::model::FeatureConfig;
use towers::rng::Rng;
use towers::{ModelSpec, Trainer, evaluate};

fn row(name: &str, m: &TopKMetrics) {
    println!(
        "{name:<34} {:>7.4} {:>7.4} {:>7.4} {:>7.4} {:>7.4} {:>7.4}",
        m.top_1, m.top_5, m.top_10, m.top_20, m.top_50, m.top_100
    );
}

fn main() -> towers::Result<()> {
    let data = std::env::args().nth(1).unwrap_or_else(|| "../shared/data".into());
    let features = FeatureConfig::movielens();
    let split = format!("{data}/ml-100k-splits/tfrs-80-20");
    let train = Interactions::read(format!("{split}/train.tsv"), &TableFormat::default())?;
    let test = Interactions::read(format!("{split}/test.tsv"), &TableFormat::default())?;
    let movies = Catalog::read(format!("{split}/movies.tsv"))?;
    let ml = MovieLens::load(format!("{data}/ml-100k"))?;
    let (users, items) = (AttributeTable::movielens_users(&ml), AttributeTable::movielens_items(&ml));
    // each model, trained on `train`, evaluated on `test`
    let id_only = |train: &Interactions, test: &Interactions| -> towers::Result<Ranked> {
        let model = Trainer::new(ModelSpec::Retrieval).catalog(&movies).fit(train)?;
        Ok(evaluate(&model, test, &EvalOptions::new())?.ranked()?.clone())
    };
    let with_features = |train: &Interactions, test: &Interactions| -> towers::Result<Ranked> {
        let model = Trainer::new(ModelSpec::Features(features.clone()))
            .catalog(&movies)
            .user_attributes(&users)
            .item_attributes(&items)
            .fit(train)?;
        Ok(evaluate(&model, test, &EvalOptions::new())?.ranked()?.clone())
    };

    println!(
        "{:<34} {:>7} {:>7} {:>7} {:>7} {:>7} {:>7}",
        "tfrs-80-20, all candidates", "top-1", "top-5", "top-10", "top-20", "top-50", "top-100"
    );
    let (id, feat) = (id_only(&train, &test)?, with_features(&train, &test)?);
    row("id only (towers defaults)", &id.model);
    row("features (movielens)", &feat.model);
    row("popularity", &id.baseline);
    println!("features − id only, top-100: {:+.4}", feat.model.top_100 - id.model.top_100);

    // Cold start: 10% of the movies (seeded) lose every training rating; the test pairs of
    // those movies are ranked against all candidates.
    let mut rng = Rng::new(7);
    let held: std::collections::HashSet<&str> =
        movies.ids.iter().filter(|_| rng.next_f32() < 0.1).map(String::as_str).collect();
    let keep = |t: &Interactions, cold: bool| -> Vec<usize> {
        (0..t.len()).filter(|&i| held.contains(t.candidate(i)) == cold).collect()
    };
    let warm_train = train.select(&keep(&train, false));
    let cold_test = test.select(&keep(&test, true));
    let (id_cold, feat_cold) = (id_only(&warm_train, &cold_test)?, with_features(&warm_train, &cold_test)?);
    let random = 100.0 / (movies.ids.len() as f64);
    println!("\ncold start: {} movies held out of training, {} test pairs on them", held.len(), cold_test.len());
    row("id only (untrained rows)", &id_cold.model);
    row("features", &feat_cold.model);
    row("popularity (all zero counts)", &id_cold.baseline);
    println!("random: top-100 {random:.4}");
    Ok(())
}
