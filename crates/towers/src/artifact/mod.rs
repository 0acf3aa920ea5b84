//! A trained model bundle: towers, vocabularies, candidate embeddings, what each user has
//! seen, popularity — everything `evaluate`, `recommend` and `similar` need — and its files on
//! disk. Two kinds: user → item retrieval, and sequential (item history → next item).

mod files;

use crate::data::features::{AttributeTable, FeatureConfig};
use crate::data::{
    CandidateKey, Catalog, Dataset, Interactions, Items, Positions, SequenceExamples, Sessions, Vocabulary, counts,
};
use crate::eval::{RatingMetrics, Seen, TopKMetrics, distinct_queries, popularity, ranks, rating_metrics, repeat_last};
use crate::index::{BruteForceIndex, Filter, Index, IvfIndex, IvfParams, Metric, Scored, recall_at_k};
use crate::kernels::topk::top_k;
use crate::model::{FeatureModel, FeatureTower, Model, last_position};
use crate::task::{RatingScale, Task};
use crate::train::{
    History, SequenceConfig, TrainConfig, Trainer, evaluate_sequential, fit_features, fit_ranking, fit_rating,
    fit_sequential,
};
use crate::{Error, Result};
use serde::{Deserialize, Serialize};
use std::sync::OnceLock;
use std::time::Instant;

