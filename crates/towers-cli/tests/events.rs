//! Live histories over HTTP: `towers serve --events FILE` keeps `POST /v1/events`; a
//! sequential model's recommendations for the user follow them (and leave them out with
//! `exclude_seen`); after `kill -9` and a restart on the same log the answer is the same; bad
//! events get 4xx answers.

mod common;

use common::server::Server;
use common::{Fixture, stderr, towers};

/// Item ids of an answer.
fn ids(v: &serde_json::Value) -> Vec<String> {
    v["items"].as_array().unwrap_or_else(|| panic!("{v}")).iter().map(|i| i["id"].as_str().unwrap().into()).collect()
}

#[test]
fn events_change_a_users_recommendations_and_survive_kill_9() {
    let f = Fixture::new("events");
    let model = f.path("seq");
    // each user's interactions as a sequence; the last one held out
    let o = towers(&[
        "train",
        "--task",
        "sequential",
        "--train-format",
        "interactions",
        "--train",
        &f.path("train.tsv"),
        "--split",
        "last",
        "--epochs",
        "3",
        "--out",
        &model,
        "-q",
    ]);
    assert!(o.status.success(), "{}", stderr(&o));
    let log = f.path("events.log");
    let path = "/v1/recommend?user=7&k=5&exclude_seen=true";
    let mut server = Server::start_with(&model, &["--events", &log]);
    let (status, before) = server.get_json(path);
    assert_eq!(status, 200, "{before}");
    assert!(!before["cold_start"].as_bool().unwrap(), "user 7's training history answers");
    let (status, v) = server.post_json("/v1/events", r#"{"user": "7", "item": "3"}"#);
    assert_eq!((status, &v["accepted"]), (200, &serde_json::json!(1)), "{v}");
    let (status, v) = server.post_json(
        "/v1/events",
        r#"{"events": [{"user": 7, "item": 12}, {"user": "7", "item": "21", "timestamp": 1}]}"#,
    );
    assert_eq!(status, 200, "{v}");
    let (_, after) = server.get_json(path);
    assert_ne!(ids(&after), ids(&before), "the events change the answer");
    assert!(ids(&after).iter().all(|i| !["3", "12", "21"].contains(&i.as_str())), "{after}");
    // the same user as a stateless request: its recent items given in the request
    let (_, stateless) = Server::start(&model).get_json(&format!("{path}&recent=3,12,21"));
    assert_eq!(ids(&stateless), ids(&after));
    // bad events
    for (body, want) in [
        (r#"{"user": "7", "item": "nope"}"#, 404),
        (r#"{"user": "7"}"#, 422),
        (r#"{"user": "7", "item": "3", "extra": 1}"#, 422),
        (r#"[{"user": "7", "item": "3"}"#, 400),
        (r#"{"user": "", "item": "3"}"#, 422),
    ] {
        let (status, text) = server.request("POST", "/v1/events", Some(body.as_bytes()));
        assert_eq!(status, want, "{body}: {text}");
    }
    let flood = format!("[{}]", vec![r#"{"user":"8","item":"3"}"#; 1001].join(","));
    assert_eq!(server.request("POST", "/v1/events", Some(flood.as_bytes())).0, 413);
    // kill -9, then the same log
    server.child.kill().unwrap();
    server.child.wait().unwrap();
    let server = Server::start_with(&model, &["--events", &log]);
    assert_eq!(ids(&server.get_json(path).1), ids(&after), "replayed from the log");
    // a server without --events keeps none
    assert_eq!(Server::start(&model).request("POST", "/v1/events", Some(br#"{"user":"7","item":"3"}"#)).0, 404);
}
