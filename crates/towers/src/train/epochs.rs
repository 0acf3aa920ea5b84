//! The epoch loop every model kind trains with: a seeded shuffle per epoch, one optimizer step
//! per batch, validation after every epoch, the history, and progress for the observer.

use super::Optimizer;
use super::checkpoint::{self, Checkpoints, Position, Writing};
use super::state::{Growth, Keep, Reload, State, merge, parse, read_state, write_state};
use crate::artifact::{EpochRecord, History, Kept, OptimizerState};
use crate::config::{OptimizerConfig, TrainConfig};
use crate::eval::Encoded;
use crate::progress::{Event, Observer};
use crate::rng::Rng;
use crate::tensors::TensorWriter;
use crate::{Error, Result};
use std::ops::ControlFlow;
use std::time::Instant;

/// What every training loop shares: the configuration, the observer, the validation data, and
/// where the run starts from (a model trained before, a checkpoint).
pub(crate) struct Run<'a> {
    pub config: &'a TrainConfig,
    pub observer: &'a mut dyn Observer,
    pub validation: Option<&'a Encoded>,
    /// Seconds the epochs took, validation included (set by [`Run::epochs`]).
    pub seconds: f64,
    /// The model trained before that this run continues.
    pub prior: Option<Prior>,
    /// Checkpoints to write, and to resume from.
    pub checkpoints: Option<&'a Checkpoints>,
    /// The digest of the training examples ([`checkpoint::digest`]), part of a checkpoint's
    /// fingerprint.
    pub examples: String,
    /// The optimizer's state at the end (set by [`Run::epochs`]).
    pub optimizer: Option<OptimizerState>,
    /// A folder to keep that state in, as a temporary file, rather than in memory.
    pub spill: Option<&'a std::path::Path>,
    /// Whether [`Run::epochs`] keeps the optimizer's state at the end (a distributed run
    /// collects it from the ranks instead).
    pub keep_optimizer: bool,
    /// Examples per batch: the configuration's, unless a loop counts its batches otherwise.
    pub batch_size: usize,
    /// The learning rate: the configuration's, unless a loop scales it with its batch.
    pub learning_rate: f32,
}

/// A model trained before, to continue: its tensors, its optimizer's state, and how its id
/// tables grow.
pub(crate) struct Prior {
    pub weights: Vec<u8>,
    pub optimizer: Option<Vec<u8>>,
    pub growth: Growth,
}

/// One batch of a training loop.
pub(crate) struct Batch<'a> {
    /// Example indices.
    pub rows: &'a [u32],
    pub opt: &'a Optimizer,
    /// Batches of this run before it (from 0).
    pub index: usize,
}

impl<'a> Run<'a> {
    /// A run from scratch.
    pub fn new(config: &'a TrainConfig, observer: &'a mut dyn Observer, validation: Option<&'a Encoded>) -> Self {
        Run {
            config,
            observer,
            validation,
            seconds: 0.0,
            prior: None,
            checkpoints: None,
            examples: String::new(),
            optimizer: None,
            spill: None,
            keep_optimizer: true,
            batch_size: config.batch_size,
            learning_rate: config.optimizer.learning_rate,
        }
    }

