//! Evaluating a trained model of any kind, beside its baselines: the one place that ranks test
//! data against the whole catalogue (also the per-epoch validation of training) and measures
//! predicted ratings. The metrics themselves are [`crate::metrics`]'.

use crate::artifact::Artifact;
use crate::config::post::{caps, ids, lenient};
use crate::config::{Cap, PostOverrides};
use crate::data::{Data, Dataset, Interactions, Items, Positions, Seen, SequenceExamples, Vocabulary};
use crate::dist::Collective;
use crate::metrics::{
    Ranker, RatingMetrics, TopKMetrics, distinct_queries, popularity, popularity_ranks, ranks, rating_metrics,
    repeat_last,
};
use crate::model::{At, Model, ModelSpec, Queries, QueryKind, last_position};
use crate::{Error, Result};
use serde::{Deserialize, Serialize};
use std::time::Instant;

/// How to evaluate, as every face names it (the CLI's flags, the keywords of Python's
/// `evaluate`): what to exclude from each ranking, and, for pipelines, the post-ranking
/// overrides and the number of candidates to retrieve.
///
/// ```
/// use towers::eval::EvalOptions;
/// let o = EvalOptions::new().exclude_seen(true);
/// assert!(o.exclude_seen && o.post.is_empty());
/// ```
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(try_from = "EvalFields")]
pub struct EvalOptions {
    /// Remove each user's training items (sequences: the history's items), other than the
    /// pair's own, from the ranking.
    pub exclude_seen: bool,
    /// Pipelines: item ids never returned, besides the pipeline's own.
    pub exclude: Vec<String>,
    /// Pipelines: changes to the post-ranking rules.
    pub post: PostOverrides,
    /// Pipelines: candidates to retrieve for the ranker instead of the pipeline's number.
    pub retrieve: Option<usize>,
}

impl EvalOptions {
    /// Nothing excluded, the pipeline's own rules.
    pub fn new() -> Self {
        Self::default()
    }

    /// Leave out what each user has seen in training.
    pub fn exclude_seen(mut self, on: bool) -> Self {
        self.exclude_seen = on;
        self
    }

    /// Pipelines: these changes to the post-ranking rules.
    pub fn post(mut self, post: PostOverrides) -> Self {
        self.post = post;
        self
    }

    /// Pipelines: retrieve this many candidates for the ranker.
    pub fn retrieve(mut self, n: usize) -> Self {
        self.retrieve = Some(n);
        self
    }

    /// An error when an option only a pipeline takes is given (for a single model).
    pub fn refuse_pipeline_options(&self) -> Result<()> {
        if self.post.is_empty() && self.retrieve.is_none() && self.exclude.is_empty() {
            return Ok(());
        }
        Err(Error::Unsupported(PIPELINE_ONLY.into()))
    }
}

/// The message for post-ranking options given to a single model.
pub const PIPELINE_ONLY: &str =
    "`diversity`, `caps`, `boost`, `dedupe` and `retrieve` are for pipelines (`task` pipeline), not for a single model";

/// [`EvalOptions`] as read from JSON or Python keywords (every key checked).
#[derive(Deserialize)]
#[serde(default, deny_unknown_fields)]
#[derive(Default)]
struct EvalFields {
    #[serde(deserialize_with = "lenient")]
    exclude_seen: Option<bool>,
    #[serde(deserialize_with = "ids")]
    exclude: Option<Vec<String>>,
    #[serde(deserialize_with = "lenient")]
    diversity: Option<f32>,
    #[serde(deserialize_with = "caps")]
    caps: Option<Vec<Cap>>,
    #[serde(deserialize_with = "ids")]
    boost: Option<Vec<String>>,
    dedupe: Option<String>,
    #[serde(deserialize_with = "lenient")]
    retrieve: Option<usize>,
}

