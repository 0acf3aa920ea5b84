//! A pipeline: a retriever finds `retrieve` candidates, a ranker reorders them, post-ranking
//! rules choose the answer. Not one model but two model directories and a file of settings:
//!
//! ```text
//! P/pipeline.toml   format, the retriever's and the ranker's directories (relative to this
//!                   file), the item attributes post-ranking reads, retrieve, [post] rules
//! P/retriever/      a model directory (any kind with a user tower)
//! P/ranker/         a model directory (a ranking model) of the same users and items
//! P/items.tsv       item attributes (id, then columns), when post-ranking needs them
//! ```
//! `towers train --task pipeline` writes such a directory; a `pipeline.toml` written by hand
//! can join any retriever and ranker trained on the same data.

use super::post::{ItemAttributes, Scene, post_rank};
use super::request::check_retrieve;
use super::{Query, Recommendation, Recommendations, Recommender, Request};
use crate::artifact::{Artifact, DirLock, Staging};
use crate::config::{PostOverrides, PostRanking};
use crate::data::features::AttributeTable;
use crate::index::{Filter, Scored, best_scores};
use crate::model::{At, Candidates, Queries, QueryKind, Retrieved, norms};
use crate::{Error, Result};
use serde::{Deserialize, Serialize};
use std::path::{Path, PathBuf};
use std::time::Instant;

/// The file that makes a directory a pipeline.
pub const PIPELINE_FILE: &str = "pipeline.toml";
/// The `format` of `pipeline.toml`.
pub const PIPELINE_FORMAT: &str = "towers-pipeline";
/// The version of `pipeline.toml` this build writes and reads.
pub const PIPELINE_FORMAT_VERSION: u32 = 1;
/// Candidates retrieved for the ranker by default.
pub const DEFAULT_RETRIEVE: usize = 100;

fn format_name() -> String {
    PIPELINE_FORMAT.into()
}
fn format_version() -> u32 {
    PIPELINE_FORMAT_VERSION
}
fn default_retrieve() -> usize {
    DEFAULT_RETRIEVE
}

/// `pipeline.toml`: every key is checked (unknown keys are errors).
///
/// ```toml
/// retriever = "retriever"          # model directories, relative to this file
/// ranker = "ranker"
/// attributes = "items.tsv"         # optional: item attributes for caps and dedupe
/// retrieve = 100                   # candidates handed to the ranker
/// [post]
/// diversity = 0.0                  # MMR λ in [0, 1]
/// caps = [{ attribute = "genres", max = 3 }]
/// exclude = ["1"]                  # item ids never returned
/// boost = ["50"]                   # item ids lifted by boost_weight
/// boost_weight = 0.1
/// dedupe = "title"                 # one item per value of this attribute
/// ```
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PipelineSettings {
    /// Always `towers-pipeline`.
    #[serde(default = "format_name")]
    pub format: String,
    /// The file's format version.
    #[serde(default = "format_version")]
    pub format_version: u32,
    /// The retriever's model directory.
    pub retriever: PathBuf,
    /// The ranker's model directory.
    pub ranker: PathBuf,
    /// An attribute table of the items (CSV/TSV, header, id first) for caps and dedupe.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub attributes: Option<PathBuf>,
    /// Candidates the retriever hands to the ranker.
    #[serde(default = "default_retrieve")]
    pub retrieve: usize,
    /// Post-ranking rules.
    #[serde(default)]
    pub post: PostRanking,
}

impl PipelineSettings {
    /// Settings for model directories `retriever` and `ranker`, retrieving 100, no rules.
    pub fn new(retriever: impl Into<PathBuf>, ranker: impl Into<PathBuf>) -> Self {
        PipelineSettings {
            format: format_name(),
            format_version: PIPELINE_FORMAT_VERSION,
            retriever: retriever.into(),
            ranker: ranker.into(),
            attributes: None,
            retrieve: DEFAULT_RETRIEVE,
            post: PostRanking::default(),
        }
    }

