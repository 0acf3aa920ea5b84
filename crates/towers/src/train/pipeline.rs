//! Training a pipeline: a retriever, and a ranker for implicit feedback trained on the
//! retriever's own candidates. Part of the training interactions is held out; a retriever
//! trained on the rest finds each user's top candidates, those the user interacted with in
//! the held-out part are the positives, the others hard negatives; the ranker learns to put
//! the positives first from context features (the retriever's score, popularity, time, the
//! user's history). The served retriever is then trained on all the data.

use super::continuing::{Continuing, continuable, earlier, seen_after};
use super::epochs::Run;
use super::ranking::{ListSource, Lists, fit_lists};
use super::trainer::Trainer;
use crate::artifact::{Artifact, TrainSummary};
use crate::config::{OptimizerConfig, TrainConfig};
use crate::data::features::{AttributeTable, Encoder, FeatureSpec};
use crate::data::{Catalog, Dataset, Interactions, Seen, Split};
use crate::index::Filter;
use crate::model::{
    At, Context, ContextData, ContextFeature, FeatureConfig, ModelSpec, Queries, RankingInputs, RankingModel,
    RankingSpec, Retrieved,
};
use crate::progress::Observer;
use crate::recommend::{DEFAULT_RETRIEVE, Pipeline, PipelineSettings, PostRanking, Recommender};
use crate::task::RatingScale;
use crate::{Error, Result};
use serde::{Deserialize, Serialize};

/// How a pipeline is trained (every key has a default; see the book's pipeline guide for how they were chosen).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct PipelineConfig {
    /// The retriever's training configuration: towers' retrieval defaults with dim 128, 30
    /// epochs, learning rate 0.003.
    pub retriever: TrainConfig,
    /// The ranker's: Adam 0.05, 4,096 candidates per batch, 30 epochs, no L2.
    pub ranker: TrainConfig,
    /// The ranker's settings; none: a linear layer over [`ContextFeature::defaults`] (an
    /// affinity for each multi-hot or category item feature), softmax loss.
    pub ranker_spec: Option<RankingSpec>,
    /// Share of the training interactions held out to label the ranker's lists.
    pub holdout: f32,
    /// Candidates per user, in training and serving.
    pub retrieve: usize,
    /// The post-ranking rules served by default.
    pub post: PostRanking,
}

impl Default for PipelineConfig {
    fn default() -> Self {
        PipelineConfig {
            retriever: TrainConfig {
                dim: 128,
                epochs: 30,
                optimizer: OptimizerConfig { learning_rate: 0.003, ..OptimizerConfig::default() },
                ..TrainConfig::default()
            },
            ranker: TrainConfig {
                optimizer: OptimizerConfig { learning_rate: 0.05, ..OptimizerConfig::default() },
                batch_size: 4096,
                epochs: 30,
                l2: 0.0,
                ..TrainConfig::default()
            },
            ranker_spec: None,
            holdout: 0.2,
            retrieve: DEFAULT_RETRIEVE,
            post: PostRanking::default(),
        }
    }
}

impl PipelineConfig {
    /// Checks every value.
    pub fn validate(&self) -> Result<()> {
        self.retriever.validate().map_err(|e| prefix("retriever", e))?;
        self.ranker.validate().map_err(|e| prefix("ranker", e))?;
        if let Some(s) = &self.ranker_spec {
            s.validate().map_err(|e| prefix("ranker_spec", e))?;
        }
        if !(0.01..=0.9).contains(&self.holdout) {
            return Err(Error::Config(format!("holdout must be in [0.01, 0.9], got {}", self.holdout)));
        }
        if !(2..=10_000).contains(&self.retrieve) {
            return Err(Error::Config(format!("retrieve must be in 2..=10000, got {}", self.retrieve)));
        }
        self.post.validate()
    }
}

fn prefix(what: &str, e: Error) -> Error {
    match e {
        Error::Config(m) => Error::Config(format!("{what}: {m}")),
        e => e,
    }
}

/// What a pipeline trains from besides its configuration: the parts of a [`Trainer`] it reads.
pub(crate) struct PipelineTrainer<'a> {
    pub config: PipelineConfig,
    pub catalog: Option<&'a Catalog>,
    /// Item attributes (affinity features, post-ranking's caps and dedupe).
    pub items: Option<&'a AttributeTable>,
    /// How each attribute column is encoded.
    pub features: Option<&'a FeatureConfig>,
    /// Measured after every epoch of the served retriever.
    pub validation: Option<&'a Interactions>,
    pub observer: &'a mut dyn Observer,
    /// The pipeline trained before that this one continues: its retriever and ranker.
    pub prior: Option<&'a Pipeline>,
    /// What the counts of the pipeline continued weigh.
    pub decay: f32,
}

