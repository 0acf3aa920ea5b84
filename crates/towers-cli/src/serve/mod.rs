//! `towers serve`: an HTTP/JSON service over a saved model (axum on hyper + tokio).
//!
//! ```text
//! GET  /healthz                                   {"status":"ok"}
//! GET  /v1/model                                  the model, its version and the store answering
//! GET  /v1/recommend?user=42&k=10&exclude_seen=true
//! POST /v1/recommend  {"user":"42","k":10,"exclude_seen":true}   or, for sequential models,
//!                     {"history":["12","45","9"],"k":10}
//! GET  /v1/similar?item=50&k=10
//! POST /v1/events     {"user":"42","item":"50"}  (with --events: live histories)
//! GET  /metrics                                   Prometheus text format
//! ```
//! Top-k comes from the model's own index (exact or IVF) or, with `--postgres`, from a catalogue
//! exported to PostgreSQL + pgvector (`towers export`); the query tower always runs here.
//! Rooms: `http.rs` (routes and answers), `guard.rs` (limits, timeouts, JSON errors, panics,
//! metrics), `listen.rs` (connections, bounded shutdown), `state.rs` (the model and its hot
//! reload), `store.rs` (where top-k comes from), `events.rs` (live events).

mod events;
mod guard;
pub mod http;
mod listen;
mod state;
mod store;

use clap::Args as ClapArgs;
use serde::{Deserialize, Serialize};
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;
use towers::Error;
use towers::recommend::{Live, LiveConfig};

pub use http::router;
pub use listen::serve;
pub use state::App;

/// Options of `towers serve`.
#[derive(ClapArgs, Debug)]
pub struct Args {
    /// Model directory written by `towers train --out` (SIGHUP loads it again).
    #[arg(long)]
    pub model: PathBuf,
    /// Address to listen on (port 0: any free port; the address is printed).
    #[arg(long, default_value = "127.0.0.1:8080")]
    pub addr: String,
    /// Worker threads, 1..=1024 (default: one per core).
    #[arg(long, value_parser = clap::value_parser!(u16).range(1..=1024))]
    pub threads: Option<u16>,
    /// Search the exact index even when the model holds an approximate one.
    #[arg(long)]
    pub exact: bool,
    /// Top-k from this PostgreSQL + pgvector database (`towers export` first): postgresql://…
    #[arg(long, value_name = "URL")]
    pub postgres: Option<String>,
    /// A read replica of the --postgres database (repeatable): reads go to replicas in turn,
    /// to the primary when none answers.
    #[arg(long, value_name = "URL", requires = "postgres")]
    pub replica: Vec<String>,
    /// The exported catalogue to read (--postgres).
    #[arg(long, default_value = "towers_items", requires = "postgres")]
    pub table: String,
    /// hnsw.ef_search of the PostgreSQL queries, 1..=1000.
    #[arg(long, default_value_t = 100, requires = "postgres")]
    pub ef_search: u32,
    /// Connections per PostgreSQL server, 1..=1000.
    #[arg(long, default_value_t = 16, requires = "postgres")]
    pub pg_pool: usize,
    /// Keep users' live events (`POST /v1/events`) in this log: appended as they come, synced
    /// within a second, replayed at start-up, compacted. A sequential model then recommends
    /// for a user from their training history followed by their events.
    #[arg(long, value_name = "FILE")]
    pub events: Option<PathBuf>,
    /// With --events: events kept per user (the oldest dropped).
    #[arg(long, default_value_t = 100, requires = "events")]
    pub events_per_user: usize,
    /// With --events: users kept (the least recently active dropped).
    #[arg(long, default_value_t = 1_000_000, requires = "events")]
    pub events_users: usize,
    #[command(flatten)]
    pub limits: LimitArgs,
}

/// Timeouts as options (seconds), checked into [`Limits`].
#[derive(ClapArgs, Debug)]
pub struct LimitArgs {
    /// Seconds a client has to send a request's headers (0.1..=600).
    #[arg(long, default_value_t = 10.0)]
    pub header_timeout: f64,
    /// Seconds a client has to send a request's body (0.1..=600).
    #[arg(long, default_value_t = 10.0)]
    pub body_timeout: f64,
    /// On SIGTERM, seconds requests in flight may take before the server exits anyway (0.1..=600).
    #[arg(long, default_value_t = 10.0)]
    pub shutdown_timeout: f64,
}