impl TryFrom<EvalFields> for EvalOptions {
    type Error = Error;
    fn try_from(f: EvalFields) -> Result<Self> {
        let post = PostOverrides { diversity: f.diversity, caps: f.caps, boost: f.boost, dedupe: f.dedupe };
        Ok(EvalOptions {
            exclude_seen: f.exclude_seen.unwrap_or(false),
            exclude: f.exclude.unwrap_or_default(),
            post,
            retrieve: f.retrieve,
        })
    }
}

/// Test data encoded against a model's vocabularies.
#[derive(Debug, Clone)]
pub enum Encoded {
    /// (query row, candidate row) pairs (0 = unknown), with their timestamps when the table has them.
    Pairs {
        /// The pairs.
        pairs: Vec<(u32, u32)>,
        /// Each pair's timestamp.
        times: Option<Vec<i64>>,
    },
    /// Next-item examples: the history before each sequence's last item, and that item.
    Sequences(SequenceExamples),
}

impl Encoded {
    /// An interaction table's pairs.
    pub fn interactions(query_vocab: &Vocabulary, items: &Items, table: &Interactions) -> Self {
        Encoded::Pairs { pairs: Dataset::encode(query_vocab, items, table), times: table.timestamps.clone() }
    }
}

/// Results of ranking every test pair's item against all candidates.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Ranked {
    /// The model's metrics.
    #[serde(flatten)]
    pub model: TopKMetrics,
    /// Popularity's metrics on the same pairs with the same exclusions.
    pub baseline: TopKMetrics,
    /// Sequential models: the "repeat the last item" baseline (the history's last item first,
    /// then popularity) on the same examples with the same exclusions.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub repeat_last: Option<TopKMetrics>,
    /// Whether each user's training items (sequences: the history's items) were excluded.
    pub exclude_seen: bool,
    /// Test pairs whose user was not in the training data: answered by popularity, as they are
    /// served (per-epoch validation, which has no counts, scores them with the OOV embedding).
    pub unknown_users: usize,
    /// Test pairs whose item is unknown (always a miss).
    pub unknown_items: usize,
    /// Seconds to rank (embedding + scoring + ranking; baselines excluded).
    pub eval_s: f64,
}

/// An evaluation: the ranking metrics (models with a query tower) and the rating metrics
/// (models that predict ratings, on a rated test table); keys as in the CLI's JSON.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Evaluation {
    /// Ranked against every candidate.
    #[serde(flatten)]
    pub ranked: Option<Ranked>,
    /// RMSE and NDCG of the predicted ratings.
    #[serde(flatten)]
    pub rating: Option<RatingMetrics>,
}

impl Evaluation {
    /// Evaluates `artifact` as one rank of a distributed job: every rank of `comm` ranks its
    /// `share` of the test pairs (see [`Interactions::read_share`]), and every rank returns the
    /// metrics of all of them (counts summed, means weighted by pairs; `eval_s` the slowest
    /// rank's). Ranking metrics of an interaction table only (rating metrics are not combined).
    pub fn distributed(
        comm: &dyn Collective,
        artifact: &Artifact,
        share: &Interactions,
        options: &EvalOptions,
    ) -> Result<Evaluation> {
        let mine = match share.is_empty() {
            true => Ok(None),
            false => evaluate(artifact, share, options).and_then(|e| e.ranked().cloned().map(Some)),
        };
        let mine = crate::dist::agree(comm, mine)?;
        let all = comm.all_gather(&serde_json::to_vec(&mine).map_err(Error::internal)?);
        let parts: Vec<Ranked> = all
            .iter()
            .map(|b| serde_json::from_slice::<Option<Ranked>>(b).map_err(Error::internal))
            .collect::<Result<Vec<_>>>()?
            .into_iter()
            .flatten()
            .collect();
        let first = parts.first().ok_or_else(|| Error::Data("the test set is empty".into()))?;
        let combine = |f: fn(&Ranked) -> TopKMetrics| TopKMetrics::combine(&parts.iter().map(f).collect::<Vec<_>>());
        let repeat_last = first.repeat_last.is_some().then(|| combine(|r| r.repeat_last.unwrap_or_default()));
        let ranked = Ranked {
            model: combine(|r| r.model),
            baseline: combine(|r| r.baseline),
            repeat_last,
            exclude_seen: first.exclude_seen,
            unknown_users: parts.iter().map(|r| r.unknown_users).sum(),
            unknown_items: parts.iter().map(|r| r.unknown_items).sum(),
            eval_s: parts.iter().map(|r| r.eval_s).fold(0.0, f64::max),
        };
        Ok(Evaluation { ranked: Some(ranked), rating: None })
    }

