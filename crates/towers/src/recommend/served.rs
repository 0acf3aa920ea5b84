//! [`Served`]: one type for any model directory — a single model or a pipeline — loaded,
//! queried, evaluated and described the same way. The CLI, the HTTP server and the Python
//! package hold a `Served` and never ask which of the two it is.

use super::pipeline::{PIPELINE_FILE, is_pipeline};
use super::request::check_k;
use super::store::CandidateStore;
use super::{Pipeline, PipelineEvaluation, Query, Recommendation, Recommendations, Recommender, Request, Resolved};
use crate::artifact::{Artifact, DirLock, FORMAT_VERSION, TrainSummary};
use crate::config::{PostRanking, TrainConfig};
use crate::data::{Data, InputFormat, Interactions, OwnedData, TableFormat};
use crate::eval::{EvalOptions, Evaluation, evaluate};
use crate::model::ModelSpec;
use crate::{Error, Result};
use serde::Serialize;
use std::path::Path;
use std::sync::Arc;
use std::time::UNIX_EPOCH;

/// A model directory ready to answer: a single model, or a pipeline (retriever → ranker →
/// post-ranking).
///
/// ```no_run
/// # fn main() -> towers::Result<()> {
/// use towers::eval::EvalOptions;
/// use towers::{Query, Request, Served};
/// let served = Served::load("/tmp/towers-model")?;          // a model or a pipeline directory
/// let recs = served.recommend(Query::User("42"), &Request::top(10).exclude_seen(true))?;
/// let test = served.read_test("test.tsv", None, &Default::default())?;
/// println!("{}", served.evaluate(&test, &EvalOptions::new().exclude_seen(true))?);
/// println!("{}", serde_json::to_string(&served.describe()).unwrap());
/// # Ok(()) }
/// ```
#[derive(Debug)]
pub struct Served {
    inner: Inner,
    version: String,
    saved_at: Option<u64>,
    /// Where a single model's top k comes from when not its own index.
    store: Option<Arc<dyn CandidateStore>>,
}

#[derive(Debug)]
enum Inner {
    Model(Box<Recommender>),
    Pipeline(Box<Pipeline>),
}

/// An evaluation of a model or of a pipeline; keys as in the CLI's `evaluate --json`. Its
/// `Display` is the CLI's table.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(untagged)]
pub enum Report {
    /// A single model, beside its baselines.
    Model(Evaluation),
    /// A pipeline's answers, beside its retriever's own order.
    Pipeline(PipelineEvaluation),
}

/// What a model directory is (`/v1/model`, Python's `repr` and `describe()`).
#[derive(Debug, Clone, PartialEq, Serialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct Description {
    /// The model kind (`retrieval`, `sequential`, …) or `pipeline`.
    pub kind: String,
    /// The model directory format this build writes.
    pub format_version: u32,
    /// Embedding width (a pipeline's retriever's).
    pub dim: usize,
    /// Users known (without the unknown row).
    pub users: usize,
    /// Candidate items (without the unknown row).
    pub items: usize,
    /// `exact`, `ivf` when answers come from the model's approximate index, or the kind of the
    /// store outside the process they come from (`postgres`).
    pub index: &'static str,
    /// What identifies this version: see [`Artifact::version`] (a pipeline: its two models').
    pub version: String,
    /// When the directory was written (Unix seconds), if the file system says.
    pub saved_at: Option<u64>,
    /// The training configuration (a pipeline's retriever's).
    #[cfg_attr(feature = "openapi", schema(value_type = Object))]
    pub config: TrainConfig,
    /// Training figures (a pipeline's retriever's).
    #[cfg_attr(feature = "openapi", schema(value_type = Object))]
    pub training: TrainSummary,
    /// Pipelines: the two stages and the rules.
    #[serde(skip_serializing_if = "Option::is_none")]
    #[cfg_attr(feature = "openapi", schema(value_type = Option<Object>))]
    pub pipeline: Option<PipelineDescription>,
}

/// The stages and rules of a served pipeline.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct PipelineDescription {
    /// The retriever's kind.
    pub retriever: String,
    /// The ranker's kind.
    pub ranker: String,
    /// Candidates retrieved for the ranker.
    pub retrieve: usize,
    /// The post-ranking rules served by default.
    pub post: PostRanking,
    /// The item attributes post-ranking can read (caps, dedupe), `title` included.
    pub attributes: Vec<String>,
}

