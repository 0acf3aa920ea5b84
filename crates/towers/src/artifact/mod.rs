//! A trained model bundle: towers, vocabularies, candidate embeddings, what each user has
//! seen, popularity — everything `evaluate`, `recommend` and `similar` need — and its files on
//! disk. Two kinds: user → item retrieval, and sequential (item history → next item).

mod files;

use crate::data::{
    CandidateKey, Catalog, Dataset, Interactions, Items, Positions, SequenceExamples, Sessions, Vocabulary,
};
use crate::eval::{Seen, TopKMetrics, distinct_queries, popularity, ranks, repeat_last};
use crate::index::{BruteForceIndex, Filter, Metric, Scored};
use crate::kernels::topk::top_k;
use crate::model::{Model, last_position};
use crate::train::{History, SequenceConfig, TrainConfig, Trainer, evaluate_sequential, fit_sequential};
use crate::{Error, Result};
use serde::{Deserialize, Serialize};
use std::sync::OnceLock;
use std::time::Instant;

pub use files::{FORMAT_VERSION, Manifest};

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
}

/// A trained retrieval model with everything needed to evaluate and serve it.
#[derive(Debug, Clone)]
pub struct Artifact {
    /// How it was trained.
    pub config: TrainConfig,
    /// Query ids.
    pub query_vocab: Vocabulary,
    /// Candidates.
    pub items: Items,
    /// The towers.
    pub model: Model,
    /// Sequential models' settings (history length, file format).
    pub sequence: Option<SequenceConfig>,
    /// Candidate tower output of every candidate row (`items.len() × dim`), as an exact
    /// dot-product index.
    pub candidates: BruteForceIndex,
    /// The same embeddings under cosine similarity, for similar items; built on first use.
    similar_index: OnceLock<BruteForceIndex>,
    /// Training items of each query row.
    pub seen: Seen,
    /// Training occurrences of each candidate row.
    pub popularity: Vec<f32>,
    /// Per-epoch history.
    pub history: History,
    /// Training figures.
    pub summary: TrainSummary,
}

impl TrainSummary {
    fn new(n_train: usize, epochs: usize, history: &History, train_s: f64) -> Self {
        TrainSummary {
            n_train,
            epoch_s: history.epochs.iter().map(|e| e.seconds).collect(),
            train_s,
            examples_per_s: (n_train * epochs) as f64 / train_s.max(1e-9),
            final_loss: history.epochs.last().map_or(f64::NAN, |e| e.loss),
        }
    }
}

/// Result of an evaluation: the model and the popularity baseline on the same pairs.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Evaluation {
    /// The model's metrics.
    #[serde(flatten)]
    pub model: TopKMetrics,
    /// Popularity's metrics on the same pairs with the same exclusions.
    pub baseline: TopKMetrics,
    /// Sequential models: the "repeat the last item" baseline (the history's last item first,
    /// then popularity) on the same examples with the same exclusions.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub repeat_last: Option<TopKMetrics>,
    /// Whether each user's training items were excluded.
    pub exclude_seen: bool,
    /// Test pairs whose user was not in the training data (scored with the OOV embedding).
    pub unknown_users: usize,
    /// Test pairs whose item is unknown (always a miss).
    pub unknown_items: usize,
    /// Seconds to evaluate the model (embedding + scoring + ranking; baseline excluded).
    pub eval_s: f64,
}

/// One recommended item.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Recommendation {
    /// Item id.
    pub id: String,
    /// Title (empty when the catalogue has none).
    pub title: String,
    /// Dot-product score, or the training count for popular items.
    pub score: f32,
}

/// Recommendations for one user.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Recommendations {
    /// Best first.
    pub items: Vec<Recommendation>,
    /// True when the user is unknown and these are the most popular items.
    pub cold_start: bool,
}

impl Artifact {
    /// Trains a model on `train` (with the catalogue's titles, if any); with `validation`,
    /// records its metrics after every epoch.
    pub fn train(
        config: TrainConfig,
        train: &Interactions,
        catalog: Option<&Catalog>,
        validation: Option<&Interactions>,
        progress: bool,
    ) -> Result<Artifact> {
        let trainer = Trainer::new(config.clone())?.with_progress(progress);
        let data = Dataset::build(train, catalog, config.key)?;
        let val_pairs = validation.map(|v| Dataset::encode(&data.query_vocab, &data.items, v));
        let start = Instant::now();
        let (model, history) = trainer.fit(&data, val_pairs.as_deref())?;
        let train_s = start.elapsed().as_secs_f64();
        let mut popularity = vec![0f32; data.items.len()];
        data.candidates.iter().for_each(|&c| popularity[c as usize] += 1.0);
        let seen = Seen::from_pairs(
            data.query_vocab.rows(),
            data.queries.iter().copied().zip(data.candidates.iter().copied()),
        );
        let summary = TrainSummary::new(data.len(), config.epochs, &history, train_s);
        let candidates = BruteForceIndex::new(model.candidate.embed_all(), config.dim, Metric::Dot);
        let model = Model::TwoTower(model);
        Ok(Artifact::from_parts(
            config,
            data.query_vocab,
            data.items,
            model,
            None,
            candidates,
            seen,
            popularity,
            history,
            summary,
        ))
    }

