//! A real PostgreSQL + pgvector for the tests, started with the project's scripts/postgres.sh
//! in a temporary directory and stopped when dropped. Where it cannot start (no python3, no
//! network for the one-off pip install) the tests skip with a message, unless CI=true.

use std::path::{Path, PathBuf};
use std::process::Command;

pub struct Postgres {
    pub dir: PathBuf,
    pub url: String,
}

fn script() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../scripts/postgres.sh")
}

fn run(args: &[&str]) -> Result<String, String> {
    let out = Command::new("bash").arg(script()).args(args).output().map_err(|e| e.to_string())?;
    let stdout = String::from_utf8_lossy(&out.stdout).to_string();
    if !out.status.success() {
        let err = String::from_utf8_lossy(&out.stderr);
        let tail: Vec<&str> = err.lines().rev().take(5).collect();
        return Err(tail.into_iter().rev().collect::<Vec<_>>().join("\n"));
    }
    Ok(stdout.lines().last().unwrap_or("").trim().to_string())
}

impl Postgres {
    /// Starts a cluster, or returns None (skip) where that is impossible outside CI.
    pub fn start(name: &str) -> Option<Postgres> {
        let dir = std::env::temp_dir().join(format!("towers-pg-{}-{name}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        match run(&["start", &dir.to_string_lossy()]) {
            Ok(url) if url.starts_with("postgresql://") => Some(Postgres { dir, url }),
            other => {
                let msg = format!("PostgreSQL could not be started with scripts/postgres.sh: {other:?}");
                if std::env::var("CI").is_ok_and(|v| v == "true") {
                    panic!("{msg}");
                }
                eprintln!("skipped: {msg}");
                None
            }
        }
    }

    /// A streaming replica of this cluster.
    pub fn replica(&self, name: &str) -> Postgres {
        let dir = std::env::temp_dir().join(format!("towers-pg-{}-{name}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        let url = run(&["replica", &dir.to_string_lossy(), &self.dir.to_string_lossy()]).expect("start a replica");
        Postgres { dir, url }
    }

    pub fn stop(&self) {
        run(&["stop", &self.dir.to_string_lossy()]).expect("stop postgres");
    }

    pub fn restart(&self) {
        run(&["start", &self.dir.to_string_lossy()]).expect("start postgres again");
    }
}

impl Drop for Postgres {
    fn drop(&mut self) {
        let _ = run(&["stop", &self.dir.to_string_lossy()]);
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}
