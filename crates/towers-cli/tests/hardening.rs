//! The red team's reproductions (issue "Hardening"), each as a test on the binary: option values
//! out of range, a closed pipe and a full disk on stdout, unbounded lines, concurrent writers of
//! one model directory, leftovers of a killed save, and files that pass their checksum but break
//! an invariant. Every one must end with a clear error and its exit code, never a panic.

mod common;

use common::*;
use sha2::Digest;
use std::io::Read;
use std::path::Path;
use std::process::{Command, Output, Stdio};

/// `towers train` on the fixture with only the options given.
fn train(f: &Fixture, out: &str, extra: &[&str]) -> Output {
    let (train, items, out) = (f.path("train.tsv"), f.path("u.item"), f.path(out));
    let mut args = vec!["train", "--train", &train, "--items", &items, "--out", &out];
    args.extend_from_slice(extra);
    towers(&args)
}

fn no_panic(o: &Output) {
    let err = stderr(o);
    assert!(!err.contains("panicked") && !err.contains("memory allocation"), "{err}");
}

#[test]
fn out_of_range_options_are_usage_errors() {
    let f = Fixture::new("hard-options");
    for extra in [
        &["--batch-size", "18446744073709551615"][..],
        &["--batch-size", "4294967296"],
        &["--epochs", "0"],
        &["--epochs", "18446744073709551615"],
        &["--dim", "0"],
    ] {
        let o = train(&f, "x", extra);
        assert_eq!(o.status.code(), Some(2), "{extra:?}: {}", stderr(&o));
        no_panic(&o);
        assert!(!f.dir.join("x").exists());
    }
    assert!(train(&f, "m", &["--epochs", "1"]).status.success());
    let model = f.path("m");
    for extra in [
        &["--reorder", "18446744073709551615"][..],
        &["--reorder", "0"],
        &["--nlist", "0"],
        &["--nprobe", "0"],
        &["--iterations", "0"],
    ] {
        let mut args = vec!["index", "build", "--model", &model];
        args.extend_from_slice(extra);
        let o = towers(&args);
        assert_eq!(o.status.code(), Some(2), "{extra:?}: {}", stderr(&o));
        no_panic(&o);
    }
    // the largest accepted re-ranking depth is clamped to the candidates, not allocated
    let o = towers(&["index", "build", "--model", &model, "--reorder", "1000000", "--json"]);
    assert!(o.status.success(), "{}", stderr(&o));
    assert_eq!(json(&o)["reorder"], 31);
}

#[test]
fn a_closed_pipe_ends_quietly_and_a_full_disk_is_an_error() {
    let f = Fixture::new("hard-stdout");
    assert!(train(&f, "m", &["--epochs", "1"]).status.success());
    let model = f.path("m");
    let args = ["recommend", "--model", &model, "--user", "7", "-k", "30"];
    let mut child = Command::new(env!("CARGO_BIN_EXE_towers"))
        .args(args)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    drop(child.stdout.take()); // the reader leaves before anything is written
    let mut err = String::new();
    child.stderr.take().unwrap().read_to_string(&mut err).unwrap();
    child.wait().unwrap();
    assert!(!err.contains("panicked"), "{err}");

    let full = std::fs::OpenOptions::new().write(true).open("/dev/full").unwrap();
    let o = Command::new(env!("CARGO_BIN_EXE_towers")).args(args).stdout(full).output().unwrap();
    no_panic(&o);
    assert!(!o.status.success() && stderr(&o).contains("stdout"), "{}", stderr(&o));
}

