//! Optimizers with row-sparse updates for embedding tables (TensorFlow semantics).

use crate::config::{OptimizerConfig, OptimizerKind};
use crate::kernels::table::{AdamStep, Table, adagrad_rows, adam_rows};

/// One step's update of some rows of a table.
pub(crate) struct Update<'a> {
    pub opt: &'a Optimizer,
    /// L2 regularisation per use of a row.
    pub l2: f32,
    /// Distinct rows, the examples that used each, and their gradients.
    pub rows: &'a [u32],
    pub uses: &'a [f32],
    pub grads: Vec<f32>,
}

/// Optimizer state of one parameter table.
#[derive(Debug, Clone)]
pub struct Slots {
    pub(crate) first: Table,
    pub(crate) second: Option<Table>,
}

impl Slots {
    /// Fresh state for a `rows × dim` parameter trained by the optimizer `config` describes.
    pub fn new(config: &OptimizerConfig, rows: usize, dim: usize) -> Slots {
        match config.kind {
            OptimizerKind::Adagrad => {
                Slots { first: Table::filled(rows, dim, config.initial_accumulator), second: None }
            }
            OptimizerKind::Adam => Slots { first: Table::zeros(rows, dim), second: Some(Table::zeros(rows, dim)) },
        }
    }
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

    /// Steps started so far.
    pub fn step(&self) -> u64 {
        self.step
    }

    /// Continues the step count of an earlier run.
    pub(crate) fn set_step(&mut self, step: u64) {
        self.step = step;
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
                adam_rows(
                    param,
                    &mut slots.first,
                    v,
                    rows,
                    grads,
                    AdamStep { lr_t, beta1: c.beta1, beta2: c.beta2, epsilon: c.epsilon },
                )
            }
            _ => adagrad_rows(param, &mut slots.first, rows, grads, c.learning_rate, c.epsilon),
        }
    }
}
