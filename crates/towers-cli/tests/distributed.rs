//! `mpirun -np N towers train … --distributed` (a build with `--features mpi`): N = 2 and 3
//! ranks train the one-process model (retrieval, rating, ranking, and a GRU on a sessions file), sharded
//! tables are split evenly, ranks given different
//! options or a bad line are refused with a clear error, `evaluate --distributed` gives the
//! one-process metrics, and a rank killed with SIGKILL ends
//! the job non-zero within 30 s without touching the model in --out. Skipped where the binary
//! was built without MPI or `mpirun` is missing, but under CI=true.

mod common;

use common::{Fixture, json, stderr, towers};
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};
use towers::data::synthetic::Synthetic;

/// Whether this binary and machine run MPI jobs (panics under CI=true if not).
fn mpi_ready() -> bool {
    let built = !stderr(&towers(&["train", "--train", "/nonexistent", "--distributed"])).contains("without MPI");
    let mpirun = Command::new("mpirun").arg("--version").output().is_ok_and(|o| o.status.success());
    if built && mpirun {
        return true;
    }
    if std::env::var("CI").is_ok_and(|v| v == "true") {
        panic!("CI runs the MPI tests: build with --features towers-cli/mpi and install Open MPI (mpirun: {mpirun})");
    }
    eprintln!("skipping: towers built without MPI or no mpirun");
    false
}

/// `mpirun -np n towers ARGS…` (as root too), one thread per rank.
fn mpirun(n: usize, args: &[&str]) -> Command {
    let mut c = Command::new("mpirun");
    c.args(["--oversubscribe", "-x", "RAYON_NUM_THREADS", "-np", &n.to_string(), env!("CARGO_BIN_EXE_towers")])
        .args(args)
        .env("OMPI_ALLOW_RUN_AS_ROOT", "1")
        .env("OMPI_ALLOW_RUN_AS_ROOT_CONFIRM", "1")
        .env("RAYON_NUM_THREADS", "1");
    c
}

fn run(mut c: Command) -> Output {
    c.output().expect("run mpirun")
}

fn synthetic(f: &Fixture, rows: usize) -> (String, String) {
    let (all, train, test) = (f.path("all.tsv"), f.path("s-train.tsv"), f.path("s-test.tsv"));
    Synthetic { users: 5000, items: 1500, rows, clusters: 32, seed: 9 }.write(std::path::Path::new(&all)).unwrap();
    let text = std::fs::read_to_string(&all).unwrap();
    let lines: Vec<&str> = text.lines().collect();
    let cut = lines.len() * 9 / 10;
    std::fs::write(&train, lines[..cut].join("\n") + "\n").unwrap();
    std::fs::write(&test, lines[cut..].join("\n") + "\n").unwrap();
    (train, test)
}

fn metric(model: &str, test: &str, k: &str) -> f64 {
    let o = towers(&["evaluate", "--model", model, "--test", test, "--json"]);
    assert!(o.status.success(), "{}", stderr(&o));
    json(&o)[k].as_f64().unwrap()
}

#[test]
fn ranks_train_the_one_process_model_and_shard_tables_evenly() {
    if !mpi_ready() {
        return;
    }
    let f = Fixture::new("mpi");
    let (train, test) = synthetic(&f, 40_000);
    let args = ["train", "--train", &train, "--recipe", "tfrs", "--batch-size", "2048", "--epochs", "2", "--seed", "1"];
    let one = f.path("one");
    let o = towers(&[&args[..], &["--out", &one, "-q"]].concat());
    assert!(o.status.success(), "{}", stderr(&o));
    for (n, shard) in [(2, false), (3, true)] {
        let out = f.path(&format!("ranks{n}"));
        let mut extra = vec!["--distributed", "--out", &out, "--json"];
        if shard {
            extra.extend(["--shard-tables", "--shard-min-rows", "1"]);
        }
        let o = run(mpirun(n, &[&args[..], &extra].concat()));
        assert!(o.status.success(), "{n} ranks: {}", stderr(&o));
        let j = json(&o);
        let ranks = j["ranks"].as_array().unwrap();
        assert_eq!(ranks.len(), n);
        let users: Vec<u64> = ranks.iter().map(|r| r["user_rows"].as_u64().unwrap()).collect();
        if shard {
            let total: u64 = users.iter().sum();
            assert!(users.iter().all(|&u| u <= total.div_ceil(n as u64)), "{users:?}");
        } else {
            assert!(users.iter().all(|&u| u == users[0]), "replicated: {users:?}");
        }
        for k in ["top_10", "top_100"] {
            let (a, b) = (metric(&one, &test, k), metric(&out, &test, k));
            assert!((a - b).abs() <= 0.002, "{n} ranks: {k} {b} against one process's {a}");
        }
    }
    // evaluated by 3 ranks, each its share of the test pairs: the metrics of all of them
    let o = run(mpirun(3, &["evaluate", "--model", &one, "--test", &test, "--distributed", "--json"]));
    assert!(o.status.success(), "{}", stderr(&o));
    let j = json(&o);
    for k in ["top_10", "top_100", "mrr", "ndcg_10"] {
        let d = (j[k].as_f64().unwrap() - metric(&one, &test, k)).abs();
        assert!(d < 1e-9, "distributed evaluation: {k} differs by {d}");
    }
    assert_eq!(j["n"].as_u64(), Some(4_000));
}

