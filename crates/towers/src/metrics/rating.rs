//! Metrics of rating predictions: RMSE, and NDCG@10 of each user's test items ordered by the
//! prediction (the re-ranked list), beside the mean-rating and popularity baselines.

use serde::{Deserialize, Serialize};

fn nan() -> f64 {
    f64::NAN
}

fn is_nan(v: &f64) -> bool {
    v.is_nan()
}

/// Rating metrics of an evaluation; keys as in the CLI's JSON. A ranker trained with a pairwise
/// or listwise loss predicts no ratings: its RMSEs are NaN and left out of the JSON.
#[derive(Debug, Clone, Copy, Default, PartialEq, Serialize, Deserialize)]
pub struct RatingMetrics {
    /// Root mean squared error on the original rating scale.
    #[serde(default = "nan", skip_serializing_if = "is_nan")]
    pub rmse: f64,
    /// RMSE of always predicting the mean training rating.
    #[serde(default = "nan", skip_serializing_if = "is_nan")]
    pub rmse_mean_baseline: f64,
    /// NDCG@10 of each user's test items ordered by predicted rating (gain `2^rating − 1`),
    /// averaged over users.
    pub ndcg_10_rated: f64,
    /// The same with the items ordered by training popularity.
    pub ndcg_10_rated_popularity: f64,
    /// Number of rated test pairs.
    pub n_rated: usize,
}

/// NDCG@k of one list: `gains` in the order the ranker put them, against the ideal order.
fn ndcg(ranked_ratings: &[f32], k: usize) -> f64 {
    let dcg = |rs: &[f32]| -> f64 {
        rs.iter().take(k).enumerate().map(|(i, &r)| (2f64.powf(r as f64) - 1.0) / (i as f64 + 2.0).log2()).sum()
    };
    let mut ideal = ranked_ratings.to_vec();
    ideal.sort_by(|a, b| b.total_cmp(a));
    let best = dcg(&ideal);
    if best > 0.0 { dcg(ranked_ratings) / best } else { 0.0 }
}

/// Mean NDCG@10 over users: each user's pairs ordered by `score` (descending, ties by item).
fn mean_ndcg(users: &[u32], items: &[u32], truth: &[f32], score: impl Fn(usize) -> f32) -> f64 {
    let mut by_user: std::collections::BTreeMap<u32, Vec<usize>> = Default::default();
    for (i, &u) in users.iter().enumerate() {
        by_user.entry(u).or_default().push(i);
    }
    let sum: f64 = by_user
        .values_mut()
        .map(|idx| {
            idx.sort_by(|&a, &b| score(b).total_cmp(&score(a)).then(items[a].cmp(&items[b])));
            ndcg(&idx.iter().map(|&i| truth[i]).collect::<Vec<_>>(), 10)
        })
        .sum();
    sum / by_user.len().max(1) as f64
}

/// Rating metrics of `predicted` against `truth` for (user, item) pairs; `popularity[item]`
/// is the item's training count, `mean` the mean training rating.
pub fn rating_metrics(
    users: &[u32],
    items: &[u32],
    truth: &[f32],
    predicted: &[f32],
    popularity: &[f32],
    mean: f32,
) -> RatingMetrics {
    let n = truth.len();
    let rmse = |p: &dyn Fn(usize) -> f32| {
        ((0..n).map(|i| ((p(i) - truth[i]) as f64).powi(2)).sum::<f64>() / n.max(1) as f64).sqrt()
    };
    let pop = |i: usize| popularity.get(items[i] as usize).copied().unwrap_or(0.0);
    RatingMetrics {
        rmse: rmse(&|i| predicted[i]),
        rmse_mean_baseline: rmse(&|_| mean),
        ndcg_10_rated: mean_ndcg(users, items, truth, |i| predicted[i]),
        ndcg_10_rated_popularity: mean_ndcg(users, items, truth, pop),
        n_rated: n,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rmse_and_ndcg_by_hand() {
        // one user, three items rated 5, 3, 1; the model orders them 3, 5, 1
        let m = rating_metrics(&[0, 0, 0], &[1, 2, 3], &[5.0, 3.0, 1.0], &[4.0, 4.5, 1.0], &[0.0, 1.0, 9.0, 5.0], 3.0);
        assert!((m.rmse - ((1.0 + 2.25 + 0.0) / 3.0f64).sqrt()).abs() < 1e-9);
        assert!((m.rmse_mean_baseline - (8.0 / 3.0f64).sqrt()).abs() < 1e-9);
        let gain = |r: f64| 2f64.powf(r) - 1.0;
        let ideal = gain(5.0) + gain(3.0) / 3f64.log2() + gain(1.0) / 2.0;
        let model = gain(3.0) + gain(5.0) / 3f64.log2() + gain(1.0) / 2.0;
        assert!((m.ndcg_10_rated - model / ideal).abs() < 1e-9);
        // popularity orders item 2 (9), 3 (5), 1 (1): ratings 3, 1, 5
        let pop = gain(3.0) + gain(1.0) / 3f64.log2() + gain(5.0) / 2.0;
        assert!((m.ndcg_10_rated_popularity - pop / ideal).abs() < 1e-9);
        assert_eq!(m.n_rated, 3);
    }

    #[test]
    fn perfect_order_has_ndcg_one() {
        let m = rating_metrics(&[0, 0, 1], &[1, 2, 1], &[2.0, 4.0, 3.0], &[1.0, 5.0, 3.0], &[0.0; 3], 3.0);
        assert!((m.ndcg_10_rated - 1.0).abs() < 1e-12);
    }
}
