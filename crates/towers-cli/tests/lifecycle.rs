//! `towers train --checkpoint-every N` killed with SIGKILL at a random step and resumed with
//! `--resume` writes the weights an uninterrupted run writes; `--init-from` continues a model.

mod common;

use common::{Fixture, json, stderr, towers};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant, SystemTime};

/// The f32 tensors of a model directory's weights, in name order.
fn weights(dir: &str) -> Vec<f32> {
    let bytes = std::fs::read(format!("{dir}/weights.safetensors")).unwrap();
    let r = towers::tensors::TensorReader::parse(std::path::Path::new(dir), &bytes).unwrap();
    r.names().iter().filter_map(|n| r.f32_any(n).ok()).flat_map(|(d, _)| d).collect()
}

/// Trains with `args` and checkpoints every step, kills the run with SIGKILL a random while
/// after its first checkpoint, resumes it, and checks its weights against an uninterrupted
/// run's.
fn killed_and_resumed(f: &Fixture, name: &str, args: &[&str]) {
    let (full, out) = (f.path(&format!("{name}-full")), f.path(name));
    let o = towers(&[args, &["--out", &full, "-q"]].concat());
    assert!(o.status.success(), "{}", stderr(&o));
    let checkpoint = format!("{out}.checkpoint");
    let run = [args, &["--out", &out, "--checkpoint-every", "1", "-q"]].concat();
    let mut child = Command::new(env!("CARGO_BIN_EXE_towers")).args(&run).stdout(Stdio::null()).spawn().unwrap();
    let start = Instant::now();
    while !std::path::Path::new(&checkpoint).exists() && start.elapsed() < Duration::from_secs(60) {
        std::thread::sleep(Duration::from_millis(2));
    }
    let nanos = SystemTime::now().duration_since(SystemTime::UNIX_EPOCH).unwrap().subsec_nanos();
    std::thread::sleep(Duration::from_millis(u64::from(nanos % 200)));
    child.kill().unwrap(); // SIGKILL
    let killed = child.wait().unwrap();
    assert!(!killed.success(), "{name}: the run ended before it was killed; make it longer");
    assert!(std::path::Path::new(&checkpoint).is_file() && !std::path::Path::new(&out).exists());
    let o = towers(&[&run[..], &["--resume"]].concat());
    assert!(o.status.success(), "{}", stderr(&o));
    let (a, b) = (weights(&full), weights(&out));
    assert_eq!(a.len(), b.len());
    let d = a.iter().zip(&b).map(|(x, y)| (x - y).abs()).fold(0f32, f32::max);
    assert!(d <= 1e-6, "{name}: resumed weights differ by {d}");
    assert!(!std::path::Path::new(&checkpoint).exists(), "the checkpoint is deleted once the model is written");
}

#[test]
fn a_run_killed_and_resumed_writes_the_uninterrupted_runs_weights() {
    let f = Fixture::new("resume");
    // 3,000 users × 8 interactions over 500 items, and sessions over them
    let (mut train, mut sessions) = (String::new(), String::new());
    for u in 0..3000u64 {
        let mut x = u.wrapping_mul(2654435761) % 500;
        let mut session = Vec::new();
        for j in 0..8 {
            x = (x + 1 + (u + j) % 7) % 500;
            train.push_str(&format!("{u}\t{x}\t{}\t{}\n", 1 + (u + j) % 5, 1000 + j));
            session.push(x.to_string());
        }
        sessions.push_str(&(session.join(" ") + "\n"));
    }
    let train = f.write("big.tsv", &train);
    let sessions = f.write("sessions.txt", &sessions);
    let common = ["--batch-size", "64", "--epochs", "3", "--dim", "16", "--seed", "3"];
    killed_and_resumed(&f, "retrieval", &[&["train", "--train", &train][..], &common].concat());
    let seq = ["train", "--task", "sequential", "--train-format", "sessions", "--train", &sessions, "--steps", "4"];
    killed_and_resumed(&f, "sequential", &[&seq[..], &common].concat());
}

#[test]
fn init_from_continues_a_model_and_refuses_another_spec() {
    let f = Fixture::new("init-from");
    assert!(f.train("old", &[]).status.success());
    let (old, new) =
        (f.path("old"), f.write("new.tsv", "41\t3\t5\t890000001\n41\t5\t4\t890000002\n7\t9\t3\t890000003\n"));
    let items = f.path("u.item");
    let cont = f.path("cont");
    let args = ["train", "--train", &new, "--items", &items, "--init-from", &old, "--out", &cont, "--json"];
    let o = towers(&[&args[..], &["--batch-size", "64", "--epochs", "2"]].concat());
    assert!(o.status.success(), "{}", stderr(&o));
    assert_eq!(json(&o)["n_train"], 3);
    let o = towers(&["recommend", "--model", &cont, "--user", "41", "--json"]);
    assert_eq!(json(&o)["cold_start"], false, "a new user is known after the continue step");
    let o = towers(&["recommend", "--model", &cont, "--user", "12", "--json"]);
    assert_eq!(json(&o)["cold_start"], false, "an old user absent from the new data is still known");
    let o = towers(&[&args[..7], &["--out", &f.path("wide"), "--dim", "64"]].concat());
    assert_eq!(o.status.code(), Some(2), "{}", stderr(&o));
    assert!(stderr(&o).contains("--init-from") && stderr(&o).contains("--dim"), "{}", stderr(&o));
}