/// The server's limits on what clients send and how long they take.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Limits {
    /// Largest request body (413 beyond).
    pub max_body_bytes: usize,
    /// Longest request target, path and query (414 beyond).
    pub max_uri_bytes: usize,
    /// Largest sum of header names and values (431 beyond).
    pub max_header_bytes: usize,
    /// Most header fields (431 beyond).
    pub max_headers: usize,
    /// Seconds to send the headers; the connection is closed after.
    pub header_timeout_s: f64,
    /// Seconds to send the body (408 after).
    pub body_timeout_s: f64,
    /// After SIGTERM, seconds for requests in flight before the server exits anyway.
    pub shutdown_timeout_s: f64,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            max_body_bytes: 64 * 1024,
            max_uri_bytes: 8 * 1024,
            max_header_bytes: 16 * 1024,
            max_headers: 100,
            header_timeout_s: 10.0,
            body_timeout_s: 10.0,
            shutdown_timeout_s: 10.0,
        }
    }
}

impl Limits {
    /// Checks every value's range.
    pub fn validate(&self) -> towers::Result<()> {
        for (name, v) in [
            ("header timeout", self.header_timeout_s),
            ("body timeout", self.body_timeout_s),
            ("shutdown timeout", self.shutdown_timeout_s),
        ] {
            if !(0.1..=600.0).contains(&v) {
                return Err(Error::Config(format!("{name}: {v} s is outside 0.1..=600")));
            }
        }
        for (name, v, lo, hi) in [
            ("max_body_bytes", self.max_body_bytes, 1, 1 << 30),
            ("max_uri_bytes", self.max_uri_bytes, 64, 64 * 1024),
            ("max_header_bytes", self.max_header_bytes, 1024, 512 * 1024),
            ("max_headers", self.max_headers, 8, 200),
        ] {
            if !(lo..=hi).contains(&v) {
                return Err(Error::Config(format!("{name}: {v} is outside {lo}..={hi}")));
            }
        }
        Ok(())
    }
}

impl LimitArgs {
    fn limits(&self) -> towers::Result<Limits> {
        let l = Limits {
            header_timeout_s: self.header_timeout,
            body_timeout_s: self.body_timeout,
            shutdown_timeout_s: self.shutdown_timeout,
            ..Limits::default()
        };
        l.validate()?;
        Ok(l)
    }
}

fn signal(kind: tokio::signal::unix::SignalKind) -> Option<tokio::signal::unix::Signal> {
    match tokio::signal::unix::signal(kind) {
        Ok(s) => Some(s),
        Err(e) => {
            tracing::warn!("cannot listen for signal {kind:?}: {e}");
            None
        }
    }
}

pub fn run(a: Args) -> towers::Result<()> {
    let limits = a.limits.limits()?;
    let mut rt = tokio::runtime::Builder::new_multi_thread();
    if let Some(t) = a.threads {
        rt.worker_threads(t.into());
    }
    let rt = rt.enable_all().build().map_err(|e| Error::io("tokio runtime", e))?;
    let result = rt.block_on(async {
        use tokio::signal::unix::SignalKind;
        let mut app = App::load(&a.model, a.exact, store::postgres(&a)?)?;
        if let Some(path) = &a.events {
            let config = LiveConfig { per_user: a.events_per_user, users: a.events_users, ..LiveConfig::default() };
            app.live = Some(Arc::new(Live::open(path, config)?));
        }
        let app = Arc::new(app);
        // handlers first: a SIGHUP or SIGTERM from now on never kills the process outright
        let mut hup = signal(SignalKind::hangup());
        let mut term = signal(SignalKind::terminate());
        app.start_metrics();
        app.check_store().await;
        let listener = tokio::net::TcpListener::bind(&a.addr).await.map_err(|e| Error::io(&a.addr, e))?;
        let addr = listener.local_addr().map_err(|e| Error::io(&a.addr, e))?;
        crate::outln!("towers serving {} on http://{addr}", a.model.display())?;
        use std::io::Write as _;
        let _ = std::io::stdout().flush();
        let reloader = app.clone();
        tokio::spawn(async move {
            let Some(hup) = hup.as_mut() else { return };
            while hup.recv().await.is_some() {
                let app = reloader.clone();
                let _ = tokio::task::spawn_blocking(move || app.reload()).await;
            }
        });
        let stop = async move {
            let term = async {
                match term.as_mut() {
                    Some(t) => {
                        t.recv().await;
                    }
                    None => std::future::pending().await,
                }
            };
            tokio::select! { _ = tokio::signal::ctrl_c() => {}, _ = term => {} }
            tracing::info!("shutting down: no new connections, requests in flight may finish");
        };
        serve(listener, router(app.clone(), &limits), &limits, stop).await.map_err(|e| Error::io(addr.to_string(), e))
    });
    // connections still open past the shutdown bound are dropped with the runtime
    rt.shutdown_timeout(Duration::from_millis(100));
    result?;
    crate::outln!("towers serve: stopped")?;
    Ok(())
}