    /// Trains a sequential model on item sequences (`positions`: every position of a session
    /// is an example, or only the last one of each line); item titles come from the catalogue.
    pub fn train_sequential(
        config: TrainConfig,
        sequence: SequenceConfig,
        train: &Sessions,
        positions: Positions,
        catalog: Option<&Catalog>,
        validation: Option<&Sessions>,
        progress: bool,
    ) -> Result<Artifact> {
        let (items, _) = Items::build(catalog, CandidateKey::Id, train.items.iter().flatten().map(String::as_str))?;
        let row = |id: &str| items.rows.get(id).copied().unwrap_or(0);
        let data = SequenceExamples::build(train, row, sequence.steps, positions);
        let val = validation.map(|v| SequenceExamples::build(v, row, sequence.steps, Positions::Last));
        let start = Instant::now();
        let (model, history) = fit_sequential(&config, &sequence, items.len(), &data, val.as_ref(), progress)?;
        let train_s = start.elapsed().as_secs_f64();
        let mut popularity = vec![0f32; items.len()];
        data.targets.iter().for_each(|&c| popularity[c as usize] += 1.0);
        let summary = TrainSummary::new(data.len(), config.epochs, &history, train_s);
        let candidates = BruteForceIndex::new(model.candidates().data.clone(), config.dim, Metric::Dot);
        let seen = Seen::from_pairs(1, []);
        let model = Model::Sequential(model);
        Ok(Artifact::from_parts(
            config,
            Vocabulary::default(),
            items,
            model,
            Some(sequence),
            candidates,
            seen,
            popularity,
            history,
            summary,
        ))
    }

    /// Embedding width.
    pub fn dim(&self) -> usize {
        self.model.dim()
    }

    /// Ranks every test pair's item against all candidates (FactorizedTopK), beside the
    /// popularity baseline. With `exclude_seen`, each user's training items (other than the
    /// pair's own) are removed from the ranking. User → item models only.
    pub fn evaluate(&self, test: &Interactions, exclude_seen: bool) -> Result<Evaluation> {
        let Model::TwoTower(towers) = &self.model else {
            return Err(Error::Invalid("this is a sequential model: evaluate it on sequences".into()));
        };
        let pairs = Dataset::encode(&self.query_vocab, &self.items, test);
        let start = Instant::now();
        let (users, local) = distinct_queries(&pairs);
        let excluded: Vec<&[u32]> =
            if exclude_seen { users.iter().map(|&u| self.seen.of(u)).collect() } else { Vec::new() };
        let queries = towers.query.embed(&users);
        let model = TopKMetrics::from_ranks(&ranks(&queries, self.candidates.vectors(), self.dim(), &local, &excluded));
        let eval_s = start.elapsed().as_secs_f64();
        Ok(Evaluation {
            model,
            baseline: popularity(&self.popularity, &local, &excluded),
            repeat_last: None,
            exclude_seen,
            unknown_users: pairs.iter().filter(|p| p.0 == 0).count(),
            unknown_items: pairs.iter().filter(|p| p.1 == 0).count(),
            eval_s,
        })
    }

    /// Sequential models: ranks the last item of every test sequence against all items, given
    /// the items before it (recall@k = top-k accuracy, MRR), beside popularity. With
    /// `exclude_history`, the history's items (other than the target) are removed.
    pub fn evaluate_sequences(&self, test: &Sessions, exclude_history: bool) -> Result<Evaluation> {
        let (Model::Sequential(model), Some(seq)) = (&self.model, &self.sequence) else {
            return Err(Error::Invalid("this is a user → item model: evaluate it on interactions".into()));
        };
        let row = |id: &str| self.items.rows.get(id).copied().unwrap_or(0);
        let examples = SequenceExamples::build(test, row, seq.steps, Positions::Last);
        if examples.is_empty() {
            return Err(Error::Invalid("no test sequence has two items (a history and a target)".into()));
        }
        let start = Instant::now();
        let metrics = evaluate_sequential(model, &examples, exclude_history);
        let eval_s = start.elapsed().as_secs_f64();
        let pairs: Vec<(u32, u32)> = (0..examples.len() as u32).map(|i| (i, examples.targets[i as usize])).collect();
        let history: Vec<Vec<u32>> =
            if exclude_history { (0..examples.len()).map(|i| examples.history(i)).collect() } else { Vec::new() };
        let excluded: Vec<&[u32]> = history.iter().map(Vec::as_slice).collect();
        let steps = examples.steps;
        let last: Vec<u32> = (0..examples.len())
            .map(|i| {
                last_position(&examples.mask[i * steps..(i + 1) * steps])
                    .map_or(0, |p| examples.contexts[i * steps + p])
            })
            .collect();
        Ok(Evaluation {
            model: metrics,
            baseline: popularity(&self.popularity, &pairs, &excluded),
            repeat_last: Some(repeat_last(&self.popularity, &last, &examples.targets, &excluded)),
            exclude_seen: exclude_history,
            unknown_users: 0,
            unknown_items: examples.targets.iter().filter(|&&t| t == 0).count(),
            eval_s,
        })
    }

