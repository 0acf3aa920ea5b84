//! Live histories: what users did since the model was trained, for a sequential model to
//! recommend from (each user's events become the request's `recent` items).
//!
//! Memory is bounded: at most `per_user` events per user (the oldest dropped) and `users`
//! users (the least recently active dropped). With a file the events are durable: each batch
//! is appended to the log (one JSON line per event) when it arrives, the log is fsynced by a
//! thread of its own at most `sync_ms` after a write, replayed at start-up, and rewritten
//! (compacted) once it holds twice the events kept. A process killed loses nothing written; a
//! machine that stops loses at most the events of the last `sync_ms`.

use crate::{Error, Result};
use serde::{Deserialize, Serialize};
use std::collections::{HashMap, VecDeque};
use std::fs::{File, OpenOptions};
use std::io::{BufRead, BufReader, Write};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Condvar, Mutex, MutexGuard};
use std::thread::JoinHandle;
use std::time::Duration;

/// One thing a user did: an item, and when (seconds; optional).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(deny_unknown_fields)]
pub struct Event {
    /// The user's id (a string, or a number written as one).
    #[serde(deserialize_with = "id")]
    pub user: String,
    /// The item's id (a string, or a number written as one).
    #[serde(deserialize_with = "id")]
    pub item: String,
    /// Unix seconds, when known.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub timestamp: Option<i64>,
}

fn id<'de, D: serde::Deserializer<'de>>(d: D) -> std::result::Result<String, D::Error> {
    crate::config::post::Id::deserialize(d).map(|i| i.0)
}

/// How much [`Live`] keeps, and how often it syncs its log.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct LiveConfig {
    /// Events kept per user (the oldest are dropped).
    pub per_user: usize,
    /// Users kept (the least recently active are dropped).
    pub users: usize,
    /// The longest a written event waits for its fsync, in milliseconds.
    pub sync_ms: u64,
}

impl Default for LiveConfig {
    /// 100 events per user, 1,000,000 users, a sync at most every second.
    fn default() -> Self {
        LiveConfig { per_user: 100, users: 1_000_000, sync_ms: 1000 }
    }
}

/// Users' recent events, in memory and, with a file, in a durable log (see the module).
pub struct Live {
    shared: Arc<Shared>,
    syncer: Option<JoinHandle<()>>,
}

struct Shared {
    state: Mutex<State>,
    wake: Condvar,
}

struct State {
    config: LiveConfig,
    /// Each user's events (item ids, oldest first) and when they were last active.
    users: HashMap<String, (u64, VecDeque<String>)>,
    clock: u64,
    kept: usize,
    log: Option<Log>,
    stop: bool,
}

struct Log {
    path: PathBuf,
    file: File,
    lines: usize,
    dirty: bool,
}

fn lock(m: &Mutex<State>) -> MutexGuard<'_, State> {
    m.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
}

impl State {
    fn add(&mut self, e: &Event) {
        self.clock += 1;
        let (per_user, clock) = (self.config.per_user, self.clock);
        let entry = self.users.entry(e.user.clone()).or_insert_with(|| (0, VecDeque::new()));
        entry.0 = clock;
        entry.1.push_back(e.item.clone());
        self.kept += 1;
        if entry.1.len() > per_user {
            entry.1.pop_front();
            self.kept -= 1;
        }
        if self.users.len() > self.config.users {
            // drop the least recently active tenth at once (amortised)
            let mut touched: Vec<(u64, String)> = self.users.iter().map(|(u, (t, _))| (*t, u.clone())).collect();
            touched.sort_unstable();
            let drop = (self.users.len() - self.config.users).max(self.config.users / 10).max(1);
            for (_, u) in touched.into_iter().take(drop) {
                if let Some((_, items)) = self.users.remove(&u) {
                    self.kept -= items.len();
                }
            }
        }
    }

    /// The events kept, as log lines, the least recently active user first.
    fn snapshot(&self) -> Result<Vec<u8>> {
        let mut users: Vec<(&u64, &String, &VecDeque<String>)> =
            self.users.iter().map(|(u, (t, items))| (t, u, items)).collect();
        users.sort_unstable();
        let mut out = Vec::new();
        for (_, user, items) in users {
            for item in items {
                let e = Event { user: user.clone(), item: item.clone(), timestamp: None };
                serde_json::to_writer(&mut out, &e).map_err(Error::internal)?;
                out.push(b'\n');
            }
        }
        Ok(out)
    }

