//! Driving the Python peers of `../shared/peer` (TFRS) in the same run as towers.

use serde_json::Value;
use std::path::{Path, PathBuf};
use std::process::Command;

/// Where to find the TFRS peer, and whether to run it.
#[derive(clap::Args, Debug, Clone)]
pub struct PeerArgs {
    /// Python of the TFRS peer venv; default $PEER_VENV/tf/bin/python or ~/.cache/towers-peer/tf/bin/python.
    #[arg(long)]
    pub peer: Option<PathBuf>,
    /// The peer's scripts.
    #[arg(long, default_value = "../shared/peer")]
    pub peer_dir: PathBuf,
    /// Skip the peer even when it is set up.
    #[arg(long)]
    pub no_peer: bool,
}

impl PeerArgs {
    /// The peer's Python, when it is set up and wanted.
    pub fn python(&self) -> Option<PathBuf> {
        if self.no_peer {
            return None;
        }
        let venv = std::env::var_os("PEER_VENV")
            .map(PathBuf::from)
            .or_else(|| std::env::var_os("HOME").map(|h| Path::new(&h).join(".cache/towers-peer")));
        self.peer.clone().or_else(|| venv.map(|v| v.join("tf/bin/python"))).filter(|p| p.is_file())
    }

    /// Runs one of the peer's scripts (when the peer is set up) and returns the JSON it prints last.
    pub fn run(&self, script: &str, args: &[String]) -> Option<Value> {
        run(&self.python()?, &self.peer_dir.join(script), args)
    }
}

/// Runs a Python script and returns the JSON object it prints last.
fn run(py: &Path, script: &Path, args: &[String]) -> Option<Value> {
    let out = Command::new(py).arg(script).args(args).env("TF_USE_LEGACY_KERAS", "1").output().ok()?;
    let text = String::from_utf8_lossy(&out.stdout);
    text.lines().rev().find_map(|l| serde_json::from_str::<Value>(l).ok())
}