impl PipelineTrainer<'_> {
    /// The affinity features and their encoders: each multi-hot or category item feature.
    fn affinities(&self) -> Vec<FeatureSpec> {
        self.features.map_or_else(Vec::new, |f| {
            f.candidate
                .features
                .iter()
                .filter(|s| matches!(s.encoder, Encoder::MultiHot | Encoder::Category))
                .cloned()
                .collect()
        })
    }

    /// Trains the retriever and the ranker on `train` and joins them.
    pub fn fit(self, train: &Interactions) -> Result<Pipeline> {
        self.config.validate()?;
        if self.items.is_some() && self.features.is_none() {
            return Err(Error::Config(
                "a pipeline reads item attributes through a feature configuration saying how each column is \
                 encoded: give it (feature_config) with the attributes"
                    .into(),
            ));
        }
        let cfg = &self.config;
        let affinity = self.affinities();
        let spec = match &cfg.ranker_spec {
            Some(s) => s.clone(),
            None => {
                let columns: Vec<String> = affinity.iter().map(|s| s.column.clone()).collect();
                RankingSpec::implicit(ContextFeature::defaults(&columns, train.timestamps.is_some()))
            }
        };
        if spec.context.is_empty() || spec.features.is_some() || spec.loss.predicts_ratings() {
            return Err(Error::Config(
                "ranker_spec: a pipeline's ranker reads context features (and ids), with a loss for implicit feedback"
                    .into(),
            ));
        }
        let affinity: Vec<FeatureSpec> = spec
            .context
            .iter()
            .filter_map(|f| match f {
                ContextFeature::Affinity(c) => {
                    Some(affinity.iter().find(|s| &s.column == c).cloned().ok_or_else(|| {
                        Error::Config(format!("ranker_spec: affinity:{c}: no multi-hot or category item feature '{c}'"))
                    }))
                }
                _ => None,
            })
            .collect::<Result<_>>()?;
        let observer = self.observer;
        let old_retriever = self.prior.map(|p| p.retriever().artifact());
        let old_ranker = match self.prior {
            Some(p) => Some(continuable(p.ranker(), &ModelSpec::Ranking(spec.clone()), &cfg.ranker, self.decay)?),
            None => None,
        };
        let data =
            Dataset::build_on(old_ranker.map(|r| earlier(r, self.decay)), train, self.catalog, cfg.retriever.key)?;
        let (fit_part, held_out) =
            Split::Random { test_fraction: cfg.holdout as f64, seed: cfg.retriever.seed }.apply(train)?;
        let sub = retriever(cfg, self.catalog, old_retriever, self.decay);
        let sub = Recommender::new(sub.observer(&mut *observer).fit(&fit_part)?).exact();
        let item_ids: Vec<Option<&str>> =
            data.items.ids.iter().enumerate().map(|(r, id)| (r > 0).then_some(id.as_str())).collect();
        let fit_pairs = Dataset::encode(&data.query_vocab, &data.items, &fit_part);
        let context_data = |pairs: &[(u32, u32)], table: &Interactions| -> Result<Context> {
            Context::build(
                &spec.context,
                &ContextData {
                    users: data.query_vocab.rows(),
                    items: &item_ids,
                    pairs,
                    timestamps: table.timestamps.as_deref(),
                    attributes: self.items,
                    affinity: &affinity,
                },
            )
        };
        let fit_context = context_data(&fit_pairs, &fit_part)?;
        let lists = candidate_lists(
            &sub,
            &data,
            &fit_pairs,
            &Dataset::encode(&data.query_vocab, &data.items, &held_out),
            &fit_context,
            cfg.retrieve,
        )?;
        let all_pairs: Vec<(u32, u32)> = data.queries.iter().copied().zip(data.candidates.iter().copied()).collect();
        let inputs = RankingInputs { context: Some(context_data(&all_pairs, train)?), ..RankingInputs::default() };
        let scale = RatingScale { min: 0.0, max: 1.0, mean: 0.0 };
        let shape = (data.query_vocab.rows(), data.items.len());
        let mut ranker = RankingModel::new(&spec, shape, cfg.ranker.dim, inputs, scale, cfg.ranker.seed);
        let mut run = Run::new(&cfg.ranker, &mut *observer, None);
        let from = Continuing { prior: old_ranker, decay: self.decay, checkpoints: None, spill: None };
        from.prepare(&mut run, (data.query_vocab.rows(), data.items.len()), String::new)?;
        let history = fit_lists(&mut run, &mut ranker, ListSource::Fixed(&lists), &super::ranking::Alone)?;
        let optimizer = run.optimizer.take();
        let summary = TrainSummary::new(lists.items.len(), &history, run.seconds);
        let mut full = retriever(cfg, self.catalog, old_retriever, self.decay);
        if let Some(v) = self.validation {
            full = full.validation(v);
        }
        let retriever = full.observer(observer).fit(train)?;
        let ranker = Artifact {
            candidates: crate::model::Model::candidates(&ranker).into(),
            model: Box::new(ranker),
            config: cfg.ranker.clone(),
            seen: seen_after(old_ranker, data.query_vocab.rows(), all_pairs.iter().copied()),
            popularity: data.counts.clone(),
            query_vocab: data.query_vocab,
            items: data.items,
            approximate: None,
            history,
            summary,
            optimizer,
            histories: Default::default(),
            origin: Default::default(),
        };
        let settings = PipelineSettings {
            retrieve: cfg.retrieve,
            post: cfg.post.clone(),
            ..PipelineSettings::new("retriever", "ranker")
        };
        Pipeline::new(retriever, ranker, settings, self.items.cloned())
    }
}