    /// A bundle from its parts (as read from disk).
    #[allow(clippy::too_many_arguments)]
    pub(crate) fn from_parts(
        config: TrainConfig,
        query_vocab: Vocabulary,
        items: Items,
        model: Model,
        sequence: Option<SequenceConfig>,
        candidates: BruteForceIndex,
        seen: Seen,
        popularity: Vec<f32>,
        history: History,
        summary: TrainSummary,
    ) -> Self {
        Artifact {
            config,
            query_vocab,
            items,
            model,
            sequence,
            candidates,
            similar_index: OnceLock::new(),
            seen,
            popularity,
            history,
            summary,
        }
    }

    /// The `k` best items for a user, optionally without the items they have already seen.
    /// An unknown user gets the most popular items, flagged `cold_start`. User → item models only.
    pub fn recommend(&self, user: &str, k: usize, exclude_seen: bool) -> Result<Recommendations> {
        let Model::TwoTower(towers) = &self.model else {
            return Err(Error::Invalid("this is a sequential model: recommend from a history of items".into()));
        };
        let row = self.query_vocab.get(user);
        let seen = row.filter(|_| exclude_seen).map(|r| self.seen.of(r)).unwrap_or(&[]);
        Ok(match row {
            Some(r) => self.best(&towers.query.embed(&[r]), k, seen),
            None => self.popular(k, seen),
        })
    }

    /// Sequential models: the `k` most likely next items after `history` (item ids or titles,
    /// oldest first; the last `steps` known items are used). A history of unknown items only
    /// gets the most popular items, flagged `cold_start`.
    pub fn recommend_history(&self, history: &[String], k: usize) -> Result<Recommendations> {
        let (Model::Sequential(model), Some(seq)) = (&self.model, &self.sequence) else {
            return Err(Error::Invalid("this is a user → item model: recommend for a user".into()));
        };
        let known: Vec<u32> = history
            .iter()
            .filter_map(|h| {
                self.items
                    .rows
                    .get(h.as_str())
                    .copied()
                    .or_else(|| self.items.titles.iter().position(|t| t == h).map(|r| r as u32))
            })
            .filter(|&r| r > 0)
            .collect();
        if known.is_empty() {
            return Ok(self.popular(k, &[]));
        }
        let ctx = &known[known.len().saturating_sub(seq.steps)..];
        let contexts: Vec<u32> = ctx.iter().copied().chain(std::iter::repeat_n(0, seq.steps - ctx.len())).collect();
        let mask: Vec<bool> = (0..seq.steps).map(|t| t < ctx.len()).collect();
        let (q, _) = model.queries(&contexts, &mask, seq.steps);
        Ok(self.best(&q, k, &[]))
    }

    /// The best `k` candidates for a query embedding, without row 0 (OOV) and `exclude` (sorted).
    fn best(&self, query: &[f32], k: usize, exclude: &[u32]) -> Recommendations {
        let exclude: Vec<u32> = std::iter::once(0).chain(exclude.iter().copied()).collect();
        let hits = self.candidates.search(query, k, &Filter { exclude: &exclude, allow: None });
        Recommendations { items: self.describe(hits), cold_start: false }
    }

    /// The `k` most popular items, without row 0 and `exclude` (sorted), flagged `cold_start`.
    fn popular(&self, k: usize, exclude: &[u32]) -> Recommendations {
        let exclude: Vec<u32> = std::iter::once(0).chain(exclude.iter().copied()).collect();
        // the popularity counts are a 1-wide candidate table: no copy, no index to build
        let hits =
            top_k(&[1.0], &self.popularity, 1, k, |_, c| exclude.binary_search(&c).is_ok()).pop().unwrap_or_default();
        Recommendations { items: self.describe(hits), cold_start: true }
    }

    /// The `k` items most similar to an item (cosine similarity of candidate embeddings),
    /// the item itself excluded.
    pub fn similar(&self, item: &str, k: usize) -> Result<Vec<Recommendation>> {
        let row = self
            .items
            .rows
            .get(item)
            .copied()
            .ok_or_else(|| Error::NotFound(format!("item '{item}' is not in the model")))?;
        let index = self
            .similar_index
            .get_or_init(|| BruteForceIndex::new(self.candidates.vectors().to_vec(), self.dim(), Metric::Cosine));
        let exclude = if row == 0 { vec![0] } else { vec![0, row] };
        Ok(self.describe(index.search(index.vector(row), k, &Filter { exclude: &exclude, allow: None })))
    }

    fn describe(&self, hits: Vec<Scored>) -> Vec<Recommendation> {
        hits.into_iter()
            .map(|s| Recommendation {
                id: self.items.ids[s.id as usize].clone(),
                title: self.items.titles[s.id as usize].clone(),
                score: s.score,
            })
            .collect()
    }
}
