//! Checkpoints of a training run: its model, optimizer state, random generators, data order and
//! position, written atomically every N steps, read back to resume a killed run so that it
//! ends with the model an uninterrupted run would have written.

use super::state::{Keep, Reload, State, read_state, write_state};
use crate::artifact::{History, sha256_hex, write_atomically};
use crate::tensors::{TensorReader, TensorWriter};
use crate::{Error, Result};
use serde::{Deserialize, Serialize};
use std::path::{Path, PathBuf};

/// Where and how often a run writes checkpoints, and whether it resumes from the one there.
///
/// A checkpoint is one file (safetensors: the model, the optimizer state, the random
/// generators, the order of the examples, the position and the history so far), replaced
/// whole every `every` steps. A run resumed from it continues bit for bit: the same model as
/// an uninterrupted run. It is refused when the run differs (configuration, data, model shape).
///
/// ```no_run
/// # fn main() -> towers::Result<()> {
/// use towers::data::{Interactions, TableFormat};
/// use towers::train::Checkpoints;
/// use towers::{ModelSpec, Trainer};
/// let train = Interactions::read("big.tsv", &TableFormat::default())?;
/// // /tmp/m.checkpoint every 500 steps; after a crash, the same code resumes from it
/// let checkpoints = Checkpoints::beside("/tmp/m", 500).resume(true);
/// let model = Trainer::new(ModelSpec::Retrieval).checkpoints(&checkpoints).fit(&train)?;
/// model.save("/tmp/m")?;
/// checkpoints.remove()?;
/// # Ok(()) }
/// ```
#[derive(Debug, Clone, PartialEq)]
pub struct Checkpoints {
    /// The checkpoint file.
    pub path: PathBuf,
    /// Steps (batches) between two checkpoints.
    pub every: usize,
    /// Start from the checkpoint at `path` when there is one (from the beginning otherwise).
    pub resume: bool,
}

impl Checkpoints {
    /// Checkpoints of the run writing the model directory `out`: the file `OUT.checkpoint`
    /// beside it, every `every` steps.
    pub fn beside(out: impl AsRef<Path>, every: usize) -> Self {
        let out = out.as_ref();
        let mut name = out.file_name().unwrap_or_default().to_os_string();
        name.push(".checkpoint");
        Checkpoints { path: out.with_file_name(name), every, resume: false }
    }

    /// Resumes from the checkpoint when there is one.
    pub fn resume(mut self, resume: bool) -> Self {
        self.resume = resume;
        self
    }

    /// Deletes the checkpoint (once the model it led to is saved); none is no error.
    pub fn remove(&self) -> Result<()> {
        match std::fs::remove_file(&self.path) {
            Err(e) if e.kind() != std::io::ErrorKind::NotFound => Err(Error::io(&self.path, e)),
            _ => Ok(()),
        }
    }
}

/// Where a run stands: what a checkpoint adds to the model and state.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub(crate) struct Position {
    /// The run it belongs to ([`fingerprint`]).
    pub fingerprint: String,
    /// The epoch under way (from 1).
    pub epoch: usize,
    /// Batches of it done.
    pub batches: usize,
    /// The optimizer's step count.
    pub step: u64,
    /// The loss summed over this epoch's examples so far.
    pub loss_sum: f64,
    /// Seconds of training so far.
    pub seconds: f64,
    /// The epochs done.
    pub history: History,
    /// The generator that shuffles the examples each epoch.
    pub rng: [u64; 4],
}

/// What identifies a run: its configuration, its model's tensors (names and shapes, which its
/// data's vocabularies set), and its examples.
pub(crate) fn fingerprint(config: &impl Serialize, model: &impl Reload, examples: &str) -> Result<String> {
    let mut text = serde_json::to_string(config).map_err(Error::internal)?;
    let mut w = TensorWriter::default();
    model.save(&mut w)?;
    for (name, shape) in w.shapes() {
        text.push_str(&format!("\n{name} {shape:?}"));
    }
    text.push_str(examples);
    Ok(sha256_hex(text.as_bytes()))
}

/// The sha256 of a run's examples (their rows, in order), in hex.
pub(crate) fn digest(parts: &[&[u32]]) -> String {
    use sha2::{Digest, Sha256};
    let mut h = Sha256::new();
    for part in parts {
        h.update((part.len() as u64).to_le_bytes());
        for chunk in part.chunks(1 << 14) {
            h.update(chunk.iter().flat_map(|x| x.to_le_bytes()).collect::<Vec<u8>>());
        }
    }
    h.finalize().iter().map(|b| format!("{b:02x}")).collect()
}

/// A checkpoint being written to disk while training goes on; dropping it waits for it (a run
/// that fails leaves no writer behind).
pub(crate) struct Writing(Option<std::thread::JoinHandle<Result<()>>>);

impl Writing {
    /// Waits until it is on disk.
    pub fn finish(mut self) -> Result<()> {
        match self.0.take() {
            Some(h) => h.join().map_err(|_| Error::Internal("the checkpoint writer panicked".into()))?,
            None => Ok(()),
        }
    }
}

impl Drop for Writing {
    fn drop(&mut self) {
        if let Some(h) = self.0.take() {
            let _ = h.join();
        }
    }
}

/// Writes a checkpoint of `model`, `state`, the example `order` and `position`: copied now,
/// written and synced by a thread of its own.
pub(crate) fn write<M: Reload>(
    to: &Checkpoints,
    model: &M,
    state: &mut dyn State,
    order: &[u32],
    position: &Position,
) -> Result<Writing> {
    let mut w = TensorWriter::default();
    model.save(&mut w)?;
    write_state(&mut w, state, Keep::Copy);
    w.u32("order", order);
    w.meta("checkpoint", position)?;
    let path = to.path.clone();
    Ok(Writing(Some(std::thread::spawn(move || write_atomically(&path, |out| w.write_to(out))))))
}

/// Reads the checkpoint at `from` into `model`, `state` and `order`, and gives its position;
/// none there is `None`. A checkpoint of another run (`fingerprint`) is refused.
pub(crate) fn read<M: Reload>(
    from: &Checkpoints,
    fingerprint: &str,
    model: &mut M,
    state: &mut dyn State,
    order: &mut [u32],
) -> Result<Option<Position>> {
    let bytes = match std::fs::read(&from.path) {
        Ok(b) => b,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(Error::io(&from.path, e)),
    };
    let r = TensorReader::parse(&from.path, &bytes)?;
    let position: Position = r.meta("checkpoint")?;
    if position.fingerprint != fingerprint {
        return Err(Error::Config(format!(
            "{}: a checkpoint of another run (its configuration, data or model shape differ): resume with the \
             same options and data, or delete it",
            from.path.display()
        )));
    }
    *model = model.reload(&r)?;
    read_state(&r, state, None)?;
    order.copy_from_slice(&r.u32("order", Some(order.len()))?);
    Ok(Some(position))
}
