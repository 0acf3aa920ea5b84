//! The model directory on disk: one writer at a time, checksummed reads, and replacement with no
//! moment at which the directory is missing or half-written.
//!
//! A writer holds an exclusive lock on the sibling file `.NAME.lock` (which says who holds it). It
//! writes the new directory as the sibling `.NAME.tmp-…`, syncs every file and the directory, then
//! swaps it with `NAME` in one `renameat2(RENAME_EXCHANGE)` and deletes the old one: whenever a
//! writer dies, `NAME` is the old model or the new one, whole. The next writer removes what a dead
//! one left behind.

use crate::{Error, Result};
use sha2::{Digest, Sha256};
use std::collections::BTreeMap;
use std::fs::File;
use std::io::{Read, Seek, Write};
use std::path::{Path, PathBuf};

/// The sha256 of some bytes, in hex.
pub(crate) fn sha256_hex(bytes: &[u8]) -> String {
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

/// Writes the file `path` whole or not at all: what `write` writes goes to a synced sibling
/// temporary file (`.NAME.tmp`, so its writer must be the only one) renamed over it.
pub(crate) fn write_atomically(path: &Path, write: impl FnOnce(&mut dyn Write) -> std::io::Result<()>) -> Result<()> {
    let (parent, name) = split(path)?;
    let tmp = parent.join(format!(".{name}.tmp"));
    let written = write_synced(&tmp, write).map(|_| ());
    if let Err(e) = written.and_then(|_| std::fs::rename(&tmp, path)) {
        let _ = std::fs::remove_file(&tmp);
        return Err(Error::io(path, e));
    }
    sync_dir(&parent)
}

/// Writes the file `path` with `write` through a buffer, syncs it, and gives the sha256 of
/// what was written.
fn write_synced(path: &Path, write: impl FnOnce(&mut dyn Write) -> std::io::Result<()>) -> std::io::Result<String> {
    struct Hashing<W: Write>(W, Sha256);
    impl<W: Write> Write for Hashing<W> {
        fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
            let n = self.0.write(buf)?;
            self.1.update(&buf[..n]);
            Ok(n)
        }
        fn flush(&mut self) -> std::io::Result<()> {
            self.0.flush()
        }
    }
    let mut out = Hashing(std::io::BufWriter::with_capacity(1 << 20, File::create(path)?), Sha256::new());
    write(&mut out)?;
    let Hashing(file, hash) = out;
    file.into_inner().map_err(|e| e.into_error())?.sync_all()?;
    Ok(hash.finalize().iter().map(|b| format!("{b:02x}")).collect())
}

/// The parent of a directory and its name.
fn split(dir: &Path) -> Result<(PathBuf, String)> {
    let name =
        dir.file_name().ok_or_else(|| Error::artifact(dir, "not a directory name"))?.to_string_lossy().to_string();
    let parent = match dir.parent() {
        Some(p) if !p.as_os_str().is_empty() => p.to_path_buf(),
        _ => PathBuf::from("."),
    };
    Ok((parent, name))
}

fn sync_dir(dir: &Path) -> Result<()> {
    File::open(dir).and_then(|d| d.sync_all()).map_err(|e| Error::io(dir, e))
}

/// The exclusive right to write a model directory, held until dropped.
#[derive(Debug)]
pub struct DirLock {
    dir: PathBuf,
    _file: File,
}

impl DirLock {
    /// Takes the lock, or fails at once with [`Error::Busy`] naming the process that holds it.
    pub fn acquire(dir: impl AsRef<Path>) -> Result<DirLock> {
        Self::take(dir.as_ref(), false)
    }

    /// Takes the lock, waiting for the writer that holds it to finish.
    pub fn wait(dir: impl AsRef<Path>) -> Result<DirLock> {
        Self::take(dir.as_ref(), true)
    }

