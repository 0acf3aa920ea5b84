//! `Reader`: top-k and popular items from the exported catalogue, over a primary and its
//! replicas.

use crate::name::TableName;
use crate::{CATALOG_TABLE, Error, Result};
use deadpool_postgres::{HookError, Manager, ManagerConfig, Pool, RecyclingMethod, Runtime};
use serde::{Deserialize, Serialize};
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::time::{Duration, Instant};
use tokio_postgres::NoTls;
use tokio_postgres::types::ToSql;

/// Settings of a [`Reader`].
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct ReaderConfig {
    /// `hnsw.ef_search`: candidates the HNSW scan keeps (1..=1000; pgvector's default is 40).
    pub ef_search: u32,
    /// Connections per server (1..=1000).
    pub pool_size: usize,
    /// Connecting, and waiting for a free connection, in milliseconds.
    pub connect_timeout_ms: u64,
    /// `statement_timeout` of every query, in milliseconds.
    pub statement_timeout_ms: u64,
    /// A server that failed is tried after the others for this long, in milliseconds.
    pub retry_after_ms: u64,
}

impl Default for ReaderConfig {
    fn default() -> Self {
        ReaderConfig {
            ef_search: 100,
            pool_size: 16,
            connect_timeout_ms: 2000,
            statement_timeout_ms: 5000,
            retry_after_ms: 1000,
        }
    }
}

impl ReaderConfig {
    /// Checks every value's range.
    pub fn validate(&self) -> Result<()> {
        let check = |what: &'static str, v: u64, lo: u64, hi: u64| {
            if (lo..=hi).contains(&v) {
                Ok(())
            } else {
                Err(Error::config(what, format!("{v} (expected {lo}..={hi})")))
            }
        };
        check("ef_search", self.ef_search.into(), 1, 1000)?;
        check("pool_size", self.pool_size as u64, 1, 1000)?;
        check("connect_timeout_ms", self.connect_timeout_ms, 1, 600_000)?;
        check("statement_timeout_ms", self.statement_timeout_ms, 1, 3_600_000)?;
        check("retry_after_ms", self.retry_after_ms, 0, 3_600_000)
    }
}

/// One item found.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Hit {
    /// Item id.
    pub id: String,
    /// Title.
    pub title: String,
    /// Inner product with the query, or the popularity for popular items.
    pub score: f32,
}

/// The version of a catalogue that readers see (`towers_catalog`).
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct CatalogVersion {
    /// Catalogue (view) name.
    pub name: String,
    /// Version number, one more at each export.
    pub version: i64,
    /// Its table.
    pub version_table: String,
    /// Embedding width.
    pub dim: i32,
    /// Rows.
    pub items: i64,
    /// The model version the exporter recorded.
    pub model: String,
    /// When the switch committed.
    pub exported_at: String,
}

/// Which server a connection goes to.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Role {
    /// The server exports write to.
    Primary,
    /// A read-only streaming replica.
    Replica,
}

#[derive(Debug)]
struct Server {
    role: Role,
    address: String,
    pool: Pool,
    /// Milliseconds since the reader started until which this server is tried last.
    down_until: AtomicU64,
}

/// Reads a catalogue from a primary and its replicas: replicas in turn, the primary when
/// there are none or none answers. Connections are pooled per server and re-made after a
/// server restarts.
#[derive(Debug)]
pub struct Reader {
    table: TableName,
    config: ReaderConfig,
    servers: Vec<Server>,
    next: AtomicUsize,
    start: Instant,
    search_sql: String,
    popular_sql: String,
}

/// Builds a [`Reader`]: `Reader::builder(primary).replica(url).table(name).config(c).build()`.
#[derive(Debug, Clone)]
pub struct ReaderBuilder {
    primary: String,
    replicas: Vec<String>,
    table: TableName,
    config: ReaderConfig,
}

impl ReaderBuilder {
    /// Adds a read replica.
    pub fn replica(mut self, url: impl Into<String>) -> Self {
        self.replicas.push(url.into());
        self
    }

    /// The catalogue to read (default `towers_items`).
    pub fn table(mut self, table: TableName) -> Self {
        self.table = table;
        self
    }

    /// Pool and search settings.
    pub fn config(mut self, config: ReaderConfig) -> Self {
        self.config = config;
        self
    }

