//! Model directories saved by earlier releases still load and answer as they did: one fixture
//! per model kind (and one with an IVF index, a DCN ranker, and a pipeline directory whose
//! ranker reads context features) for each format version, trained on a small synthetic set
//! made in code (`common/synthetic.rs`), with the answers recorded when it was saved. Each is
//! loaded as any directory is served ([`Served`]). A format change either keeps them loading or
//! fails with a clear "rebuild" error.
//!
//! `cargo test -p towers --test compat -- --ignored` writes the fixtures of the current format.

mod common;

use common::synthetic::{Synthetic, synthetic};
use serde_json::{Value, json};
use std::path::{Path, PathBuf};
use towers::EvalOptions;
use towers::artifact::FORMAT_VERSION;
use towers::index::IvfParams;
use towers::model::{Encoder, ModelKind, MultitaskSpec, RankerKind, RankingSpec, SequenceConfig};
use towers::recommend::{PostOverrides, build_index};
use towers::train::PipelineConfig;
use towers::{Artifact, ModelSpec, Query, Recommendations, Request, Served, TrainConfig, Trainer, evaluate};

const KINDS: [&str; 10] = [
    "retrieval",
    "retrieval-ivf",
    "rating",
    "ranking",
    "features",
    "sequential",
    "multitask",
    "ranking-dcn",
    "pipeline",
    "sequential-sasrec",
];

fn fixtures() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures")
}

fn recs(r: &Recommendations) -> Value {
    json!({"cold_start": r.cold_start, "items": r.items.iter().map(|i| json!([i.id, i.score])).collect::<Vec<_>>()})
}

/// What a fixture of `kind` answers (the same questions for every format version).
fn answers(kind: &str, r: Served, s: &Synthetic) -> Value {
    let users = || {
        let mut out = serde_json::Map::new();
        for u in ["u1", "u7", "u22", "nobody"] {
            for x in [false, true] {
                out.insert(
                    format!("{u}/{x}"),
                    recs(&r.recommend(Query::User(u), &Request::top(5).exclude_seen(x)).unwrap()),
                );
            }
        }
        Value::Object(out)
    };
    let ev =
        |exclude: bool| evaluate(r.retriever().artifact(), &s.test, &EvalOptions::new().exclude_seen(exclude)).unwrap();
    let pairs = |v: Vec<towers::Recommendation>| v.iter().map(|i| json!([i.id, i.score])).collect::<Vec<_>>();
    match kind {
        "retrieval" => {
            let e = ev(true);
            let e = e.ranked().unwrap();
            let sim = pairs(r.similar("3", &Request::top(4)).unwrap().items);
            json!({"recommend": users(), "similar_3": sim, "evaluate_exclude_seen": {"model": e.model, "baseline": e.baseline}})
        }
        "retrieval-ivf" => json!({"recommend": users()}),
        "rating" => {
            let e = ev(false);
            json!({"recommend": users(), "evaluate": {"model": e.ranked().unwrap().model, "rating": e.rating}})
        }
        "ranking" | "ranking-dcn" => {
            let ranked = pairs(r.rank("u1", &["1", "2", "3", "9"].map(String::from)).unwrap());
            json!({"recommend": users(), "rank_u1": ranked, "evaluate_ratings": ev(false).rating.unwrap()})
        }
        "features" | "multitask" => {
            let e = ev(false);
            let e = e.ranked().unwrap();
            json!({"recommend": users(), "evaluate": {"model": e.model, "baseline": e.baseline}})
        }
        "sequential" | "sequential-sasrec" => {
            let h = |v: &[&str]| {
                let history: Vec<String> = v.iter().map(|s| s.to_string()).collect();
                recs(&r.recommend(Query::History(&history), &Request::top(5)).unwrap())
            };
            let e = evaluate(r.retriever().artifact(), &s.test_sessions, &EvalOptions::new()).unwrap();
            let e = e.ranked().unwrap();
            json!({"history_1_2_3": h(&["1", "2", "3"]), "history_unknown": h(&["zz"]),
                   "evaluate": {"model": e.model, "baseline": e.baseline, "repeat_last": e.repeat_last}})
        }
        "pipeline" => {
            let diverse =
                Request::top(5).exclude_seen(true).post(PostOverrides { diversity: Some(0.5), ..Default::default() });
            let d = recs(&r.recommend(Query::User("u7"), &diverse).unwrap());
            let ranked = pairs(r.rank("u1", &["1", "2", "3", "9"].map(String::from)).unwrap());
            let mut e =
                serde_json::to_value(r.evaluate(&s.test, &EvalOptions::new().exclude_seen(true)).unwrap()).unwrap();
            e.as_object_mut().unwrap().remove("eval_s");
            json!({"recommend": users(), "diverse_u7": d, "rank_u1": ranked, "evaluate_exclude_seen": e})
        }
        other => panic!("no fixture kind {other}"),
    }
}

