//! Recommendations for many users at once give, for every user, the list `recommend` gives:
//! a single model (its users searched together), an unknown user (popular items), a pipeline
//! (each user answered by its stages), with and without the seen items.

mod common;

use common::synthetic::{USERS, synthetic};
use towers::data::RecommendationRows;
use towers::progress::quiet;
use towers::train::PipelineConfig;
use towers::{ModelSpec, Query, Request, Served, Trainer};

fn lists(rows: &RecommendationRows) -> Vec<(String, Vec<(String, u32)>)> {
    let mut out: Vec<(String, Vec<(String, u32)>)> = Vec::new();
    for i in 0..rows.len() {
        if out.last().is_none_or(|l| l.0 != rows.users[i]) {
            out.push((rows.users[i].clone(), Vec::new()));
        }
        let last = out.last_mut().unwrap();
        assert_eq!(rows.ranks[i] as usize, last.1.len() + 1);
        last.1.push((rows.items[i].clone(), rows.scores[i].to_bits()));
    }
    out
}

fn check(served: &Served, request: &Request) {
    let mut users: Vec<String> = (0..USERS).map(|u| format!("u{u}")).collect();
    users.push("nobody".into());
    let mut all = RecommendationRows::default();
    let n = served
        .recommend_users(&users, request, &mut quiet(), &mut |rows| {
            all.users.extend_from_slice(&rows.users);
            all.ranks.extend_from_slice(&rows.ranks);
            all.items.extend_from_slice(&rows.items);
            all.scores.extend_from_slice(&rows.scores);
            Ok(())
        })
        .unwrap();
    assert_eq!(n, all.len());
    let got = lists(&all);
    assert_eq!(got.len(), users.len());
    for (user, list) in got {
        let one = served.recommend(Query::User(&user), request).unwrap();
        let want: Vec<(String, u32)> = one.items.iter().map(|i| (i.id.clone(), i.score.to_bits())).collect();
        assert_eq!(list, want, "{user}");
    }
}

#[test]
fn every_users_list_is_the_one_recommend_gives() {
    let s = synthetic();
    let model: Served = Trainer::new(ModelSpec::Retrieval).catalog(&s.catalog).fit(&s.train).unwrap().into();
    assert_eq!(model.users().len() as u64, USERS);
    for request in [Request::top(7), Request::top(5).exclude_seen(true), Request::top(3).exclude(["1".to_string()])] {
        check(&model, &request);
    }
    let mut c = PipelineConfig { retrieve: 12, ..PipelineConfig::default() };
    (c.retriever.dim, c.retriever.batch_size, c.ranker.batch_size) = (8, 64, 256);
    let pipeline = Trainer::pipeline(c).catalog(&s.catalog).fit_served(&s.train).unwrap();
    check(&pipeline, &Request::top(5).exclude_seen(true));
    assert!(model.recommend_users(&[], &Request::top(0), &mut quiet(), &mut |_| Ok(())).is_err());
}