    /// Checks the settings and URLs and makes the pools; nothing connects until the first
    /// query, so a database that is down now is not an error here.
    pub fn build(self) -> Result<Reader> {
        self.config.validate()?;
        let mut servers = vec![server(Role::Primary, &self.primary, &self.config)?];
        for r in &self.replicas {
            servers.push(server(Role::Replica, r, &self.config)?);
        }
        let view = self.table.view();
        Ok(Reader {
            search_sql: format!(
                "SELECT id, title, (-(embedding <#> $1))::real FROM {view} WHERE id <> ALL($2) \
                 ORDER BY embedding <#> $1 LIMIT $3"
            ),
            popular_sql: format!(
                "SELECT id, title, popularity FROM {view} WHERE id <> ALL($1) ORDER BY popularity DESC, pos LIMIT $2"
            ),
            table: self.table,
            config: self.config,
            servers,
            next: AtomicUsize::new(0),
            start: Instant::now(),
        })
    }
}

/// `postgresql://user:secret@host:5432/db` → `host:5432/db`: what logs and `/v1/model` show.
fn redact(url: &str) -> String {
    let rest = url.split_once("://").map_or(url, |(_, r)| r);
    rest.rsplit_once('@').map_or(rest, |(_, r)| r).to_string()
}

fn server(role: Role, url: &str, c: &ReaderConfig) -> Result<Server> {
    let mut pg: tokio_postgres::Config = url
        .parse()
        .map_err(|e: tokio_postgres::Error| Error::config("PostgreSQL URL", format!("{}: {e}", redact(url))))?;
    let timeout = Duration::from_millis(c.connect_timeout_ms);
    pg.connect_timeout(timeout).application_name("towers serve");
    let manager = Manager::from_config(pg, NoTls, ManagerConfig { recycling_method: RecyclingMethod::Fast });
    // numbers only (validated): these settings cannot be parameters
    let settings = format!(
        "SET statement_timeout = {}; SET hnsw.ef_search = {}; SET hnsw.iterative_scan = strict_order",
        c.statement_timeout_ms, c.ef_search
    );
    let pool = Pool::builder(manager)
        .max_size(c.pool_size)
        .runtime(Runtime::Tokio1)
        .wait_timeout(Some(timeout))
        .create_timeout(Some(timeout))
        .recycle_timeout(Some(timeout))
        .post_create(deadpool_postgres::Hook::async_fn(move |client, _| {
            let settings = settings.clone();
            Box::pin(async move { client.batch_execute(&settings).await.map_err(HookError::Backend) })
        }))
        .build()
        .map_err(|e| Error::config("connection pool", e.to_string()))?;
    Ok(Server { role, address: redact(url), pool, down_until: AtomicU64::new(0) })
}

impl Server {
    async fn query(&self, sql: &str, params: &[&(dyn ToSql + Sync)]) -> Result<Vec<tokio_postgres::Row>> {
        let client = self.pool.get().await?;
        let statement = client.prepare_cached(sql).await?;
        Ok(client.query(&statement, params).await?)
    }
}

fn hits(rows: &[tokio_postgres::Row]) -> Result<Vec<Hit>> {
    let bad = |e: tokio_postgres::Error| Error::Database(format!("unexpected row: {e}"));
    rows.iter()
        .map(|r| {
            Ok(Hit {
                id: r.try_get(0).map_err(bad)?,
                title: r.try_get(1).map_err(bad)?,
                score: r.try_get(2).map_err(bad)?,
            })
        })
        .collect()
}

impl Reader {
    /// Reads from the database at `primary` (`postgresql://…`).
    pub fn builder(primary: impl Into<String>) -> ReaderBuilder {
        ReaderBuilder {
            primary: primary.into(),
            replicas: Vec::new(),
            table: TableName::default(),
            config: ReaderConfig::default(),
        }
    }

    /// The catalogue read.
    pub fn table(&self) -> &TableName {
        &self.table
    }

    /// The settings.
    pub fn config(&self) -> &ReaderConfig {
        &self.config
    }

    /// The servers, primary first: role and `host:port/db`.
    pub fn servers(&self) -> Vec<(Role, String)> {
        self.servers.iter().map(|s| (s.role, s.address.clone())).collect()
    }