/// A trainer of a pipeline's retriever, continuing `prior` when there is one.
fn retriever<'t>(
    cfg: &PipelineConfig,
    catalog: Option<&'t Catalog>,
    prior: Option<&'t Artifact>,
    decay: f32,
) -> Trainer<'t> {
    let t = Trainer::new(ModelSpec::Retrieval).config(cfg.retriever.clone()).catalog(catalog);
    t.init_from_model(prior).count_decay(decay)
}

/// The ranker's training lists: for each user with held-out interactions, the retriever's
/// (trained without them) best `n` unseen items, labelled 1 where held out, with their context
/// features; lists without a positive teach nothing and are left out.
fn candidate_lists(
    recommender: &Recommender,
    data: &Dataset,
    fit_pairs: &[(u32, u32)],
    held_out: &[(u32, u32)],
    context: &Context,
    n: usize,
) -> Result<Lists> {
    let sub = recommender.artifact();
    let (users, items) = (data.query_vocab.rows(), data.items.len());
    // the retriever's rows are its own: map them to the pipeline's through the ids
    let item_of_sub: Vec<u32> = sub
        .items
        .ids
        .iter()
        .enumerate()
        .map(|(r, id)| if r == 0 { 0 } else { data.items.rows.get(id).copied().unwrap_or(0) })
        .collect();
    let d = sub.dim();
    let mut embeddings = vec![0f32; items * d];
    for (r, &full) in item_of_sub.iter().enumerate().skip(1) {
        embeddings[full as usize * d..(full as usize + 1) * d].copy_from_slice(&sub.candidates[r * d..(r + 1) * d]);
    }
    let seen = Seen::from_pairs(users, fit_pairs.iter().copied());
    let positives = Seen::from_pairs(users, held_out.iter().copied().filter(|p| p.0 > 0 && p.1 > 0));
    let mut lists = Lists::default();
    let mut features = Vec::new();
    for u in 1..users as u32 {
        let pos = positives.of(u);
        let Some(sub_row) = data.query_vocab.key(u).and_then(|k| sub.query_vocab.get(k)) else { continue };
        if pos.is_empty() {
            continue;
        }
        let q = sub.model.queries(&Queries::Users { rows: &[sub_row], at: At::TrainingEnd })?;
        let mut exclude: Vec<u32> = std::iter::once(0).chain(sub.seen.of(sub_row).iter().copied()).collect();
        exclude.sort_unstable();
        let hits = recommender.index().search(&q, n, &Filter { exclude: &exclude, allow: None });
        let rows: Vec<u32> = hits.iter().map(|h| item_of_sub[h.id as usize]).collect();
        let labels: Vec<f32> = rows.iter().map(|r| f32::from(pos.binary_search(r).is_ok())).collect();
        if !labels.iter().any(|&l| l > 0.0) {
            continue;
        }
        let scores: Vec<f32> = hits.iter().map(|h| h.score).collect();
        let retrieved = Retrieved { scores: &scores, embeddings: &embeddings, dim: d, norms: None };
        features.extend(context.compute(u, seen.of(u), &rows, Some(&retrieved))?);
        lists.push(u, &rows, &labels);
    }
    lists.context = Some((features, context.width()));
    Ok(lists)
}
