//! `towers serve`: an HTTP/JSON service over a saved model (axum + tokio).
//!
//! ```text
//! GET  /healthz                                   {"status":"ok"}
//! GET  /v1/model                                  manifest summary
//! GET  /v1/recommend?user=42&k=10&exclude_seen=true
//! POST /v1/recommend  {"user":"42","k":10,"exclude_seen":true}   or, for sequential models,
//!                     {"history":["12","45","9"],"k":10}
//! GET  /v1/similar?item=50&k=10
//! ```
//! Answers are `{"items":[{"id","title","score"}…],"model":…,"cold_start":bool}`; errors are
//! `{"error":{"status":N,"message":…}}` with 400 (malformed request), 404 (unknown item or
//! route), 413 (body over 64 KiB), 415 (body not JSON) or 422 (valid JSON, invalid request).

use axum::extract::rejection::{JsonRejection, QueryRejection};
use axum::extract::{DefaultBodyLimit, Query, Request, State};
use axum::http::StatusCode;
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::{Json, Router};
use clap::Args as ClapArgs;
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Instant;
use towers::artifact::TrainSummary;
use towers::recommend::{Query as Asked, Request as Ask};
use towers::{Artifact, Error, ErrorKind, Recommendation, Recommendations, Recommender, TrainConfig};

/// Largest accepted request body.
pub const MAX_BODY: usize = 64 * 1024;
/// Largest accepted `k`.
pub const MAX_K: usize = 1000;

/// Options of `towers serve`.
#[derive(ClapArgs, Debug)]
pub struct Args {
    /// Model directory written by `towers train --out`.
    #[arg(long)]
    pub model: PathBuf,
    /// Address to listen on (port 0: any free port; the address is printed).
    #[arg(long, default_value = "127.0.0.1:8080")]
    pub addr: String,
    /// Worker threads (default: one per core).
    #[arg(long)]
    pub threads: Option<usize>,
    /// Search the exact index even when the model holds an approximate one.
    #[arg(long)]
    pub exact: bool,
}

struct Service {
    recommender: Recommender,
    name: String,
}

