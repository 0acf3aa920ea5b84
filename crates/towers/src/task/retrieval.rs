//! The retrieval task: in-batch softmax over the batch's candidates (TFRS `Retrieval`).

use crate::kernels::softmax::{InBatchSoftmax, Precision};
use crate::{Error, Result};
use serde::{Deserialize, Serialize};

/// How a batch's per-example losses are combined.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[cfg_attr(feature = "clap", derive(clap::ValueEnum))]
#[serde(rename_all = "snake_case")]
pub enum Reduction {
    /// Sum over the batch (TFRS's default).
    #[default]
    Sum,
    /// Mean over the batch.
    Mean,
}

/// Options of the in-batch softmax loss. Defaults are towers' (logQ correction on, accidental
/// hits removed); TFRS's `Retrieval` has neither ([`RetrievalConfig::tfrs`]).
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct RetrievalConfig {
    /// Logits are divided by this (TFRS `temperature`).
    pub temperature: f32,
    /// Other occurrences of a row's positive candidate in the batch are not negatives.
    pub remove_accidental_hits: bool,
    /// Subtract `log q(candidate)` from its logits, `q` being its frequency in the training
    /// data (TFRS `candidate_sampling_probability`): corrects the popularity bias of in-batch negatives.
    pub logq_correction: bool,
    /// Sum or mean over the batch.
    pub reduction: Reduction,
    /// Hard-negative mining (TFRS `num_hard_negatives`): each example's softmax keeps its
    /// positive and only the `n` highest-scoring in-batch negatives.
    pub hard_negatives: Option<usize>,
    /// The arithmetic of the loss's three products: `bf16` operands with f32 sums where the
    /// CPU has `avx512_bf16` (the default: ~1.4–1.8× faster steps, the same metrics within
    /// 1e-4 on MovieLens and the synthetic sets; see the book's large-data guide), or `f32`.
    pub precision: Precision,
}

impl Default for RetrievalConfig {
    fn default() -> Self {
        RetrievalConfig {
            temperature: 1.0,
            remove_accidental_hits: true,
            logq_correction: true,
            reduction: Reduction::Sum,
            hard_negatives: None,
            precision: Precision::Bf16,
        }
    }
}

impl RetrievalConfig {
    /// The loss over one batch: distinct query and candidate embeddings, the batch's
    /// (query, candidate) pairs, `log q` of each distinct candidate (used with logQ correction),
    /// and each example's weight (TFRS `sample_weight`).
    pub fn loss<'a>(
        &self,
        queries: &'a [f32],
        candidates: &'a [f32],
        dim: usize,
        pairs: &'a [(u32, u32)],
        log_q: Option<&'a [f32]>,
        weights: Option<&'a [f32]>,
    ) -> InBatchSoftmax<'a> {
        InBatchSoftmax {
            queries,
            candidates,
            dim,
            pairs,
            log_q: log_q.filter(|_| self.logq_correction),
            temperature: self.temperature,
            remove_accidental_hits: self.remove_accidental_hits,
            grad_scale: match self.reduction {
                Reduction::Sum => 1.0,
                Reduction::Mean => 1.0 / pairs.len().max(1) as f32,
            },
            weights,
            hard_negatives: self.hard_negatives,
            extra_counts: None,
            precision: self.precision,
        }
    }

    /// `log q` of every candidate row from its training occurrences (`counts`), when the logQ
    /// correction is on: `ln(max(count, 1) / total)`.
    pub fn log_q(&self, counts: &[f32]) -> Option<Vec<f32>> {
        let total: f32 = counts.iter().sum();
        self.logq_correction.then(|| counts.iter().map(|&k| (k.max(1.0) / total).ln()).collect())
    }

    /// TFRS `Retrieval`'s defaults: plain in-batch softmax summed over the batch.
    pub fn tfrs() -> Self {
        RetrievalConfig { remove_accidental_hits: false, logq_correction: false, ..Default::default() }
    }

    /// Checks the values.
    pub fn validate(&self) -> Result<()> {
        if !(self.temperature.is_finite() && self.temperature > 0.0) {
            return Err(Error::Config(format!("temperature must be positive, got {}", self.temperature)));
        }
        if self.hard_negatives == Some(0) {
            return Err(Error::Config("hard_negatives must be at least 1 (or unset)".into()));
        }
        Ok(())
    }
}
