//! `towers serve` as an operator and a hostile client see it: hot reload on SIGHUP with no
//! failed request, `/metrics`, a bounded shutdown with clients stuck mid-headers and mid-body,
//! slow clients cut off, limits answered with the JSON error body (405, 408, 413, 414, 431),
//! and option ranges (exit code 2).

mod common;

use common::Fixture;
use common::server::Server;
use std::io::{Read, Write};
use std::net::TcpStream;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::time::{Duration, Instant};

fn trained(name: &str) -> (Fixture, String) {
    let f = Fixture::new(name);
    assert!(f.train("m", &[]).status.success());
    let model = f.path("m");
    (f, model)
}

fn is_json_error(body: &str, status: u16) -> bool {
    serde_json::from_str::<serde_json::Value>(body)
        .is_ok_and(|v| v["error"]["status"] == status && v["error"]["message"].as_str().is_some_and(|m| !m.is_empty()))
}

#[test]
fn sighup_reloads_the_model_with_no_failed_request() {
    let (f, model) = trained("ops-reload");
    let s = Server::start(&model);
    let (_, m) = s.get_json("/v1/model");
    let v1 = m["version"].as_str().unwrap().to_string();
    assert_eq!((m["store"]["kind"].as_str(), m["reloads"].as_u64()), (Some("exact"), Some(0)), "{m}");
    // a new model in the same directory (saved atomically), then SIGHUP under load
    assert!(f.train("m", &["--seed", "7"]).status.success());
    let (stop, ok, failed) = (AtomicBool::new(false), AtomicUsize::new(0), AtomicUsize::new(0));
    let v2 = std::thread::scope(|scope| {
        for t in 0..4 {
            let (s, stop, ok, failed) = (&s, &stop, &ok, &failed);
            scope.spawn(move || {
                let mut i = t;
                while !stop.load(Ordering::Relaxed) {
                    i += 4;
                    let (status, r) = s.get_json(&format!("/v1/recommend?user={}&k=10", 1 + i % 40));
                    if status == 200 && r["items"].as_array().map(Vec::len) == Some(10) {
                        ok.fetch_add(1, Ordering::Relaxed);
                    } else {
                        failed.fetch_add(1, Ordering::Relaxed);
                    }
                }
            });
        }
        std::thread::sleep(Duration::from_millis(100));
        s.signal("HUP");
        let deadline = Instant::now() + Duration::from_secs(10);
        let v2 = loop {
            let v = s.get_json("/v1/model").1["version"].as_str().unwrap_or("").to_string();
            if v != v1 || Instant::now() > deadline {
                break v;
            }
            std::thread::sleep(Duration::from_millis(20));
        };
        std::thread::sleep(Duration::from_millis(100));
        stop.store(true, Ordering::Relaxed);
        v2
    });
    assert_ne!(v2, v1, "/v1/model still shows the old version");
    assert_eq!(failed.load(Ordering::Relaxed), 0, "requests failed during the reload");
    assert!(ok.load(Ordering::Relaxed) > 0);
    assert_eq!(s.get_json("/v1/model").1["reloads"].as_u64(), Some(1));

    // a directory that does not load: logged, and the loaded model keeps serving
    std::fs::write(format!("{model}/manifest.json"), "{").unwrap();
    s.signal("HUP");
    std::thread::sleep(Duration::from_millis(500));
    let (status, m) = s.get_json("/v1/model");
    assert_eq!((status, m["version"].as_str()), (200, Some(v2.as_str())));
    assert_eq!(s.get_json("/v1/recommend?user=3&k=5").0, 200);
}

#[test]
fn metrics_in_prometheus_text_format() {
    let (_f, model) = trained("ops-metrics");
    let s = Server::start(&model);
    assert_eq!(s.get_json("/v1/recommend?user=7&k=3").0, 200);
    assert_eq!(s.get_json("/v1/recommend?user=7&k=3").0, 200);
    assert_eq!(s.get_json("/v1/nothing").0, 404);
    let (status, text) = s.request("GET", "/metrics", None);
    assert_eq!(status, 200);
    let line = |needles: &[&str]| text.lines().find(|l| !l.starts_with('#') && needles.iter().all(|n| l.contains(n)));
    for t in [
        "# TYPE towers_http_requests_total counter",
        "# TYPE towers_http_errors_total counter",
        "# TYPE towers_http_request_duration_seconds histogram",
        "# TYPE towers_model_info gauge",
    ] {
        assert!(text.contains(t), "{t} missing:\n{text}");
    }
    let ok = line(&["towers_http_requests_total{", "route=\"/v1/recommend\"", "status=\"200\""]).expect(&text);
    assert!(ok.ends_with(" 2"), "{ok}");
    assert!(line(&["towers_http_errors_total{", "route=\"other\"", "status=\"404\""]).is_some(), "{text}");
    assert!(
        line(&["towers_http_request_duration_seconds_bucket{", "route=\"/v1/recommend\"", "le=\"0.005\""]).is_some()
    );
    let version = s.get_json("/v1/model").1["version"].as_str().unwrap().to_string();
    let info = line(&["towers_model_info{", &format!("version=\"{version}\""), "store=\"exact\""]).expect(&text);
    assert!(info.ends_with(" 1"), "{info}");
}