    /// Rewrites the log with the events kept, atomically, when it holds twice as many lines.
    fn compact_if_due(&mut self) -> Result<()> {
        let due = self.log.as_ref().is_some_and(|l| l.lines > 2 * self.kept + 1000);
        if !due {
            return Ok(());
        }
        let bytes = self.snapshot()?;
        let log = self.log.as_mut().expect("due");
        let tmp = log.path.with_extension("compacting");
        let io = |e| Error::io(&log.path, e);
        let mut f = File::create(&tmp).map_err(io)?;
        f.write_all(&bytes).and_then(|_| f.sync_all()).map_err(io)?;
        std::fs::rename(&tmp, &log.path).map_err(io)?;
        log.file = OpenOptions::new().append(true).open(&log.path).map_err(io)?;
        log.lines = self.kept;
        Ok(())
    }
}

impl Live {
    /// Live histories in memory only.
    pub fn in_memory(config: LiveConfig) -> Live {
        Live::with(config, None)
    }

    /// Live histories logged to `path`: its events are replayed (a last line cut short by a
    /// crash is skipped), then new ones are appended.
    pub fn open(path: impl AsRef<Path>, config: LiveConfig) -> Result<Live> {
        let path = path.as_ref();
        let mut state = State::new(config, None);
        let mut lines = 0;
        if path.exists() {
            let reader = BufReader::new(File::open(path).map_err(|e| Error::io(path, e))?);
            let mut skipped = 0;
            for (i, line) in reader.split(b'\n').enumerate() {
                let line = line.map_err(|e| Error::io(path, e))?;
                match serde_json::from_slice::<Event>(&line) {
                    Ok(e) => state.add(&e),
                    Err(_) if line.is_empty() => continue,
                    Err(e) => {
                        skipped += 1;
                        tracing::warn!("{}:{}: not an event ({e}); skipped", path.display(), i + 1);
                    }
                }
                lines += 1;
            }
            tracing::info!(events = state.kept, users = state.users.len(), skipped, "replayed {}", path.display());
        }
        let file = OpenOptions::new().create(true).append(true).open(path).map_err(|e| Error::io(path, e))?;
        // a torn last line must not swallow the next event
        let len = file.metadata().map_err(|e| Error::io(path, e))?.len();
        let mut log = Log { path: path.to_path_buf(), file, lines, dirty: false };
        if len > 0 {
            use std::io::{Read, Seek, SeekFrom};
            let mut last = [0u8];
            let mut f = File::open(path).map_err(|e| Error::io(path, e))?;
            f.seek(SeekFrom::End(-1)).and_then(|_| f.read_exact(&mut last)).map_err(|e| Error::io(path, e))?;
            if last[0] != b'\n' {
                log.file.write_all(b"\n").map_err(|e| Error::io(path, e))?;
            }
        }
        state.log = Some(log);
        state.compact_if_due()?;
        Ok(Live::with(config, Some(state)))
    }

    fn with(config: LiveConfig, state: Option<State>) -> Live {
        let state = state.unwrap_or_else(|| State::new(config, None));
        let logged = state.log.is_some();
        let shared = Arc::new(Shared { state: Mutex::new(state), wake: Condvar::new() });
        let syncer = logged.then(|| {
            let shared = shared.clone();
            std::thread::spawn(move || sync_loop(&shared))
        });
        Live { shared, syncer }
    }

    /// Appends events (in order): to the log when there is one, then to memory. Every event
    /// must name a user and an item; the caller checks that the items exist.
    pub fn append(&self, events: &[Event]) -> Result<()> {
        if let Some(e) = events.iter().find(|e| e.user.is_empty() || e.item.is_empty()) {
            return Err(Error::Data(format!("an event needs a user and an item: {e:?}")));
        }
        let mut state = lock(&self.shared.state);
        if let Some(log) = state.log.as_mut() {
            let mut bytes = Vec::new();
            for e in events {
                serde_json::to_writer(&mut bytes, e).map_err(Error::internal)?;
                bytes.push(b'\n');
            }
            log.file.write_all(&bytes).map_err(|e| Error::io(&log.path, e))?;
            log.lines += events.len();
            log.dirty = true;
        }
        events.iter().for_each(|e| state.add(e));
        state.compact_if_due()?;
        self.shared.wake.notify_all();
        Ok(())
    }

