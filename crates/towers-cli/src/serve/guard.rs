//! What stands between a client and the routes: metrics and logs of every answer, panics
//! turned into a JSON 500 (the server goes on), error answers given the JSON error body, and the
//! limits on the request target, headers and body (size and time). hyper adds the header read
//! timeout and the hard cap on a request head (`listen.rs`).

use super::Limits;
use super::http::ApiError;
use axum::Router;
use axum::body::Body;
use axum::extract::{Request, State};
use axum::http::{StatusCode, header};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use futures_util::{FutureExt, StreamExt};
use std::panic::AssertUnwindSafe;
use std::sync::Arc;
use std::time::{Duration, Instant};

/// The routes behind the guards.
pub fn wrap(routes: Router, limits: &Limits) -> Router {
    routes
        .layer(middleware::from_fn_with_state(Arc::new(limits.clone()), limit))
        .layer(middleware::from_fn(json_errors))
        .layer(middleware::from_fn(catch_panic))
        .layer(middleware::from_fn(observe))
}

/// A route's name for the metrics: the known routes, everything else `other` (so that clients
/// cannot make new series).
fn route_label(path: &str) -> &'static str {
    match path {
        "/healthz" => "/healthz",
        "/v1/model" => "/v1/model",
        "/v1/recommend" => "/v1/recommend",
        "/v1/similar" => "/v1/similar",
        "/metrics" => "/metrics",
        _ => "other",
    }
}

/// Counts and times every answer, by route and status, and logs it.
async fn observe(req: Request, next: Next) -> Response {
    let (method, uri, start) = (req.method().clone(), req.uri().clone(), Instant::now());
    let route = route_label(uri.path());
    let response = next.run(req).await;
    let status = response.status().as_u16();
    let elapsed = start.elapsed();
    metrics::counter!("towers_http_requests_total", "route" => route, "status" => status.to_string()).increment(1);
    if status >= 400 {
        metrics::counter!("towers_http_errors_total", "route" => route, "status" => status.to_string()).increment(1);
    }
    metrics::histogram!("towers_http_request_duration_seconds", "route" => route).record(elapsed.as_secs_f64());
    let micros = elapsed.as_micros() as u64;
    tracing::info!(%method, %uri, status, micros, "request");
    response
}

/// A panic anywhere below becomes a JSON 500; the connection and the server go on.
async fn catch_panic(req: Request, next: Next) -> Response {
    match AssertUnwindSafe(next.run(req)).catch_unwind().await {
        Ok(response) => response,
        Err(panic) => {
            let what = panic
                .downcast_ref::<&str>()
                .map(|s| s.to_string())
                .or_else(|| panic.downcast_ref::<String>().cloned())
                .unwrap_or_else(|| "a panic".into());
            tracing::error!("a request handler panicked: {what}");
            ApiError(StatusCode::INTERNAL_SERVER_ERROR, "internal error while answering this request".into())
                .into_response()
        }
    }
}

/// Error answers made below without a JSON body (405 from the router, for example) get one;
/// their headers are kept (the router adds `Allow` to a 405 above this layer).
async fn json_errors(req: Request, next: Next) -> Response {
    let response = next.run(req).await;
    let status = response.status();
    if !(status.is_client_error() || status.is_server_error()) {
        return response;
    }
    let json =
        response.headers().get(header::CONTENT_TYPE).is_some_and(|v| v.as_bytes().starts_with(b"application/json"));
    if json {
        return response;
    }
    let (parts, _) = response.into_parts();
    let reason = status.canonical_reason().unwrap_or("error");
    let message = match parts.headers.get(header::ALLOW).and_then(|a| a.to_str().ok()) {
        Some(allowed) if status == StatusCode::METHOD_NOT_ALLOWED => format!("{reason} (allowed: {allowed})"),
        _ => reason.to_string(),
    };
    let mut answer = ApiError(status, message).into_response();
    for (name, value) in
        parts.headers.iter().filter(|(n, _)| *n != header::CONTENT_TYPE && *n != header::CONTENT_LENGTH)
    {
        answer.headers_mut().insert(name.clone(), value.clone());
    }
    answer
}