    /// Checks the values.
    pub fn validate(&self) -> Result<()> {
        if self.format != PIPELINE_FORMAT {
            return Err(Error::Config(format!("format: expected '{PIPELINE_FORMAT}', got '{}'", self.format)));
        }
        if self.format_version == 0 || self.format_version > PIPELINE_FORMAT_VERSION {
            return Err(Error::Config(format!(
                "format_version {} is not one this towers reads ({PIPELINE_FORMAT_VERSION}); upgrade towers",
                self.format_version
            )));
        }
        check_retrieve(self.retrieve)?;
        self.post.validate().map_err(|e| match e {
            Error::Config(m) => Error::Config(format!("post: {m}")),
            e => e,
        })
    }
}

/// How long each stage of one answer took, in milliseconds.
#[derive(Debug, Clone, Copy, Default, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct Timings {
    /// The query tower and top-`retrieve` search.
    pub retrieve_ms: f64,
    /// The ranker (its context features included).
    pub rank_ms: f64,
    /// The post-ranking rules.
    pub post_rank_ms: f64,
    /// The whole answer.
    pub total_ms: f64,
}

/// The stages' outputs for one user, as item rows (what evaluation reads).
#[derive(Debug, Clone, PartialEq)]
pub struct Staged {
    /// The retriever's candidates, best first.
    pub retrieved: Vec<Scored>,
    /// The answer after ranking and post-ranking, best first (ranker scores).
    pub answer: Vec<Scored>,
    /// True when the user is unknown: the answer is the most popular items.
    pub cold_start: bool,
    /// Per stage.
    pub timings: Timings,
}

/// A retriever, a ranker of the same users and items, and post-ranking rules; trained by
/// [`Trainer::pipeline`](crate::Trainer::pipeline), served (like any model) by [`Served`](crate::Served).
///
/// ```no_run
/// # fn main() -> towers::Result<()> {
/// use towers::{Query, Request, Served};
/// let p = Served::load("/tmp/p")?; // a pipeline directory (pipeline.toml, retriever/, ranker/)
/// let mut request = Request::top(10).exclude_seen(true);
/// request.post.diversity = Some(0.3); // the MMR λ, instead of the pipeline's own
/// let recs = p.recommend(Query::User("42"), &request)?;
/// # let _ = recs; Ok(()) }
/// ```
#[derive(Debug)]
pub struct Pipeline {
    retriever: Recommender,
    ranker: Artifact,
    settings: PipelineSettings,
    table: Option<AttributeTable>,
    attributes: ItemAttributes,
    /// The L2 norm of each of the retriever's candidate embeddings (the ranker's history
    /// similarity reads them).
    norms: Vec<f32>,
}

/// Whether `path` is a pipeline: a directory holding `pipeline.toml`, or a `.toml` file
/// (a pipeline composed by hand).
pub(crate) fn is_pipeline(path: impl AsRef<Path>) -> bool {
    let path = path.as_ref();
    path.join(PIPELINE_FILE).is_file() || (path.is_file() && path.extension().is_some_and(|e| e == "toml"))
}

fn in_file(file: &Path, e: Error) -> Error {
    match e {
        Error::Config(m) => Error::Config(format!("{}: {m}", file.display())),
        e => e,
    }
}