    /// The ranking metrics, or an error for models evaluated on ratings alone.
    pub fn ranked(&self) -> Result<&Ranked> {
        self.ranked.as_ref().ok_or_else(|| Error::Unsupported("this evaluation has no ranking metrics".into()))
    }
}

/// Evaluates a model on test data, beside the baselines: every test item ranked against all
/// candidates (recall@k = top-k accuracy, MRR, NDCG), and, for models that predict ratings on a
/// rated table, RMSE and NDCG@10 of each user's test items re-ranked. With `exclude_seen`, each
/// user's training items (sequences: the history's items), other than the pair's own, are
/// removed from the ranking. Post-ranking options ([`EvalOptions::post`]) are for pipelines and
/// refused here. ([`Served::evaluate`](crate::Served::evaluate) evaluates a pipeline too.)
///
/// ```no_run
/// # fn main() -> towers::Result<()> {
/// use towers::data::{Interactions, TableFormat};
/// use towers::{Artifact, EvalOptions, evaluate};
/// let model = Artifact::load("/tmp/d")?;
/// let test = Interactions::read("test.tsv", &TableFormat::default())?;
/// let e = evaluate(&model, &test, &EvalOptions::new().exclude_seen(true))?;
/// let r = e.ranked()?;
/// println!("top-10 {:.3} (popularity {:.3})", r.model.top_10, r.baseline.top_10);
/// # Ok(()) }
/// ```
pub fn evaluate<'a>(artifact: &Artifact, test: impl Into<Data<'a>>, options: &EvalOptions) -> Result<Evaluation> {
    options.refuse_pipeline_options()?;
    let exclude_seen = options.exclude_seen;
    let model = &*artifact.model;
    match test.into() {
        Data::Interactions(table) => {
            if model.query_kind() == QueryKind::History {
                return Err(Error::Unsupported("this is a sequential model: evaluate it on sequences".into()));
            }
            let encoded = Encoded::interactions(&artifact.query_vocab, &artifact.items, table);
            let Encoded::Pairs { pairs, .. } = &encoded else { unreachable!("pairs") };
            let rating = match (model.rating_scale(), &table.ratings) {
                (Some(scale), Some(truth)) => {
                    let predicted = model.ratings(pairs)?;
                    let (users, items): (Vec<u32>, Vec<u32>) = pairs.iter().copied().unzip();
                    Some(rating_metrics(&users, &items, truth, &predicted, &artifact.popularity, scale.mean))
                }
                (None, Some(truth)) if model.query_kind() == QueryKind::Pairs => {
                    // a ranker trained with a pairwise or listwise loss: its scores order each
                    // user's rated items; they are no ratings, so no RMSE
                    let scores = model.predict(pairs)?;
                    let (users, items): (Vec<u32>, Vec<u32>) = pairs.iter().copied().unzip();
                    let m = rating_metrics(&users, &items, truth, &scores, &artifact.popularity, 0.0);
                    Some(RatingMetrics { rmse: f64::NAN, rmse_mean_baseline: f64::NAN, ..m })
                }
                (_, None) if model.query_kind() == QueryKind::Pairs => {
                    return Err(Error::Data("the test table has no rating column".into()));
                }
                _ => None,
            };
            let ranked = match model.query_kind() {
                QueryKind::Pairs => None,
                _ => Some(rank(artifact, &encoded, exclude_seen)?),
            };
            Ok(Evaluation { ranked, rating })
        }
        Data::Sequences(sessions) => {
            let steps = history_steps(model)?;
            let row = |id: &str| artifact.items.rows.get(id).copied().unwrap_or(0);
            let examples = SequenceExamples::build(sessions, row, steps, Positions::Last);
            if examples.is_empty() {
                return Err(Error::Data("no test sequence has two items (a history and a target)".into()));
            }
            Ok(Evaluation { ranked: Some(rank(artifact, &Encoded::Sequences(examples), exclude_seen)?), rating: None })
        }
    }
}