    /// The directory it holds.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    fn take(dir: &Path, wait: bool) -> Result<DirLock> {
        let (parent, name) = split(dir)?;
        std::fs::create_dir_all(&parent).map_err(|e| Error::io(&parent, e))?;
        let path = parent.join(format!(".{name}.lock"));
        let mut file = std::fs::OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(false)
            .open(&path)
            .map_err(|e| Error::io(&path, e))?;
        match file.try_lock() {
            Ok(()) => {}
            Err(std::fs::TryLockError::WouldBlock) if wait => file.lock().map_err(|e| Error::io(&path, e))?,
            Err(std::fs::TryLockError::WouldBlock) => {
                let mut holder = String::new();
                let _ = file.read_to_string(&mut holder);
                let holder = holder.trim();
                let who = if holder.is_empty() { "another process".to_string() } else { holder.to_string() };
                return Err(Error::Busy {
                    path: dir.to_path_buf(),
                    msg: format!("locked by {who}; wait for it (`wait`) or try again"),
                });
            }
            Err(std::fs::TryLockError::Error(e)) => return Err(Error::io(&path, e)),
        }
        let command: Vec<String> = std::env::args().take(3).collect();
        let _ = file.set_len(0).and_then(|_| file.rewind());
        let _ = writeln!(file, "pid {} ({})", std::process::id(), command.join(" "));
        let lock = DirLock { dir: dir.to_path_buf(), _file: file };
        lock.clean(&parent, &name)?;
        Ok(lock)
    }

    /// Removes what a writer that died left: temporary directories, and, after a crash in the
    /// middle of a fallback replacement (see [`replace`]), puts the old model back.
    fn clean(&self, parent: &Path, name: &str) -> Result<()> {
        let entries = std::fs::read_dir(parent).map_err(|e| Error::io(parent, e))?;
        let mut old = Vec::new();
        for e in entries.flatten() {
            let file = e.file_name().to_string_lossy().to_string();
            if file.starts_with(&format!(".{name}.tmp-")) {
                let _ = std::fs::remove_dir_all(e.path());
            } else if file.starts_with(&format!(".{name}.old-")) {
                old.push(e.path());
            }
        }
        for o in old {
            if !self.dir.exists() && o.join("manifest.json").is_file() {
                std::fs::rename(&o, &self.dir).map_err(|e| Error::io(&self.dir, e))?;
            } else {
                let _ = std::fs::remove_dir_all(&o);
            }
        }
        Ok(())
    }
}

/// A new version of a model directory being written: files go to a temporary sibling as they
/// come, each synced; [`Staging::commit`] puts it in place.
pub(crate) struct Staging<'a> {
    lock: &'a DirLock,
    tmp: PathBuf,
    /// File name → sha256 of what was written.
    pub files: BTreeMap<String, String>,
}

impl<'a> Staging<'a> {
    /// Starts a new version of the locked directory.
    pub fn new(lock: &'a DirLock) -> Result<Self> {
        let dir = &lock.dir;
        if dir.exists() {
            let is_model = dir.join("manifest.json").is_file() || dir.join("pipeline.toml").is_file();
            let is_empty = std::fs::read_dir(dir).map(|mut d| d.next().is_none()).unwrap_or(false);
            if !(is_model || is_empty) {
                return Err(Error::artifact(dir, "exists and is not a towers model directory; refusing to replace it"));
            }
        }
        let (parent, name) = split(dir)?;
        let nanos =
            std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map(|d| d.as_nanos()).unwrap_or(0);
        let tmp = parent.join(format!(".{name}.tmp-{}-{nanos}", std::process::id()));
        std::fs::create_dir(&tmp).map_err(|e| Error::io(&tmp, e))?;
        Ok(Staging { lock, tmp, files: BTreeMap::new() })
    }

    /// The temporary directory, for writers of whole sub-directories (a pipeline's models).
    pub fn path(&self) -> &Path {
        &self.tmp
    }

    /// Writes one file (synced) and records its checksum.
    pub fn add(&mut self, name: &str, bytes: &[u8]) -> Result<()> {
        self.add_with(name, |w| w.write_all(bytes))
    }

    /// Writes one file with `write` (synced; a large one streamed rather than first made in
    /// memory) and records its checksum.
    pub fn add_with(&mut self, name: &str, write: impl FnOnce(&mut dyn Write) -> std::io::Result<()>) -> Result<()> {
        let p = self.tmp.join(name);
        let hash = write_synced(&p, write).map_err(|e| Error::io(&p, e))?;
        self.files.insert(name.to_string(), hash);
        Ok(())
    }

    /// Writes the last file (the manifest, which names the others) and replaces the directory.
    pub fn commit(self, name: &str, bytes: &[u8]) -> Result<()> {
        let p = self.tmp.join(name);
        let mut file = File::create(&p).map_err(|e| Error::io(&p, e))?;
        file.write_all(bytes).and_then(|_| file.sync_all()).map_err(|e| Error::io(&p, e))?;
        self.commit_dir()
    }