impl Pipeline {
    /// Joins a retriever and a ranker: they must know the same users and items, in the same
    /// rows; `attributes` must hold every attribute the rules name.
    pub fn new(
        retriever: Artifact,
        ranker: Artifact,
        settings: PipelineSettings,
        attributes: Option<AttributeTable>,
    ) -> Result<Pipeline> {
        settings.validate()?;
        if matches!(retriever.model.query_kind(), QueryKind::Pairs | QueryKind::History) {
            return Err(Error::Config(format!(
                "retriever: a {} model cannot retrieve for a user (train a retrieval, feature or multitask model)",
                retriever.model.spec().kind()
            )));
        }
        if ranker.model.query_kind() != QueryKind::Pairs {
            return Err(Error::Config(format!(
                "ranker: a {} model does not rank pairs (`task` ranking)",
                ranker.model.spec().kind()
            )));
        }
        if ranker.items.ids != retriever.items.ids {
            let first = (0..ranker.items.len().max(retriever.items.len()))
                .find(|&r| ranker.items.ids.get(r) != retriever.items.ids.get(r))
                .unwrap_or(0);
            return Err(Error::Config(format!(
                "ranker: trained on another catalogue than the retriever ({} items against {}; row {first}: '{}' \
                 against '{}'): train both on the same data and catalogue",
                ranker.items.len() - 1,
                retriever.items.len() - 1,
                ranker.items.ids.get(first).map_or("", String::as_str),
                retriever.items.ids.get(first).map_or("", String::as_str),
            )));
        }
        if !ranker.query_vocab.iter().eq(retriever.query_vocab.iter()) {
            return Err(Error::Config(format!(
                "ranker: trained on another user vocabulary than the retriever ({} users against {}): train both \
                 on the same data",
                ranker.query_vocab.num_keys(),
                retriever.query_vocab.num_keys()
            )));
        }
        let attrs = ItemAttributes::new(&retriever.items, attributes.as_ref());
        attrs.check(&settings.post).map_err(|e| match e {
            Error::Config(m) => Error::Config(format!("post: {m}")),
            e => e,
        })?;
        let norms = norms(&retriever.candidates, retriever.dim());
        Ok(Pipeline {
            retriever: Recommender::new(retriever),
            ranker,
            settings,
            table: attributes,
            attributes: attrs,
            norms,
        })
    }

    /// Reads a pipeline directory (or its `pipeline.toml`): the file, both model directories,
    /// the attributes; every error names the file and the key.
    pub fn load(path: impl AsRef<Path>) -> Result<Pipeline> {
        let path = path.as_ref();
        let file = if path.is_dir() { path.join(PIPELINE_FILE) } else { path.to_path_buf() };
        let settings: PipelineSettings = crate::data::text::read_toml(&file)?;
        settings.validate().map_err(|e| in_file(&file, e))?;
        let base = file.parent().unwrap_or(Path::new("."));
        let model = |key: &str, dir: &Path| {
            let dir = base.join(dir);
            Artifact::load(&dir).map_err(|e| Error::artifact(&file, format!("{key} = '{}': {e}", dir.display())))
        };
        let retriever = model("retriever", &settings.retriever)?;
        let ranker = model("ranker", &settings.ranker)?;
        let table = match &settings.attributes {
            Some(a) => Some(
                AttributeTable::read(base.join(a))
                    .map_err(|e| Error::Config(format!("{}: attributes = '{}': {e}", file.display(), a.display())))?,
            ),
            None => None,
        };
        Pipeline::new(retriever, ranker, settings, table).map_err(|e| in_file(&file, e))
    }

    /// Writes the pipeline into `dir` (replaced atomically, under the directory's lock, if it is
    /// a pipeline or model directory or empty): both model directories, the attributes,
    /// `pipeline.toml` pointing at them.
    pub fn save(&self, dir: impl AsRef<Path>) -> Result<()> {
        self.save_locked(&DirLock::acquire(dir)?)
    }

    /// [`Pipeline::save`] into a directory whose lock the caller holds.
    pub fn save_locked(&self, lock: &DirLock) -> Result<()> {
        let mut staging = Staging::new(lock)?;
        let tmp = staging.path().to_path_buf();
        self.retriever.artifact().save(tmp.join("retriever"))?;
        self.ranker.save(tmp.join("ranker"))?;
        let mut settings =
            PipelineSettings { retriever: "retriever".into(), ranker: "ranker".into(), ..self.settings.clone() };
        settings.attributes = None;
        if let Some(t) = &self.table {
            staging.add("items.tsv", &table_tsv(t)?)?;
            settings.attributes = Some("items.tsv".into());
        }
        let text = toml::to_string(&settings).map_err(Error::internal)?;
        staging.add(PIPELINE_FILE, text.as_bytes())?;
        staging.commit_dir()
    }

