//! Shared by the CLI tests: running the binary, and a small training fixture.
#![allow(dead_code)]

/// The PostgreSQL test helpers, shared with towers-postgres's tests (one copy).
#[path = "../../../towers-postgres/tests/common/mod.rs"]
pub mod postgres;
pub mod server;

use std::path::PathBuf;
use std::process::{Command, Output};

pub fn towers(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_towers")).args(args).output().expect("run towers")
}

pub fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).to_string()
}

pub fn stdout(o: &Output) -> String {
    String::from_utf8_lossy(&o.stdout).to_string()
}

pub struct Fixture {
    pub dir: PathBuf,
}

impl Fixture {
    /// 40 users × 10 interactions over 30 items (headerless TSV, MovieLens order), a catalogue
    /// with a latin-1 title, and a test file.
    pub fn new(name: &str) -> Fixture {
        let dir = std::env::temp_dir().join(format!("towers-cli-{}-{name}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        let (mut train, mut test) = (String::new(), String::new());
        for u in 1..=40 {
            for j in 0..10 {
                let item = (u + j * 3) % 30 + 1;
                train.push_str(&format!("{u}\t{item}\t{}\t{}\n", 1 + (u + j) % 5, 880000000 + u * 100 + j));
            }
            test.push_str(&format!("{u}\t{}\t4\t890000000\n", (u + 31) % 30 + 1));
        }
        std::fs::write(dir.join("train.tsv"), train).unwrap();
        std::fs::write(dir.join("test.tsv"), test).unwrap();
        let mut items: Vec<u8> = Vec::new();
        for i in 1..=30 {
            items.extend_from_slice(format!("{i}|Movie {i}").as_bytes());
            if i == 7 {
                items.extend_from_slice(b" Mis\xe9rables");
            }
            items.extend_from_slice(b"|01-Jan-1995||http://x|0\n");
        }
        std::fs::write(dir.join("u.item"), items).unwrap();
        Fixture { dir }
    }

    pub fn path(&self, f: &str) -> String {
        self.dir.join(f).to_string_lossy().to_string()
    }

    pub fn write(&self, f: &str, text: &str) -> String {
        std::fs::write(self.dir.join(f), text).unwrap();
        self.path(f)
    }

    pub fn train(&self, out: &str, extra: &[&str]) -> Output {
        let (train, items, out) = (self.path("train.tsv"), self.path("u.item"), self.path(out));
        let mut args =
            vec!["train", "--train", &train, "--items", &items, "--out", &out, "--batch-size", "64", "--epochs", "4"];
        args.extend_from_slice(extra);
        towers(&args)
    }
}

impl Drop for Fixture {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

pub fn json(o: &Output) -> serde_json::Value {
    let text = stdout(o);
    serde_json::from_str(text.lines().last().unwrap_or("")).unwrap_or_else(|e| panic!("not JSON ({e}): {text}"))
}
