//! Driving the Python peers of `../shared/peer` (TFRS) in the same run as towers.

use serde_json::Value;
use std::path::{Path, PathBuf};
use std::process::Command;

pub fn python(a: &super::train::TrainArgs) -> Option<PathBuf> {
    if a.no_peer {
        return None;
    }
    let venv = std::env::var_os("PEER_VENV")
        .map(PathBuf::from)
        .or_else(|| std::env::var_os("HOME").map(|h| Path::new(&h).join(".cache/towers-peer")));
    a.peer.clone().or_else(|| venv.map(|v| v.join("tf/bin/python"))).filter(|p| p.is_file())
}

/// Runs one of the peer's scripts and returns the JSON object it prints last.
pub fn run(py: &Path, script: &Path, args: &[String]) -> Option<Value> {
    let out = Command::new(py).arg(script).args(args).env("TF_USE_LEGACY_KERAS", "1").output().ok()?;
    let text = String::from_utf8_lossy(&out.stdout);
    text.lines().rev().find_map(|l| serde_json::from_str::<Value>(l).ok())
}