fn modified(path: &Path) -> Option<u64> {
    let t = std::fs::metadata(path).and_then(|m| m.modified()).ok()?;
    t.duration_since(UNIX_EPOCH).ok().map(|d| d.as_secs())
}

impl From<Artifact> for Served {
    fn from(artifact: Artifact) -> Self {
        let version = artifact.version();
        Served { version, saved_at: None, inner: Inner::Model(Box::new(Recommender::new(artifact))), store: None }
    }
}

impl From<Pipeline> for Served {
    fn from(p: Pipeline) -> Self {
        let version = format!("{}+{}", p.retriever().artifact().version(), p.ranker().version());
        Served { version, saved_at: None, inner: Inner::Pipeline(Box::new(p)), store: None }
    }
}

impl Served {
    /// Loads a model directory, a pipeline directory, or a pipeline's `pipeline.toml`; every
    /// checksum and invariant is checked first.
    pub fn load(path: impl AsRef<Path>) -> Result<Served> {
        let path = path.as_ref();
        if is_pipeline(path) {
            let file = if path.is_dir() { path.join(PIPELINE_FILE) } else { path.to_path_buf() };
            return Ok(Served { saved_at: modified(&file), ..Served::from(Pipeline::load(path)?) });
        }
        let artifact = Artifact::load(path)?;
        Ok(Served { saved_at: modified(&path.join("manifest.json")), ..Served::from(artifact) })
    }

    /// Answers from the exact index even when the model (a pipeline: its retriever) holds an
    /// approximate one.
    pub fn exact(self) -> Self {
        let inner = match self.inner {
            Inner::Model(r) => Inner::Model(Box::new(r.exact())),
            Inner::Pipeline(p) => Inner::Pipeline(Box::new(p.exact())),
        };
        Served { inner, ..self }
    }

    /// Whether the model knows an item id.
    pub fn has_item(&self, id: &str) -> bool {
        self.retriever().artifact().items.rows.contains_key(id)
    }

    /// The single model, or the pipeline's retriever: its embeddings, its index, its users
    /// and items (what a store outside the process and `similar` read).
    pub fn retriever(&self) -> &Recommender {
        match &self.inner {
            Inner::Model(r) => r,
            Inner::Pipeline(p) => p.retriever(),
        }
    }

    /// A pipeline's ranker; `None` for a single model.
    pub fn ranker(&self) -> Option<&Artifact> {
        self.pipeline().map(Pipeline::ranker)
    }

    /// Answers single-model queries from `store` (the query tower runs here, the store finds
    /// the top k); a pipeline, which answers from its own retriever and ranker, refuses.
    pub fn with_store(mut self, store: Arc<dyn CandidateStore>) -> Result<Self> {
        self.check_external_store()?;
        self.store = Some(store);
        Ok(self)
    }

    /// The store answering for this model, if any.
    pub fn store(&self) -> Option<&dyn CandidateStore> {
        self.store.as_deref()
    }

    /// The `request.k` best items for a query (the request checked once, here). An unknown
    /// user gets the most popular items, flagged `cold_start`. With a store, this waits for its
    /// answer ([`Served::answer`] is the same without waiting).
    pub fn recommend(&self, query: Query, request: &Request) -> Result<Recommendations> {
        match &self.store {
            Some(_) => pollster::block_on(self.answer(query, request)),
            None => self.answer_here(query, request),
        }
    }

    /// [`Served::recommend`], for callers that run an async runtime (the server): a store's
    /// search is awaited, not waited for.
    pub async fn answer(&self, query: Query<'_>, request: &Request) -> Result<Recommendations> {
        let Some(store) = &self.store else { return self.answer_here(query, request) };
        if request.allow.is_some() {
            return Err(Error::Unsupported(format!("allow lists are not supported with the {} store", store.kind())));
        }
        let resolved = self.resolve(query, request)?;
        let ids = &self.retriever().artifact().items.ids;
        let exclude: Vec<String> =
            resolved.exclude.iter().filter(|&&r| r > 0).filter_map(|&r| ids.get(r as usize).cloned()).collect();
        let (items, cold_start) = match &resolved.vector {
            None => (store.popular(request.k, &exclude).await?, true),
            Some(q) => {
                let found = store.search(q, request.k + resolved.added.len(), &exclude).await?;
                (self.retriever().add_scores(found, q, &resolved, request.k), false)
            }
        };
        Ok(Recommendations { items, cold_start, timings: None })
    }

