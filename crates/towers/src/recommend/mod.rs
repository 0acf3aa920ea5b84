//! Recommendations from a trained model: the one place that turns a request (who, how many,
//! what to leave out or keep to) into a search of the model's index. The CLI and the HTTP
//! server call it; a request goes one way: caller → [`Recommender`] → [`Index`] → kernel.
//! A [`Pipeline`] joins a retriever, a ranker and post-ranking rules ([`PostRanking`]).

mod batch;
mod evaluate;
mod index;
mod live;
mod pipeline;
mod post;
mod report;
mod request;
mod served;
mod store;

pub use crate::config::{Cap, PostOverrides, PostRanking};
pub use evaluate::{PipelineEvaluation, diversity};
pub use index::build_index;
pub use live::{Event, Live, LiveConfig};
pub use pipeline::{
    DEFAULT_RETRIEVE, PIPELINE_FILE, PIPELINE_FORMAT, PIPELINE_FORMAT_VERSION, Pipeline, PipelineSettings, Staged,
    Timings,
};
pub use post::{ItemAttributes, Scene, post_rank};
pub use request::{DEFAULT_K, MAX_K, MAX_RECENT, MAX_RETRIEVE, Request, RequestFields, check_k, check_retrieve};
pub use served::{Description, PipelineDescription, Report, Served};
pub use store::{CandidateStore, StoreFuture};

use crate::artifact::Artifact;
use crate::index::{BruteForceIndex, Filter, Index, Metric, Scored, best_scores};
use crate::model::{At, ModelSpec, Queries, QueryKind};
use crate::{Error, Result};
use serde::{Deserialize, Serialize};
use std::sync::OnceLock;

/// One recommended item.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct Recommendation {
    /// Item id.
    pub id: String,
    /// Title (empty when the catalogue has none).
    pub title: String,
    /// Dot-product score (cosine for similar items, the predicted rating for ranking models),
    /// or the training count for popular items.
    pub score: f32,
}

/// Recommendations for one query.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Recommendations {
    /// Best first.
    pub items: Vec<Recommendation>,
    /// True when the query is unknown (a new user, a history of unknown items) and these are
    /// the most popular items.
    pub cold_start: bool,
    /// With [`Request::debug`]: the time each stage took.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub timings: Option<Timings>,
}