    /// Retrieves from the exact index even when the retriever holds an approximate one.
    pub fn exact(self) -> Self {
        Pipeline { retriever: self.retriever.exact(), ..self }
    }

    /// Re-scores items for a user with the ranker (its context features computed from the
    /// retriever's scores of these items), best first; an unknown item id is an error.
    pub fn rank(&self, user: &str, items: &[String]) -> Result<Vec<Recommendation>> {
        let a = self.retriever.artifact();
        let rows = items
            .iter()
            .map(|id| {
                a.items.rows.get(id).copied().ok_or_else(|| Error::NotFound(format!("item '{id}' is not in the model")))
            })
            .collect::<Result<Vec<u32>>>()?;
        let user = a.query_vocab.lookup(user);
        let q = a.model.queries(&Queries::Users { rows: &[user], at: At::TrainingEnd })?;
        let d = a.dim();
        let scores: Vec<f32> = rows
            .iter()
            .map(|&r| crate::kernels::softmax::dot(&q, &a.candidates[r as usize * d..][..d]) as f32)
            .collect();
        let ranked = self.ranker.model.score(&Candidates {
            user,
            items: &rows,
            history: self.ranker.seen.of(user),
            retrieved: Some(Retrieved { scores: &scores, embeddings: &a.candidates, dim: d, norms: Some(&self.norms) }),
        })?;
        let mut hits: Vec<Scored> = rows.iter().zip(ranked).map(|(&id, score)| Scored { id, score }).collect();
        hits.sort_by(|a, b| b.score.total_cmp(&a.score).then(a.id.cmp(&b.id)));
        Ok(self.describe(&hits))
    }

    /// The retrieval stage.
    pub fn retriever(&self) -> &Recommender {
        &self.retriever
    }

    /// The ranking stage's model.
    pub fn ranker(&self) -> &Artifact {
        &self.ranker
    }

    /// Its settings.
    pub fn settings(&self) -> &PipelineSettings {
        &self.settings
    }

    /// The item attributes post-ranking reads.
    pub fn attributes(&self) -> &ItemAttributes {
        &self.attributes
    }

    /// Recommendations for a user: the retriever's `retrieve` best (the request's exclusions
    /// and the rules' applied), reordered by the ranker, then post-ranked; the request's
    /// post-ranking overrides and `retrieve` are merged with the pipeline's here, once. An
    /// unknown user gets the most popular items. With `request.debug`, the stages' timings.
    pub fn recommend(&self, query: Query, request: &Request) -> Result<Recommendations> {
        let start = Instant::now();
        let Query::User(user) = query else {
            return Err(Error::Unsupported("a pipeline recommends for a user, not for a history of items".into()));
        };
        let post = request.post.merged(&self.settings.post, &[])?;
        self.check_post(&post)?;
        let retrieve = check_retrieve(request.retrieve.unwrap_or(self.settings.retrieve))?;
        let wide = Request {
            k: retrieve.max(request.k),
            exclude: request.exclude.iter().chain(&post.exclude).cloned().collect(),
            post: PostOverrides::default(),
            retrieve: None,
            ..request.clone()
        };
        let super::UserRows { row, exclude, allow } = self.retriever.user_rows(user, &wide);
        let filter = Filter { exclude: &exclude, allow: allow.as_deref() };
        let staged = self.stages(row, &filter, wide.k, request.k, &post)?;
        let items = self.describe(&staged.answer);
        let mut timings = staged.timings;
        timings.total_ms = ms(start);
        Ok(Recommendations { items, cold_start: staged.cold_start, timings: request.debug.then_some(timings) })
    }

