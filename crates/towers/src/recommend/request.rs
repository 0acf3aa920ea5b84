//! [`Request`]: what a caller asks of any model directory, and its rules — the defaults, the
//! largest `k`, the checks — the same for the CLI, HTTP and Python, which read it from their own
//! spelling (flags, a query string or JSON body, keywords) and never check it themselves.

use crate::config::post::{caps, ids, lenient};
use crate::config::{Cap, PostOverrides};
use crate::{Error, Result};
use serde::{Deserialize, Serialize};

/// Items returned when a request does not say.
pub const DEFAULT_K: usize = 10;
/// The largest `k` a request may ask for.
pub const MAX_K: usize = 100_000;
/// The most candidates a pipeline may retrieve for its ranker.
pub const MAX_RETRIEVE: usize = 10_000;

/// What to return: how many items, which may appear, and, for pipelines, changes to the
/// post-ranking rules and the number of candidates to retrieve. Seen items are kept unless
/// `exclude_seen` (the default everywhere: `false`).
///
/// ```
/// use towers::recommend::Request;
/// let r = Request::top(10).exclude_seen(true).exclude(["50".to_string()]);
/// assert_eq!(r.k, 10);
/// assert!(r.validate().is_ok());
/// // the same from JSON, as HTTP and Python send it
/// let j: Request = serde_json::from_str(r#"{"k": 10, "exclude_seen": true, "exclude": "50"}"#).unwrap();
/// assert_eq!(j, r);
/// assert!(Request::top(0).validate().is_err());
/// ```
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(try_from = "RequestFields")]
pub struct Request {
    /// Number of items, `1..=MAX_K` (default [`DEFAULT_K`]).
    pub k: usize,
    /// Leave out the user's training items (sequential models: the history's items).
    pub exclude_seen: bool,
    /// Item ids never returned (unknown ids are ignored).
    pub exclude: Vec<String>,
    /// If given, the only item ids that may be returned.
    pub allow: Option<Vec<String>>,
    /// Pipelines: changes to the post-ranking rules, merged with the pipeline's own.
    pub post: PostOverrides,
    /// Pipelines: candidates to retrieve for the ranker instead of the pipeline's number.
    pub retrieve: Option<usize>,
    /// Add the time each stage took to the answer.
    pub debug: bool,
    /// Items the user interacted with since training, oldest first: a sequential model
    /// recommends for a user from their training history followed by these (the server's live
    /// events); with `exclude_seen` they are left out too.
    pub recent: Vec<String>,
}

/// The most recent items a request may carry.
pub const MAX_RECENT: usize = 1000;

impl Default for Request {
    fn default() -> Self {
        Request {
            k: DEFAULT_K,
            exclude_seen: false,
            exclude: Vec::new(),
            allow: None,
            post: PostOverrides::default(),
            retrieve: None,
            debug: false,
            recent: Vec::new(),
        }
    }
}

impl Request {
    /// The `k` best items.
    pub fn top(k: usize) -> Self {
        Request { k, ..Default::default() }
    }

    /// Leave out what the user has seen.
    pub fn exclude_seen(mut self, on: bool) -> Self {
        self.exclude_seen = on;
        self
    }

    /// Never return these item ids.
    pub fn exclude(mut self, ids: impl IntoIterator<Item = String>) -> Self {
        self.exclude.extend(ids);
        self
    }