/// Who recommendations are for.
#[derive(Debug, Clone, Copy)]
pub enum Query<'a> {
    /// A user id (user → item models).
    User(&'a str),
    /// The items seen so far, oldest first, by id or title (sequential models).
    History(&'a [String]),
}

/// A query resolved against a model ([`Recommender::resolve`]), for a store outside the model
/// to search.
#[derive(Debug, Clone, PartialEq)]
pub struct Resolved {
    /// The query tower's output (`dim` values); `None` for a cold start (an unknown user, a
    /// history of unknown items), which is answered with the most popular items.
    pub vector: Option<Vec<f32>>,
    /// Candidate rows never returned, sorted: the OOV row 0, the seen items when asked, the
    /// request's exclusions.
    pub exclude: Vec<u32>,
    /// If given, the only candidate rows that may be returned, sorted.
    pub allow: Option<Vec<u32>>,
    /// Scores added to some rows' dot products, sorted by row (a sequential model's repeat
    /// scores for the items of the history): search `k + added.len()` by dot product, then
    /// re-score these rows, as [`Recommender::recommend`] does.
    pub added: Vec<(u32, f32)>,
}

/// A user's row (`None`: unknown), and the candidate rows a request leaves out (the OOV row,
/// the user's training items when asked, the request's; sorted) and keeps to.
pub(crate) struct UserRows {
    pub row: Option<u32>,
    pub exclude: Vec<u32>,
    pub allow: Option<Vec<u32>>,
}

/// A trained model ready to answer: its exact index, its approximate one when it has one,
/// and the cosine index of similar items (built on first use). [`Served`] wraps it (and
/// pipelines) with one face; this is the single model underneath.
///
/// ```no_run
/// # fn main() -> towers::Result<()> {
/// use towers::{Artifact, Query, Recommender, Request};
/// let r = Recommender::new(Artifact::load("/tmp/d")?);
/// let recs = r.recommend(Query::User("42"), &Request::top(10))?;
/// println!("{} from the {} index", recs.items.len(), r.index_kind());
/// # Ok(()) }
/// ```
#[derive(Debug)]
pub struct Recommender {
    artifact: Artifact,
    exact: BruteForceIndex,
    similar: OnceLock<BruteForceIndex>,
    approximate: bool,
}

impl Recommender {
    /// Serves `artifact`, from its approximate index when it has one.
    pub fn new(artifact: Artifact) -> Self {
        let exact = BruteForceIndex::new(artifact.candidates.clone(), artifact.dim(), Metric::Dot);
        let approximate = artifact.approximate.is_some();
        Recommender { artifact, exact, similar: OnceLock::new(), approximate }
    }

    /// Searches the exact index even when the model holds an approximate one.
    pub fn exact(mut self) -> Self {
        self.approximate = false;
        self
    }

    /// The model.
    pub fn artifact(&self) -> &Artifact {
        &self.artifact
    }

    /// The index recommendations come from: `ivf` or `exact`.
    pub fn index_kind(&self) -> &'static str {
        if self.approximate { "ivf" } else { "exact" }
    }

    /// The index recommendations come from.
    pub fn index(&self) -> &dyn Index {
        match (&self.artifact.approximate, self.approximate) {
            (Some(a), true) => &a.index,
            _ => &self.exact,
        }
    }

    /// The `k` best items for a query. An unknown user, or a history of unknown items only,
    /// gets the most popular items, flagged `cold_start`.
    pub fn recommend(&self, query: Query, request: &Request) -> Result<Recommendations> {
        if request.has_pipeline_options() {
            return Err(Error::Unsupported(crate::eval::PIPELINE_ONLY.into()));
        }
        let start = std::time::Instant::now();
        let mut recs = self.answer(query, request)?;
        if request.debug {
            let ms = start.elapsed().as_secs_f64() * 1e3;
            recs.timings = Some(Timings { retrieve_ms: ms, total_ms: ms, ..Timings::default() });
        }
        Ok(recs)
    }

    fn answer(&self, query: Query, request: &Request) -> Result<Recommendations> {
        let a = &self.artifact;
        if let (Query::User(user), QueryKind::Pairs) = (query, a.model.query_kind()) {
            // no query tower: the model scores every item for the user
            let row = a.query_vocab.get(user);
            let seen = row.filter(|_| request.exclude_seen).map_or(&[][..], |r| a.seen.of(r));
            let (exclude, allow) = self.filter_rows(seen, request);
            let filter = Filter { exclude: &exclude, allow: allow.as_deref() };
            let Some(r) = row else { return Ok(self.popular(request.k, &filter)) };
            let pairs: Vec<(u32, u32)> = (0..a.items.len() as u32).map(|i| (r, i)).collect();
            let hits = best_scores(&a.model.scores(&pairs)?, request.k, &filter);
            return Ok(Recommendations { items: self.describe(hits), cold_start: false, timings: None });
        }
        let resolved = self.resolve(query, request)?;
        let filter = Filter { exclude: &resolved.exclude, allow: resolved.allow.as_deref() };
        Ok(match &resolved.vector {
            None => self.popular(request.k, &filter),
            Some(q) => {
                let hits = self.describe(self.index().search(q, request.k + resolved.added.len(), &filter));
                Recommendations {
                    items: self.add_scores(hits, q, &resolved, request.k),
                    cold_start: false,
                    timings: None,
                }
            }
        })
    }

    /// What a store outside the model (e.g. a database of candidate embeddings) needs to answer
    /// a query: the query tower's output (none for a cold start) and the rows to leave out or
    /// keep to. Ranking models, which have no query tower, are refused.
    pub fn resolve(&self, query: Query, request: &Request) -> Result<Resolved> {
        let a = &self.artifact;
        match (query, a.model.query_kind()) {
            (Query::User(user), QueryKind::User | QueryKind::UserAtTime) => {
                let UserRows { row, exclude, allow } = self.user_rows(user, request);
                let vector =
                    row.map(|r| a.model.queries(&Queries::Users { rows: &[r], at: At::TrainingEnd })).transpose()?;
                Ok(Resolved { vector, exclude, allow, added: Vec::new() })
            }
            (Query::History(_), QueryKind::History) | (Query::User(_), QueryKind::History) => {
                let ModelSpec::Sequential(seq) = a.model.spec() else {
                    return Err(Error::Internal("a history model that is not sequential".into()));
                };
                let find = |ids: &mut dyn Iterator<Item = &String>| -> Vec<u32> {
                    ids.filter_map(|h| a.items.find(h)).filter(|&r| r > 0).collect()
                };
                // a user: their training history (and what they saw), then what they did since
                let (mut known, mut seen) = match query {
                    Query::History(history) => (find(&mut history.iter()), Vec::new()),
                    _ if a.query_vocab.num_keys() == 0 && request.recent.is_empty() => {
                        return Err(Error::Unsupported(
                            "this sequential model has no users (it was trained on sequences without ids): \
                             recommend from a history of items, or give the user's recent items"
                                .into(),
                        ));
                    }
                    Query::User(user) => match a.query_vocab.get(user) {
                        Some(r) => (a.histories.of(r).to_vec(), a.seen.of(r).to_vec()),
                        None => (Vec::new(), Vec::new()),
                    },
                };
                known.extend(find(&mut request.recent.iter()));
                seen.extend_from_slice(&known);
                seen.sort_unstable();
                seen.dedup();
                if !request.exclude_seen {
                    seen.clear();
                }
                let (exclude, allow) = self.filter_rows(&seen, request);
                if known.is_empty() {
                    return Ok(Resolved { vector: None, exclude, allow, added: Vec::new() });
                }
                let (mut contexts, mut mask) = (Vec::new(), Vec::new());
                crate::data::window(&known, seq.steps, &mut contexts, &mut mask);
                let q = a.model.queries(&Queries::Histories { contexts: &contexts, mask: &mask })?;
                let added = a.model.repeat_scores(&contexts, &mask);
                Ok(Resolved { vector: Some(q), exclude, allow, added })
            }
            (Query::User(_), QueryKind::Pairs) => Err(Error::Unsupported(
                "this ranking model has no query tower (it scores user-item pairs): serve it from its own index".into(),
            )),
            (Query::History(_), _) => {
                Err(Error::Unsupported("this is a user → item model: recommend for a user".into()))
            }
        }
    }

    /// The `k` items most similar to an item (cosine similarity of candidate embeddings), the
    /// item itself excluded.
    pub fn similar(&self, item: &str, request: &Request) -> Result<Vec<Recommendation>> {
        let a = &self.artifact;
        let row = a
            .items
            .rows
            .get(item)
            .copied()
            .ok_or_else(|| Error::NotFound(format!("item '{item}' is not in the model")))?;
        let index = self.similar.get_or_init(|| BruteForceIndex::new(a.candidates.clone(), a.dim(), Metric::Cosine));
        let (exclude, allow) = self.filter_rows(&[row], request);
        Ok(self.describe(index.search(
            index.vector(row),
            request.k,
            &Filter { exclude: &exclude, allow: allow.as_deref() },
        )))
    }

    /// Re-scores items for a user by predicted rating (rating and ranking models), best first;
    /// an unknown item id is an error.
    pub fn rank(&self, user: &str, items: &[String]) -> Result<Vec<Recommendation>> {
        let a = &self.artifact;
        let u = a.query_vocab.lookup(user);
        let rows = items
            .iter()
            .map(|id| {
                a.items.rows.get(id).copied().ok_or_else(|| Error::NotFound(format!("item '{id}' is not in the model")))
            })
            .collect::<Result<Vec<u32>>>()?;
        let pairs: Vec<(u32, u32)> = rows.iter().map(|&r| (u, r)).collect();
        let scores = a.model.scores(&pairs)?;
        let mut hits: Vec<Scored> = rows.iter().zip(scores).map(|(&id, score)| Scored { id, score }).collect();
        hits.sort_by(|a, b| b.score.total_cmp(&a.score).then(a.id.cmp(&b.id)));
        Ok(self.describe(hits))
    }

    /// A user's row, and the rows a request leaves out and keeps to.
    pub(crate) fn user_rows(&self, user: &str, request: &Request) -> UserRows {
        let a = &self.artifact;
        let row = a.query_vocab.get(user);
        let seen = row.filter(|_| request.exclude_seen).map_or(&[][..], |r| a.seen.of(r));
        let (exclude, allow) = self.filter_rows(seen, request);
        UserRows { row, exclude, allow }
    }

    /// The excluded rows (the OOV row, `seen` and the request's), sorted, and the allowed ones.
    fn filter_rows(&self, seen: &[u32], request: &Request) -> (Vec<u32>, Option<Vec<u32>>) {
        let rows = &self.artifact.items.rows;
        let mut exclude: Vec<u32> = std::iter::once(0)
            .chain(seen.iter().copied())
            .chain(request.exclude.iter().filter_map(|id| rows.get(id).copied()))
            .collect();
        exclude.sort_unstable();
        exclude.dedup();
        let allow = request.allow.as_ref().map(|ids| {
            let mut a: Vec<u32> = ids.iter().filter_map(|id| rows.get(id).copied()).collect();
            a.sort_unstable();
            a.dedup();
            a
        });
        (exclude, allow)
    }

    /// The `k` most popular items that pass `filter`, flagged `cold_start`.
    fn popular(&self, k: usize, filter: &Filter) -> Recommendations {
        Recommendations {
            items: self.describe(best_scores(&self.artifact.popularity, k, filter)),
            cold_start: true,
            timings: None,
        }
    }

    /// The `k` best of `items`, the best `k + resolved.added.len()` by dot product with `q`,
    /// once `resolved.added` is applied: each added row the filter keeps, found or not, is
    /// scored by its dot product plus its added score. (An item outside the added rows in the
    /// true top `k` has at most `k - 1` others and the added rows above it by dot product.)
    pub(crate) fn add_scores(
        &self,
        mut items: Vec<Recommendation>,
        q: &[f32],
        resolved: &Resolved,
        k: usize,
    ) -> Vec<Recommendation> {
        if !resolved.added.is_empty() {
            let a = &self.artifact;
            let filter = Filter { exclude: &resolved.exclude, allow: resolved.allow.as_deref() };
            let id = |row: u32| &a.items.ids[row as usize];
            items.retain(|r| resolved.added.iter().all(|&(row, _)| *id(row) != r.id));
            let d = a.dim();
            let kept = resolved.added.iter().filter(|&&(row, _)| !filter.skips(row));
            let scored: Vec<Scored> = kept
                .map(|&(row, plus)| {
                    let c = &a.candidates[row as usize * d..(row as usize + 1) * d];
                    Scored { id: row, score: crate::kernels::panel::exact_dot(q, c) + plus }
                })
                .collect();
            items.extend(self.describe(scored));
            items.sort_by(|x, y| y.score.total_cmp(&x.score));
        }
        items.truncate(k);
        items
    }

    fn describe(&self, hits: Vec<Scored>) -> Vec<Recommendation> {
        let items = &self.artifact.items;
        hits.into_iter()
            .map(|s| Recommendation {
                id: items.ids[s.id as usize].clone(),
                title: items.titles[s.id as usize].clone(),
                score: s.score,
            })
            .collect()
    }
}
