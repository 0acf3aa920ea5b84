//! The model directory on disk: checksummed reads, and atomic replacement.

use crate::{Error, Result};
use sha2::{Digest, Sha256};
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

/// The sha256 of some bytes, in hex.
pub(super) fn sha256_hex(bytes: &[u8]) -> String {
    Sha256::digest(bytes).iter().map(|b| format!("{b:02x}")).collect()
}

/// Reads `name` from `dir`, checking it against its sha256 in `files`.
pub(super) fn read_checked(dir: &Path, files: &BTreeMap<String, String>, name: &str) -> Result<Vec<u8>> {
    let bad = |msg: String| Error::artifact(dir, msg);
    let want = files.get(name).ok_or_else(|| bad(format!("manifest.json lists no checksum for {name}")))?;
    let bytes = std::fs::read(dir.join(name)).map_err(|e| bad(format!("{name}: {e}")))?;
    if &sha256_hex(&bytes) != want {
        return Err(bad(format!("{name} is corrupt: its sha256 does not match the manifest")));
    }
    Ok(bytes)
}

/// Writes `files` into a fresh temporary sibling of `dir`, then renames it to `dir`. An
/// existing `dir` is replaced only if it is empty or a towers model directory.
pub(super) fn write_atomically(dir: &Path, files: &[(&str, Vec<u8>)]) -> Result<()> {
    let name =
        dir.file_name().ok_or_else(|| Error::artifact(dir, "not a directory name"))?.to_string_lossy().to_string();
    let parent = match dir.parent() {
        Some(p) if !p.as_os_str().is_empty() => p.to_path_buf(),
        _ => PathBuf::from("."),
    };
    std::fs::create_dir_all(&parent).map_err(|e| Error::io(&parent, e))?;
    if dir.exists() {
        let is_model = dir.join("manifest.json").is_file();
        let is_empty = std::fs::read_dir(dir).map(|mut d| d.next().is_none()).unwrap_or(false);
        if !(is_model || is_empty) {
            return Err(Error::artifact(dir, "exists and is not a towers model directory; refusing to replace it"));
        }
    }
    let stamp = format!(
        "{}-{}",
        std::process::id(),
        std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map(|d| d.as_nanos()).unwrap_or(0)
    );
    let tmp = parent.join(format!(".{name}.tmp-{stamp}"));
    let result = (|| -> Result<()> {
        std::fs::create_dir(&tmp).map_err(|e| Error::io(&tmp, e))?;
        for (f, bytes) in files {
            let p = tmp.join(f);
            let mut file = std::fs::File::create(&p).map_err(|e| Error::io(&p, e))?;
            std::io::Write::write_all(&mut file, bytes).map_err(|e| Error::io(&p, e))?;
            file.sync_all().map_err(|e| Error::io(&p, e))?;
        }
        if dir.exists() {
            let old = parent.join(format!(".{name}.old-{stamp}"));
            std::fs::rename(dir, &old).map_err(|e| Error::io(dir, e))?;
            std::fs::rename(&tmp, dir).map_err(|e| Error::io(dir, e))?;
            let _ = std::fs::remove_dir_all(&old);
        } else {
            std::fs::rename(&tmp, dir).map_err(|e| Error::io(dir, e))?;
        }
        Ok(())
    })();
    if result.is_err() {
        let _ = std::fs::remove_dir_all(&tmp);
    }
    result
}