/// The history length of a sequential model.
fn history_steps(model: &dyn Model) -> Result<usize> {
    match model.spec() {
        ModelSpec::Sequential(s) => Ok(s.steps),
        other => Err(Error::Unsupported(format!("a {} model is evaluated on an interaction table", other.kind()))),
    }
}

/// Metrics of a model in training on encoded validation data (no exclusions); `None` for
/// models without a query tower.
pub fn validate(model: &dyn Model, data: &Encoded) -> Result<Option<TopKMetrics>> {
    if model.query_kind() == QueryKind::Pairs {
        return Ok(None);
    }
    let query_ranks = ranks_of(model, &model.candidates(), data, Exclude::Nothing)?;
    Ok(Some(TopKMetrics::from_ranks(&query_ranks.ranks)))
}

/// What is removed from each query's ranking (other than the item being ranked).
#[derive(Clone, Copy)]
enum Exclude<'a> {
    Nothing,
    /// Each user's training items.
    Seen(&'a Seen),
    /// Each sequence's history.
    History,
}

impl<'a> Exclude<'a> {
    fn of_user(self, user: u32) -> &'a [u32] {
        match self {
            Exclude::Seen(s) => s.of(user),
            _ => &[],
        }
    }

    /// The excluded items of every example of a sequence set, from `b0` to `b1`.
    fn histories(self, examples: &SequenceExamples, b0: usize, b1: usize) -> Vec<Vec<u32>> {
        match self {
            Exclude::History => (b0..b1).map(|i| examples.history(i)).collect(),
            _ => Vec::new(),
        }
    }
}

/// Ranks of each test item, and the (query, item) pairs they were ranked as.
struct QueryRanks {
    ranks: Vec<Option<usize>>,
    /// (index of the query, candidate row) of each test item.
    pairs: Vec<(u32, u32)>,
    /// The user (query row) of each query; empty for sequences.
    users: Vec<u32>,
}

/// Ranks every test item against `candidates`, without what `exclude` removes.
fn ranks_of(model: &dyn Model, candidates: &[f32], data: &Encoded, exclude: Exclude) -> Result<QueryRanks> {
    let d = model.dim();
    match data {
        Encoded::Pairs { pairs, times } => {
            let (users, local, at) = match model.query_kind() {
                QueryKind::User => {
                    let (users, local) = distinct_queries(pairs);
                    (users, local, At::Unknown)
                }
                // every pair is its own query: (user, the pair's timestamp)
                _ => {
                    let users: Vec<u32> = pairs.iter().map(|p| p.0).collect();
                    let local = pairs.iter().enumerate().map(|(i, p)| (i as u32, p.1)).collect();
                    (users, local, times.as_deref().map_or(At::Unknown, At::Each))
                }
            };
            let queries = model.queries(&Queries::Users { rows: &users, at })?;
            let ex: Vec<&[u32]> = users.iter().map(|&u| exclude.of_user(u)).collect();
            Ok(QueryRanks { ranks: ranks(&queries, candidates, d, &local, &ex), pairs: local, users })
        }
        Encoded::Sequences(examples) => {
            const BLOCK: usize = 4096;
            let (steps, n) = (examples.steps, examples.len());
            let ranker = Ranker::new(candidates, d);
            let mut all = Vec::with_capacity(n);
            for b0 in (0..n).step_by(BLOCK) {
                let b1 = (b0 + BLOCK).min(n);
                let contexts = &examples.contexts[b0 * steps..b1 * steps];
                let q =
                    model.queries(&Queries::Histories { contexts, mask: &examples.mask[b0 * steps..b1 * steps] })?;
                let pairs: Vec<(u32, u32)> = (b0..b1).map(|i| ((i - b0) as u32, examples.targets[i])).collect();
                let history = exclude.histories(examples, b0, b1);
                let refs: Vec<&[u32]> = history.iter().map(Vec::as_slice).collect();
                let added: Vec<Vec<(u32, f32)>> = (b0..b1)
                    .map(|i| {
                        model.repeat_scores(
                            &examples.contexts[i * steps..(i + 1) * steps],
                            &examples.mask[i * steps..(i + 1) * steps],
                        )
                    })
                    .collect();
                let added: Vec<&[(u32, f32)]> = added.iter().map(Vec::as_slice).collect();
                all.extend(ranker.ranks_added(&q, &pairs, &refs, &added));
            }
            let pairs = (0..n as u32).map(|i| (i, examples.targets[i as usize])).collect();
            Ok(QueryRanks { ranks: all, pairs, users: Vec::new() })
        }
    }
}