/// Equal JSON, numbers within a relative 1e-6 (scores are f32).
fn same(a: &Value, b: &Value, at: &str) {
    match (a, b) {
        (Value::Number(x), Value::Number(y)) => {
            let (x, y) = (x.as_f64().unwrap(), y.as_f64().unwrap());
            assert!((x - y).abs() <= 1e-6 * x.abs().max(1.0), "{at}: {x} vs {y}");
        }
        (Value::Object(x), Value::Object(y)) => {
            assert_eq!(x.keys().collect::<Vec<_>>(), y.keys().collect::<Vec<_>>(), "{at}");
            x.iter().for_each(|(k, v)| same(v, &y[k], &format!("{at}.{k}")));
        }
        (Value::Array(x), Value::Array(y)) => {
            assert_eq!(x.len(), y.len(), "{at}");
            x.iter().zip(y).enumerate().for_each(|(i, (v, w))| same(v, w, &format!("{at}[{i}]")));
        }
        _ => assert_eq!(a, b, "{at}"),
    }
}

#[test]
fn every_fixture_loads_and_answers_as_recorded() {
    let s = synthetic();
    let mut checked = 0;
    for version in 1..=FORMAT_VERSION {
        for kind in KINDS {
            let dir = fixtures().join(format!("v{version}/{kind}"));
            if !dir.is_dir() {
                continue;
            }
            let want: Value =
                serde_json::from_str(&std::fs::read_to_string(dir.join("expected.json")).unwrap()).unwrap();
            let model = Served::load(dir.join("model")).unwrap_or_else(|e| panic!("v{version}/{kind}: {e}"));
            same(&answers(kind, model, &s), &want, &format!("v{version}/{kind}"));
            // saved again in today's format, it answers the same
            let again = std::env::temp_dir().join(format!("towers-compat-{}-v{version}-{kind}", std::process::id()));
            Served::load(dir.join("model")).unwrap().save(&again).unwrap();
            same(&answers(kind, Served::load(&again).unwrap(), &s), &want, &format!("v{version}/{kind} saved again"));
            std::fs::remove_dir_all(&again).unwrap();
            checked += 1;
        }
    }
    assert!(checked >= 15, "only {checked} fixtures");
}

