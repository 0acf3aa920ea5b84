//! The whole stack on MovieLens 100K with the library alone, as `towers train --task ranking |
//! pipeline` does it: a DCN ranker over ids and attribute features (RMSE), listwise rankers
//! beside the squared error (NDCG@10 of each user's rated items), then one pipeline — retriever,
//! ranker on its hard negatives, post-ranking — evaluated with and without diversity, asked
//! for user 42 with its stage timings, saved and reloaded.
//!
//! ```sh
//! cargo run --release --example stack [-- ../shared/data/ml-100k-splits/tfrs-80-20 ../shared/data/ml-100k]
//! ```

use towers::EvalOptions;
use towers::data::features::AttributeTable;
use towers::data::movielens::MovieLens;
use towers::data::{Catalog, Interactions, TableFormat};
use towers::model::{FeatureConfig, RankerKind, RankingSpec};
use towers::recommend::PostOverrides;
use towers::task::RankingLoss;
use towers::train::PipelineConfig;
use towers::{ModelSpec, Query, Report, Request, Served, Trainer, evaluate};

fn main() -> towers::Result<()> {
    let mut args = std::env::args().skip(1);
    let dir = args.next().unwrap_or_else(|| "../shared/data/ml-100k-splits/tfrs-80-20".into());
    let ml_dir = args.next().unwrap_or_else(|| "../shared/data/ml-100k".into());
    let format = TableFormat::default(); // headerless: user, item, rating, timestamp
    let train = Interactions::read(format!("{dir}/train.tsv"), &format)?;
    let test = Interactions::read(format!("{dir}/test.tsv"), &format)?;
    let movies = Catalog::read(format!("{dir}/movies.tsv"))?;
    let ml = MovieLens::load(&ml_dir)?;
    let (users, items) = (AttributeTable::movielens_users(&ml), AttributeTable::movielens_items(&ml));
    let features = FeatureConfig::movielens();

    // ranking: a deep & cross network over ids and the users' and movies' attributes
    let dcn = RankingSpec { ranker: RankerKind::Dcn, features: Some(features.attributes_only()), ..Default::default() };
    let model = Trainer::new(ModelSpec::Ranking(dcn))
        .catalog(&movies)
        .user_attributes(&users)
        .item_attributes(&items)
        .fit(&train)?;
    let rated = evaluate(&model, &test, &EvalOptions::new())?.rating.expect("a ranker on ratings has rating metrics");
    println!("DCN ranker: RMSE {:.4} (mean rating: {:.4})", rated.rmse, rated.rmse_mean_baseline);

    // listwise: the same ids-only ranker trained with each loss (their own default epochs and lists)
    for (name, loss) in [("MSE", RankingLoss::Mse), ("ListMLE", RankingLoss::ListMle), ("hinge", RankingLoss::Hinge)] {
        let spec = RankingSpec { loss, ..Default::default() };
        let model = Trainer::new(ModelSpec::Ranking(spec)).catalog(&movies).fit(&train)?;
        let rated = evaluate(&model, &test, &EvalOptions::new())?.rating.expect("rating metrics");
        println!("{name:<7} ranker: NDCG@10 of each user's rated items {:.4}", rated.ndcg_10_rated);
    }

    // one pipeline: retrieve 100, rank, post-rank to 10
    let pipeline = Trainer::pipeline(PipelineConfig::default())
        .catalog(&movies)
        .item_attributes(&items)
        .feature_config(&features)
        .fit_served(&train)?;
    let seen = EvalOptions::new().exclude_seen(true);
    let diverse = PostOverrides { diversity: Some(0.3), ..Default::default() };
    let (Report::Pipeline(plain), Report::Pipeline(mmr)) =
        (pipeline.evaluate(&test, &seen)?, pipeline.evaluate(&test, &seen.clone().post(diverse.clone()))?)
    else {
        unreachable!("a pipeline's evaluation")
    };
    for (name, e) in [("pipeline", &plain), ("with diversity 0.3", &mmr)] {
        println!(
            "{name:<19} top-10 with seen items excluded {:.4} (retriever alone {:.4}), ILD@10 {:.3}, coverage {:.3}",
            e.model.top_10, e.retriever.top_10, e.ild_10, e.coverage_10
        );
    }

    let path = std::env::temp_dir().join("towers-example-stack");
    pipeline.save(&path)?;
    let request = Request::top(10).exclude_seen(true).post(diverse).debug(true);
    let answer = Served::load(&path)?.recommend(Query::User("42"), &request)?;
    let t = answer.timings.unwrap_or_default();
    println!(
        "\nfor user 42 (retrieve {:.2} ms, rank {:.2} ms, post-rank {:.2} ms):",
        t.retrieve_ms, t.rank_ms, t.post_rank_ms
    );
    for r in &answer.items {
        println!("  {:.3}  {}", r.score, r.title);
    }
    assert_eq!(answer.items, pipeline.recommend(Query::User("42"), &request)?.items);
    println!("saved to and reloaded from {}", path.display());
    Ok(())
}
