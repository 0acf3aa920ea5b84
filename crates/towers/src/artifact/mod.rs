//! A trained model bundle and its directory on disk: the model, its vocabularies, the
//! candidate embeddings, what each user has seen, popularity, the training record and an
//! optional approximate index. Nothing here trains, evaluates or serves: see `train`, `eval`
//! and `recommend`.
//!
//! ```text
//! manifest.json            format, format_version, the model's kind and settings, the training
//!                          config, sizes, training figures, sha256 of every other file
//! vocab.json               query ids in row order (row 0 = OOV)
//! items.json               candidate rows: key kind, id and title per row, id -> row
//! weights.safetensors      the model's own tensors (each kind names its own), and in its
//!                          metadata what reading them back needs (layouts, rating scale)
//! candidates.safetensors   precomputed candidate embeddings
//! interactions.safetensors what each user saw in training (CSR) and item popularity
//! history.json/.csv/.svg   per-epoch training history and its plot
//! feature_crossing.json/.svg  a DCN's feature-pair crossing norms and their heat map
//! index.ivf.safetensors    optional approximate index (`towers index build`)
//! optimizer.safetensors    the optimizer's state at the end of training, to continue it
//!                          (`Trainer::init_from`); serving never reads it
//! ```
//! Saving writes a temporary sibling directory and renames it into place, so a reader never
//! sees half a model. Loading checks the format version and every checksum before parsing;
//! a manifest of an older format is upgraded as it is read (see `manifest.rs`).

mod dir;
mod history;
mod manifest;

pub use dir::DirLock;
pub(crate) use dir::{Staging, sha256_hex, write_atomically};
pub use history::{EpochRecord, History};
pub use manifest::{FORMAT_NAME, FORMAT_VERSION, IndexManifest, Manifest};

use crate::config::TrainConfig;
use crate::data::{Items, Seen, Vocabulary};
use crate::index::IvfIndex;
use crate::model::{Model, Shape};
use crate::tensors::{Streams, TensorReader, TensorWriter};
use crate::{Error, Result};
use serde::{Deserialize, Serialize};
use std::path::{Path, PathBuf};
use std::sync::Arc;

/// File of the approximate index in the model directory.
const IVF_FILE: &str = "index.ivf.safetensors";

/// Figures of the training run, kept in the manifest.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct TrainSummary {
    /// Training examples.
    pub n_train: usize,
    /// Seconds of each epoch.
    pub epoch_s: Vec<f64>,
    /// Seconds of the whole training loop.
    pub train_s: f64,
    /// Training examples per second over all epochs.
    pub examples_per_s: f64,
    /// Loss of the last epoch.
    pub final_loss: f64,
    /// A distributed run: each rank's figures (empty for one process).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub ranks: Vec<RankSummary>,
}

/// What one rank of a distributed run held and sent.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RankSummary {
    /// The rank.
    pub rank: usize,
    /// Rows of the query (user) table it held.
    pub user_rows: usize,
    /// Rows of the candidate (item) table it held.
    pub item_rows: usize,
    /// Its peak resident memory, in MB.
    pub peak_rss_mb: f64,
    /// Bytes it sent to other ranks during training.
    pub bytes_sent: u64,
    /// Optimizer steps.
    pub steps: u64,
}

impl TrainSummary {
    /// The figures of `n_train` examples trained for `history`'s epochs in `train_s` seconds.
    pub fn new(n_train: usize, history: &History, train_s: f64) -> Self {
        TrainSummary {
            n_train,
            epoch_s: history.epochs.iter().map(|e| e.seconds).collect(),
            train_s,
            examples_per_s: (n_train * history.epochs.len()) as f64 / train_s.max(1e-9),
            final_loss: history.epochs.last().map_or(f64::NAN, |e| e.loss),
            ranks: Vec::new(),
        }
    }
}

/// An approximate index of the candidates and its figures at build time.
#[derive(Debug, Clone, PartialEq)]
pub struct Approximate {
    /// The index.
    pub index: IvfIndex,
    /// Recall@10 against the exact index on a sample of queries, at build time.
    pub recall_10: f64,
    /// Queries of that sample.
    pub recall_queries: usize,
    /// Seconds to build it.
    pub build_s: f64,
}

