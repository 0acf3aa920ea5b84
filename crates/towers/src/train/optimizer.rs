//! Optimizers with row-sparse updates for embedding tables (TensorFlow semantics).

use crate::kernels::table::{Table, adagrad_rows, adam_rows};
use crate::{Error, Result};
use serde::{Deserialize, Serialize};

/// Which optimizer.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[cfg_attr(feature = "clap", derive(clap::ValueEnum))]
#[serde(rename_all = "snake_case")]
pub enum OptimizerKind {
    /// Adagrad (TFRS's tutorials).
    Adagrad,
    /// Adam, lazy on embedding rows.
    #[default]
    Adam,
}

/// Optimizer settings. The default is towers' (Adam, learning rate 0.01); the other values are
/// Keras' defaults. [`OptimizerConfig::adagrad`] is TFRS's tutorial optimizer.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct OptimizerConfig {
    /// Which optimizer.
    pub kind: OptimizerKind,
    /// Learning rate.
    pub learning_rate: f32,
    /// Adagrad's initial accumulator (Keras: 0.1).
    pub initial_accumulator: f32,
    /// Adam's β₁.
    pub beta1: f32,
    /// Adam's β₂.
    pub beta2: f32,
    /// ε added to the denominator (Keras: 1e-7).
    pub epsilon: f32,
}

impl Default for OptimizerConfig {
    fn default() -> Self {
        OptimizerConfig {
            kind: OptimizerKind::Adam,
            learning_rate: 0.01,
            initial_accumulator: 0.1,
            beta1: 0.9,
            beta2: 0.999,
            epsilon: 1e-7,
        }
    }
}

impl OptimizerConfig {
    /// Adagrad with a learning rate of 0.1 (TFRS's tutorials; Keras' initial accumulator 0.1).
    pub fn adagrad() -> Self {
        OptimizerConfig { kind: OptimizerKind::Adagrad, learning_rate: 0.1, ..Default::default() }
    }

    /// Checks the values.
    pub fn validate(&self) -> Result<()> {
        let ok = self.learning_rate.is_finite()
            && self.learning_rate > 0.0
            && self.initial_accumulator >= 0.0
            && (0.0..1.0).contains(&self.beta1)
            && (0.0..1.0).contains(&self.beta2)
            && self.epsilon >= 0.0;
        if !ok {
            return Err(Error::Config(format!(
                "optimizer settings out of range: {self:?} (learning rate > 0, betas in [0, 1))"
            )));
        }
        Ok(())
    }
}

/// Optimizer state of one parameter table.
#[derive(Debug, Clone)]
pub struct Slots {
    first: Table,
    second: Option<Table>,
}

/// An optimizer: its settings and the step count.
#[derive(Debug, Clone)]
pub struct Optimizer {
    config: OptimizerConfig,
    step: u64,
}

impl Optimizer {
    /// A new optimizer.
    pub fn new(config: OptimizerConfig) -> Self {
        Optimizer { config, step: 0 }
    }

    /// Fresh state for a `rows × dim` parameter.
    pub fn slots(&self, rows: usize, dim: usize) -> Slots {
        match self.config.kind {
            OptimizerKind::Adagrad => {
                Slots { first: Table::filled(rows, dim, self.config.initial_accumulator), second: None }
            }
            OptimizerKind::Adam => Slots { first: Table::zeros(rows, dim), second: Some(Table::zeros(rows, dim)) },
        }
    }

    /// Starts the next step (Adam's bias correction depends on it).
    pub fn next_step(&mut self) {
        self.step += 1;
    }

    /// Updates every row of a dense parameter (`grads` has the parameter's shape).
    pub fn apply_dense(&self, param: &mut Table, slots: &mut Slots, grads: &[f32]) {
        let rows: Vec<u32> = (0..param.rows as u32).collect();
        self.apply(param, slots, &rows, grads)
    }

    /// Adds L2 regularisation to the gradients of distinct `rows` (`l2·uses·w` for a row used
    /// `uses` times in the batch), then updates them.
    pub fn apply_regularized(
        &self,
        param: &mut Table,
        slots: &mut Slots,
        rows: &[u32],
        uses: &[f32],
        grads: &mut [f32],
        l2: f32,
    ) {
        if l2 > 0.0 {
            for ((g, &r), &n) in grads.chunks_exact_mut(param.dim).zip(rows).zip(uses) {
                g.iter_mut().zip(param.row(r as usize)).for_each(|(g, w)| *g += l2 * n * w);
            }
        }
        self.apply(param, slots, rows, grads)
    }

    /// Updates the given distinct `rows` of `param` with their gradients (`rows.len() × dim`).
    pub fn apply(&self, param: &mut Table, slots: &mut Slots, rows: &[u32], grads: &[f32]) {
        let c = &self.config;
        match (c.kind, slots.second.as_mut()) {
            (OptimizerKind::Adam, Some(v)) => {
                let t = self.step.max(1) as i32;
                let lr_t = c.learning_rate * (1.0 - c.beta2.powi(t)).sqrt() / (1.0 - c.beta1.powi(t));
                adam_rows(param, &mut slots.first, v, rows, grads, lr_t, c.beta1, c.beta2, c.epsilon)
            }
            _ => adagrad_rows(param, &mut slots.first, rows, grads, c.learning_rate, c.epsilon),
        }
    }
}
