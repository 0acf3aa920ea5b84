//! The routes and their answers. Errors are `{"error":{"status":N,"message":…}}`: 400
//! (malformed request), 404 (unknown item or route), 405, 408 (body too slow), 413 (body too
//! large), 414 (URI too long), 415 (body not JSON), 422 (valid JSON, invalid request), 431
//! (headers too large), 500 (a bug, the server goes on), 503 (the store is unreachable).

use super::Limits;
use super::events::{__path_events_post, events_post};
use super::guard;
use super::state::App;
use axum::extract::rejection::{JsonRejection, QueryRejection};
use axum::extract::{Query, State};
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::{Json, Router};
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value, json};
use std::sync::Arc;
use towers::config::post::Id;
use towers::recommend::{Description, Event, Query as Asked, Request as Ask, RequestFields, Timings};
use towers::{Error, ErrorKind, Recommendation, Recommendations};
use utoipa::{OpenApi, ToSchema};

/// An error answer.
pub struct ApiError(pub StatusCode, pub String);

/// The body of every error answer.
#[derive(Serialize, ToSchema)]
pub struct ErrorBody {
    error: ErrorDetail,
}

#[derive(Serialize, ToSchema)]
struct ErrorDetail {
    /// The HTTP status.
    status: u16,
    /// What went wrong, for a person.
    message: String,
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let error = ErrorDetail { status: self.0.as_u16(), message: self.1 };
        (self.0, Json(ErrorBody { error })).into_response()
    }
}

fn unprocessable(msg: impl Into<String>) -> ApiError {
    ApiError(StatusCode::UNPROCESSABLE_ENTITY, msg.into())
}

fn query<T>(q: Result<Query<T>, QueryRejection>) -> Result<T, ApiError> {
    q.map(|Query(t)| t).map_err(|e| ApiError(StatusCode::BAD_REQUEST, e.body_text()))
}

/// The library's [`Ask`] from the fields of a query string or a JSON body other than the
/// query's (`user`, `history`, `item`): every key and value checked by the library's own rules.
fn ask<'de, D: serde::Deserializer<'de>>(fields: D, status: StatusCode) -> Result<Ask, ApiError>
where
    D::Error: std::fmt::Display,
{
    Ask::deserialize(fields).map_err(|e| ApiError(status, e.to_string()))
}

/// A query string's pairs, the `name` field taken out.
fn take(pairs: &mut Vec<(String, String)>, name: &str) -> Option<String> {
    let i = pairs.iter().position(|(k, _)| k == name)?;
    Some(pairs.remove(i).1)
}

fn from_pairs(pairs: Vec<(String, String)>) -> Result<Ask, ApiError> {
    ask(
        serde::de::value::MapDeserializer::<_, serde::de::value::Error>::new(pairs.into_iter()),
        StatusCode::BAD_REQUEST,
    )
}

/// The answer to `recommend` and `similar` (typed, so that `f32` scores print as `f32`).
#[derive(Serialize, ToSchema)]
struct Answer<'a> {
    /// Best first.
    items: Vec<Recommendation>,
    /// The model's name (its directory's).
    model: &'a str,
    /// True when the user is unknown: the answer is the most popular items.
    cold_start: bool,
    /// Pipelines with `debug=true`: the time each stage took.
    #[serde(skip_serializing_if = "Option::is_none")]
    timings: Option<Timings>,
}

#[derive(Serialize, ToSchema)]
struct ModelInfo<'a> {
    /// The model's name (its directory's).
    model: &'a str,
    /// Kind, sizes, index, version, configuration, training figures (and a pipeline's stages).
    #[serde(flatten)]
    description: Description,
    /// When this server loaded it (Unix seconds).
    loaded_at: u64,
    /// Successful reloads since the start.
    reloads: u64,
    /// Where top-k comes from: `{"kind": "exact" | "ivf" | "postgres", …}`.
    #[schema(value_type = Object)]
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

async fn recommend(app: &App, query: Asked<'_>, request: &Ask) -> Result<Response, ApiError> {
    let model = app.current();
    // a user's live events (`--events`) come before the request's own recent items
    let live = match (&app.live, query) {
        (Some(live), Asked::User(user)) => {
            let mut recent = live.recent(user);
            recent.extend(request.recent.iter().cloned());
            let skip = recent.len().saturating_sub(towers::recommend::MAX_RECENT);
            Some(Ask { recent: recent.split_off(skip), ..request.clone() })
        }
        _ => None,
    };
    let request = live.as_ref().unwrap_or(request);
    let r: Recommendations = model.served.answer(query, request).await.map_err(api_error)?;
    Ok(Json(Answer { items: r.items, model: &model.name, cold_start: r.cold_start, timings: r.timings })
        .into_response())
}

/// The server is up.
#[utoipa::path(get, path = "/healthz", responses((status = 200, description = "`{\"status\": \"ok\"}`", body = Object)))]
async fn healthz() -> Json<Value> {
    Json(json!({ "status": "ok" }))
}

/// What the loaded model is: kind, sizes, index, version, configuration, training figures.
#[utoipa::path(get, path = "/v1/model", responses((status = 200, body = ModelInfo)))]
async fn model_info(State(app): State<Arc<App>>) -> Response {
    let m = app.current();
    let store = super::store::describe(&m.served).await;
    Json(ModelInfo {
        model: &m.name,
        description: m.served.describe(),
        loaded_at: m.loaded_at,
        reloads: app.reloads(),
        store,
    })
    .into_response()
}

/// A user's top k (the query string's keys are the request's).
#[utoipa::path(get, path = "/v1/recommend",
    params(("user" = String, Query, description = "The user's id"), RequestFields),
    responses((status = 200, body = Answer), (status = 400, description = "Malformed query string", body = ErrorBody),
        (status = 422, description = "A request the model cannot answer", body = ErrorBody),
        (status = 503, description = "The store cannot be reached", body = ErrorBody)))]
