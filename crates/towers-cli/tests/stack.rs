//! The whole stack end to end on a small fixture: DCN, listwise and multi-task models, a
//! pipeline trained, evaluated, asked and served (with post-ranking overrides and per-stage
//! timings), composed by hand, and refused with a clear error when its file is wrong.

mod common;

use common::server::Server;
use common::*;
use std::path::Path;

/// A failed command: a non-zero exit that is not a panic, with `needle` in its message.
fn refused(o: &std::process::Output, code: i32, needle: &str) {
    assert_eq!(o.status.code(), Some(code), "{}", stderr(o));
    assert!(stderr(o).contains(needle), "{needle:?} not in {}", stderr(o));
    assert!(!stderr(o).contains("panicked"), "{}", stderr(o));
}

#[test]
fn dcn_listwise_and_multitask_models() {
    let f = Fixture::new("stack-models");
    let test = f.path("test.tsv");
    let o = f.train("dcn", &["--task", "ranking", "--ranker", "dcn", "--cross-layers", "2", "--projection-dim", "4"]);
    assert!(o.status.success(), "{}", stderr(&o));
    let crossing: serde_json::Value = serde_json::from_str(
        &std::fs::read_to_string(Path::new(&f.path("dcn")).join("feature_crossing.json")).unwrap(),
    )
    .unwrap();
    assert_eq!(crossing["features"], serde_json::json!(["user_id", "item_id"]));
    assert_eq!(crossing["norms"].as_array().unwrap().len(), 2);
    assert!(Path::new(&f.path("dcn")).join("feature_crossing.svg").is_file());
    let e = json(&towers(&["evaluate", "--model", &f.path("dcn"), "--test", &test, "--json"]));
    assert!(e["rmse"].as_f64().unwrap() > 0.0 && e["ndcg_10_rated"].is_number(), "{e}");

    for loss in ["listmle", "approx-ndcg", "hinge"] {
        let o = f.train(loss, &["--task", "ranking", "--loss", loss]);
        assert!(o.status.success(), "{}", stderr(&o));
        let e = json(&towers(&["evaluate", "--model", &f.path(loss), "--test", &test, "--json"]));
        // scores, not ratings: NDCG of each user's rated items, no RMSE
        assert!(e["ndcg_10_rated"].is_number() && e.get("rmse").is_none(), "{e}");
    }

    let o = f.train("mt", &["--task", "multitask", "--retrieval-weight", "1", "--rating-weight", "0.5"]);
    assert!(o.status.success(), "{}", stderr(&o));
    let e = json(&towers(&["evaluate", "--model", &f.path("mt"), "--test", &test, "--json"]));
    assert!(e["top_100"].is_number() && e["rmse"].is_number(), "both tasks' metrics: {e}");

    refused(&f.train("x", &["--ranker", "dcn"]), 2, "--ranker is for --task ranking");
    refused(&f.train("x", &["--task", "ranking", "--cross-layers", "2"]), 2, "for --ranker dcn");
    refused(&f.train("x", &["--task", "multitask", "--retrieval-weight", "0", "--rating-weight", "0"]), 2, "both 0");
    refused(&f.train("x", &["--task", "rating", "--diversity", "0.3"]), 2, "--diversity is for --task pipeline");
}