/// The request target, the headers and the body within their limits; the body read whole
/// within the body timeout (a client that stops sending gets 408, not a held connection).
async fn limit(State(l): State<Arc<Limits>>, req: Request, next: Next) -> Response {
    let target = req.uri().path_and_query().map_or(0, |p| p.as_str().len());
    if target > l.max_uri_bytes {
        let msg = format!("the request target is {target} bytes, over the limit of {}", l.max_uri_bytes);
        return ApiError(StatusCode::URI_TOO_LONG, msg).into_response();
    }
    let headers = req.headers();
    let header_bytes: usize = headers.iter().map(|(k, v)| k.as_str().len() + v.len()).sum();
    if headers.len() > l.max_headers || header_bytes > l.max_header_bytes {
        let msg = format!(
            "{} header fields of {header_bytes} bytes: the limits are {} fields and {} bytes",
            headers.len(),
            l.max_headers,
            l.max_header_bytes
        );
        return ApiError(StatusCode::REQUEST_HEADER_FIELDS_TOO_LARGE, msg).into_response();
    }
    let declared =
        headers.get(header::CONTENT_LENGTH).and_then(|v| v.to_str().ok()).and_then(|v| v.parse::<u64>().ok());
    if declared.is_some_and(|n| n > l.max_body_bytes as u64) {
        return too_large(l.max_body_bytes);
    }
    if declared == Some(0) || (declared.is_none() && !headers.contains_key(header::TRANSFER_ENCODING)) {
        return next.run(req).await;
    }
    let (parts, body) = req.into_parts();
    let read = tokio::time::timeout(Duration::from_secs_f64(l.body_timeout_s), read_body(body, l.max_body_bytes));
    match read.await {
        Err(_) => {
            let msg = format!("the request body did not arrive within {} s", l.body_timeout_s);
            ApiError(StatusCode::REQUEST_TIMEOUT, msg).into_response()
        }
        Ok(Err(e)) => e.into_response(),
        Ok(Ok(bytes)) => next.run(Request::from_parts(parts, Body::from(bytes))).await,
    }
}

fn too_large(max: usize) -> Response {
    ApiError(StatusCode::PAYLOAD_TOO_LARGE, format!("the request body is over the limit of {max} bytes"))
        .into_response()
}

async fn read_body(body: Body, max: usize) -> Result<Vec<u8>, Response> {
    let mut stream = body.into_data_stream();
    let mut out = Vec::new();
    while let Some(chunk) = stream.next().await {
        let chunk = chunk
            .map_err(|e| ApiError(StatusCode::BAD_REQUEST, format!("could not read the body: {e}")).into_response())?;
        if out.len() + chunk.len() > max {
            return Err(too_large(max));
        }
        out.extend_from_slice(&chunk);
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use axum::routing::get;
    use tokio::io::{AsyncReadExt, AsyncWriteExt};

    async fn boom() -> &'static str {
        panic!("a deliberate panic in a handler")
    }

    async fn get_raw(addr: std::net::SocketAddr, path: &str) -> String {
        let mut s = tokio::net::TcpStream::connect(addr).await.unwrap();
        s.write_all(format!("GET {path} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n").as_bytes()).await.unwrap();
        let mut out = Vec::new();
        s.read_to_end(&mut out).await.unwrap();
        String::from_utf8_lossy(&out).to_string()
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_panicking_handler_answers_a_json_500_and_the_server_goes_on() {
        let limits = Limits::default();
        let app = wrap(Router::new().route("/boom", get(boom)).route("/ok", get(|| async { "ok" })), &limits);
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
        let server = tokio::spawn(async move {
            super::super::listen::serve(listener, app, &limits, async {
                let _ = stopped.await;
            })
            .await
        });
        for _ in 0..2 {
            let answer = get_raw(addr, "/boom").await;
            assert!(answer.starts_with("HTTP/1.1 500"), "{answer}");
            let body = answer.split_once("\r\n\r\n").map(|(_, b)| b).unwrap_or("");
            let v: serde_json::Value = serde_json::from_str(body).unwrap();
            assert_eq!(v["error"]["status"], 500, "{v}");
            assert!(get_raw(addr, "/ok").await.ends_with("\r\n\r\nok"));
        }
        stop.send(()).unwrap();
        server.await.unwrap().unwrap();
    }
}