    /// The `k` items with the largest inner product with `query`, best first, none of
    /// `exclude` (ids). With the iterative scan, exclusions still leave `k` items when the
    /// catalogue has them.
    pub async fn search(&self, query: &[f32], k: usize, exclude: &[String]) -> Result<Vec<Hit>> {
        let v = pgvector::Vector::from(query.to_vec());
        let k = k as i64;
        hits(&self.query(&self.search_sql, &[&v, &exclude, &k]).await?)
    }

    /// The `k` most popular items, none of `exclude`; ties in the model's row order.
    pub async fn popular(&self, k: usize, exclude: &[String]) -> Result<Vec<Hit>> {
        let k = k as i64;
        hits(&self.query(&self.popular_sql, &[&exclude, &k]).await?)
    }

    /// The catalogue's current version, `None` if it was never exported.
    pub async fn version(&self) -> Result<Option<CatalogVersion>> {
        let sql = format!(
            "SELECT name, version, version_table, dim, items, model, exported_at::text FROM {CATALOG_TABLE} WHERE name = $1"
        );
        let rows = self.query(&sql, &[&self.table.as_str()]).await?;
        let bad = |e: tokio_postgres::Error| Error::Database(format!("unexpected row in {CATALOG_TABLE}: {e}"));
        rows.first()
            .map(|r| {
                Ok(CatalogVersion {
                    name: r.try_get(0).map_err(bad)?,
                    version: r.try_get(1).map_err(bad)?,
                    version_table: r.try_get(2).map_err(bad)?,
                    dim: r.try_get(3).map_err(bad)?,
                    items: r.try_get(4).map_err(bad)?,
                    model: r.try_get(5).map_err(bad)?,
                    exported_at: r.try_get(6).map_err(bad)?,
                })
            })
            .transpose()
    }

    fn now_ms(&self) -> u64 {
        self.start.elapsed().as_millis() as u64
    }

    /// Servers in the order to try: replicas that answered lately, in turn; the primary; then
    /// replicas that failed within `retry_after_ms`.
    fn order(&self) -> Vec<&Server> {
        let now = self.now_ms();
        let replicas = &self.servers[1..];
        let start = if replicas.is_empty() { 0 } else { self.next.fetch_add(1, Ordering::Relaxed) % replicas.len() };
        let turn = replicas[start..].iter().chain(&replicas[..start]);
        let (up, down): (Vec<&Server>, Vec<&Server>) = turn.partition(|s| s.down_until.load(Ordering::Relaxed) <= now);
        up.into_iter().chain(std::iter::once(&self.servers[0])).chain(down).collect()
    }

    /// Runs a read on the first server that answers.
    async fn query(&self, sql: &str, params: &[&(dyn ToSql + Sync)]) -> Result<Vec<tokio_postgres::Row>> {
        let mut last = None;
        for s in self.order() {
            match s.query(sql, params).await {
                Ok(rows) => {
                    s.down_until.store(0, Ordering::Relaxed);
                    return Ok(rows);
                }
                Err(e) => {
                    if e.is_unavailable() {
                        s.down_until.store(self.now_ms() + self.config.retry_after_ms, Ordering::Relaxed);
                        // connections the server closed are not handed out again
                        s.pool.retain(|c, _| !c.is_closed());
                    }
                    tracing::debug!(server = %s.address, role = ?s.role, "read failed: {e}");
                    last = Some(e);
                }
            }
        }
        Err(last.unwrap_or_else(|| Error::Unavailable("no server".into())))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urls_are_shown_without_credentials() {
        assert_eq!(redact("postgresql://u:secret@db:5432/towers"), "db:5432/towers");
        assert_eq!(redact("postgres://db/towers"), "db/towers");
    }

    #[test]
    fn bad_settings_and_urls_are_refused_without_connecting() {
        let bad = ReaderConfig { ef_search: 0, ..Default::default() };
        assert!(matches!(Reader::builder("postgresql://x/y").config(bad).build(), Err(Error::Config { .. })));
        assert!(matches!(Reader::builder("not a url").build(), Err(Error::Config { .. })));
    }

    #[tokio::test]
    async fn a_server_that_is_not_there_is_unavailable() {
        // a port nobody listens on (bound, then closed)
        let port = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
        let r = Reader::builder(format!("postgresql://postgres@127.0.0.1:{port}/towers")).build().unwrap();
        let e = r.search(&[1.0, 2.0], 3, &[]).await.unwrap_err();
        assert!(e.is_unavailable(), "{e}");
    }
}
