//! `POST /v1/events`: what users just did, kept by the server (`serve --events FILE`) for a
//! sequential model to recommend from.

use super::http::{ApiError, ErrorBody};
use super::state::App;
use axum::Json;
use axum::extract::State;
use axum::extract::rejection::JsonRejection;
use axum::http::StatusCode;
use serde_json::{Value, json};
use std::sync::Arc;
use towers::recommend::Event;

/// Events one request may carry.
pub const MAX_EVENTS: usize = 1000;

/// Appends events to users' live histories: one `{"user", "item", "timestamp"?}`, a list of
/// them, or `{"events": [...]}` (at most 1,000). A sequential model's recommendations for a
/// user then follow their training history with these events (and leave them out with
/// `exclude_seen`). Every item must be the model's; the events are in the log (`--events`)
/// before the answer, and synced within a second.
#[utoipa::path(post, path = "/v1/events", request_body = Event,
    responses((status = 200, description = "`{\"accepted\": N}`", body = Object),
        (status = 400, description = "Malformed JSON", body = ErrorBody),
        (status = 404, description = "An unknown item, or a server started without --events", body = ErrorBody),
        (status = 413, description = "Over 1,000 events, or the body over the limit", body = ErrorBody),
        (status = 422, description = "Not events", body = ErrorBody)))]
pub async fn events_post(
    State(app): State<Arc<App>>,
    body: Result<Json<Value>, JsonRejection>,
) -> Result<Json<Value>, ApiError> {
    let Some(live) = app.live.clone() else {
        return Err(ApiError(StatusCode::NOT_FOUND, "this server keeps no events: start it with --events FILE".into()));
    };
    let Json(v) = body.map_err(|e| ApiError(e.status(), e.body_text()))?;
    let list = match v {
        Value::Object(mut m) if m.contains_key("events") && m.len() == 1 => m.remove("events").unwrap_or_default(),
        Value::Array(a) => Value::Array(a),
        other => Value::Array(vec![other]),
    };
    let events: Vec<Event> = serde_json::from_value(list).map_err(|e| {
        ApiError(StatusCode::UNPROCESSABLE_ENTITY, format!("events: {{\"user\", \"item\", \"timestamp\"?}} each: {e}"))
    })?;
    if events.len() > MAX_EVENTS {
        return Err(ApiError(
            StatusCode::PAYLOAD_TOO_LARGE,
            format!("{} events: at most {MAX_EVENTS} a request", events.len()),
        ));
    }
    let model = app.current();
    if let Some(e) = events.iter().find(|e| !model.served.has_item(&e.item)) {
        return Err(ApiError(StatusCode::NOT_FOUND, format!("item '{}' is not in the model", e.item)));
    }
    if let Some(e) = events.iter().find(|e| e.user.is_empty() || e.user.len() > 256) {
        return Err(ApiError(StatusCode::UNPROCESSABLE_ENTITY, format!("user '{}': 1 to 256 bytes", e.user)));
    }
    let n = events.len();
    tokio::task::spawn_blocking(move || live.append(&events))
        .await
        .map_err(|e| ApiError(StatusCode::INTERNAL_SERVER_ERROR, e.to_string()))?
        .map_err(|e| ApiError(StatusCode::INTERNAL_SERVER_ERROR, e.to_string()))?;
    Ok(Json(json!({ "accepted": n })))
}