/// A trained model with everything needed to evaluate and serve it, and its directory.
///
/// ```no_run
/// # fn main() -> towers::Result<()> {
/// use towers::{Artifact, Served};
/// let model = Artifact::load("/tmp/d")?; // format version and every checksum checked first
/// println!("{} users, {} items, dim {}", model.query_vocab.num_keys(), model.items.len() - 1, model.dim());
/// model.save("/tmp/d2")?; // atomic: /tmp/d2 is the old directory or the new one, whole
/// let served = Served::from(model); // recommend, evaluate, describe
/// # let _ = served; Ok(()) }
/// ```
#[derive(Debug)]
pub struct Artifact {
    /// The model.
    pub model: Box<dyn Model>,
    /// How it was trained.
    pub config: TrainConfig,
    /// Query ids.
    pub query_vocab: Vocabulary,
    /// Candidates.
    pub items: Items,
    /// The candidate tower's output for every candidate row (`items.len() × dim`).
    pub candidates: Arc<[f32]>,
    /// An approximate index over `candidates` (`towers index build`).
    pub approximate: Option<Approximate>,
    /// Training items of each query row.
    pub seen: Seen,
    /// Sequential models trained on users' sequences: each user's last items (the model's
    /// history length), oldest first, that `Query::User` starts from ([`Seen::from_lists`]);
    /// empty otherwise.
    pub histories: Seen,
    /// Training occurrences of each candidate row.
    pub popularity: Vec<f32>,
    /// Per-epoch history.
    pub history: History,
    /// Training figures.
    pub summary: TrainSummary,
    /// The optimizer's state at the end of training, when trained in this process (a loaded
    /// model reads it from its directory when continued: [`Artifact::optimizer_state`]).
    pub optimizer: Option<OptimizerState>,
    /// The directory it was last loaded from or saved to, to refuse to overwrite a newer model
    /// that another process saved there since.
    pub(crate) origin: std::sync::Mutex<Option<Origin>>,
}

/// The directory a model was loaded from and the checksum of its manifest then.
#[derive(Debug, Clone)]
pub(crate) struct Origin {
    dir: PathBuf,
    manifest: String,
}

/// The optimizer's state at the end of training: its slots for every parameter and its step
/// count (`optimizer.safetensors`), what training continues from. It holds the slots the
/// training loop had (moved, not copied), or, spilled, a temporary file of them.
pub struct OptimizerState(pub(crate) Kept);

/// Where an [`OptimizerState`] is.
pub(crate) enum Kept {
    Memory(TensorWriter),
    /// A temporary file, deleted with it.
    File(PathBuf),
}

impl OptimizerState {
    /// The state written to a temporary file in `dir` (its memory freed), so that what is
    /// allocated after training does not stack on it.
    pub(crate) fn spill(self, dir: &Path) -> Result<Self> {
        let Kept::Memory(w) = &self.0 else { return Ok(self) };
        let nanos =
            std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map(|d| d.as_nanos()).unwrap_or(0);
        let path = dir.join(format!(".towers-optimizer-{}-{nanos}.tmp", std::process::id()));
        let write = |p: &Path| -> std::io::Result<()> {
            let mut out = std::io::BufWriter::with_capacity(1 << 20, std::fs::File::create(p)?);
            w.write_to(&mut out)?;
            std::io::Write::flush(&mut out)
        };
        if let Err(e) = write(&path) {
            let _ = std::fs::remove_file(&path);
            return Err(Error::io(&path, e));
        }
        Ok(OptimizerState(Kept::File(path)))
    }

    /// Writes the file's bytes to `out` (with `streams`' tensors, when in memory).
    fn write_to(&self, out: &mut dyn std::io::Write, streams: &mut dyn Streams) -> std::io::Result<()> {
        match &self.0 {
            Kept::Memory(w) => w.write_streamed(out, OPTIMIZER_FILE, streams),
            Kept::File(p) => std::io::copy(&mut std::fs::File::open(p)?, out).map(|_| ()),
        }
    }
}

impl Drop for OptimizerState {
    fn drop(&mut self) {
        if let Kept::File(p) = &self.0 {
            let _ = std::fs::remove_file(p);
        }
    }
}

impl std::fmt::Debug for OptimizerState {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("OptimizerState { .. }")
    }
}

pub(crate) const OPTIMIZER_FILE: &str = "optimizer.safetensors";
pub(crate) const WEIGHTS_FILE: &str = "weights.safetensors";
pub(crate) const CANDIDATES_FILE: &str = "candidates.safetensors";

