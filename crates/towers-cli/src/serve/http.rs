//! The routes and their answers. Errors are `{"error":{"status":N,"message":…}}`: 400
//! (malformed request), 404 (unknown item or route), 405, 408 (body too slow), 413 (body too
//! large), 414 (URI too long), 415 (body not JSON), 422 (valid JSON, invalid request), 431
//! (headers too large), 500 (a bug, the server goes on), 503 (the store is unreachable).

use super::Limits;
use super::guard;
use super::state::{App, VersionInfo};
use axum::extract::rejection::{JsonRejection, QueryRejection};
use axum::extract::{Query, State};
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::{Json, Router};
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};
use std::sync::Arc;
use towers::artifact::TrainSummary;
use towers::recommend::{PostRanking, Query as Asked, Request as Ask, Timings};
use towers::{Error, ErrorKind, Recommendation, Recommendations, TrainConfig};

/// Largest accepted `k`.
pub const MAX_K: usize = 1000;

/// An error answer.
pub struct ApiError(pub StatusCode, pub String);

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        (self.0, Json(json!({ "error": { "status": self.0.as_u16(), "message": self.1 } }))).into_response()
    }
}

fn unprocessable(msg: impl Into<String>) -> ApiError {
    ApiError(StatusCode::UNPROCESSABLE_ENTITY, msg.into())
}

fn check_k(k: Option<usize>) -> Result<usize, ApiError> {
    match k.unwrap_or(10) {
        k @ 1..=MAX_K => Ok(k),
        k => Err(unprocessable(format!("k must be in 1..={MAX_K}, got {k}"))),
    }
}

fn query<T>(q: Result<Query<T>, QueryRejection>) -> Result<T, ApiError> {
    q.map(|Query(t)| t).map_err(|e| ApiError(StatusCode::BAD_REQUEST, e.body_text()))
}

macro_rules! post_fields {
    ($q:expr) => {
        PostFields {
            diversity: $q.diversity,
            caps: $q.caps.clone(),
            boost: $q.boost.clone(),
            exclude: $q.exclude.clone(),
            dedupe: $q.dedupe.clone(),
            retrieve: $q.retrieve,
            debug: $q.debug,
        }
    };
}

/// Pipelines: post-ranking overrides and per-stage timings, as query or body fields.
#[derive(Default)]
struct PostFields {
    /// MMR λ in [0, 1].
    diversity: Option<f32>,
    /// `ATTRIBUTE:MAX`, comma-separated.
    caps: Option<String>,
    /// Item ids to lift, comma-separated.
    boost: Option<String>,
    /// Item ids never to return, comma-separated.
    exclude: Option<String>,
    /// One item per value of this attribute.
    dedupe: Option<String>,
    /// Candidates to retrieve.
    retrieve: Option<usize>,
    /// Add the time each stage took.
    debug: Option<bool>,
}

impl PostFields {
    fn any_rule(&self) -> bool {
        self.diversity.is_some()
            || self.caps.is_some()
            || self.boost.is_some()
            || self.dedupe.is_some()
            || self.retrieve.is_some()
    }

