//! Connections: HTTP/1.1 on hyper with a header read timeout and a cap on a request head, and a
//! bounded shutdown — once `stop` resolves, no new connections are accepted, requests in flight
//! may finish for at most the shutdown timeout, and then the server returns whatever clients
//! are still doing (stuck mid-headers or mid-body included).

use super::Limits;
use axum::Router;
use hyper::server::conn::http1;
use hyper_util::rt::{TokioIo, TokioTimer};
use hyper_util::server::graceful::GracefulShutdown;
use hyper_util::service::TowerToHyperService;
use std::future::Future;
use std::pin::pin;
use std::time::Duration;
use tokio::net::TcpListener;

/// The most a request head may take in hyper's buffer; the guards' own, smaller limits answer
/// with a JSON 414 or 431 before this is reached.
const MAX_HEAD_BYTES: usize = 1 << 20;

/// Serves `app` on `listener` until `stop` resolves, then shuts down within the limits.
pub async fn serve(
    listener: TcpListener,
    app: Router,
    limits: &Limits,
    stop: impl Future<Output = ()>,
) -> std::io::Result<()> {
    let mut http = http1::Builder::new();
    http.timer(TokioTimer::new())
        .header_read_timeout(Duration::from_secs_f64(limits.header_timeout_s))
        .max_buf_size(MAX_HEAD_BYTES)
        .max_headers(limits.max_headers * 2);
    let graceful = GracefulShutdown::new();
    let mut stop = pin!(stop);
    loop {
        tokio::select! {
            accepted = listener.accept() => {
                let stream = match accepted {
                    Ok((stream, _)) => stream,
                    Err(e) => {
                        // out of file descriptors and the like: wait a little, go on
                        tracing::warn!("accept failed: {e}");
                        tokio::time::sleep(Duration::from_millis(50)).await;
                        continue;
                    }
                };
                let _ = stream.set_nodelay(true);
                let connection = http.serve_connection(TokioIo::new(stream), TowerToHyperService::new(app.clone()));
                let connection = graceful.watch(connection);
                tokio::spawn(async move {
                    if let Err(e) = connection.await {
                        tracing::debug!("connection ended: {e}");
                    }
                });
            }
            _ = &mut stop => break,
        }
    }
    drop(listener);
    let bound = Duration::from_secs_f64(limits.shutdown_timeout_s);
    if tokio::time::timeout(bound, graceful.shutdown()).await.is_err() {
        tracing::warn!("connections still open {} s after the stop are dropped", limits.shutdown_timeout_s);
    }
    Ok(())
}