/// The optimizer state in the directory a model was loaded from (`origin`), checked against the
/// manifest loaded then; `None` when there is none.
fn optimizer_file(origin: Option<&Origin>) -> Result<Option<Vec<u8>>> {
    let Some(o) = origin else { return Ok(None) };
    let bytes = std::fs::read(o.dir.join("manifest.json")).map_err(|e| Error::io(&o.dir, e))?;
    if dir::sha256_hex(&bytes) != o.manifest {
        return Err(Error::artifact(&o.dir, "the model there changed since this one was loaded from it"));
    }
    let version = serde_json::from_slice::<serde_json::Value>(&bytes)
        .ok()
        .and_then(|v| v.get("format_version").and_then(|v| v.as_u64()))
        .unwrap_or(0);
    let m = manifest::read(&bytes, version as u32).map_err(|e| Error::artifact(&o.dir, e.to_string()))?.manifest;
    if !m.files.contains_key(OPTIMIZER_FILE) {
        return Ok(None);
    }
    Ok(Some(dir::read_checked(&o.dir, &m.files, OPTIMIZER_FILE)?))
}

fn json<T: Serialize>(v: &T) -> Result<Vec<u8>> {
    serde_json::to_vec_pretty(v).map_err(Error::internal)
}

fn parse_json<T: serde::de::DeserializeOwned>(dir: &Path, name: &str, bytes: &[u8]) -> Result<T> {
    serde_json::from_slice(bytes).map_err(|e| Error::artifact(dir, format!("{name}: {e}")))
}

impl Artifact {
    /// Embedding width.
    pub fn dim(&self) -> usize {
        self.model.dim()
    }

    /// What identifies this model: the first 16 hex digits of the sha256 of its manifest (kind,
    /// settings, sizes, training figures, index), so that every training run, and every index
    /// built on it, gets its own.
    pub fn version(&self) -> String {
        use sha2::Digest;
        let manifest = serde_json::to_vec(&self.manifest()).unwrap_or_default();
        sha2::Sha256::digest(&manifest).iter().take(8).map(|b| format!("{b:02x}")).collect()
    }

    /// The manifest that [`Artifact::save`] writes, without the checksums.
    pub fn manifest(&self) -> Manifest {
        Manifest {
            format: FORMAT_NAME.into(),
            format_version: FORMAT_VERSION,
            towers_version: env!("CARGO_PKG_VERSION").into(),
            model: self.model.spec(),
            config: self.config.clone(),
            dim: self.dim(),
            query_rows: self.query_vocab.rows(),
            candidate_rows: self.items.len(),
            training: self.summary.clone(),
            metrics: self.history.epochs.last().and_then(|e| e.validation),
            index: self.approximate.as_ref().map(|a| IndexManifest {
                kind: "ivf".into(),
                file: IVF_FILE.into(),
                nlist: a.index.nlist(),
                nprobe: a.index.nprobe(),
                recall_10: a.recall_10,
                recall_queries: a.recall_queries,
                build_s: a.build_s,
            }),
            files: Default::default(),
        }
    }

    /// Writes the model directory: takes its lock (see [`DirLock`]; another writer holding it is
    /// an [`Error::Busy`]), then [`Artifact::save_locked`].
    pub fn save(&self, dir: impl AsRef<Path>) -> Result<()> {
        self.save_locked(&DirLock::acquire(dir)?)
    }

    /// Writes the directory `lock` holds, replacing it with no moment at which it is missing or
    /// half-written. A model loaded from (or saved to) that directory is not written over a
    /// newer one that another process saved there since ([`Error::Busy`]).
    pub fn save_locked(&self, lock: &DirLock) -> Result<()> {
        self.save_streamed(lock, &mut ())
    }