    /// A user's events kept, oldest first.
    pub fn recent(&self, user: &str) -> Vec<String> {
        lock(&self.shared.state).users.get(user).map(|(_, items)| items.iter().cloned().collect()).unwrap_or_default()
    }

    /// Users and events kept.
    pub fn len(&self) -> (usize, usize) {
        let s = lock(&self.shared.state);
        (s.users.len(), s.kept)
    }

    /// Whether no event is kept.
    pub fn is_empty(&self) -> bool {
        self.len().1 == 0
    }

    /// Syncs the log now.
    pub fn sync(&self) -> Result<()> {
        let mut state = lock(&self.shared.state);
        match state.log.as_mut() {
            Some(log) => sync(log),
            None => Ok(()),
        }
    }
}

fn sync(log: &mut Log) -> Result<()> {
    if log.dirty {
        log.file.sync_data().map_err(|e| Error::io(&log.path, e))?;
        log.dirty = false;
    }
    Ok(())
}

/// Syncs the log at most `sync_ms` after each write, until the [`Live`] is dropped.
fn sync_loop(shared: &Shared) {
    let mut state = lock(&shared.state);
    loop {
        if state.stop {
            return;
        }
        let wait = Duration::from_millis(state.config.sync_ms);
        if state.log.as_ref().is_some_and(|l| l.dirty) {
            // let the group gather, then sync it
            drop(state);
            std::thread::sleep(wait);
            state = lock(&shared.state);
            if let Some(log) = state.log.as_mut()
                && let Err(e) = sync(log)
            {
                tracing::error!("the events log: {e}");
            }
        } else {
            state = shared.wake.wait_timeout(state, wait).map(|(s, _)| s).unwrap_or_else(|e| e.into_inner().0);
        }
    }
}

impl State {
    fn new(config: LiveConfig, log: Option<Log>) -> State {
        State { config, users: HashMap::new(), clock: 0, kept: 0, log, stop: false }
    }
}

impl Drop for Live {
    fn drop(&mut self) {
        {
            let mut state = lock(&self.shared.state);
            state.stop = true;
            if let Some(log) = state.log.as_mut()
                && let Err(e) = sync(log)
            {
                tracing::error!("the events log: {e}");
            }
        }
        self.shared.wake.notify_all();
        if let Some(t) = self.syncer.take() {
            let _ = t.join();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ev(user: &str, item: &str) -> Event {
        Event { user: user.into(), item: item.into(), timestamp: None }
    }

    #[test]
    fn events_are_bounded_replayed_and_compacted() {
        let dir = std::env::temp_dir().join(format!("towers-live-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("events.log");
        let config = LiveConfig { per_user: 3, users: 10, sync_ms: 10 };
        {
            let live = Live::open(&path, config).unwrap();
            live.append(&[ev("a", "1"), ev("a", "2"), ev("b", "9")]).unwrap();
            live.append(&[ev("a", "3"), ev("a", "4")]).unwrap();
            assert_eq!(live.recent("a"), ["2", "3", "4"], "the oldest dropped");
            assert!(live.append(&[ev("", "1")]).is_err());
        }
        // a crash cut the last line short: it is skipped, the rest replayed
        let mut f = OpenOptions::new().append(true).open(&path).unwrap();
        f.write_all(br#"{"user":"b","it"#).unwrap();
        drop(f);
        let live = Live::open(&path, config).unwrap();
        assert_eq!((live.recent("a"), live.recent("b")), (vec!["2".into(), "3".into(), "4".into()], vec!["9".into()]));
        live.append(&[ev("b", "8")]).unwrap();
        // a flood of users: at most 10 kept, the least recently active dropped; the log is
        // compacted to about what is kept
        for u in 0..5000 {
            live.append(&[ev(&format!("u{u}"), "1")]).unwrap();
        }
        assert!(live.len().0 <= 10 && live.recent("u4999") == ["1"] && live.recent("a").is_empty());
        drop(live);
        let lines = std::fs::read_to_string(&path).unwrap().lines().count();
        assert!(lines < 2 * 10 * 3 + 1000 + 10, "{lines} lines");
        let live = Live::open(&path, config).unwrap();
        assert_eq!(live.recent("u4999"), ["1"]);
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