    fn answer_here(&self, query: Query, request: &Request) -> Result<Recommendations> {
        request.validate()?;
        match &self.inner {
            Inner::Model(r) => r.recommend(query, request),
            Inner::Pipeline(p) => p.recommend(query, request),
        }
    }

    /// What a store outside the process needs to answer a query (see
    /// [`Recommender::resolve`]); a pipeline answers from its own retriever and ranker only.
    pub fn resolve(&self, query: Query, request: &Request) -> Result<Resolved> {
        request.validate()?;
        self.check_external_store()?;
        if request.has_pipeline_options() {
            return Err(Error::Unsupported(crate::eval::PIPELINE_ONLY.into()));
        }
        self.retriever().resolve(query, request)
    }

    /// Whether a store outside the process can answer for this: a single model's queries, not
    /// a pipeline's (it answers from its retriever's own index and its ranker).
    pub fn check_external_store(&self) -> Result<()> {
        match &self.inner {
            Inner::Model(_) => Ok(()),
            Inner::Pipeline(_) => Err(Error::Config(
                "a pipeline serves from its retriever's own index; an external store is for a single model".into(),
            )),
        }
    }

    /// The `request.k` items most similar to an item (cosine of the candidate embeddings; a
    /// pipeline's retriever's), the item itself left out.
    pub fn similar(&self, item: &str, request: &Request) -> Result<Recommendations> {
        request.validate()?;
        if request.has_pipeline_options() {
            return Err(Error::Unsupported("similar items take no post-ranking options".into()));
        }
        let items = self.retriever().similar(item, request)?;
        Ok(Recommendations { items, cold_start: false, timings: None })
    }

    /// Re-scores items for a user, best first: a rating or ranking model's predictions, a
    /// pipeline's ranker's.
    pub fn rank(&self, user: &str, items: &[String]) -> Result<Vec<Recommendation>> {
        match &self.inner {
            Inner::Model(r) => r.rank(user, items),
            Inner::Pipeline(p) => p.rank(user, items),
        }
    }

    /// Two stages joined by the caller: `retriever` finds `candidates` items for the user (the
    /// request's exclusions applied), this model re-scores them ([`Served::rank`]), and the
    /// best `request.k` are kept. An unknown user gets the retriever's popular items.
    pub fn rerank(
        &self,
        retriever: &Served,
        user: &str,
        candidates: usize,
        request: &Request,
    ) -> Result<Recommendations> {
        request.validate()?;
        let wide = Request { k: check_k(candidates)?.max(request.k), ..request.clone() };
        let retrieved = retriever.recommend(Query::User(user), &wide)?;
        if retrieved.cold_start {
            let items = retrieved.items.into_iter().take(request.k).collect();
            return Ok(Recommendations { items, cold_start: true, timings: None });
        }
        let ids: Vec<String> = retrieved.items.into_iter().map(|r| r.id).collect();
        let mut items = self.rank(user, &ids)?;
        items.truncate(request.k);
        Ok(Recommendations { items, cold_start: false, timings: None })
    }

