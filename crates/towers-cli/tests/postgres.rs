//! `towers export` and `towers serve --postgres` against a real PostgreSQL + pgvector started
//! by scripts/postgres.sh: the same answers as the built-in exact index, ids that look like SQL,
//! a table name that tries injection, a re-export under load with no failed request, and the
//! database stopped (503 with the JSON error body, the server alive) and started again (200).

mod common;

use common::postgres::Postgres;
use common::server::Server;
use common::{Fixture, towers};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::time::{Duration, Instant};

/// 40 users over 30 items whose ids try SQL injection, quoting and non-ASCII.
fn tricky_model(f: &Fixture) -> String {
    let id = |i: usize| match i % 5 {
        0 => format!("{i}'); DROP TABLE towers_catalog; --"),
        1 => format!("\"{i}\" OR 1=1"),
        2 => format!("naïve {i}"),
        _ => format!("item{i}"),
    };
    let mut train = String::new();
    for u in 1..=40 {
        for j in 0..10 {
            train.push_str(&format!("{u}\t{}\t4\t{}\n", id((u + j * 3) % 30 + 1), 880000000 + u * 100 + j));
        }
    }
    let path = f.write("tricky.tsv", &train);
    let out = f.path("m");
    let o = towers(&["train", "--train", &path, "--out", &out, "--batch-size", "64", "--epochs", "4", "--dim", "8"]);
    assert!(o.status.success(), "{}", common::stderr(&o));
    out
}

fn ids(r: &serde_json::Value) -> Vec<String> {
    r["items"].as_array().unwrap().iter().map(|i| i["id"].as_str().unwrap().to_string()).collect()
}

fn export(model: &str, url: &str, extra: &[&str]) -> std::process::Output {
    let mut args = vec!["export", "--model", model, "--postgres", url, "--json"];
    args.extend_from_slice(extra);
    towers(&args)
}

#[test]
fn export_then_serve_from_postgres() {
    let Some(pg) = Postgres::start("cli") else { return };
    let f = Fixture::new("pg-serve");
    let model = tricky_model(&f);

    // identifiers are validated: no SQL through --table
    for bad in ["x; DROP TABLE towers_catalog", "Items", "a\"b", "pg_class"] {
        let o = export(&model, &pg.url, &["--table", bad]);
        assert_eq!(o.status.code(), Some(2), "{bad}: {}", common::stderr(&o));
    }
    let o = export(&model, &pg.url, &[]);
    assert!(o.status.success(), "{}", common::stderr(&o));
    let report = common::json(&o);
    assert_eq!(
        (report["version"].as_i64(), report["items"].as_u64(), report["dim"].as_u64()),
        (Some(1), Some(30), Some(8))
    );

    let exact = Server::start_with(&model, &["--exact"]);
    let s = Server::start_with(&model, &["--postgres", &pg.url]);
    let (_, m) = s.get_json("/v1/model");
    assert_eq!(m["store"]["kind"], "postgres", "{m}");
    assert_eq!(m["store"]["catalog"]["version"], 1, "{m}");
    assert_eq!(m["store"]["catalog"]["model"], m["version"], "the catalogue of this model: {m}");

    // the same top-10 as the exact index, with and without seen items
    for exclude_seen in [false, true] {
        let mut overlap = 0.0;
        for u in 1..=40 {
            let path = format!("/v1/recommend?user={u}&k=10&exclude_seen={exclude_seen}");
            let (a, b) = (exact.get_json(&path), s.get_json(&path));
            assert_eq!((a.0, b.0), (200, 200), "{}", b.1);
            let (a, b) = (ids(&a.1), ids(&b.1));
            assert_eq!(b.len(), 10);
            overlap += a.iter().filter(|x| b.contains(x)).count() as f64 / 10.0;
        }
        assert!(overlap / 40.0 >= 0.95, "top-10 overlap {} (exclude_seen {exclude_seen})", overlap / 40.0);
    }
    // cold start from the popularity column, as the built-in index does
    let (a, b) = (exact.get_json("/v1/recommend?user=nobody&k=5"), s.get_json("/v1/recommend?user=nobody&k=5"));
    assert_eq!((b.0, b.1["cold_start"].as_bool()), (200, Some(true)));
    assert_eq!(ids(&a.1), ids(&b.1));
    // sequential-only requests and unknown items answer as before
    assert_eq!(s.post_json("/v1/recommend", r#"{"history": ["item3"]}"#).0, 422);

    // re-export under load: no request fails
    let (stop, ok, failed) = (AtomicBool::new(false), AtomicUsize::new(0), AtomicUsize::new(0));
    let o = std::thread::scope(|scope| {
        for t in 0..3 {
            let (s, stop, ok, failed) = (&s, &stop, &ok, &failed);
            scope.spawn(move || {
                let mut u = t;
                while !stop.load(Ordering::Relaxed) {
                    u = u % 40 + 1;
                    let (status, r) = s.get_json(&format!("/v1/recommend?user={u}&k=10&exclude_seen=true"));
                    if status == 200 && ids(&r).len() == 10 {
                        ok.fetch_add(1, Ordering::Relaxed);
                    } else {
                        eprintln!("failed during the re-export: {status} {r}");
                        failed.fetch_add(1, Ordering::Relaxed);
                    }
                }
            });
        }
        let o = export(&model, &pg.url, &[]);
        std::thread::sleep(Duration::from_millis(200));
        stop.store(true, Ordering::Relaxed);
        o
    });
    assert!(o.status.success(), "{}", common::stderr(&o));
    assert_eq!(common::json(&o)["version"].as_i64(), Some(2));
    assert_eq!(failed.load(Ordering::Relaxed), 0);
    assert!(ok.load(Ordering::Relaxed) > 0);

    // the database stopped: 503 with the JSON error body, the server alive; back by itself
    pg.stop();
    let (status, e) = s.get_json("/v1/recommend?user=3&k=10");
    assert_eq!((status, e["error"]["status"].as_u64()), (503, Some(503)), "{e}");
    assert_eq!(s.get_json("/healthz").0, 200);
    assert_eq!(s.get_json("/v1/model").0, 200, "the model answers, the store says why it cannot");
    pg.restart();
    let deadline = Instant::now() + Duration::from_secs(10);
    while s.get_json("/v1/recommend?user=3&k=10").0 != 200 {
        assert!(Instant::now() < deadline, "not back within 10 s of the restart");
        std::thread::sleep(Duration::from_millis(100));
    }
}