    /// [`Artifact::save_locked`], with the tensors `streams` has written by it (a distributed
    /// run's sharded tables: this artifact holds only rank 0's rows of them).
    pub(crate) fn save_streamed(&self, lock: &DirLock, streams: &mut dyn Streams) -> Result<()> {
        let dir = lock.dir();
        let mut origin = self.origin.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        if let Some(o) = origin.as_ref() {
            let now = std::fs::read(dir.join("manifest.json")).map(|b| dir::sha256_hex(&b)).ok();
            if dir.canonicalize().ok().as_ref() == Some(&o.dir) && now.as_ref() != Some(&o.manifest) {
                return Err(Error::Busy {
                    path: dir.to_path_buf(),
                    msg: "the model there changed since this one was loaded from it (a newer one was saved); load it again".into(),
                });
            }
        }
        let mut files = dir::Staging::new(lock)?;
        files.add("vocab.json", &json(&self.query_vocab)?)?;
        files.add("items.json", &json(&self.items)?)?;
        let mut w = TensorWriter::default();
        self.model.save(&mut w)?;
        files.add_with(WEIGHTS_FILE, |out| w.write_streamed(out, WEIGHTS_FILE, streams))?;
        drop(w);
        let mut c = TensorWriter::default();
        c.f32("embeddings", &[self.items.len(), self.dim()], &self.candidates);
        files.add_with(CANDIDATES_FILE, |out| c.write_streamed(out, CANDIDATES_FILE, streams))?;
        drop(c);
        let mut i = TensorWriter::default();
        i.u32("seen.offsets", &self.seen.offsets);
        i.u32("seen.items", &self.seen.items);
        i.f32("popularity", &[self.popularity.len()], &self.popularity);
        if !self.histories.offsets.is_empty() {
            i.u32("history.offsets", &self.histories.offsets);
            i.u32("history.items", &self.histories.items);
        }
        files.add("interactions.safetensors", &i.to_bytes()?)?;
        drop(i);
        files.add("history.json", self.history.to_json()?.as_bytes())?;
        files.add("history.csv", self.history.to_csv().as_bytes())?;
        files.add("history.svg", self.history.to_svg()?.as_bytes())?;
        if let Some(c) = self.model.feature_crossing() {
            files.add("feature_crossing.json", &json(&c)?)?;
            files.add("feature_crossing.svg", c.to_svg().as_bytes())?;
        }
        match &self.optimizer {
            Some(o) => files.add_with(OPTIMIZER_FILE, |w| o.write_to(w, streams))?,
            // a model loaded from a directory keeps the optimizer state it had there (an index
            // built, a copy saved elsewhere: it can still be continued)
            None => match optimizer_file(origin.as_ref()) {
                Ok(Some(bytes)) => files.add(OPTIMIZER_FILE, &bytes)?,
                Ok(None) => {}
                Err(e) => tracing::warn!("the optimizer state is not kept (it cannot be continued): {e}"),
            },
        }
        if let Some(a) = &self.approximate {
            let mut w = TensorWriter::default();
            a.index.write(&mut w)?;
            files.add(IVF_FILE, &w.to_bytes()?)?;
        }
        let mut manifest = self.manifest();
        manifest.files = files.files.clone();
        let bytes = json(&manifest)?;
        files.commit("manifest.json", &bytes)?;
        *origin = dir.canonicalize().ok().map(|dir| Origin { dir, manifest: dir::sha256_hex(&bytes) });
        Ok(())
    }

    /// The optimizer's state to continue training from, as the bytes of its file: the one kept
    /// in memory, or the one in the directory this model was loaded from (checked against its
    /// manifest, which must be the one loaded); `None` for a model saved without it (before
    /// towers kept it).
    pub fn optimizer_state(&self) -> Result<Option<Vec<u8>>> {
        if let Some(o) = &self.optimizer {
            let mut bytes = Vec::new();
            o.write_to(&mut bytes, &mut ()).map_err(Error::internal)?;
            return Ok(Some(bytes));
        }
        optimizer_file(self.origin.lock().unwrap_or_else(std::sync::PoisonError::into_inner).as_ref())
    }