    /// Runs the epochs over `n` examples: `step` updates `model` and the rest of the loop's
    /// `state` (optimizer slots, random generators) on a batch and returns the batch's loss.
    /// The model and state start from the prior model when there is one, from the checkpoint
    /// when resuming.
    pub fn epochs<M: Reload, S: State>(
        &mut self,
        n: usize,
        model: &mut M,
        state: &mut S,
        mut step: impl FnMut(&mut M, &mut S, Batch<'_>) -> f64,
    ) -> Result<History> {
        if n == 0 {
            return Err(Error::Data("the training set is empty".into()));
        }
        let (cfg, begin) = (self.config, Instant::now());
        let mut opt = Optimizer::new(OptimizerConfig { learning_rate: self.learning_rate, ..cfg.optimizer });
        let mut rng = Rng::new(cfg.seed ^ 0x5EED_5EED);
        let mut order: Vec<u32> = (0..n as u32).collect();
        if let Some(prior) = &self.prior {
            continue_from(prior, model, state, &mut opt)?;
        }
        let batch_size = self.batch_size;
        let per_epoch = n.div_ceil(batch_size);
        let mut at = Position::default();
        if let Some(c) = self.checkpoints {
            at.fingerprint = checkpoint::fingerprint(cfg, model, &self.examples)?;
            if c.resume {
                match checkpoint::read(c, &at.fingerprint, model, state, &mut order)? {
                    Some(p) => {
                        rng = Rng::from_state(p.rng);
                        opt.set_step(p.step);
                        tracing::info!(epoch = p.epoch, batches = p.batches, "resuming from {}", c.path.display());
                        at = p;
                    }
                    None => tracing::info!("no checkpoint at {}: starting from the beginning", c.path.display()),
                }
            }
        }
        let (done, before) = (at.epoch.saturating_sub(1) * per_epoch + at.batches, at.seconds);
        self.observe(Event::Started { what: "training", total: (per_epoch * cfg.epochs - done) as u64 })?;
        let mut writing: Option<Writing> = None;
        for epoch in at.epoch.max(1)..=cfg.epochs {
            let start = Instant::now();
            if at.epoch != epoch {
                // a new epoch (a resumed one has its order, and its loss so far)
                rng.shuffle(&mut order);
                (at.epoch, at.batches, at.loss_sum) = (epoch, 0, 0.0);
            }
            while at.batches < per_epoch {
                let b = at.batches;
                let rows = &order[b * batch_size..((b + 1) * batch_size).min(n)];
                opt.next_step();
                let loss = step(model, state, Batch { rows, opt: &opt, index: (epoch - 1) * per_epoch + b });
                if !loss.is_finite() {
                    return Err(Error::Data(format!(
                        "training diverged at epoch {epoch} (loss {loss}); lower the learning rate"
                    )));
                }
                at.loss_sum += loss * rows.len() as f64;
                at.batches += 1;
                self.observe(Event::Step)?;
                let steps = (epoch - 1) * per_epoch + b + 1;
                if let Some(c) = self.checkpoints.filter(|c| c.every > 0 && steps.is_multiple_of(c.every)) {
                    (at.step, at.rng) = (opt.step(), rng.state());
                    at.seconds = before + begin.elapsed().as_secs_f64();
                    if let Some(w) = writing.take() {
                        w.finish()?;
                    }
                    writing = Some(checkpoint::write(c, model, state, &order, &at)?);
                }
            }
            let (loss, seconds) = (at.loss_sum / n as f64, start.elapsed().as_secs_f64());
            let validation = match self.validation {
                Some(v) => crate::eval::validate(&*model, v)?,
                None => None,
            };
            self.observe(Event::Message(&format!("epoch {epoch} loss {loss:.4}")))?;
            tracing::info!(epoch, loss, seconds, top_100 = validation.map(|m| m.top_100), "epoch done");
            at.history.epochs.push(EpochRecord { epoch, loss, seconds, validation });
        }
        if let Some(w) = writing {
            w.finish()?;
        }
        self.seconds = before + begin.elapsed().as_secs_f64();
        if self.keep_optimizer {
            self.keep_optimizer_state(state, &opt)?;
        }
        self.observe(Event::Finished)?;
        Ok(at.history)
    }

    /// Keeps the optimizer's state (moved out of `state`), in memory or spilled.
    pub fn keep_optimizer_state(&mut self, state: &mut dyn State, opt: &Optimizer) -> Result<()> {
        let kept = optimizer_state(state, opt, self.config)?;
        self.optimizer = Some(match &self.spill {
            Some(dir) => kept.spill(dir)?,
            None => kept,
        });
        Ok(())
    }

    fn observe(&mut self, event: Event) -> Result<()> {
        match self.observer.observe(event) {
            ControlFlow::Continue(()) => Ok(()),
            ControlFlow::Break(()) => Err(Error::Interrupted),
        }
    }
}

/// Starts `model`, `state` and `opt` from a model trained before: its parameters and optimizer
/// slots, grown to this run's tables (new ids keep their fresh rows), and its step count.
fn continue_from<M: Reload, S: State>(prior: &Prior, model: &mut M, state: &mut S, opt: &mut Optimizer) -> Result<()> {
    let fresh = model.tensors()?;
    let merged =
        merge(&parse("the model", &fresh)?, &parse("the old model", &prior.weights)?, &prior.growth, |name| {
            model.is_parameter(name)
        })?
        .to_bytes()?;
    drop(fresh);
    *model = model.reload(&parse("the continued model", &merged)?)?;
    if let Some(o) = &prior.optimizer {
        let r = parse("the old model's optimizer.safetensors", o)?;
        read_state(&r, state, Some(&prior.growth))?;
        opt.set_step(r.meta("step")?);
    }
    Ok(())
}

/// The optimizer's state, kept with the model: its slots (moved out of `state`) and step.
fn optimizer_state(state: &mut dyn State, opt: &Optimizer, cfg: &TrainConfig) -> Result<OptimizerState> {
    let mut w = TensorWriter::default();
    write_state(&mut w, state, Keep::Move);
    w.meta("step", &opt.step())?;
    w.meta("optimizer", &cfg.optimizer)?;
    Ok(OptimizerState(Kept::Memory(w)))
}

/// Distinct rows of a batch and each example's index among them.
pub(crate) struct Dedup {
    slot: Vec<u32>,
    pub(crate) rows: Vec<u32>,
    pub(crate) weights: Vec<f32>,
}

impl Dedup {
    pub(crate) fn new(table_rows: usize) -> Self {
        Dedup { slot: vec![u32::MAX; table_rows], rows: Vec::new(), weights: Vec::new() }
    }

    /// The position of `row` among the distinct rows, counting one more occurrence.
    pub(crate) fn index(&mut self, row: u32) -> u32 {
        let s = &mut self.slot[row as usize];
        if *s == u32::MAX {
            *s = self.rows.len() as u32;
            self.rows.push(row);
            self.weights.push(0.0);
        }
        self.weights[*s as usize] += 1.0;
        *s
    }

    /// The position of a row already added.
    pub(crate) fn position(&self, row: u32) -> usize {
        self.slot[row as usize] as usize
    }

    pub(crate) fn clear(&mut self) {
        for &r in &self.rows {
            self.slot[r as usize] = u32::MAX;
        }
        self.rows.clear();
        self.weights.clear();
    }
}