#[test]
fn pipeline_trains_answers_serves_and_refuses_bad_files() {
    let f = Fixture::new("stack-pipeline");
    let (train, items, test, p) = (f.path("train.tsv"), f.path("u.item"), f.path("test.tsv"), f.path("p"));
    let o = towers(&["train", "--task", "pipeline", "--train", &train, "--items", &items, "--out", &p, "--seed", "3"]);
    assert!(o.status.success(), "{}", stderr(&o));
    assert!(Path::new(&p).join("pipeline.toml").is_file() && Path::new(&p).join("ranker/manifest.json").is_file());

    let ev = |extra: &[&str]| {
        let mut args = vec!["evaluate", "--model", &p, "--test", &test, "--exclude-seen", "--json"];
        args.extend_from_slice(extra);
        let o = towers(&args);
        assert!(o.status.success(), "{}", stderr(&o));
        json(&o)
    };
    let (plain, diverse) = (ev(&[]), ev(&["--diversity", "0.9"]));
    for k in ["top_10", "top_100", "ild_10", "coverage_10", "retrieve"] {
        assert!(plain.get(k).is_some(), "missing {k}: {plain}");
    }
    assert!(plain["retriever"]["top_10"].is_number());
    assert_eq!(plain["n"], 40);
    assert!(diverse["ild_10"].as_f64().unwrap() >= plain["ild_10"].as_f64().unwrap(), "{plain} {diverse}");

    let o = towers(&["recommend", "--model", &p, "--user", "7", "-k", "5", "--exclude-seen", "--debug", "--json"]);
    assert!(o.status.success(), "{}", stderr(&o));
    let r = json(&o);
    assert_eq!(r["items"].as_array().unwrap().len(), 5);
    assert!(r["timings"]["rank_ms"].is_number() && r["timings"]["total_ms"].is_number(), "{r}");
    let o = towers(&["recommend", "--model", &p, "--user", "7", "--dedupe", "title", "--retrieve", "20", "--json"]);
    assert!(o.status.success(), "{}", stderr(&o));

    // served: the answer, overrides and timings as fields; bad values are 422, not 500
    let s = Server::start(&p);
    let (code, r) = s.get_json("/v1/recommend?user=7&k=5&exclude_seen=true&debug=true&diversity=0.5");
    assert_eq!(code, 200, "{r}");
    assert_eq!(r["items"].as_array().unwrap().len(), 5);
    assert!(r["timings"]["retrieve_ms"].is_number(), "{r}");
    let (code, r) = s.post_json("/v1/recommend", r#"{"user": "7", "k": 3, "caps": "title:1", "boost": "5"}"#);
    assert_eq!(code, 200, "{r}");
    assert!(r.get("timings").is_none());
    assert_eq!(s.get_json("/v1/recommend?user=7&diversity=2").0, 422);
    assert_eq!(s.get_json("/v1/recommend?user=7&caps=genres:2").0, 422);
    drop(s);
    // a single model refuses pipeline fields
    assert!(f.train("m", &[]).status.success());
    let s = Server::start(&f.path("m"));
    assert_eq!(s.get_json("/v1/recommend?user=7&diversity=0.3").0, 422);
    drop(s);
    refused(&towers(&["evaluate", "--model", &f.path("m"), "--test", &test, "--diversity", "0.3"]), 2, "for pipelines");

    // composed by hand: the same two directories, relative to the file
    let hand = f.write(
        "hand.toml",
        "retriever = \"p/retriever\"\nranker = \"p/ranker\"\nretrieve = 20\n[post]\ndiversity = 0.2\n",
    );
    let o = towers(&["evaluate", "--model", &hand, "--test", &test, "--json"]);
    assert!(o.status.success(), "{}", stderr(&o));
    assert_eq!(json(&o)["retrieve"], 20);

    // bad files: each a clear error naming the file and the key, at load time
    let bad = f.write("bad.toml", "retriever = \"p/retriever\"\nranker = \"p/ranker\"\nretreive = 20\n");
    refused(&towers(&["evaluate", "--model", &bad, "--test", &test]), 2, "unknown field `retreive`");
    assert!(stderr(&towers(&["evaluate", "--model", &bad, "--test", &test])).contains("bad.toml"));
    let missing = f.write("missing.toml", "retriever = \"p/retriever\"\nranker = \"nowhere\"\n");
    refused(&towers(&["evaluate", "--model", &missing, "--test", &test]), 4, "ranker = ");
    let attr = f.write(
        "attr.toml",
        "retriever = \"p/retriever\"\nranker = \"p/ranker\"\n[post]\ncaps = [{ attribute = \"genres\", max = 2 }]\n",
    );
    refused(&towers(&["evaluate", "--model", &attr, "--test", &test]), 2, "no item attribute 'genres'");
    // a ranker trained on another catalogue than the retriever
    let small: String = std::fs::read_to_string(&train)
        .unwrap()
        .lines()
        .filter(|l| !l.contains("\t30\t"))
        .map(|l| format!("{l}\n"))
        .collect();
    let other = f.write("other.tsv", &small);
    let o = towers(&["train", "--task", "ranking", "--train", &other, "--out", &f.path("r2"), "--epochs", "1"]);
    assert!(o.status.success(), "{}", stderr(&o));
    let mixed = f.write("mixed.toml", "retriever = \"p/retriever\"\nranker = \"r2\"\n");
    refused(&towers(&["evaluate", "--model", &mixed, "--test", &test]), 2, "another catalogue");
    let flat = f.write("flat.toml", "retriever = \"p/retriever\"\nranker = \"m\"\n");
    refused(&towers(&["evaluate", "--model", &flat, "--test", &test]), 2, "does not rank pairs");
}
