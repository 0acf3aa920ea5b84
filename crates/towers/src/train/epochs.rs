//! The epoch loop every model kind trains with: a seeded shuffle per epoch, one optimizer step
//! per batch, validation after every epoch, the history, and progress for the observer.

use super::Optimizer;
use crate::artifact::{EpochRecord, History};
use crate::config::TrainConfig;
use crate::eval::Encoded;
use crate::model::Model;
use crate::progress::{Event, Observer};
use crate::rng::Rng;
use crate::{Error, Result};
use std::ops::ControlFlow;
use std::time::Instant;

/// What every training loop shares: the configuration, the observer, the validation data.
pub(crate) struct Run<'a> {
    pub config: &'a TrainConfig,
    pub observer: &'a mut dyn Observer,
    pub validation: Option<&'a Encoded>,
    /// Seconds the epochs took, validation included (set by [`Run::epochs`]).
    pub seconds: f64,
}

impl Run<'_> {
    /// Runs the epochs over `n` examples: `step` updates `model` on a batch (example indices)
    /// and returns the batch's loss.
    pub fn epochs<M: Model>(
        &mut self,
        n: usize,
        model: &mut M,
        mut step: impl FnMut(&mut M, &[u32], &Optimizer) -> f64,
    ) -> Result<History> {
        if n == 0 {
            return Err(Error::Data("the training set is empty".into()));
        }
        let (cfg, begin) = (self.config, Instant::now());
        let mut opt = Optimizer::new(cfg.optimizer);
        let mut rng = Rng::new(cfg.seed ^ 0x5EED_5EED);
        let mut order: Vec<u32> = (0..n as u32).collect();
        let total = (n.div_ceil(cfg.batch_size) * cfg.epochs) as u64;
        self.observe(Event::Started { what: "training", total })?;
        let mut history = History::default();
        for epoch in 1..=cfg.epochs {
            let start = Instant::now();
            rng.shuffle(&mut order);
            let mut loss_sum = 0f64;
            for batch in order.chunks(cfg.batch_size) {
                opt.next_step();
                let loss = step(model, batch, &opt);
                if !loss.is_finite() {
                    return Err(Error::Data(format!(
                        "training diverged at epoch {epoch} (loss {loss}); lower the learning rate"
                    )));
                }
                loss_sum += loss * batch.len() as f64;
                self.observe(Event::Step)?;
            }
            let (loss, seconds) = (loss_sum / n as f64, start.elapsed().as_secs_f64());
            let validation = match self.validation {
                Some(v) => crate::eval::validate(&*model, v)?,
                None => None,
            };
            self.observe(Event::Message(&format!("epoch {epoch} loss {loss:.4}")))?;
            tracing::info!(epoch, loss, seconds, top_100 = validation.map(|m| m.top_100), "epoch done");
            history.epochs.push(EpochRecord { epoch, loss, seconds, validation });
        }
        self.seconds = begin.elapsed().as_secs_f64();
        self.observe(Event::Finished)?;
        Ok(history)
    }

    fn observe(&mut self, event: Event) -> Result<()> {
        match self.observer.observe(event) {
            ControlFlow::Continue(()) => Ok(()),
            ControlFlow::Break(()) => Err(Error::Interrupted),
        }
    }
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