#[test]
fn sigterm_is_bounded_with_clients_stuck_in_headers_and_body() {
    let (_f, model) = trained("ops-term");
    let mut s =
        Server::start_with(&model, &["--shutdown-timeout", "1", "--header-timeout", "60", "--body-timeout", "60"]);
    let mut head = TcpStream::connect(&s.addr).unwrap();
    head.write_all(b"GET /healthz HTTP/1.1\r\nHo").unwrap();
    let mut body = TcpStream::connect(&s.addr).unwrap();
    body.write_all(
        b"POST /v1/recommend HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: 60000\r\n\r\n{",
    )
    .unwrap();
    std::thread::sleep(Duration::from_millis(300));
    let start = Instant::now();
    s.signal("TERM");
    let status = loop {
        if let Some(status) = s.child.try_wait().unwrap() {
            break status;
        }
        assert!(start.elapsed() < Duration::from_secs(8), "still running 8 s after SIGTERM");
        std::thread::sleep(Duration::from_millis(50));
    };
    assert!(status.success(), "{status:?}");
    assert!(start.elapsed() < Duration::from_secs(4), "took {:?}", start.elapsed());
    let mut out = String::new();
    s.child.stdout.as_mut().unwrap().read_to_string(&mut out).unwrap();
    assert!(out.contains("stopped"), "{out}");
}

#[test]
fn slow_clients_are_cut_off_and_limits_answer_json() {
    let (_f, model) = trained("ops-limits");
    let s = Server::start_with(&model, &["--header-timeout", "1", "--body-timeout", "1"]);
    // a body that stops coming: 408 after the body timeout
    let start = Instant::now();
    let (status, b) = s.raw(
        b"POST /v1/recommend HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: 100\r\n\r\n{",
    );
    assert_eq!(status, 408, "{b}");
    assert!(is_json_error(&b, 408), "{b}");
    assert!(start.elapsed() < Duration::from_secs(5));
    // headers that stop coming: the connection is closed after the header timeout
    let start = Instant::now();
    let mut c = TcpStream::connect(&s.addr).unwrap();
    c.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    c.write_all(b"GET /healthz HTTP/1.1\r\nHo").unwrap();
    let mut rest = Vec::new();
    let _ = c.read_to_end(&mut rest);
    assert!(start.elapsed() < Duration::from_secs(5), "held for {:?}", start.elapsed());
    // a body announced far over the limit: 413 at once, nothing read
    let (status, b) =
        s.raw(b"POST /v1/recommend HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: 1000000000000\r\n\r\n{");
    assert!(status == 413 && is_json_error(&b, 413), "{status} {b}");
    // a method the route does not take
    let (status, b) = s.request("DELETE", "/v1/recommend", None);
    assert!(status == 405 && is_json_error(&b, 405), "{status} {b}");
    // a request target over 8 KiB
    let (status, b) = s.request("GET", &format!("/v1/recommend?user={}", "9".repeat(9000)), None);
    assert!(status == 414 && is_json_error(&b, 414), "{status} {b}");
    // headers over 16 KiB, or too many of them
    let big = format!("GET /healthz HTTP/1.1\r\nHost: x\r\nX-Big: {}\r\nConnection: close\r\n\r\n", "a".repeat(20_000));
    let (status, b) = s.raw(big.as_bytes());
    assert!(status == 431 && is_json_error(&b, 431), "{status} {b}");
    let many: String = (0..150).map(|i| format!("X-H{i}: v\r\n")).collect();
    let (status, b) = s.raw(format!("GET /healthz HTTP/1.1\r\nHost: x\r\n{many}Connection: close\r\n\r\n").as_bytes());
    assert!(status == 431 && is_json_error(&b, 431), "{status} {b}");
    assert_eq!(s.get_json("/healthz").0, 200, "still serving");
}

#[test]
fn out_of_range_options_exit_2() {
    let (_f, model) = trained("ops-options");
    let serve = |extra: &[&str]| {
        let mut args = vec!["serve", "--model", model.as_str(), "--addr", "127.0.0.1:0"];
        args.extend_from_slice(extra);
        common::towers(&args)
    };
    for extra in [
        &["--threads", "100000"][..],
        &["--threads", "0"],
        &["--shutdown-timeout", "0"],
        &["--header-timeout", "1e9"],
        &["--replica", "postgresql://x/y"],
        &["--postgres", "postgresql://127.0.0.1:1/towers", "--table", "x; DROP TABLE y"],
        &["--postgres", "postgresql://127.0.0.1:1/towers", "--ef-search", "0"],
    ] {
        let o = serve(extra);
        let err = common::stderr(&o);
        assert_eq!(o.status.code(), Some(2), "{extra:?}: {err}");
        assert!(!err.contains("panicked"), "{err}");
    }
}