#[test]
fn endless_lines_are_refused_with_bounded_memory() {
    let f = Fixture::new("hard-lines");
    let items = f.path("u.item");
    for args in [
        vec!["train", "--train", "/dev/zero", "--items", &items, "--out", "/nonexistent/x"],
        vec!["train", "--train", &f.path("train.tsv"), "--items", "/dev/zero", "--out", "/nonexistent/x"],
    ] {
        let o = towers(&args);
        assert_eq!(o.status.code(), Some(3), "{}", stderr(&o));
        assert!(stderr(&o).contains("longer than"), "{}", stderr(&o));
        no_panic(&o);
    }
    // a long field is cut in the message
    let long = format!("1\t2\t4\t5\n1\t{}\t4\t6\n1\t3\tx{}\t7\n", "9", "y".repeat(100_000));
    let bad = f.write("long.tsv", &long);
    let o = towers(&["train", "--train", &bad, "--out", &f.path("o")]);
    assert_eq!(o.status.code(), Some(3));
    assert!(stderr(&o).len() < 2_000, "{} bytes of error", stderr(&o).len());
    // a catalogue that repeats an id
    let dup = f.write("dup.tsv", "1\tA\n2\tB\n1\tC\n");
    let o = towers(&["train", "--train", &f.path("train.tsv"), "--items", &dup, "--out", &f.path("o")]);
    assert_eq!(o.status.code(), Some(3), "{}", stderr(&o));
    assert!(stderr(&o).contains("dup.tsv:3") && stderr(&o).contains("already on line 1"), "{}", stderr(&o));
}

#[test]
fn one_writer_per_model_directory() {
    let f = Fixture::new("hard-lock");
    assert!(train(&f, "m", &["--epochs", "1"]).status.success());
    // another process holds the lock (as a running `train --out m` would)
    let lock = std::fs::OpenOptions::new().write(true).open(f.dir.join(".m.lock")).unwrap();
    lock.try_lock().unwrap();
    std::fs::write(f.dir.join(".m.lock"), "pid 4242 (towers train)\n").unwrap();
    let before = std::fs::read(f.dir.join("m/manifest.json")).unwrap();
    let o = train(&f, "m", &["--epochs", "1", "--seed", "9"]);
    assert_eq!(o.status.code(), Some(75), "{}", stderr(&o));
    assert!(stderr(&o).contains("locked by pid 4242"), "{}", stderr(&o));
    let o = towers(&["index", "build", "--model", &f.path("m")]);
    assert_eq!(o.status.code(), Some(75), "{}", stderr(&o));
    assert_eq!(std::fs::read(f.dir.join("m/manifest.json")).unwrap(), before, "the model is untouched");
    drop(lock);
    // what a killed writer left (a half-written version) is cleaned by the next one
    std::fs::create_dir_all(f.dir.join(".m.tmp-1-1")).unwrap();
    assert!(train(&f, "m", &["--epochs", "1", "--wait"]).status.success());
    assert!(!f.dir.join(".m.tmp-1-1").exists());
    // a model that went missing in a fallback replacement is put back before anything else
    std::fs::rename(f.dir.join("m"), f.dir.join(".m.old-7")).unwrap();
    let o = towers(&["index", "build", "--model", &f.path("m"), "--kind", "exact"]);
    assert!(o.status.success(), "{}", stderr(&o));
    assert!(f.dir.join("m/manifest.json").is_file() && !f.dir.join(".m.old-7").exists());
}

/// Rewrites one 4-byte value of a tensor in a model file and the file's checksum in the
/// manifest, as a hand edit or a faulty writer would: the checksum passes, the invariant does not.
fn patch(dir: &Path, file: &str, tensor: &str, index: usize, value: [u8; 4]) {
    let path = dir.join(file);
    let mut b = std::fs::read(&path).unwrap();
    let n = u64::from_le_bytes(b[..8].try_into().unwrap()) as usize;
    let header: serde_json::Value = serde_json::from_slice(&b[8..8 + n]).unwrap();
    let start = header[tensor]["data_offsets"][0].as_u64().unwrap() as usize;
    let at = 8 + n + start + 4 * index;
    b[at..at + 4].copy_from_slice(&value);
    std::fs::write(&path, &b).unwrap();
    let sha: String = sha2::Sha256::digest(&b).iter().map(|x| format!("{x:02x}")).collect();
    let mp = dir.join("manifest.json");
    let mut m: serde_json::Value = serde_json::from_slice(&std::fs::read(&mp).unwrap()).unwrap();
    m["files"][file] = serde_json::Value::String(sha);
    std::fs::write(&mp, serde_json::to_vec_pretty(&m).unwrap()).unwrap();
}