    /// Evaluates on test data: a model beside its baselines, a pipeline's answers beside its
    /// retriever's order. Post-ranking options are refused by a single model.
    pub fn evaluate<'a>(&self, test: impl Into<Data<'a>>, options: &EvalOptions) -> Result<Report> {
        let test = test.into();
        match (&self.inner, test) {
            (Inner::Model(r), _) => Ok(Report::Model(evaluate(r.artifact(), test, options)?)),
            (Inner::Pipeline(p), Data::Interactions(t)) => Ok(Report::Pipeline(p.evaluate(t, options)?)),
            (Inner::Pipeline(_), Data::Sequences(_)) => {
                Err(Error::Config("a pipeline is evaluated on an interaction table, not on sequences".into()))
            }
        }
    }

    /// Reads test data for this model: a sequential model's sequences in `format` (default: the
    /// layout it was trained on), an interaction table for the others.
    pub fn read_test(
        &self,
        path: impl AsRef<Path>,
        format: Option<InputFormat>,
        table: &TableFormat,
    ) -> Result<OwnedData> {
        let path = path.as_ref();
        match self.sequence_format() {
            Some(own) => Ok(OwnedData::Sequences(Box::new(format.unwrap_or(own).read_test_sequences(path, table)?))),
            None if format.is_some_and(|f| f != InputFormat::Interactions) => Err(Error::Config(
                "test_format is for sequential models: this model is tested on an interaction table".into(),
            )),
            None => Ok(OwnedData::Interactions(Box::new(Interactions::read(path, table)?))),
        }
    }

    /// Writes the directory again (atomically, under its lock): a model directory or a
    /// pipeline directory.
    pub fn save(&self, dir: impl AsRef<Path>) -> Result<()> {
        match &self.inner {
            Inner::Model(r) => r.artifact().save(dir),
            Inner::Pipeline(p) => p.save(dir),
        }
    }

    /// [`Served::save`] into a directory whose lock the caller holds (taken before training,
    /// so that a second writer fails at once).
    pub fn save_locked(&self, lock: &DirLock) -> Result<()> {
        match &self.inner {
            Inner::Model(r) => r.artifact().save_locked(lock),
            Inner::Pipeline(p) => p.save_locked(lock),
        }
    }

    /// Whether this is a pipeline (its answers come from its own stages, one user at a time).
    pub(crate) fn pipeline(&self) -> Option<&Pipeline> {
        match &self.inner {
            Inner::Pipeline(p) => Some(p),
            Inner::Model(_) => None,
        }
    }

    pub(crate) fn is_pipeline(&self) -> bool {
        matches!(self.inner, Inner::Pipeline(_))
    }

    /// What identifies the version answering.
    pub fn version(&self) -> &str {
        &self.version
    }

    /// The layout of a sequential model's training file, its test files' default; `None` for
    /// models and pipelines tested on an interaction table.
    pub fn sequence_format(&self) -> Option<InputFormat> {
        match (&self.inner, self.retriever().artifact().model.spec()) {
            (Inner::Model(_), ModelSpec::Sequential(seq)) => Some(seq.format),
            _ => None,
        }
    }

    /// What this is: kind, sizes, index, version, configuration, training figures, and a
    /// pipeline's stages and rules.
    pub fn describe(&self) -> Description {
        let r = self.retriever();
        let a = r.artifact();
        let (kind, pipeline) = match &self.inner {
            Inner::Model(_) => (a.model.spec().kind().to_string(), None),
            Inner::Pipeline(p) => (
                "pipeline".to_string(),
                Some(PipelineDescription {
                    retriever: a.model.spec().kind().to_string(),
                    ranker: p.ranker().model.spec().kind().to_string(),
                    retrieve: p.settings().retrieve,
                    post: p.settings().post.clone(),
                    attributes: p.attributes().columns().to_vec(),
                }),
            ),
        };
        Description {
            kind,
            format_version: FORMAT_VERSION,
            dim: a.dim(),
            users: a.query_vocab.num_keys(),
            items: a.items.len().saturating_sub(1),
            index: self.store.as_ref().map_or_else(|| r.index_kind(), |s| s.kind()),
            version: self.version.clone(),
            saved_at: self.saved_at,
            config: a.config.clone(),
            training: a.summary.clone(),
            pipeline,
        }
    }
}

impl std::fmt::Display for Description {
    /// `Model(kind='retrieval', users=943, items=1682, dim=32)`, or
    /// `Pipeline(retriever='retrieval', users=…, items=…, retrieve=100, diversity=0)`.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match &self.pipeline {
            None => {
                write!(f, "Model(kind='{}', users={}, items={}, dim={})", self.kind, self.users, self.items, self.dim)
            }
            Some(p) => write!(
                f,
                "Pipeline(retriever='{}', users={}, items={}, retrieve={}, diversity={})",
                p.retriever, self.users, self.items, p.retrieve, p.post.diversity
            ),
        }
    }
}
