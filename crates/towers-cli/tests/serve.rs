//! `towers serve` over a real socket: every endpoint, every error path, malformed JSON, an
//! oversize body, huge k, concurrent clients, and a graceful stop on SIGTERM.

mod common;

use common::Fixture;
use common::server::Server;
use std::io::Read;
use std::process::Command;

fn trained(name: &str) -> (Fixture, String) {
    let f = Fixture::new(name);
    assert!(f.train("m", &[]).status.success());
    let model = f.path("m");
    (f, model)
}

#[test]
fn endpoints_answer_as_documented() {
    let (_f, model) = trained("serve-ok");
    let s = Server::start(&model);
    assert_eq!(s.get_json("/healthz"), (200, serde_json::json!({"status": "ok"})));

    let (status, m) = s.get_json("/v1/model");
    assert_eq!(status, 200);
    assert_eq!((m["kind"].as_str(), m["users"].as_u64(), m["items"].as_u64()), (Some("retrieval"), Some(40), Some(30)));

    let (status, r) = s.get_json("/v1/recommend?user=7&k=5&exclude_seen=true");
    assert_eq!(status, 200, "{r}");
    assert_eq!((r["cold_start"].as_bool(), r["model"].as_str()), (Some(false), Some("m")));
    let items = r["items"].as_array().unwrap();
    assert_eq!(items.len(), 5);
    assert!(items.iter().all(|i| i["id"].is_string() && i["title"].is_string() && i["score"].is_number()));
    // the same through the library
    let r7 = towers::Recommender::new(towers::Artifact::load(&model).unwrap());
    let lib = r7.recommend(towers::Query::User("7"), &towers::Request::top(5).exclude_seen(true)).unwrap();
    let ids: Vec<&str> = items.iter().map(|i| i["id"].as_str().unwrap()).collect();
    assert_eq!(ids, lib.items.iter().map(|i| i.id.as_str()).collect::<Vec<_>>());

    let (status, p) = s.post_json("/v1/recommend", r#"{"user": "7", "k": 5, "exclude_seen": true}"#);
    assert_eq!((status, &p["items"]), (200, &r["items"]));

    let (status, c) = s.get_json("/v1/recommend?user=stranger&k=3");
    assert_eq!((status, c["cold_start"].as_bool(), c["items"].as_array().map(Vec::len)), (200, Some(true), Some(3)));

    let (status, sim) = s.get_json("/v1/similar?item=5&k=4");
    assert_eq!(status, 200, "{sim}");
    let sims = sim["items"].as_array().unwrap();
    assert_eq!(sims.len(), 4);
    assert!(sims.iter().all(|i| i["id"] != "5"), "an item is not similar to itself");
}

#[test]
fn every_error_is_json_with_its_status() {
    let (_f, model) = trained("serve-err");
    let s = Server::start(&model);
    let cases: Vec<(u16, serde_json::Value)> = vec![
        s.get_json("/v1/recommend?k=5"),                              // missing user
        s.get_json("/v1/recommend?user=7&k=abc"),                     // not a number
        s.get_json("/v1/recommend?user=7&colour=red"),                // unknown field
        s.post_json("/v1/recommend", r#"{"user": "7", "k": "#),       // malformed JSON
        s.post_json("/v1/recommend", r#"{"user": "7", "extra": 1}"#), // unknown field
        s.post_json("/v1/recommend", r#"{"history": [1, 2]}"#),       // not a sequential model
        s.post_json("/v1/recommend", r#"{}"#),                        // no user
        s.get_json("/v1/recommend?user=7&k=0"),
        s.get_json("/v1/recommend?user=7&k=100001"),
        s.get_json("/v1/recommend?user=7&k=99999999999999999999999"),
        s.get_json("/v1/similar?item=nope"),
        s.get_json("/v1/nothing-here"),
    ];
    let want = [400, 400, 400, 400, 422, 422, 422, 422, 422, 400, 404, 404];
    for ((status, body), w) in cases.iter().zip(want) {
        assert_eq!(*status, w, "{body}");
        assert_eq!(body["error"]["status"].as_u64(), Some(w as u64), "{body}");
        assert!(body["error"]["message"].as_str().is_some_and(|m| !m.is_empty()), "{body}");
    }
    let big = format!(r#"{{"user": "{}"}}"#, "x".repeat(70 * 1024));
    let (status, _) = s.request("POST", "/v1/recommend", Some(big.as_bytes()));
    assert_eq!(status, 413);
    let (status, _) = s.request("POST", "/v1/recommend", None);
    assert!(status == 400 || status == 415, "{status}");
    // still healthy after all of that
    assert_eq!(s.get_json("/healthz").0, 200);
}

#[test]
fn concurrent_clients_then_graceful_stop() {
    let (_f, model) = trained("serve-conc");
    let mut s = Server::start(&model);
    std::thread::scope(|scope| {
        for t in 0..8 {
            let s = &s;
            scope.spawn(move || {
                for i in 0..25 {
                    let (status, r) = s.get_json(&format!("/v1/recommend?user={}&k=10", 1 + (t * 25 + i) % 40));
                    assert_eq!(status, 200);
                    assert_eq!(r["items"].as_array().unwrap().len(), 10);
                }
            });
        }
    });
    let pid = s.child.id().to_string();
    assert!(Command::new("kill").args(["-TERM", &pid]).status().unwrap().success());
    let status = s.child.wait().unwrap();
    assert!(status.success(), "SIGTERM should stop the server cleanly: {status:?}");
    let mut out = String::new();
    s.child.stdout.as_mut().unwrap().read_to_string(&mut out).unwrap();
    assert!(out.contains("stopped"), "{out}");
}

#[test]
fn sequential_models_answer_histories() {
    let f = Fixture::new("serve-seq");
    let train: String = (0..100).map(|s| format!("{} {} {}\n", s % 9 + 1, (s + 1) % 9 + 1, (s + 2) % 9 + 1)).collect();
    let tr = f.write("sessions.txt", &train);
    let out = f.path("s");
    let o = common::towers(&[
        "train",
        "--task",
        "sequential",
        "--train-format",
        "sessions",
        "--train",
        &tr,
        "--dim",
        "4",
        "--epochs",
        "2",
        "--out",
        &out,
    ]);
    assert!(o.status.success(), "{}", common::stderr(&o));
    let s = Server::start(&out);
    let (status, r) = s.post_json("/v1/recommend", r#"{"history": [1, "2"], "k": 3}"#);
    assert_eq!((status, r["items"].as_array().map(Vec::len)), (200, Some(3)), "{r}");
    // with exclude_seen, the history's items are left out
    let (status, r) = s.post_json("/v1/recommend", r#"{"history": [1, "2"], "k": 8, "exclude_seen": true}"#);
    let ids: Vec<&str> = r["items"].as_array().unwrap().iter().map(|i| i["id"].as_str().unwrap()).collect();
    assert_eq!((status, ids.len()), (200, 7), "{r}");
    assert!(!ids.contains(&"1") && !ids.contains(&"2"), "{r}");
    let (status, r) = s.get_json("/v1/recommend?user=1");
    assert_eq!(status, 422, "{r}");
    let (status, r) = s.post_json("/v1/recommend", r#"{"history": [{"id": 1}]}"#);
    assert_eq!(status, 422, "{r}");
    assert_eq!(s.get_json("/v1/model").1["kind"], "sequential");
}