#[test]
fn files_that_pass_the_checksum_but_break_an_invariant_are_refused() {
    let f = Fixture::new("hard-invariants");
    assert!(train(&f, "m", &["--epochs", "1"]).status.success());
    let test = f.path("test.tsv");
    let cases: [(&str, &str, usize, f32); 3] = [
        ("candidates.safetensors", "embeddings", 40, f32::NAN),
        ("interactions.safetensors", "popularity", 5, f32::INFINITY),
        ("weights.safetensors", "query.embedding", 3, f32::NAN),
    ];
    for (i, (file, tensor, at, value)) in cases.into_iter().enumerate() {
        let copy = f.dir.join(format!("c{i}"));
        copy_dir(&f.dir.join("m"), &copy);
        patch(&copy, file, tensor, at, value.to_le_bytes());
        let model = copy.to_string_lossy().to_string();
        for args in
            [vec!["evaluate", "--model", &model, "--test", &test], vec!["recommend", "--model", &model, "--user", "7"]]
        {
            let o = towers(&args);
            assert_eq!(o.status.code(), Some(4), "{file}: {}", stderr(&o));
            assert!(stderr(&o).contains(tensor) && stderr(&o).contains("finite"), "{}", stderr(&o));
            no_panic(&o);
        }
    }
    // a seen-items offset out of range
    let copy = f.dir.join("seen");
    copy_dir(&f.dir.join("m"), &copy);
    patch(&copy, "interactions.safetensors", "seen.offsets", 3, u32::MAX.to_le_bytes());
    let model = copy.to_string_lossy().to_string();
    let o = towers(&["evaluate", "--model", &model, "--test", &test, "--exclude-seen"]);
    assert_eq!(o.status.code(), Some(4), "{}", stderr(&o));
    assert!(stderr(&o).contains("seen-item index"), "{}", stderr(&o));
    no_panic(&o);
}

fn copy_dir(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).unwrap();
    for e in std::fs::read_dir(from).unwrap() {
        let e = e.unwrap();
        std::fs::copy(e.path(), to.join(e.file_name())).unwrap();
    }
}

/// Any request body or query string gets an answer with a status and, for an error, the JSON
/// error body; the server stays up.
#[test]
fn any_request_json_or_query_is_answered() {
    use proptest::prelude::*;
    let f = Fixture::new("hard-http");
    assert!(train(&f, "m", &["--epochs", "1"]).status.success());
    let s = common::server::Server::start(&f.path("m"));
    let value = prop_oneof![
        Just("1".to_string()),
        Just("\"7\"".to_string()),
        Just("null".to_string()),
        Just("-1".to_string()),
        Just("1e400".to_string()),
        Just("[\"1\", 2, null]".to_string()),
        Just("true".to_string()),
        "\"[a-z0-9]{0,6}\"",
        "[0-9]{1,25}",
    ];
    let field = (prop_oneof![Just("user"), Just("history"), Just("k"), Just("exclude_seen"), Just("x")], value);
    let body = prop_oneof![
        proptest::collection::vec(field, 0..5).prop_map(|fs| {
            let inner: Vec<String> = fs.iter().map(|(k, v)| format!("\"{k}\": {v}")).collect();
            format!("{{{}}}", inner.join(", ")).into_bytes()
        }),
        proptest::collection::vec(any::<u8>(), 0..64),
    ];
    let mut runner = proptest::test_runner::TestRunner::new(ProptestConfig { cases: 200, ..ProptestConfig::default() });
    runner
        .run(&(body, "[a-z_=&%0-9]{0,30}"), |(body, query)| {
            for (status, text) in [
                s.request("POST", "/v1/recommend", Some(&body)),
                s.request("GET", &format!("/v1/recommend?{query}"), None),
                s.request("GET", &format!("/v1/similar?{query}"), None),
            ] {
                prop_assert!(status == 200 || (400..500).contains(&status), "{status} {text}");
                let v: serde_json::Value =
                    serde_json::from_str(&text).map_err(|e| TestCaseError::fail(format!("{e}: {text}")))?;
                prop_assert!(status == 200 || v["error"]["status"] == status, "{text}");
            }
            Ok(())
        })
        .unwrap();
    assert_eq!(s.get_json("/healthz").0, 200);
}