/// Ranks the test items of a trained model, beside popularity (and, for sequences, "repeat the
/// last item") on the same pairs with the same exclusions.
fn rank(artifact: &Artifact, data: &Encoded, exclude_seen: bool) -> Result<Ranked> {
    let exclude = match (exclude_seen, data) {
        (false, _) => Exclude::Nothing,
        (true, Encoded::Pairs { .. }) => Exclude::Seen(&artifact.seen),
        (true, Encoded::Sequences(_)) => Exclude::History,
    };
    let start = Instant::now();
    let mut r = ranks_of(&*artifact.model, &artifact.candidates, data, exclude)?;
    // unknown users get the popularity list, as served
    let unknown: Vec<usize> = (0..r.pairs.len()).filter(|&i| r.users.get(r.pairs[i].0 as usize) == Some(&0)).collect();
    let cold: Vec<(u32, u32)> = unknown.iter().map(|&i| (0, r.pairs[i].1)).collect();
    for (&i, rank) in unknown.iter().zip(popularity_ranks(&artifact.popularity, &cold, &[])) {
        r.ranks[i] = rank;
    }
    let eval_s = start.elapsed().as_secs_f64();
    let model = TopKMetrics::from_ranks(&r.ranks);
    Ok(match data {
        Encoded::Pairs { pairs, .. } => {
            let ex: Vec<&[u32]> = r.users.iter().map(|&u| exclude.of_user(u)).collect();
            Ranked {
                model,
                baseline: popularity(&artifact.popularity, &r.pairs, &ex),
                repeat_last: None,
                exclude_seen,
                unknown_users: pairs.iter().filter(|p| p.0 == 0).count(),
                unknown_items: pairs.iter().filter(|p| p.1 == 0).count(),
                eval_s,
            }
        }
        Encoded::Sequences(examples) => {
            let history = exclude.histories(examples, 0, examples.len());
            let ex: Vec<&[u32]> = history.iter().map(Vec::as_slice).collect();
            let steps = examples.steps;
            let last: Vec<u32> = (0..examples.len())
                .map(|i| {
                    last_position(&examples.mask[i * steps..(i + 1) * steps])
                        .map_or(0, |p| examples.contexts[i * steps + p])
                })
                .collect();
            Ranked {
                model,
                baseline: popularity(&artifact.popularity, &r.pairs, &ex),
                repeat_last: Some(repeat_last(&artifact.popularity, &last, &examples.targets, &ex)),
                exclude_seen,
                unknown_users: 0,
                unknown_items: examples.targets.iter().filter(|&&t| t == 0).count(),
                eval_s,
            }
        }
    })
}