    /// Return only these item ids.
    pub fn allow(mut self, ids: impl IntoIterator<Item = String>) -> Self {
        self.allow = Some(ids.into_iter().collect());
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

    /// Add the time each stage took.
    pub fn debug(mut self, on: bool) -> Self {
        self.debug = on;
        self
    }

    /// Items the user interacted with since training, oldest first (appended to what the
    /// request had).
    pub fn recent(mut self, ids: impl IntoIterator<Item = String>) -> Self {
        self.recent.extend(ids);
        self
    }

    /// Checks every value: `k` in `1..=MAX_K`, `retrieve` in `1..=MAX_RETRIEVE`, the
    /// post-ranking overrides' ranges.
    pub fn validate(&self) -> Result<()> {
        check_k(self.k)?;
        if self.recent.len() > MAX_RECENT {
            return Err(Error::Config(format!("recent: at most {MAX_RECENT} items, got {}", self.recent.len())));
        }
        if let Some(r) = self.retrieve {
            check_retrieve(r)?;
        }
        self.post.validate()
    }

    /// Whether the request names an option only pipelines take.
    pub fn has_pipeline_options(&self) -> bool {
        !self.post.is_empty() || self.retrieve.is_some()
    }
}

/// Checks a number of items.
pub fn check_k(k: usize) -> Result<usize> {
    match k {
        1..=MAX_K => Ok(k),
        _ => Err(Error::Config(format!("k must be in 1..={MAX_K}, got {k}"))),
    }
}

/// Checks a number of candidates to retrieve.
pub fn check_retrieve(n: usize) -> Result<usize> {
    match n {
        1..=MAX_RETRIEVE => Ok(n),
        _ => Err(Error::Config(format!("retrieve must be in 1..={MAX_RETRIEVE}, got {n}"))),
    }
}

/// [`Request`] as read from a query string, a JSON body or Python keywords: every key known,
/// lists as JSON lists or comma-separated text, numbers as numbers or text. The values are
/// checked by [`Request::validate`] where the request is answered. Its schema (feature
/// `openapi`) is the HTTP API's.
#[derive(Default, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema, utoipa::IntoParams))]
#[cfg_attr(feature = "openapi", into_params(parameter_in = Query))]
#[serde(default, deny_unknown_fields)]
pub struct RequestFields {
    /// Number of items, 1 to 100000 (default 10).
    #[serde(deserialize_with = "lenient")]
    k: Option<usize>,
    /// Leave out the user's training items (sequential models: the history's items).
    #[serde(deserialize_with = "lenient")]
    exclude_seen: Option<bool>,
    /// Item ids never returned (a list, or comma-separated text).
    #[serde(deserialize_with = "ids")]
    exclude: Option<Vec<String>>,
    /// If given, the only item ids that may be returned.
    #[serde(deserialize_with = "ids")]
    allow: Option<Vec<String>>,
    /// Pipelines: the MMR λ in [0, 1].
    #[serde(deserialize_with = "lenient")]
    diversity: Option<f32>,
    /// Pipelines: caps per attribute value (`attribute:max`, comma-separated, in a query string).
    #[serde(deserialize_with = "caps")]
    caps: Option<Vec<Cap>>,
    /// Pipelines: item ids to lift.
    #[serde(deserialize_with = "ids")]
    boost: Option<Vec<String>>,
    /// Pipelines: one item per value of this attribute.
    dedupe: Option<String>,
    /// Pipelines: candidates to retrieve for the ranker.
    #[serde(deserialize_with = "lenient")]
    retrieve: Option<usize>,
    /// Add the time each stage took to the answer.
    #[serde(deserialize_with = "lenient")]
    debug: Option<bool>,
    /// Sequential models: item ids the user interacted with since training, oldest first (a
    /// list, or comma-separated text).
    #[serde(deserialize_with = "ids")]
    recent: Option<Vec<String>>,
}

impl TryFrom<RequestFields> for Request {
    type Error = Error;
    fn try_from(f: RequestFields) -> Result<Self> {
        let r = Request {
            k: f.k.unwrap_or(DEFAULT_K),
            exclude_seen: f.exclude_seen.unwrap_or(false),
            exclude: f.exclude.unwrap_or_default(),
            allow: f.allow,
            post: PostOverrides { diversity: f.diversity, caps: f.caps, boost: f.boost, dedupe: f.dedupe },
            retrieve: f.retrieve,
            debug: f.debug.unwrap_or(false),
            recent: f.recent.unwrap_or_default(),
        };
        Ok(r)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_spelling_gives_the_same_request() {
        let want = Request::top(5).exclude_seen(true).exclude(["1".into(), "2".into()]).post(PostOverrides {
            diversity: Some(0.3),
            caps: Some(vec![Cap { attribute: "genres".into(), max: 2 }]),
            ..Default::default()
        });
        let json: Request = serde_json::from_str(
            r#"{"k": 5, "exclude_seen": true, "exclude": ["1", 2], "diversity": 0.3, "caps": {"genres": 2}}"#,
        )
        .unwrap();
        assert_eq!(json, want);
        let text: Request = serde_json::from_str(
            r#"{"k": "5", "exclude_seen": "true", "exclude": "1,2", "diversity": "0.3", "caps": "genres:2"}"#,
        )
        .unwrap();
        assert_eq!(text, want);
        let listed: Request =
            serde_json::from_str(r#"{"k": 5, "exclude_seen": true, "exclude": "1, 2", "diversity": 0.3, "caps": [{"attribute": "genres", "max": 2}]}"#)
                .unwrap();
        assert_eq!(listed, want);
        assert_eq!(serde_json::from_str::<Request>("{}").unwrap(), Request::default());
    }

    #[test]
    fn bad_requests_name_the_field() {
        for (body, what) in [
            (r#"{"k": "ten"}"#, "'ten'"),
            (r#"{"caps": "genres"}"#, "ATTRIBUTE:MAX"),
            (r#"{"kk": 3}"#, "unknown field `kk`"),
        ] {
            let e = serde_json::from_str::<Request>(body).unwrap_err().to_string();
            assert!(e.contains(what), "{body}: {e}");
        }
        for (body, what) in [
            (r#"{"k": 0}"#, "k must be in 1..=100000"),
            (r#"{"k": 100001}"#, "k must be in"),
            (r#"{"diversity": 2}"#, "diversity must be in [0, 1]"),
            (r#"{"retrieve": 0}"#, "retrieve must be in 1..=10000"),
        ] {
            let e = serde_json::from_str::<Request>(body).unwrap().validate().unwrap_err().to_string();
            assert!(e.contains(what), "{body}: {e}");
        }
    }
}
