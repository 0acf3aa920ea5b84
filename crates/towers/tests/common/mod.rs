//! Helpers for tests that read the real datasets in `../shared/data`.
#![allow(dead_code)]

use std::path::PathBuf;

/// The shared data folder beside the checkout, or `None` (and a message) when it is absent.
/// Under `CI=true` a missing folder fails the test instead: CI must run these.
pub fn shared_data(sub: &str) -> Option<PathBuf> {
    let root = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../../shared/data");
    let dir = root.join(sub);
    if dir.is_dir() {
        return Some(dir);
    }
    if std::env::var("CI").is_ok_and(|v| v == "true") {
        panic!("{} is missing: CI needs the shared datasets beside the checkout", dir.display());
    }
    eprintln!("skipping: {} not found (the shared datasets are not beside this checkout)", dir.display());
    None
}

/// An empty path under the system's temporary folder, named for this test process and `name`.
pub fn scratch(name: &str) -> PathBuf {
    let d = std::env::temp_dir().join(format!("towers-test-{}-{name}", std::process::id()));
    let _ = std::fs::remove_dir_all(&d);
    d
}

pub mod synthetic;
