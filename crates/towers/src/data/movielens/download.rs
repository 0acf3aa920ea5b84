//! MovieLens 100K on first use: downloaded from GroupLens into a cache directory, every file
//! checked against its known sha256, and reused afterwards.
//!
//! The zip is read and verified in memory, written to a temporary sibling directory and renamed
//! into place, so the cache holds either the verified dataset or nothing: a corrupt or partial
//! download is refused and leaves no file behind.

use crate::{Error, Result};
use sha2::{Digest, Sha256};
use std::io::Read;
use std::path::{Path, PathBuf};
use std::time::Duration;

/// GroupLens's address of MovieLens 100K.
pub const MOVIELENS_100K_URL: &str = "https://files.grouplens.org/datasets/movielens/ml-100k.zip";

/// The environment variable that overrides [`MOVIELENS_100K_URL`].
pub const URL_VAR: &str = "TOWERS_MOVIELENS_URL";

/// The environment variable that names the cache directory (default: the platform's cache
/// directory, e.g. `~/.cache/towers` on Linux).
pub const CACHE_VAR: &str = "TOWERS_CACHE_DIR";

/// The folder of the dataset inside the cache directory (and inside the zip).
const FOLDER: &str = "ml-100k";

/// The files kept from the zip and their sha256: those of GroupLens's release.
const FILES: [(&str, &str); 7] = [
    ("README", "4883b8cf340ed0059971b33f56ad3adc88a40792108ebca3d24aafc4c82e8b52"),
    ("u.data", "06416e597f82b7342361e41163890c81036900f418ad91315590814211dca490"),
    ("u.genre", "9757e0d3e6b298159a80dd48eaf938114690e911e39af97a76949ef1663610bb"),
    ("u.info", "5b0a40b2e47a729ee6203063f6dcf8790c2e63f5a18663e6ee318a72c5f3c27b"),
    ("u.item", "553841ebc7de3a0fd0d6b62a204ea30c1e651aacfb2814c7a6584ac52f2c5701"),
    ("u.occupation", "cd5fbec9afe345d993a62fc7817df1a4a9079c4feb267b3118763b8fd942137d"),
    ("u.user", "f120e114da2e8cf314fd28f99417c94ae9ddf1cb6db8ce0e4b5995d40e90e62c"),
];

/// The largest download accepted (the zip is about 5 MB).
const MAX_ZIP_BYTES: u64 = 64 << 20;
/// The largest file accepted inside the zip (`u.data` is about 2 MB).
const MAX_FILE_BYTES: u64 = 16 << 20;

/// Where MovieLens 100K comes from and where it is kept.
///
/// ```no_run
/// # fn main() -> towers::Result<()> {
/// use towers::data::movielens::{Download, MovieLens};
/// let dir = Download::from_env()?.fetch()?; // downloads once, then reuses the cache
/// let ml = MovieLens::load(&dir)?;
/// # Ok(()) }
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Download {
    url: String,
    cache_dir: PathBuf,
}

impl Download {
    /// GroupLens's address and the cache directory, each overridden by its environment
    /// variable ([`URL_VAR`], [`CACHE_VAR`]).
    pub fn from_env() -> Result<Download> {
        let url = std::env::var(URL_VAR).ok().filter(|u| !u.is_empty()).unwrap_or_else(|| MOVIELENS_100K_URL.into());
        let cache_dir = match std::env::var_os(CACHE_VAR).filter(|d| !d.is_empty()) {
            Some(d) => PathBuf::from(d),
            None => dirs::cache_dir().map(|d| d.join("towers")).ok_or_else(|| {
                Error::Config(format!("no cache directory on this platform: set {CACHE_VAR} to a folder"))
            })?,
        };
        Ok(Download { url, cache_dir })
    }

    /// Downloads from `url` instead.
    pub fn url(mut self, url: impl Into<String>) -> Self {
        self.url = url.into();
        self
    }

    /// Keeps the dataset under `dir` instead.
    pub fn cache_dir(mut self, dir: impl Into<PathBuf>) -> Self {
        self.cache_dir = dir.into();
        self
    }

    /// The address it downloads from.
    pub fn source(&self) -> &str {
        &self.url
    }

    /// The dataset's directory in the cache (it exists once [`Download::fetch`] succeeded).
    pub fn dir(&self) -> PathBuf {
        self.cache_dir.join(FOLDER)
    }

    /// Whether the cache holds the dataset, every file intact.
    pub fn is_cached(&self) -> bool {
        verify_dir(&self.dir()).is_ok()
    }

    /// The dataset's directory: the cache when it holds the dataset intact, else a fresh
    /// download, verified and then moved into the cache.
    pub fn fetch(&self) -> Result<PathBuf> {
        let dir = self.dir();
        if self.is_cached() {
            return Ok(dir);
        }
        let zip = self.get()?;
        let files = unpack(&zip).map_err(|m| {
            Error::Data(format!(
                "MovieLens 100K from {}: {m}; the download is corrupt or not MovieLens 100K, and nothing was cached",
                self.url
            ))
        })?;
        install(&self.cache_dir, &dir, &files)?;
        Ok(dir)
    }

    /// The zip's bytes.
    fn get(&self) -> Result<Vec<u8>> {
        let offline = |e: &dyn std::fmt::Display| {
            Error::io(
                &self.url,
                std::io::Error::other(format!(
                    "could not download MovieLens 100K: {e}. Offline? Download {MOVIELENS_100K_URL} yourself, unzip \
                     it and pass its folder (towers quickstart --data ml-100k, or TOWERS_DATA=ml-100k), or set \
                     {URL_VAR} to another address"
                )),
            )
        };
        let agent = ureq::Agent::config_builder()
            .timeout_connect(Some(Duration::from_secs(30)))
            .timeout_global(Some(Duration::from_secs(600)))
            .build()
            .new_agent();
        let response = agent.get(&self.url).call().map_err(|e| match e {
            ureq::Error::StatusCode(code) => Error::io(
                &self.url,
                std::io::Error::other(format!(
                    "could not download MovieLens 100K: the server answered HTTP {code} (is {URL_VAR} right?)"
                )),
            ),
            e => offline(&e),
        })?;
        response.into_body().with_config().limit(MAX_ZIP_BYTES).read_to_vec().map_err(|e| offline(&e))
    }
}