async fn recommend_get(
    State(app): State<Arc<App>>,
    q: Result<Query<Vec<(String, String)>>, QueryRejection>,
) -> Result<Response, ApiError> {
    let mut pairs = query(q)?;
    let user =
        take(&mut pairs, "user").ok_or_else(|| ApiError(StatusCode::BAD_REQUEST, "missing field `user`".into()))?;
    recommend(&app, Asked::User(&user), &from_pairs(pairs)?).await
}

/// A user's (or, for a sequential model, a history's) top k, from a JSON body: `user` or
/// `history` (a list of item ids, oldest first) beside the request's keys.
#[utoipa::path(post, path = "/v1/recommend", request_body = RecommendBody,
    responses((status = 200, body = Answer), (status = 400, description = "Malformed JSON", body = ErrorBody),
        (status = 413, description = "Body over the limit", body = ErrorBody),
        (status = 415, description = "Body not JSON", body = ErrorBody),
        (status = 422, description = "Valid JSON, invalid request", body = ErrorBody),
        (status = 503, description = "The store cannot be reached", body = ErrorBody)))]
async fn recommend_post(
    State(app): State<Arc<App>>,
    body: Result<Json<Map<String, Value>>, JsonRejection>,
) -> Result<Response, ApiError> {
    let Json(mut b) = body.map_err(|e| ApiError(e.status(), e.body_text()))?;
    let (user, history) = (b.remove("user"), b.remove("history"));
    let request = ask(Value::Object(b), StatusCode::UNPROCESSABLE_ENTITY)?;
    match (user, history) {
        (Some(Value::String(user)), None) => recommend(&app, Asked::User(&user), &request).await,
        (Some(Value::Number(user)), None) => recommend(&app, Asked::User(&user.to_string()), &request).await,
        (None, Some(history)) => {
            let items: Vec<Id> = serde_json::from_value(history)
                .map_err(|e| unprocessable(format!("history: a list of item ids (strings or numbers): {e}")))?;
            let items: Vec<String> = items.into_iter().map(|i| i.0).collect();
            recommend(&app, Asked::History(&items), &request).await
        }
        (Some(_), Some(_)) => Err(unprocessable("give either \"user\" or \"history\", not both")),
        (Some(other), None) => Err(unprocessable(format!("\"user\" is an id (a string or a number), not {other}"))),
        (None, None) => Err(unprocessable("give a \"user\" (or, for a sequential model, a \"history\")")),
    }
}

/// The items most similar to an item (cosine of candidate embeddings).
#[utoipa::path(get, path = "/v1/similar",
    params(("item" = String, Query, description = "The item's id"), RequestFields),
    responses((status = 200, body = Answer), (status = 400, description = "Malformed query string", body = ErrorBody),
        (status = 404, description = "Unknown item", body = ErrorBody),
        (status = 422, description = "An invalid request", body = ErrorBody)))]
async fn similar(
    State(app): State<Arc<App>>,
    q: Result<Query<Vec<(String, String)>>, QueryRejection>,
) -> Result<Response, ApiError> {
    let mut pairs = query(q)?;
    let item =
        take(&mut pairs, "item").ok_or_else(|| ApiError(StatusCode::BAD_REQUEST, "missing field `item`".into()))?;
    let request = from_pairs(pairs)?;
    let m = app.current();
    let r = m.served.similar(&item, &request).map_err(api_error)?;
    Ok(Json(Answer { items: r.items, model: &m.name, cold_start: false, timings: None }).into_response())
}

/// Prometheus metrics (text exposition format).
#[utoipa::path(get, path = "/metrics", responses((status = 200, description = "Prometheus text format", body = String, content_type = "text/plain")))]
async fn prometheus(State(app): State<Arc<App>>) -> Response {
    ([(header::CONTENT_TYPE, "text/plain; version=0.0.4; charset=utf-8")], app.render_metrics()).into_response()
}

/// The `POST /v1/recommend` body: the query beside the request's keys.
#[derive(Deserialize, ToSchema)]
#[allow(dead_code)]
struct RecommendBody {
    /// A user id (a string or a number).
    user: Option<String>,
    /// A sequential model's history: item ids, oldest first.
    history: Option<Vec<String>>,
    #[serde(flatten)]
    request: RequestFields,
}

/// This document.
#[utoipa::path(get, path = "/openapi.json", responses((status = 200, description = "The OpenAPI document", body = Object)))]
async fn openapi_json() -> Json<utoipa::openapi::OpenApi> {
    Json(openapi())
}

/// The HTTP API's OpenAPI document (3.1), from the types the routes read and answer.
pub fn openapi() -> utoipa::openapi::OpenApi {
    #[derive(OpenApi)]
    #[openapi(
        info(
            title = "towers",
            description = "Recommendations from a towers model or pipeline. Every error answer is `ErrorBody`; besides each route's own: 404 (no such route), 405 (method not allowed), 408 (body not sent in time), 413 (body over 64 KiB), 414 (request target over 8 KiB), 431 (headers too large), 500 (a handler that panicked)."
        ),
        paths(healthz, model_info, recommend_get, recommend_post, similar, events_post, prometheus, openapi_json),
        components(schemas(ErrorBody, Answer, ModelInfo, RequestFields, RecommendBody, Event))
    )]
    struct Doc;
    Doc::openapi()
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
        .route("/v1/events", axum::routing::post(events_post))
        .route("/metrics", get(prometheus))
        .route("/openapi.json", get(openapi_json))
        .fallback(not_found)
        .with_state(app);
    guard::wrap(routes, limits)
}