#[test]
fn unknown_format_versions_are_refused_with_what_to_do() {
    let dir = std::env::temp_dir().join(format!("towers-compat-versions-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    copy_dir(&fixtures().join("v1/retrieval/model"), &dir);
    let manifest = std::fs::read_to_string(dir.join("manifest.json")).unwrap();
    for (version, needle) in [("0", "rebuild this model"), ("99", "upgrade towers")] {
        std::fs::write(
            dir.join("manifest.json"),
            manifest.replace("\"format_version\": 1", &format!("\"format_version\": {version}")),
        )
        .unwrap();
        let e = Artifact::load(&dir).unwrap_err();
        assert!(matches!(e, towers::Error::Artifact { .. }) && e.to_string().contains(needle), "{e}");
    }
    std::fs::remove_dir_all(&dir).unwrap();
}

fn copy_dir(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).unwrap();
    for e in std::fs::read_dir(from).unwrap() {
        let e = e.unwrap();
        std::fs::copy(e.path(), to.join(e.file_name())).unwrap();
    }
}

/// Trains the fixture of `kind` on the synthetic set.
fn train(kind: &str, s: &Synthetic, tables: &Path) -> Served {
    let small = |k: ModelKind, batch| TrainConfig {
        dim: 8,
        batch_size: batch,
        epochs: 3,
        ..TrainConfig::defaults(k, Default::default())
    };
    match kind {
        "retrieval" | "retrieval-ivf" => {
            let mut m = Trainer::new(ModelSpec::Retrieval)
                .config(small(ModelKind::Retrieval, 32))
                .catalog(&s.catalog)
                .fit(&s.train)
                .unwrap();
            if kind == "retrieval-ivf" {
                build_index(
                    &mut m,
                    &IvfParams { nlist: 4, nprobe: 2, reorder: 6, ..Default::default() },
                    &mut towers::progress::quiet(),
                )
                .unwrap();
            }
            m.into()
        }
        "rating" => Trainer::new(ModelSpec::Rating)
            .config(small(ModelKind::Rating, 16))
            .catalog(&s.catalog)
            .fit(&s.train)
            .unwrap()
            .into(),
        "ranking" => Trainer::new(ModelSpec::Ranking(RankingSpec::mlp(vec![16, 8])))
            .config(small(ModelKind::Ranking, 16))
            .catalog(&s.catalog)
            .fit(&s.train)
            .unwrap()
            .into(),
        "ranking-dcn" => {
            let spec = RankingSpec { ranker: RankerKind::Dcn, ..RankingSpec::mlp(vec![16]) };
            Trainer::new(ModelSpec::Ranking(spec))
                .config(small(ModelKind::Ranking, 16))
                .catalog(&s.catalog)
                .fit(&s.train)
                .unwrap()
                .into()
        }
        "multitask" => {
            let spec = MultitaskSpec { layers: vec![16], ..Default::default() };
            Trainer::new(ModelSpec::Multitask(spec))
                .config(small(ModelKind::Multitask, 16))
                .catalog(&s.catalog)
                .fit(&s.train)
                .unwrap()
                .into()
        }
        "pipeline" => {
            let (_, items, features) = s.tables(tables);
            let mut c = PipelineConfig { retrieve: 12, ..PipelineConfig::default() };
            (c.retriever.dim, c.retriever.batch_size, c.retriever.epochs) = (8, 32, 3);
            (c.ranker.batch_size, c.ranker.epochs) = (64, 3);
            let p = Trainer::pipeline(c).catalog(&s.catalog).item_attributes(&items).feature_config(&features);
            p.fit_served(&s.train).unwrap()
        }
        "features" => {
            let (users, items, features) = s.tables(tables);
            Trainer::new(ModelSpec::Features(features))
                .config(TrainConfig { batch_size: 32, epochs: 3, ..TrainConfig::default() })
                .catalog(&s.catalog)
                .user_attributes(&users)
                .item_attributes(&items)
                .fit(&s.train)
                .unwrap()
                .into()
        }
        "sequential" => Trainer::new(ModelSpec::Sequential(SequenceConfig { steps: 4, ..Default::default() }))
            .config(small(ModelKind::Sequential, 32))
            .catalog(&s.catalog)
            .fit(&s.sessions)
            .unwrap()
            .into(),
        "sequential-sasrec" => {
            let spec = SequenceConfig { steps: 4, encoder: Encoder::Sasrec, ..Default::default() };
            Trainer::new(ModelSpec::Sequential(spec))
                .config(small(ModelKind::Sequential, 32))
                .catalog(&s.catalog)
                .fit(&s.sessions)
                .unwrap()
                .into()
        }
        other => panic!("no fixture kind {other}"),
    }
}

#[test]
#[ignore = "writes the fixtures of the current format version"]
fn write_fixtures() {
    let s = synthetic();
    let tables = std::env::temp_dir().join(format!("towers-compat-tables-{}", std::process::id()));
    std::fs::create_dir_all(&tables).unwrap();
    for kind in KINDS {
        let dir = fixtures().join(format!("v{FORMAT_VERSION}/{kind}"));
        if dir.is_dir() {
            continue; // a fixture, once written, is what the format's readers must keep answering
        }
        std::fs::create_dir_all(&dir).unwrap();
        train(kind, &s, &tables).save(dir.join("model")).unwrap();
        let expected = answers(kind, Served::load(dir.join("model")).unwrap(), &s);
        std::fs::write(dir.join("expected.json"), serde_json::to_string_pretty(&expected).unwrap() + "\n").unwrap();
    }
    std::fs::remove_dir_all(&tables).unwrap();
}