    /// The request with these overrides of the pipeline's rules (`base`).
    fn apply(&self, mut request: Ask, base: Option<&PostRanking>) -> Result<Ask, ApiError> {
        let list = |s: &Option<String>| -> Vec<String> {
            s.as_deref().map_or_else(Vec::new, |s| {
                s.split(',').map(str::trim).filter(|x| !x.is_empty()).map(String::from).collect()
            })
        };
        if let Some(ex) = &self.exclude {
            request = request.exclude(list(&Some(ex.clone())));
        }
        let Some(base) = base else {
            if self.any_rule() {
                return Err(unprocessable("diversity, caps, boost, dedupe and retrieve are for pipelines"));
            }
            return Ok(request);
        };
        if self.diversity.is_some() || self.caps.is_some() || self.boost.is_some() || self.dedupe.is_some() {
            let mut p = base.clone();
            if let Some(d) = self.diversity {
                p.diversity = d;
            }
            if self.caps.is_some() {
                p.caps = list(&self.caps).iter().map(|c| c.parse()).collect::<Result<_, _>>().map_err(api_error)?;
            }
            if self.boost.is_some() {
                p.boost = list(&self.boost);
            }
            if self.dedupe.is_some() {
                p.dedupe = self.dedupe.clone();
            }
            p.validate().map_err(api_error)?;
            request = request.post(p);
        }
        if let Some(r) = self.retrieve {
            request = request.retrieve(r);
        }
        Ok(request)
    }
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RecommendQuery {
    user: String,
    k: Option<usize>,
    exclude_seen: Option<bool>,
    diversity: Option<f32>,
    caps: Option<String>,
    boost: Option<String>,
    exclude: Option<String>,
    dedupe: Option<String>,
    retrieve: Option<usize>,
    debug: Option<bool>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RecommendBody {
    user: Option<String>,
    history: Option<Vec<Value>>,
    k: Option<usize>,
    exclude_seen: Option<bool>,
    diversity: Option<f32>,
    caps: Option<String>,
    boost: Option<String>,
    exclude: Option<String>,
    dedupe: Option<String>,
    retrieve: Option<usize>,
    debug: Option<bool>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct SimilarQuery {
    item: String,
    k: Option<usize>,
}

/// The answer to `recommend` and `similar` (typed, so that `f32` scores print as `f32`).
#[derive(Serialize)]
struct Answer<'a> {
    items: Vec<Recommendation>,
    model: &'a str,
    cold_start: bool,
    /// Pipelines with `debug=true`: the time each stage took.
    #[serde(skip_serializing_if = "Option::is_none")]
    timings: Option<Timings>,
}

#[derive(Serialize)]
struct ModelInfo<'a> {
    model: &'a str,
    kind: String,
    format_version: u32,
    dim: usize,
    users: usize,
    items: usize,
    config: &'a TrainConfig,
    training: &'a TrainSummary,
    /// `exact`, or `ivf` when the model's own index is approximate.
    index: &'a str,
    /// Which model answers: its version, when it was saved and loaded, reloads so far.
    #[serde(flatten)]
    version: VersionInfo<'a>,
    /// Where top-k comes from: `{"kind": "exact" | "ivf" | "postgres", …}`.
    store: Value,
}

/// The library's errors as answers: an unknown item is 404, a request the model cannot serve
/// 422, a store that cannot be reached 503.
fn api_error(e: Error) -> ApiError {
    match (e.kind(), e) {
        (_, Error::NotFound(m)) => ApiError(StatusCode::NOT_FOUND, m),
        (_, e @ Error::Unavailable(_)) => ApiError(StatusCode::SERVICE_UNAVAILABLE, e.to_string()),
        (ErrorKind::Usage | ErrorKind::Input, e) => unprocessable(e.to_string()),
        (_, e) => ApiError(StatusCode::INTERNAL_SERVER_ERROR, e.to_string()),
    }
}

/// A history item: an id as a string or a number.
fn history_item(v: &Value) -> Result<String, ApiError> {
    match v {
        Value::String(s) => Ok(s.clone()),
        Value::Number(n) => Ok(n.to_string()),
        other => Err(unprocessable(format!("history items are ids (strings or numbers), not {other}"))),
    }
}

async fn recommend(
    app: &App,
    query: Asked<'_>,
    k: Option<usize>,
    exclude_seen: Option<bool>,
    post: &PostFields,
) -> Result<Response, ApiError> {
    let request = Ask::top(check_k(k)?).exclude_seen(exclude_seen.unwrap_or(false));
    let model = app.current();
    let request = post.apply(request, model.pipeline().map(|p| &p.settings().post))?;
    if let Some(p) = model.pipeline() {
        let a = p.recommend(query, &request).map_err(api_error)?;
        let timings = post.debug.unwrap_or(false).then_some(a.timings);
        let r = a.recommendations;
        return Ok(
            Json(Answer { items: r.items, model: &model.name, cold_start: r.cold_start, timings }).into_response()
        );
    }
    let r: Recommendations = app.store.recommend(&model, query, &request).await.map_err(api_error)?;
    Ok(Json(Answer { items: r.items, model: &model.name, cold_start: r.cold_start, timings: None }).into_response())
}

async fn healthz() -> Json<Value> {
    Json(json!({ "status": "ok" }))
}

async fn model_info(State(app): State<Arc<App>>) -> Response {
    let m = app.current();
    let a = m.recommender().artifact();
    let store = app.store.describe(&m).await;
    Json(ModelInfo {
        model: &m.name,
        kind: a.model.spec().kind().to_string(),
        format_version: towers::artifact::FORMAT_VERSION,
        dim: a.dim(),
        users: a.query_vocab.num_keys(),
        items: a.items.len().saturating_sub(1),
        config: &a.config,
        training: &a.summary,
        index: m.recommender().index_kind(),
        version: VersionInfo {
            version: &m.version,
            saved_at: m.saved_at,
            loaded_at: m.loaded_at,
            reloads: app.reloads(),
        },
        store,
    })
    .into_response()
}

async fn recommend_get(
    State(app): State<Arc<App>>,
    q: Result<Query<RecommendQuery>, QueryRejection>,
) -> Result<Response, ApiError> {
    let q = query(q)?;
    recommend(&app, Asked::User(&q.user), q.k, q.exclude_seen, &post_fields!(q)).await
}

async fn recommend_post(
    State(app): State<Arc<App>>,
    body: Result<Json<RecommendBody>, JsonRejection>,
) -> Result<Response, ApiError> {
    let Json(b) = body.map_err(|e| ApiError(e.status(), e.body_text()))?;
    let post = post_fields!(b);
    match (b.user, b.history) {
        (Some(user), None) => recommend(&app, Asked::User(&user), b.k, b.exclude_seen, &post).await,
        (None, Some(history)) => {
            let items = history.iter().map(history_item).collect::<Result<Vec<_>, _>>()?;
            recommend(&app, Asked::History(&items), b.k, b.exclude_seen, &post).await
        }
        (Some(_), Some(_)) => Err(unprocessable("give either \"user\" or \"history\", not both")),
        (None, None) => Err(unprocessable("give a \"user\" (or, for a sequential model, a \"history\")")),
    }
}

async fn similar(
    State(app): State<Arc<App>>,
    q: Result<Query<SimilarQuery>, QueryRejection>,
) -> Result<Response, ApiError> {
    let q = query(q)?;
    let k = check_k(q.k)?;
    let m = app.current();
    let items = m.recommender().similar(&q.item, &Ask::top(k)).map_err(api_error)?;
    Ok(Json(Answer { items, model: &m.name, cold_start: false, timings: None }).into_response())
}

async fn prometheus(State(app): State<Arc<App>>) -> Response {
    ([(header::CONTENT_TYPE, "text/plain; version=0.0.4; charset=utf-8")], app.render_metrics()).into_response()
}

async fn not_found(req: axum::extract::Request) -> ApiError {
    ApiError(StatusCode::NOT_FOUND, format!("no route for {} {}", req.method(), req.uri().path()))
}

/// The routes over a loaded model, behind the guards (limits, timeouts, JSON errors, panics,
/// metrics and logs).
pub fn router(app: Arc<App>, limits: &Limits) -> Router {
    let routes = Router::new()
        .route("/healthz", get(healthz))
        .route("/v1/model", get(model_info))
        .route("/v1/recommend", get(recommend_get).post(recommend_post))
        .route("/v1/similar", get(similar))
        .route("/metrics", get(prometheus))
        .fallback(not_found)
        .with_state(app);
    guard::wrap(routes, limits)
}