pub use files::{FORMAT_VERSION, IndexManifest, Manifest};

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
    /// Range and mean of the training ratings (rating and ranking models).
    pub rating_scale: Option<RatingScale>,
    /// Candidate tower output of every candidate row (`items.len() × dim`), as an exact
    /// dot-product index.
    pub candidates: BruteForceIndex,
    /// An approximate index over `candidates` (`towers index build`); when present,
    /// `recommend` and `recommend_history` search it instead of the exact index.
    pub approximate: Option<Approximate>,
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
    /// Rating models evaluated on rated pairs: RMSE and NDCG of the re-ranked lists.
    #[serde(flatten, default, skip_serializing_if = "Option::is_none")]
    pub rating: Option<RatingMetrics>,
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
        let ratings = || -> Result<(&[f32], RatingScale)> {
            let r = train.ratings.as_deref().ok_or_else(|| {
                Error::Invalid(format!(
                    "the {:?} task needs ratings: the training table has no rating column",
                    config.task
                ))
            })?;
            let scale = RatingScale::of(r)
                .ok_or_else(|| Error::Invalid("the training ratings are all equal: nothing to learn".into()))?;
            Ok((r, scale))
        };
        let start = Instant::now();
        let (model, history, rating_scale) = match config.task {
            Task::Retrieval => {
                let (m, h) = trainer.fit(&data, val_pairs.as_deref())?;
                (Model::TwoTower(m), h, None)
            }
            Task::Rating => {
                let (r, scale) = ratings()?;
                let (m, h) = fit_rating(&config, &data, r, scale, progress)?;
                (Model::TwoTower(m), h, Some(scale))
            }
            Task::Ranking => {
                let (r, scale) = ratings()?;
                let (m, h) = fit_ranking(&config, &data, r, scale, progress)?;
                (Model::Ranking(m), h, Some(scale))
            }
        };
        let train_s = start.elapsed().as_secs_f64();
        let popularity = counts(&data.candidates, data.items.len());
        let seen = Seen::from_pairs(
            data.query_vocab.rows(),
            data.queries.iter().copied().zip(data.candidates.iter().copied()),
        );
        let summary = TrainSummary::new(data.len(), config.epochs, &history, train_s);
        let embeddings = match &model {
            Model::TwoTower(m) => m.candidate.embed_all(),
            Model::Ranking(m) => m.item.data.clone(),
            Model::Sequential(_) | Model::Features(_) => unreachable!("trained above"),
        };
        let candidates = BruteForceIndex::new(embeddings, config.dim, Metric::Dot);
        Ok(Artifact::from_parts(
            config,
            data.query_vocab,
            data.items,
            model,
            None,
            rating_scale,
            candidates,
            seen,
            popularity,
            history,
            summary,
        ))
    }

    /// Trains a feature model (see [`FeatureConfig`]): user attributes from `users`, item
    /// attributes from `items` (both keyed by id), the interaction timestamps of `train` when
    /// the query tower reads time. Items of the catalogue that never occur in training get the
    /// OOV id embedding and their own features (cold start).
    pub fn train_features(
        config: TrainConfig,
        features: &FeatureConfig,
        train: &Interactions,
        catalog: Option<&Catalog>,
        users: Option<&AttributeTable>,
        items: Option<&AttributeTable>,
        progress: bool,
    ) -> Result<Artifact> {
        features.validate()?;
        let mut config = TrainConfig { dim: features.dim(), ..config };
        config.validate()?;
        let data = Dataset::build(train, catalog, config.key)?;
        let counts = counts(&data.candidates, data.items.len());
        let time = match (features.query.time, &train.timestamps) {
            (None, _) => None,
            (Some(_), Some(ts)) => Some((*ts.iter().min().unwrap_or(&0), *ts.iter().max().unwrap_or(&0))),
            (Some(_), None) => {
                return Err(Error::Invalid("the time feature needs a timestamp column in the training table".into()));
            }
        };
        let mut rng = crate::rng::Rng::new(config.seed);
        let user_ids: Vec<Option<&str>> =
            (0..data.query_vocab.rows() as u32).map(|r| data.query_vocab.key(r)).collect();
        let user_rows: Vec<u32> = (0..user_ids.len() as u32).collect();
        let user_fit: Vec<bool> = user_rows.iter().map(|&r| r > 0).collect();
        let query = FeatureTower::build(
            &features.query,
            &features.layers,
            users,
            &user_ids,
            &user_rows,
            user_ids.len(),
            &user_fit,
            time,
            &mut rng,
        )?;
        let item_ids: Vec<Option<&str>> =
            data.items.ids.iter().enumerate().map(|(r, id)| (r > 0).then_some(id.as_str())).collect();
        let item_fit: Vec<bool> = counts.iter().map(|&c| c > 0.0).collect();
        let item_rows: Vec<u32> =
            (0..item_ids.len() as u32).map(|r| if item_fit[r as usize] { r } else { 0 }).collect();
        let candidate = FeatureTower::build(
            &features.candidate,
            &features.layers,
            items,
            &item_ids,
            &item_rows,
            item_ids.len(),
            &item_fit,
            None,
            &mut rng,
        )?;
        if query.dim() != candidate.dim() {
            return Err(Error::Config(format!(
                "the towers' outputs differ in width: query {}, candidate {}",
                query.dim(),
                candidate.dim()
            )));
        }
        config.task = Task::Retrieval;
        let start = Instant::now();
        let (model, history) = fit_features(
            &config,
            features,
            FeatureModel { query, candidate },
            &data,
            train.timestamps.as_deref(),
            progress,
        )?;
        let train_s = start.elapsed().as_secs_f64();
        let seen = Seen::from_pairs(
            data.query_vocab.rows(),
            data.queries.iter().copied().zip(data.candidates.iter().copied()),
        );
        let summary = TrainSummary::new(data.len(), config.epochs, &history, train_s);
        let candidates = BruteForceIndex::new(model.candidate.embed_all(), config.dim, Metric::Dot);
        Ok(Artifact::from_parts(
            config,
            data.query_vocab,
            data.items,
            Model::Features(model),
            None,
            None,
            candidates,
            seen,
            counts,
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
        let popularity = counts(&data.targets, items.len());
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
            None,
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
        let pairs = Dataset::encode(&self.query_vocab, &self.items, test);
        let start = Instant::now();
        let (queries, users, local) = match &self.model {
            Model::TwoTower(t) => {
                let (users, local) = distinct_queries(&pairs);
                (t.query.embed(&users), users, local)
            }
            Model::Features(f) => {
                // every pair is its own query: (user, the pair's timestamp)
                let users: Vec<u32> = pairs.iter().map(|p| p.0).collect();
                let local: Vec<(u32, u32)> = pairs.iter().enumerate().map(|(i, p)| (i as u32, p.1)).collect();
                (f.query.embed(&users, test.timestamps.as_deref()), users, local)
            }
            Model::Ranking(_) => {
                return Err(Error::Invalid("this is a ranking model: evaluate its ratings (evaluate_ratings)".into()));
            }
            Model::Sequential(_) => {
                return Err(Error::Invalid("this is a sequential model: evaluate it on sequences".into()));
            }
        };
        let excluded: Vec<&[u32]> =
            if exclude_seen { users.iter().map(|&u| self.seen.of(u)).collect() } else { Vec::new() };
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
            rating: match (self.config.task, &test.ratings) {
                (Task::Rating, Some(_)) => Some(self.evaluate_ratings(test)?),
                _ => None,
            },
        })
    }

    /// Rating and ranking models: RMSE of the predicted ratings of a rated test table, and
    /// NDCG@10 of each user's test items re-ranked by the prediction, beside the mean-rating
    /// and popularity baselines.
    pub fn evaluate_ratings(&self, test: &Interactions) -> Result<RatingMetrics> {
        let scale = self.rating_scale.ok_or_else(|| Error::Invalid("this model does not predict ratings".into()))?;
        let truth =
            test.ratings.as_deref().ok_or_else(|| Error::Invalid("the test table has no rating column".into()))?;
        let pairs = Dataset::encode(&self.query_vocab, &self.items, test);
        let predicted = self.predict_ratings(&pairs)?;
        let (users, items): (Vec<u32>, Vec<u32>) = pairs.iter().copied().unzip();
        Ok(rating_metrics(&users, &items, truth, &predicted, &self.popularity, scale.mean))
    }

    /// Predicted ratings of (user row, item row) pairs, on the original scale; a pair with an
    /// unknown user or item gets the mean training rating.
    pub fn predict_ratings(&self, pairs: &[(u32, u32)]) -> Result<Vec<f32>> {
        let scale = self.rating_scale.ok_or_else(|| Error::Invalid("this model does not predict ratings".into()))?;
        let raw: Vec<f32> = match &self.model {
            Model::TwoTower(m) => {
                let (users, items): (Vec<u32>, Vec<u32>) = pairs.iter().copied().unzip();
                let (q, c, d) = (m.query.embed(&users), m.candidate.embed(&items), m.dim());
                q.chunks_exact(d)
                    .zip(c.chunks_exact(d))
                    .map(|(a, b)| scale.unscale(a.iter().zip(b).map(|(x, y)| x * y).sum()))
                    .collect()
            }
            Model::Ranking(m) => m.predict(pairs).into_iter().map(|r| r.clamp(scale.min, scale.max)).collect(),
            Model::Sequential(_) | Model::Features(_) => {
                return Err(Error::Invalid("this model does not predict ratings".into()));
            }
        };
        Ok(raw.into_iter().zip(pairs).map(|(r, &(u, i))| if u == 0 || i == 0 { scale.mean } else { r }).collect())
    }

    /// Ranking models: re-scores items for a user by predicted rating, best first; unknown
    /// item ids are reported as not found.
    pub fn rank(&self, user: &str, items: &[String]) -> Result<Vec<Recommendation>> {
        let u = self.query_vocab.lookup(user);
        let rows = items
            .iter()
            .map(|id| {
                self.items
                    .rows
                    .get(id)
                    .copied()
                    .ok_or_else(|| Error::NotFound(format!("item '{id}' is not in the model")))
            })
            .collect::<Result<Vec<u32>>>()?;
        let pairs: Vec<(u32, u32)> = rows.iter().map(|&r| (u, r)).collect();
        let scores = self.predict_ratings(&pairs)?;
        let mut hits: Vec<Scored> = rows.iter().zip(scores).map(|(&id, score)| Scored { id, score }).collect();
        hits.sort_by(|a, b| b.score.total_cmp(&a.score).then(a.id.cmp(&b.id)));
        Ok(self.describe(hits))
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
            rating: None,
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
        rating_scale: Option<RatingScale>,
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
            rating_scale,
            candidates,
            approximate: None,
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
        if matches!(self.model, Model::Sequential(_)) {
            return Err(Error::Invalid("this is a sequential model: recommend from a history of items".into()));
        }
        let row = self.query_vocab.get(user);
        let seen = row.filter(|_| exclude_seen).map(|r| self.seen.of(r)).unwrap_or(&[]);
        let Some(r) = row else { return Ok(self.popular(k, seen)) };
        match &self.model {
            Model::TwoTower(towers) => Ok(self.best(&towers.query.embed(&[r]), k, seen)),
            // a feature model recommends as of the end of its training period
            Model::Features(f) => {
                Ok(self.best(&f.query.embed(&[r], f.query.time.map(|t| [t.end]).as_ref().map(|t| &t[..])), k, seen))
            }
            Model::Ranking(_) => {
                // a ranking model scores every item for the user
                let pairs: Vec<(u32, u32)> = (0..self.items.len() as u32).map(|i| (r, i)).collect();
                let scores = self.predict_ratings(&pairs)?;
                let exclude: Vec<u32> = std::iter::once(0).chain(seen.iter().copied()).collect();
                let hits =
                    top_k(&[1.0], &scores, 1, k, |_, c| exclude.binary_search(&c).is_ok()).pop().unwrap_or_default();
                Ok(Recommendations { items: self.describe(hits), cold_start: false })
            }
            Model::Sequential(_) => unreachable!("refused above"),
        }
    }

    /// Two-stage recommendation: `retriever` retrieves `candidates` items for the user, this
    /// ranking (or rating) model re-scores them by predicted rating, and the best `k` are kept.
    /// An unknown user gets the retriever's popular items, flagged `cold_start`.
    pub fn rerank(
        &self,
        retriever: &Artifact,
        user: &str,
        candidates: usize,
        k: usize,
        exclude_seen: bool,
    ) -> Result<Recommendations> {
        let retrieved = retriever.recommend(user, candidates.max(k), exclude_seen)?;
        if retrieved.cold_start {
            return Ok(Recommendations { items: retrieved.items.into_iter().take(k).collect(), cold_start: true });
        }
        let ids: Vec<String> = retrieved.items.into_iter().map(|r| r.id).collect();
        let mut ranked = self.rank(user, &ids)?;
        ranked.truncate(k);
        Ok(Recommendations { items: ranked, cold_start: false })
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

    /// Builds an approximate (IVF) index over the candidate embeddings, keeps it in
    /// [`Artifact::approximate`] (saved with the model) and measures its recall@10 against the
    /// exact index on up to 1,000 queries: query-tower outputs of evenly spaced users, or, for
    /// sequential and ranking models, candidate embeddings (item → item).
    pub fn build_index(&mut self, params: &IvfParams, progress: bool) -> Result<&Approximate> {
        let d = self.dim();
        let start = Instant::now();
        let index = IvfIndex::build(self.candidates.vectors(), d, params, progress)?;
        let build_s = start.elapsed().as_secs_f64();
        let queries = match &self.model {
            Model::TwoTower(t) => {
                let n = self.query_vocab.rows();
                let rows: Vec<u32> = (0..n.min(1000)).map(|i| (i * n / n.min(1000)) as u32).collect();
                t.query.embed(&rows)
            }
            Model::Features(f) => {
                let n = self.query_vocab.rows();
                let rows: Vec<u32> = (0..n.min(1000)).map(|i| (i * n / n.min(1000)) as u32).collect();
                let end = f.query.time.map(|t| vec![t.end; rows.len()]);
                f.query.embed(&rows, end.as_deref())
            }
            Model::Sequential(_) | Model::Ranking(_) => {
                let n = self.items.len();
                (0..n.min(1000)).flat_map(|i| self.candidates.vector((i * n / n.min(1000)) as u32).to_vec()).collect()
            }
        };
        let exact = self.candidates.search_batch(&queries, 10, &[]);
        let approx = index.search_batch(&queries, 10, &[]);
        let recall_10 = recall_at_k(&approx, &exact);
        tracing::info!(recall_10, build_s, "approximate index built");
        Ok(self.approximate.insert(Approximate { index, recall_10, recall_queries: exact.len(), build_s }))
    }

    /// The best `k` candidates for a query embedding, without row 0 (OOV) and `exclude` (sorted);
    /// from the approximate index when there is one.
    fn best(&self, query: &[f32], k: usize, exclude: &[u32]) -> Recommendations {
        let exclude: Vec<u32> = std::iter::once(0).chain(exclude.iter().copied()).collect();
        let filter = Filter { exclude: &exclude, allow: None };
        let hits = match &self.approximate {
            Some(a) => a.index.search(query, k, &filter),
            None => self.candidates.search(query, k, &filter),
        };
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
