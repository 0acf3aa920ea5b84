//! One-off: writes the format-1 compat fixtures with the code of commit 9c1add1.
#[path = "common/synthetic.rs"]
mod synthetic;

use serde_json::{Value, json};
use std::path::PathBuf;
use towers::data::features::{AttributeTable, FeatureConfig};
use towers::data::Positions;
use towers::index::IvfParams;
use towers::train::SequenceConfig;
use towers::{Artifact, Recommendations, TrainConfig};

fn recs(r: &Recommendations) -> Value {
    json!({"cold_start": r.cold_start, "items": r.items.iter().map(|i| json!([i.id, i.score])).collect::<Vec<_>>()})
}

fn user_queries(m: &Artifact) -> Value {
    let mut out = serde_json::Map::new();
    for u in ["u1", "u7", "u22", "nobody"] {
        for x in [false, true] {
            out.insert(format!("{u}/{x}"), recs(&m.recommend(u, 5, x).unwrap()));
        }
    }
    Value::Object(out)
}

#[test]
#[ignore]
fn write_v1_fixtures() {
    let s = synthetic::synthetic();
    let root = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/v1");
    let small = TrainConfig { dim: 8, batch_size: 32, epochs: 3, ..TrainConfig::default() };
    let save = |name: &str, m: &Artifact, expected: Value| {
        let d = root.join(name);
        std::fs::create_dir_all(&d).unwrap();
        m.save(d.join("model")).unwrap();
        std::fs::write(d.join("expected.json"), serde_json::to_string_pretty(&expected).unwrap() + "\n").unwrap();
    };
    // retrieval
    let m = Artifact::train(small.clone(), &s.train, Some(&s.catalog), None, false).unwrap();
    let e = m.evaluate(&s.test, true).unwrap();
    let sim: Vec<Value> = m.similar("3", 4).unwrap().iter().map(|i| json!([i.id, i.score])).collect();
    save("retrieval", &m, json!({"recommend": user_queries(&m), "similar_3": sim, "evaluate_exclude_seen": {"model": e.model, "baseline": e.baseline}}));
    // retrieval with an IVF index
    let mut mi = m.clone();
    mi.build_index(&IvfParams { nlist: 4, nprobe: 2, reorder: 6, ..Default::default() }, false).unwrap();
    save("retrieval-ivf", &mi, json!({"recommend": user_queries(&mi)}));
    // rating
    let m = Artifact::train(TrainConfig { batch_size: 16, ..TrainConfig { dim: 8, epochs: 3, ..TrainConfig::rating() } }, &s.train, Some(&s.catalog), None, false).unwrap();
    let e = m.evaluate(&s.test, false).unwrap();
    save("rating", &m, json!({"recommend": user_queries(&m), "evaluate": {"model": e.model, "rating": e.rating}}));
    // ranking
    let m = Artifact::train(TrainConfig { dim: 8, layers: vec![16, 8], batch_size: 16, epochs: 3, ..TrainConfig::ranking() }, &s.train, Some(&s.catalog), None, false).unwrap();
    let ranked: Vec<Value> = m.rank("u1", &["1".into(), "2".into(), "3".into(), "9".into()]).unwrap().iter().map(|i| json!([i.id, i.score])).collect();
    let r = m.evaluate_ratings(&s.test).unwrap();
    save("ranking", &m, json!({"recommend": user_queries(&m), "rank_u1": ranked, "evaluate_ratings": r}));
    // features
    let dir = std::env::temp_dir().join(format!("towers-gen-v1-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::write(dir.join("users.csv"), &s.users_csv).unwrap();
    std::fs::write(dir.join("items.csv"), &s.items_csv).unwrap();
    std::fs::write(
        dir.join("features.toml"),
        "layers = [16, 8]\n[query]\nid_dim = 8\ntable = \"users.csv\"\ntime = { buckets = 10, dim = 4 }\n\
         [[query.features]]\ncolumn = \"age\"\nencoder = \"bucketize\"\nboundaries = [25, 40]\ndim = 4\n\
         [[query.features]]\ncolumn = \"gender\"\nencoder = \"category\"\ndim = 2\n\
         [candidate]\nid_dim = 8\ntable = \"items.csv\"\nid_dropout = 0.1\n\
         [[candidate.features]]\ncolumn = \"genres\"\nencoder = \"multi_hot\"\ndim = 4\n\
         [[candidate.features]]\ncolumn = \"year\"\nencoder = \"bucketize\"\nboundaries = [1990, 2000]\ndim = 2\n",
    )
    .unwrap();
    let fc = FeatureConfig::load(dir.join("features.toml")).unwrap();
    let users = AttributeTable::read(dir.join("users.csv")).unwrap();
    let items = AttributeTable::read(dir.join("items.csv")).unwrap();
    let m = Artifact::train_features(TrainConfig { batch_size: 32, epochs: 3, ..TrainConfig::default() }, &fc, &s.train, Some(&s.catalog), Some(&users), Some(&items), false).unwrap();
    let e = m.evaluate(&s.test, false).unwrap();
    save("features", &m, json!({"recommend": user_queries(&m), "evaluate": {"model": e.model, "baseline": e.baseline}}));
    std::fs::remove_dir_all(&dir).unwrap();
    // sequential
    let m = Artifact::train_sequential(TrainConfig { dim: 8, batch_size: 32, epochs: 3, ..TrainConfig::sequential() }, SequenceConfig { steps: 4, ..Default::default() }, &s.sessions, Positions::All, Some(&s.catalog), None, false).unwrap();
    let e = m.evaluate_sequences(&s.test_sessions, false).unwrap();
    let h = |v: &[&str]| recs(&m.recommend_history(&v.iter().map(|s| s.to_string()).collect::<Vec<_>>(), 5).unwrap());
    save("sequential", &m, json!({"history_1_2_3": h(&["1", "2", "3"]), "history_unknown": h(&["zz"]), "evaluate": {"model": e.model, "baseline": e.baseline, "repeat_last": e.repeat_last}}));
}