    /// Checks that merged rules name only attributes this pipeline has.
    pub(crate) fn check_post(&self, post: &PostRanking) -> Result<()> {
        self.attributes.check(post)
    }

    /// The stages for a user row (none: a cold start), with the rows `filter` allows:
    /// `retrieve` candidates, ranked, post-ranked down to `k`.
    pub fn stages(
        &self,
        user: Option<u32>,
        filter: &Filter,
        retrieve: usize,
        k: usize,
        post: &PostRanking,
    ) -> Result<Staged> {
        let t0 = Instant::now();
        let a = self.retriever.artifact();
        let Some(row) = user else {
            let popular = best_scores(&a.popularity, k, filter);
            let timings = Timings { retrieve_ms: ms(t0), ..Timings::default() };
            return Ok(Staged { retrieved: popular.clone(), answer: popular, cold_start: true, timings });
        };
        let q = a.model.queries(&Queries::Users { rows: &[row], at: At::TrainingEnd })?;
        let retrieved = self.retriever.index().search(&q, retrieve, filter);
        let t1 = Instant::now();
        let items: Vec<u32> = retrieved.iter().map(|s| s.id).collect();
        let scores: Vec<f32> = retrieved.iter().map(|s| s.score).collect();
        let ranked = self.ranker.model.score(&Candidates {
            user: row,
            items: &items,
            history: self.ranker.seen.of(row),
            retrieved: Some(Retrieved {
                scores: &scores,
                embeddings: &a.candidates,
                dim: a.dim(),
                norms: Some(&self.norms),
            }),
        })?;
        let ranked: Vec<Scored> = items.iter().zip(ranked).map(|(&id, score)| Scored { id, score }).collect();
        let t2 = Instant::now();
        let boost = self.rows(&post.boost);
        let scene = Scene { embeddings: &a.candidates, dim: a.dim(), attributes: &self.attributes, boost: &boost };
        let answer = post_rank(&ranked, k, post, &scene)?;
        let timings = Timings {
            retrieve_ms: (t1 - t0).as_secs_f64() * 1e3,
            rank_ms: (t2 - t1).as_secs_f64() * 1e3,
            post_rank_ms: ms(t2),
            total_ms: ms(t0),
        };
        Ok(Staged { retrieved, answer, cold_start: false, timings })
    }

    /// Item rows of ids (unknown ids ignored), sorted.
    fn rows(&self, ids: &[String]) -> Vec<u32> {
        let rows = &self.retriever.artifact().items.rows;
        let mut v: Vec<u32> = ids.iter().filter_map(|id| rows.get(id).copied()).collect();
        v.sort_unstable();
        v.dedup();
        v
    }

    fn describe(&self, hits: &[Scored]) -> Vec<Recommendation> {
        let items = &self.retriever.artifact().items;
        hits.iter()
            .map(|s| Recommendation {
                id: items.ids[s.id as usize].clone(),
                title: items.titles[s.id as usize].clone(),
                score: s.score,
            })
            .collect()
    }
}

fn ms(since: Instant) -> f64 {
    since.elapsed().as_secs_f64() * 1e3
}

/// Writes an attribute table as TSV (id, then its columns), rows sorted by id.
fn table_tsv(t: &AttributeTable) -> Result<Vec<u8>> {
    let mut w =
        csv::WriterBuilder::new().delimiter(b'\t').quote_style(csv::QuoteStyle::Necessary).from_writer(Vec::new());
    let header: Vec<&str> = std::iter::once("id").chain(t.columns.iter().map(String::as_str)).collect();
    w.write_record(&header).map_err(Error::internal)?;
    let mut ids: Vec<&String> = t.rows.keys().collect();
    ids.sort();
    for id in ids {
        let rec: Vec<&str> = std::iter::once(id.as_str()).chain(t.rows[id].iter().map(String::as_str)).collect();
        w.write_record(&rec).map_err(Error::internal)?;
    }
    w.into_inner().map_err(Error::internal)
}