    /// Loads a model directory, verifying its format version and every file's checksum.
    pub fn load(dir: impl AsRef<Path>) -> Result<Artifact> {
        let dir = dir.as_ref();
        let bad = |msg: String| Error::artifact(dir, msg);
        if !dir.is_dir() {
            return Err(bad("no such model directory".into()));
        }
        let mbytes = std::fs::read(dir.join("manifest.json"))
            .map_err(|e| bad(format!("manifest.json: {e} (not a towers model directory?)")))?;
        let head: serde_json::Value =
            serde_json::from_slice(&mbytes).map_err(|e| bad(format!("manifest.json is not valid JSON: {e}")))?;
        if head.get("format").and_then(|v| v.as_str()) != Some(FORMAT_NAME) {
            return Err(bad(format!("manifest.json: not a {FORMAT_NAME} manifest")));
        }
        let version = head.get("format_version").and_then(|v| v.as_u64()).unwrap_or(0);
        if version > FORMAT_VERSION as u64 {
            return Err(bad(format!(
                "format version {version} is newer than this towers reads ({FORMAT_VERSION}); upgrade towers"
            )));
        }
        if version < 1 {
            return Err(bad(format!("manifest.json: unsupported format version {version}; rebuild this model")));
        }
        let read = manifest::read(&mbytes, version as u32).map_err(|e| bad(format!("manifest.json: {e}")))?;
        let origin = dir.canonicalize().ok().map(|dir| Origin { dir, manifest: dir::sha256_hex(&mbytes) });
        let m = read.manifest;
        let file = |name: &str| dir::read_checked(dir, &m.files, name);
        let query_vocab: Vocabulary = parse_json(dir, "vocab.json", &file("vocab.json")?)?;
        let items: Items = parse_json(dir, "items.json", &file("items.json")?)?;
        let history: History = parse_json(dir, "history.json", &file("history.json")?)?;
        let shape = Shape { queries: m.query_rows, candidates: m.candidate_rows, dim: m.dim };
        if query_vocab.rows() != shape.queries || items.len() != shape.candidates {
            return Err(bad("vocabulary sizes do not match the manifest".into()));
        }
        if items.titles.len() != items.ids.len() || items.rows.values().any(|&r| r == 0 || r as usize >= items.len()) {
            return Err(bad("items.json: titles or item rows out of range".into()));
        }
        let wbytes = file(WEIGHTS_FILE)?;
        let mut weights = TensorReader::parse(&dir.join(WEIGHTS_FILE), &wbytes)?;
        for (key, value) in read.weights_meta {
            weights.insert_meta(key, value);
        }
        let model = crate::model::load(&m.model, shape, &weights)?;
        let cbytes = file(CANDIDATES_FILE)?;
        let candidates = TensorReader::parse(&dir.join(CANDIDATES_FILE), &cbytes)?
            .f32("embeddings", &[shape.candidates, shape.dim])?;
        let ibytes = file("interactions.safetensors")?;
        let it = TensorReader::parse(&dir.join("interactions.safetensors"), &ibytes)?;
        let seen =
            Seen { offsets: it.u32("seen.offsets", Some(shape.queries + 1))?, items: it.u32("seen.items", None)? };
        if seen.offsets.first() != Some(&0)
            || seen.offsets.windows(2).any(|w| w[0] > w[1])
            || seen.offsets.last().copied() != Some(seen.items.len() as u32)
            || seen.items.iter().any(|&c| c as usize >= shape.candidates)
        {
            return Err(bad("interactions.safetensors: inconsistent seen-item index".into()));
        }
        let popularity = it.f32("popularity", &[shape.candidates])?;
        let histories = match it.has("history.offsets") {
            false => Seen::default(),
            true => Seen {
                offsets: it.u32("history.offsets", Some(shape.queries + 1))?,
                items: it.u32("history.items", None)?,
            },
        };
        if !histories.offsets.is_empty()
            && (histories.offsets.windows(2).any(|w| w[0] > w[1])
                || histories.offsets.last().copied() != Some(histories.items.len() as u32)
                || histories.items.iter().any(|&c| c as usize >= shape.candidates))
        {
            return Err(bad("interactions.safetensors: inconsistent user histories".into()));
        }
        let approximate = match &m.index {
            Some(ix) if ix.kind == "ivf" && ix.file == IVF_FILE => {
                let bytes = file(IVF_FILE)?;
                let index = IvfIndex::read(&TensorReader::parse(&dir.join(IVF_FILE), &bytes)?, &candidates, shape.dim)?;
                if index.nlist() != ix.nlist || index.nprobe() != ix.nprobe {
                    return Err(bad(format!("{IVF_FILE} does not match the manifest's nlist and nprobe")));
                }
                Some(Approximate {
                    index,
                    recall_10: ix.recall_10,
                    recall_queries: ix.recall_queries,
                    build_s: ix.build_s,
                })
            }
            Some(ix) => {
                return Err(bad(format!(
                    "manifest.json: unknown index kind '{}' (file {}); upgrade towers or rebuild the index",
                    ix.kind, ix.file
                )));
            }
            None => None,
        };
        Ok(Artifact {
            model,
            config: m.config,
            query_vocab,
            items,
            candidates: candidates.into(),
            approximate,
            seen,
            histories,
            popularity,
            history,
            summary: m.training,
            optimizer: None,
            origin: origin.into(),
        })
    }
}
