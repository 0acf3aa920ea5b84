//! A trained model bundle: towers, vocabularies, candidate embeddings, what each user has
//! seen, popularity — everything `evaluate` and `recommend` need — and its files on disk.

mod files;

use crate::data::{Catalog, Dataset, Interactions, Items, Vocabulary};
use crate::eval::{Seen, TopKMetrics, distinct_queries, popularity, ranks};
use crate::index::{BruteForceIndex, Filter, Metric, Scored};
use crate::model::TwoTower;
use crate::train::{History, TrainConfig, Trainer};
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
    pub model: TwoTower,
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

/// Result of an evaluation: the model and the popularity baseline on the same pairs.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Evaluation {
    /// The model's metrics.
    #[serde(flatten)]
    pub model: TopKMetrics,
    /// Popularity's metrics on the same pairs with the same exclusions.
    pub baseline: TopKMetrics,
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
        let summary = TrainSummary {
            n_train: data.len(),
            epoch_s: history.epochs.iter().map(|e| e.seconds).collect(),
            train_s,
            examples_per_s: (data.len() * config.epochs) as f64 / train_s.max(1e-9),
            final_loss: history.epochs.last().map_or(f64::NAN, |e| e.loss),
        };
        Ok(Artifact {
            candidates: BruteForceIndex::new(model.candidate.embed_all(), config.dim, Metric::Dot),
            similar_index: OnceLock::new(),
            config,
            query_vocab: data.query_vocab,
            items: data.items,
            model,
            seen,
            popularity,
            history,
            summary,
        })
    }

    /// Embedding width.
    pub fn dim(&self) -> usize {
        self.model.dim()
    }

    /// Ranks every test pair's item against all candidates (FactorizedTopK), beside the
    /// popularity baseline. With `exclude_seen`, each user's training items (other than the
    /// pair's own) are removed from the ranking.
    pub fn evaluate(&self, test: &Interactions, exclude_seen: bool) -> Evaluation {
        let pairs = Dataset::encode(&self.query_vocab, &self.items, test);
        let start = Instant::now();
        let (users, local) = distinct_queries(&pairs);
        let excluded: Vec<&[u32]> =
            if exclude_seen { users.iter().map(|&u| self.seen.of(u)).collect() } else { Vec::new() };
        let queries = self.model.query.embed(&users);
        let model = TopKMetrics::from_ranks(&ranks(&queries, self.candidates.vectors(), self.dim(), &local, &excluded));
        let eval_s = start.elapsed().as_secs_f64();
        Evaluation {
            model,
            baseline: popularity(&self.popularity, &local, &excluded),
            exclude_seen,
            unknown_users: pairs.iter().filter(|p| p.0 == 0).count(),
            unknown_items: pairs.iter().filter(|p| p.1 == 0).count(),
            eval_s,
        }
    }

    /// A bundle from its parts (as read from disk).
    #[allow(clippy::too_many_arguments)]
    pub(crate) fn from_parts(
        config: TrainConfig,
        query_vocab: Vocabulary,
        items: Items,
        model: TwoTower,
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
            candidates,
            similar_index: OnceLock::new(),
            seen,
            popularity,
            history,
            summary,
        }
    }

    /// The `k` best items for a user, optionally without the items they have already seen.
    /// An unknown user gets the most popular items, flagged `cold_start`.
    pub fn recommend(&self, user: &str, k: usize, exclude_seen: bool) -> Recommendations {
        let row = self.query_vocab.get(user);
        let seen = row.filter(|_| exclude_seen).map(|r| self.seen.of(r)).unwrap_or(&[]);
        // row 0 (OOV) is never a recommendation; seen rows are sorted and ≥ 1
        let exclude: Vec<u32> = std::iter::once(0).chain(seen.iter().copied()).collect();
        let filter = Filter { exclude: &exclude, allow: None };
        match row {
            Some(r) => {
                let hits = self.candidates.search(&self.model.query.embed(&[r]), k, &filter);
                Recommendations { items: self.describe(hits), cold_start: false }
            }
            None => {
                let hits = BruteForceIndex::new(self.popularity.clone(), 1, Metric::Dot).search(&[1.0], k, &filter);
                Recommendations { items: self.describe(hits), cold_start: true }
            }
        }
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
