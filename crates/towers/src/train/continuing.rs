//! Continuing a model trained before ([`Trainer::init_from`](crate::Trainer::init_from)): the
//! model continued, checked against the run; its vocabularies, counts and seen items carried
//! over; its parameters and optimizer state given to the run.

use super::checkpoint::Checkpoints;
use super::epochs::{Prior, Run};
use super::state::Growth;
use crate::artifact::Artifact;
use crate::config::TrainConfig;
use crate::data::{Earlier, Seen};
use crate::model::ModelSpec;
use crate::recommend::Served;
use crate::tensors::TensorWriter;
use crate::{Error, Result};

/// What a trainer continues: a model directory as served (a model or a pipeline), or one model
/// (a pipeline's retriever, for the retrievers of the pipeline continuing it).
#[derive(Clone, Copy)]
pub(crate) enum Continued<'a> {
    Served(&'a Served),
    Model(&'a Artifact),
}

/// The model `prior` continues, checked against a run of `spec` and `config`.
pub(crate) fn continued<'a>(
    prior: Option<Continued<'a>>,
    spec: &ModelSpec,
    config: &TrainConfig,
    decay: f32,
) -> Result<Option<&'a Artifact>> {
    let model = match prior {
        None => return Ok(None),
        Some(Continued::Model(p)) => p,
        Some(Continued::Served(p)) if p.pipeline().is_some() => {
            return Err(Error::Config("`init_from`: the old model is a pipeline: continue it as a pipeline".into()));
        }
        Some(Continued::Served(p)) => p.retriever().artifact(),
    };
    continuable(model, spec, config, decay).map(Some)
}

/// Checks that `prior` can be continued by a run of `spec` and `config`.
pub(crate) fn continuable<'p>(
    prior: &'p Artifact,
    spec: &ModelSpec,
    config: &TrainConfig,
    decay: f32,
) -> Result<&'p Artifact> {
    let refuse = |what: String| Err(Error::Config(format!("`init_from`: {what}; train from scratch instead")));
    let old = prior.model.spec();
    if old.kind() != spec.kind() {
        return refuse(format!("the old model is a {} model, this run trains a {} model", old.kind(), spec.kind()));
    }
    if &old != spec {
        return refuse(format!("the old {} model's settings differ from this run's (layers, features)", spec.kind()));
    }
    if prior.config.dim != config.dim {
        return refuse(format!("the old model's `dim` is {}, this run's {}", prior.config.dim, config.dim));
    }
    if prior.config.optimizer.kind != config.optimizer.kind {
        return refuse(format!(
            "the old model was trained with {:?}, this run's optimizer is {:?}",
            prior.config.optimizer.kind, config.optimizer.kind
        ));
    }
    if !(0.0..=1.0).contains(&decay) {
        return Err(Error::Config(format!("`count_decay` must be in [0, 1], got {decay}")));
    }
    Ok(prior)
}

pub(crate) fn earlier(prior: &Artifact, decay: f32) -> Earlier<'_> {
    Earlier { query_vocab: &prior.query_vocab, items: &prior.items, counts: &prior.popularity, decay }
}

/// What each query row has seen: `pairs`, after what it had seen in `prior` (whose rows it
/// keeps).
pub(crate) fn seen_after(prior: Option<&Artifact>, rows: usize, pairs: impl Iterator<Item = (u32, u32)>) -> Seen {
    match prior {
        None => Seen::from_pairs(rows, pairs),
        Some(p) => {
            let old = (0..p.query_vocab.rows() as u32).flat_map(|q| p.seen.of(q).iter().map(move |&c| (q, c)));
            Seen::from_pairs(rows, old.chain(pairs))
        }
    }
}

/// Where a model's run starts: the model it continues, and its checkpoints.
#[derive(Clone, Copy)]
pub(crate) struct Continuing<'a> {
    pub prior: Option<&'a Artifact>,
    pub decay: f32,
    pub checkpoints: Option<&'a Checkpoints>,
    /// Where the optimizer state goes at the end ([`Trainer::spill_optimizer`]).
    pub spill: Option<&'a std::path::Path>,
}

impl<'a> Continuing<'a> {
    /// Gives `run` the model continued (its tables grown to this run's `(queries, candidates)`
    /// rows) and the checkpoints, with the digest of the examples they need.
    pub fn prepare(
        &self,
        run: &mut Run<'a>,
        (queries, candidates): (usize, usize),
        examples: impl FnOnce() -> String,
    ) -> Result<()> {
        (run.checkpoints, run.spill) = (self.checkpoints, self.spill);
        if self.checkpoints.is_some() {
            run.examples = examples();
        }
        if let Some(p) = self.prior {
            let mut w = TensorWriter::default();
            p.model.save(&mut w)?;
            let growth = Growth { queries: (p.query_vocab.rows(), queries), candidates: (p.items.len(), candidates) };
            run.prior = Some(Prior { weights: w.to_bytes()?, optimizer: p.optimizer_state()?, growth });
        }
        Ok(())
    }
}