#[test]
fn gru_rating_and_ranking_models_train_on_ranks_as_in_one_process() {
    if !mpi_ready() {
        return;
    }
    let f = Fixture::new("mpi-kinds");
    // sessions: walks over 200 items; the last 300 are the test sessions
    let mut rng = towers::rng::Rng::new(3);
    let walks: Vec<String> = (0..3300)
        .map(|_| {
            let mut i = rng.below(200);
            let walk = (0..6).map(|_| {
                i = (i + 1 + rng.below(3)) % 200;
                i.to_string()
            });
            walk.collect::<Vec<_>>().join(" ")
        })
        .collect();
    let (train, test) = (f.path("s.txt"), f.path("t.txt"));
    std::fs::write(&train, walks[..3000].join("\n") + "\n").unwrap();
    std::fs::write(&test, walks[3000..].join("\n") + "\n").unwrap();
    let (table_train, table_test) = synthetic(&f, 20_000);
    let kinds = [
        (["--task", "sequential", "--train-format", "sessions", "--train", &train], &test, "top_10"),
        (["--task", "rating", "--epochs", "3", "--train", &table_train], &table_test, "rmse"),
        (["--task", "ranking", "--loss", "listmle", "--train", &table_train], &table_test, "ndcg_10_rated"),
    ];
    for (kind, test, k) in kinds {
        let (one, two) = (f.path(&format!("one-{}", kind[1])), f.path(&format!("two-{}", kind[1])));
        let o = towers(&[&["train"][..], &kind, &["--seed", "2", "--out", &one, "-q"]].concat());
        assert!(o.status.success(), "{}", stderr(&o));
        let o =
            run(mpirun(2, &[&["train"][..], &kind, &["--seed", "2", "--distributed", "--out", &two, "-q"]].concat()));
        assert!(o.status.success(), "{}: {}", kind[1], stderr(&o));
        let (a, b) = (metric(&one, test, k), metric(&two, test, k));
        assert!((a - b).abs() <= 0.01, "{}: {k} {b} on 2 ranks against one process's {a}", kind[1]);
    }
    // the rating models continued on the test table: in place on 2 ranks, as one process does
    let (one, two) = (f.path("one-rating"), f.path("two-rating"));
    let next = ["train", "--task", "rating", "--epochs", "3", "--train", &table_test, "--seed", "3", "-q"];
    let o = towers(&[&next[..], &["--init-from", &one, "--out", &f.path("one-next")]].concat());
    assert!(o.status.success(), "{}", stderr(&o));
    let o = run(mpirun(2, &[&next[..], &["--init-from", &two, "--out", &two, "--distributed"]].concat()));
    assert!(o.status.success(), "continued on 2 ranks: {}", stderr(&o));
    let (a, b) = (metric(&f.path("one-next"), &table_train, "rmse"), metric(&two, &table_train, "rmse"));
    assert!((a - b).abs() <= 0.01, "continued: rmse {b} on 2 ranks against one process's {a}");
}

#[test]
fn ranks_given_different_options_or_a_bad_line_are_refused() {
    if !mpi_ready() {
        return;
    }
    let f = Fixture::new("mpi-refused");
    let (train, _) = synthetic(&f, 4_000);
    let base = ["train", "--train", &train, "--distributed", "-q"];
    // two programs: rank 1 runs another seed
    let mut c = mpirun(1, &[&base[..], &["--seed", "1"]].concat());
    c.arg(":").args(["-np", "1", env!("CARGO_BIN_EXE_towers")]).args([&base[..], &["--seed", "2"]].concat());
    let o = run(c);
    assert_eq!(o.status.code(), Some(2), "{}", stderr(&o));
    assert!(stderr(&o).contains("rank 1's options or data columns differ from rank 0's"), "{}", stderr(&o));
    // a bad line in rank 1's share: rank 0 reports it with its file and line
    let text = std::fs::read_to_string(&train).unwrap();
    let mut lines: Vec<&str> = text.lines().collect();
    lines[3000] = "7\tnot-a-line";
    std::fs::write(&train, lines.join("\n") + "\n").unwrap();
    let o = run(mpirun(2, &base));
    assert_eq!(o.status.code(), Some(3), "{}", stderr(&o));
    assert!(stderr(&o).contains("rank 1: ") && stderr(&o).contains("s-train.tsv:3001"), "{}", stderr(&o));
}

#[test]
fn a_killed_rank_ends_the_job_and_leaves_the_model_in_out_as_it_was() {
    if !mpi_ready() {
        return;
    }
    let f = Fixture::new("mpi-killed");
    let (train, _) = synthetic(&f, 40_000);
    let out = f.path("model");
    let args = ["train", "--train", &train, "--batch-size", "256", "--out", &out, "-q"];
    let o = towers(&[&args[..], &["--epochs", "1"]].concat());
    assert!(o.status.success(), "{}", stderr(&o));
    let before = std::fs::read(format!("{out}/manifest.json")).unwrap();
    let mut job = mpirun(2, &[&args[..], &["--epochs", "500", "--distributed"]].concat())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    std::thread::sleep(Duration::from_secs(3));
    assert!(job.try_wait().unwrap().is_none(), "the job ended before a rank was killed");
    // the ranks are mpirun's children
    let children = std::fs::read_to_string(format!("/proc/{0}/task/{0}/children", job.id())).unwrap();
    let victim: i32 = children.split_whitespace().last().expect("a rank").parse().unwrap();
    // SAFETY: sending a signal to a process of this test.
    assert_eq!(unsafe { libc::kill(victim, libc::SIGKILL) }, 0);
    let start = Instant::now();
    let status = loop {
        if let Some(s) = job.try_wait().unwrap() {
            break s;
        }
        if start.elapsed() > Duration::from_secs(30) {
            job.kill().unwrap();
            panic!("the job still runs 30 s after a rank was killed");
        }
        std::thread::sleep(Duration::from_millis(100));
    };
    assert!(!status.success());
    assert_eq!(std::fs::read(format!("{out}/manifest.json")).unwrap(), before, "the model in --out is unchanged");
}