struct ApiError(StatusCode, String);

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

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RecommendQuery {
    user: String,
    k: Option<usize>,
    exclude_seen: Option<bool>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RecommendBody {
    user: Option<String>,
    history: Option<Vec<Value>>,
    k: Option<usize>,
    exclude_seen: Option<bool>,
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
    /// `exact`, or `ivf` when recommendations come from the approximate index.
    index: &'a str,
}

/// The library's errors as answers: an unknown item is 404, a request the model cannot serve 422.
fn api_error(e: Error) -> ApiError {
    match (e.kind(), e) {
        (_, Error::NotFound(m)) => ApiError(StatusCode::NOT_FOUND, m),
        (ErrorKind::Usage | ErrorKind::Input, e) => unprocessable(e.to_string()),
        (_, e) => ApiError(StatusCode::INTERNAL_SERVER_ERROR, e.to_string()),
    }
}

impl Service {
    fn answer(&self, r: towers::Result<Recommendations>) -> Result<Response, ApiError> {
        let r = r.map_err(api_error)?;
        Ok(Json(Answer { items: r.items, model: &self.name, cold_start: r.cold_start }).into_response())
    }

    fn recommend(&self, query: Asked, k: Option<usize>, exclude_seen: Option<bool>) -> Result<Response, ApiError> {
        let request = Ask::top(check_k(k)?).exclude_seen(exclude_seen.unwrap_or(false));
        self.answer(self.recommender.recommend(query, &request))
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

async fn healthz() -> Json<Value> {
    Json(json!({ "status": "ok" }))
}

async fn model_info(State(s): State<Arc<Service>>) -> Response {
    let a = s.recommender.artifact();
    Json(ModelInfo {
        model: &s.name,
        kind: a.model.spec().kind().to_string(),
        format_version: towers::artifact::FORMAT_VERSION,
        dim: a.dim(),
        users: a.query_vocab.num_keys(),
        items: a.items.len() - 1,
        config: &a.config,
        training: &a.summary,
        index: s.recommender.index_kind(),
    })
    .into_response()
}

async fn recommend_get(
    State(s): State<Arc<Service>>,
    q: Result<Query<RecommendQuery>, QueryRejection>,
) -> Result<Response, ApiError> {
    let q = query(q)?;
    s.recommend(Asked::User(&q.user), q.k, q.exclude_seen)
}

async fn recommend_post(
    State(s): State<Arc<Service>>,
    body: Result<Json<RecommendBody>, JsonRejection>,
) -> Result<Response, ApiError> {
    let Json(b) = body.map_err(|e| ApiError(e.status(), e.body_text()))?;
    match (b.user, b.history) {
        (Some(user), None) => s.recommend(Asked::User(&user), b.k, b.exclude_seen),
        (None, Some(history)) => {
            let items = history.iter().map(history_item).collect::<Result<Vec<_>, _>>()?;
            s.recommend(Asked::History(&items), b.k, b.exclude_seen)
        }
        (Some(_), Some(_)) => Err(unprocessable("give either \"user\" or \"history\", not both")),
        (None, None) => Err(unprocessable("give a \"user\" (or, for a sequential model, a \"history\")")),
    }
}

async fn similar(
    State(s): State<Arc<Service>>,
    q: Result<Query<SimilarQuery>, QueryRejection>,
) -> Result<Response, ApiError> {
    let q = query(q)?;
    let k = check_k(q.k)?;
    let items = s.recommender.similar(&q.item, &Ask::top(k)).map_err(api_error)?;
    Ok(Json(Answer { items, model: &s.name, cold_start: false }).into_response())
}

async fn not_found(req: Request) -> ApiError {
    ApiError(StatusCode::NOT_FOUND, format!("no route for {} {}", req.method(), req.uri().path()))
}

async fn log_request(req: Request, next: Next) -> Response {
    let (method, uri, start) = (req.method().clone(), req.uri().clone(), Instant::now());
    let response = next.run(req).await;
    let status = response.status().as_u16();
    let micros = start.elapsed().as_micros() as u64;
    tracing::info!(%method, %uri, status, micros, "request");
    response
}

/// The service's routes over a loaded model.
fn router(recommender: Recommender, name: String) -> Router {
    let state = Arc::new(Service { recommender, name });
    Router::new()
        .route("/healthz", get(healthz))
        .route("/v1/model", get(model_info))
        .route("/v1/recommend", get(recommend_get).post(recommend_post))
        .route("/v1/similar", get(similar))
        .fallback(not_found)
        .layer(DefaultBodyLimit::max(MAX_BODY))
        .layer(middleware::from_fn(log_request))
        .with_state(state)
}

async fn shutdown_signal() {
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    #[cfg(unix)]
    let term = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    #[cfg(not(unix))]
    let term = std::future::pending::<()>();
    tokio::select! { _ = ctrl_c => {}, _ = term => {} }
    tracing::info!("shutting down: finishing requests in flight");
}

pub fn run(a: Args) -> towers::Result<()> {
    let mut recommender = Recommender::new(Artifact::load(&a.model)?);
    if a.exact {
        recommender = recommender.exact();
    }
    tracing::info!(index = recommender.index_kind(), "recommendations index");
    let name = a.model.file_name().map(|n| n.to_string_lossy().to_string()).unwrap_or_else(|| "model".into());
    let mut rt = tokio::runtime::Builder::new_multi_thread();
    if let Some(t) = a.threads {
        rt.worker_threads(t.max(1));
    }
    let rt = rt.enable_all().build().map_err(|e| Error::io("tokio runtime", e))?;
    rt.block_on(async {
        let listener = tokio::net::TcpListener::bind(&a.addr).await.map_err(|e| Error::io(&a.addr, e))?;
        let addr = listener.local_addr().map_err(|e| Error::io(&a.addr, e))?;
        println!("towers serving {} on http://{addr}", a.model.display());
        use std::io::Write as _;
        let _ = std::io::stdout().flush();
        axum::serve(listener, router(recommender, name))
            .with_graceful_shutdown(shutdown_signal())
            .await
            .map_err(|e| Error::io(addr.to_string(), e))
    })?;
    println!("towers serve: stopped");
    Ok(())
}