fn sha256_hex(bytes: &[u8]) -> String {
    Sha256::digest(bytes).iter().map(|b| format!("{b:02x}")).collect()
}

/// Checks a cached directory: every file present with its sha256.
fn verify_dir(dir: &Path) -> std::result::Result<(), String> {
    for (name, sha) in FILES {
        let bytes = std::fs::read(dir.join(name)).map_err(|e| format!("{name}: {e}"))?;
        if sha256_hex(&bytes) != sha {
            return Err(format!("{name}: sha256 differs"));
        }
    }
    Ok(())
}

/// The dataset's files from the zip's bytes, each checked against its sha256 (other entries
/// are ignored).
fn unpack(zip: &[u8]) -> std::result::Result<Vec<(&'static str, Vec<u8>)>, String> {
    let mut archive = zip::ZipArchive::new(std::io::Cursor::new(zip)).map_err(|e| format!("not a zip file ({e})"))?;
    let mut out = Vec::with_capacity(FILES.len());
    for (name, sha) in FILES {
        let index = (0..archive.len())
            .find(|&i| archive.name_for_index(i).is_some_and(|n| n == name || n.ends_with(&format!("{FOLDER}/{name}"))))
            .ok_or_else(|| format!("{FOLDER}/{name} is missing from the zip"))?;
        let file = archive.by_index(index).map_err(|e| format!("{name}: {e}"))?;
        let mut bytes = Vec::new();
        file.take(MAX_FILE_BYTES + 1).read_to_end(&mut bytes).map_err(|e| format!("{name}: {e}"))?;
        if bytes.len() as u64 > MAX_FILE_BYTES {
            return Err(format!("{name} is larger than {MAX_FILE_BYTES} bytes"));
        }
        let found = sha256_hex(&bytes);
        if found != sha {
            return Err(format!("{name} has sha256 {found}, expected {sha}"));
        }
        out.push((name, bytes));
    }
    Ok(out)
}

/// Writes the files into a temporary sibling of `dir` and renames it into place (replacing a
/// damaged copy); on any failure the temporary directory is removed.
fn install(cache: &Path, dir: &Path, files: &[(&str, Vec<u8>)]) -> Result<()> {
    std::fs::create_dir_all(cache).map_err(|e| Error::io(cache, e))?;
    let nanos = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.subsec_nanos());
    let tmp = cache.join(format!(".{FOLDER}.tmp-{}-{nanos}", std::process::id()));
    let written = (|| {
        std::fs::create_dir(&tmp).map_err(|e| Error::io(&tmp, e))?;
        for (name, bytes) in files {
            let path = tmp.join(name);
            std::fs::write(&path, bytes).map_err(|e| Error::io(&path, e))?;
        }
        if dir.exists() {
            if verify_dir(dir).is_ok() {
                return Ok(()); // another process finished first
            }
            std::fs::remove_dir_all(dir).map_err(|e| Error::io(dir, e))?;
        }
        std::fs::rename(&tmp, dir).map_err(|e| Error::io(dir, e))
    })();
    if tmp.exists() {
        let _ = std::fs::remove_dir_all(&tmp);
    }
    written
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Write;

    fn zip_of(files: &[(&str, &[u8])]) -> Vec<u8> {
        let mut w = zip::ZipWriter::new(std::io::Cursor::new(Vec::new()));
        for (name, bytes) in files {
            w.start_file(*name, zip::write::SimpleFileOptions::default()).unwrap();
            w.write_all(bytes).unwrap();
        }
        w.finish().unwrap().into_inner()
    }

    #[test]
    fn a_zip_without_the_files_or_with_other_bytes_is_refused() {
        let e = unpack(b"not a zip").unwrap_err();
        assert!(e.contains("not a zip"), "{e}");
        let e = unpack(&zip_of(&[("ml-100k/u.data", b"1\t2\t3\t4\n")])).unwrap_err();
        assert!(e.contains("README is missing"), "{e}");
        let e = unpack(&zip_of(&[("ml-100k/README", b"changed")])).unwrap_err();
        assert!(e.contains("README has sha256") && e.contains("expected 4883b8cf"), "{e}");
    }

    #[test]
    fn nothing_is_left_in_the_cache_when_installing_fails() {
        let cache = std::env::temp_dir().join(format!("towers-dl-test-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&cache);
        // a file where the temporary directory's files would go cannot be written: a name with a NUL
        let bad: Vec<(&str, Vec<u8>)> = vec![("u.data", b"x".to_vec()), ("bad\0name", b"y".to_vec())];
        assert!(install(&cache, &cache.join(FOLDER), &bad).is_err());
        assert_eq!(std::fs::read_dir(&cache).unwrap().count(), 0, "the cache keeps nothing");
        std::fs::remove_dir_all(&cache).unwrap();
    }

    #[test]
    fn offline_is_a_clear_io_error() {
        // port 9 (discard) on localhost: nothing listens there
        let d = Download::from_env().unwrap().url("http://127.0.0.1:9/ml-100k.zip").cache_dir("/nonexistent/towers");
        let e = d.get().unwrap_err();
        assert_eq!(e.kind(), crate::ErrorKind::Io);
        assert!(e.to_string().contains("Offline?"), "{e}");
    }
}