    /// Puts the temporary directory in place as it is (its files already synced).
    pub fn commit_dir(self) -> Result<()> {
        sync_dir(&self.tmp)?;
        replace(&self.tmp, &self.lock.dir)
    }
}

impl Drop for Staging<'_> {
    fn drop(&mut self) {
        // after a commit the temporary path holds the old version (or nothing)
        let _ = std::fs::remove_dir_all(&self.tmp);
    }
}

/// Puts `new` in place of `dir`: one atomic exchange where the system has it, then removes the
/// old version; elsewhere two renames (a crash between them is repaired by the next writer).
fn replace(new: &Path, dir: &Path) -> Result<()> {
    let (parent, name) = split(dir)?;
    if !dir.exists() {
        std::fs::rename(new, dir).map_err(|e| Error::io(dir, e))?;
        return sync_dir(&parent);
    }
    if !exchange(new, dir)? {
        let old = parent.join(format!(".{name}.old-{}", std::process::id()));
        std::fs::rename(dir, &old).map_err(|e| Error::io(dir, e))?;
        std::fs::rename(new, dir).map_err(|e| Error::io(dir, e))?;
        let _ = std::fs::remove_dir_all(&old);
    }
    sync_dir(&parent)
}

/// Swaps two paths atomically (`renameat2(RENAME_EXCHANGE)`); `false` where the system cannot.
#[cfg(target_os = "linux")]
fn exchange(a: &Path, b: &Path) -> Result<bool> {
    use std::os::unix::ffi::OsStrExt;
    let c = |p: &Path| {
        std::ffi::CString::new(p.as_os_str().as_bytes()).map_err(|_| Error::artifact(p, "a path with a NUL byte"))
    };
    let (ca, cb) = (c(a)?, c(b)?);
    // SAFETY: two valid NUL-terminated paths, relative to the working directory.
    let r = unsafe { libc::renameat2(libc::AT_FDCWD, ca.as_ptr(), libc::AT_FDCWD, cb.as_ptr(), libc::RENAME_EXCHANGE) };
    if r == 0 {
        return Ok(true);
    }
    let e = std::io::Error::last_os_error();
    match e.raw_os_error() {
        Some(libc::EINVAL | libc::ENOSYS | libc::EOPNOTSUPP) => Ok(false),
        _ => Err(Error::io(b, e)),
    }
}

#[cfg(not(target_os = "linux"))]
fn exchange(_: &Path, _: &Path) -> Result<bool> {
    Ok(false)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn one_writer_at_a_time_and_leftovers_are_cleaned() {
        let root = std::env::temp_dir().join(format!("towers-dirlock-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&root);
        std::fs::create_dir_all(&root).unwrap();
        let dir = root.join("m");
        let lock = DirLock::acquire(&dir).unwrap();
        let e = DirLock::acquire(&dir).unwrap_err();
        assert!(
            matches!(e, Error::Busy { .. }) && e.to_string().contains(&format!("pid {}", std::process::id())),
            "{e}"
        );
        let mut s = Staging::new(&lock).unwrap();
        s.add("a", b"1").unwrap();
        s.commit("manifest.json", b"{}").unwrap();
        assert_eq!(std::fs::read(dir.join("a")).unwrap(), b"1");
        // a second version replaces the first, with nothing left beside it
        let mut s = Staging::new(&lock).unwrap();
        s.add("b", b"2").unwrap();
        s.commit("manifest.json", b"{}").unwrap();
        assert!(dir.join("b").is_file() && !dir.join("a").exists());
        drop(lock);
        // a writer killed half-way left a temporary directory, and (fallback) the old model aside
        std::fs::create_dir_all(root.join(".m.tmp-1-2")).unwrap();
        std::fs::rename(&dir, root.join(".m.old-9")).unwrap();
        let lock = DirLock::wait(&dir).unwrap();
        assert!(dir.join("manifest.json").is_file(), "the old model is put back");
        let names: Vec<String> =
            std::fs::read_dir(&root).unwrap().map(|e| e.unwrap().file_name().to_string_lossy().into()).collect();
        assert!(names.iter().all(|n| !n.contains(".tmp-") && !n.contains(".old-")), "{names:?}");
        drop(lock);
        std::fs::remove_dir_all(&root).unwrap();
    }
}
