//! `Exporter`: a catalogue into a new versioned table, its indexes, then an atomic switch of
//! the readers' view.

use crate::name::TableName;
use crate::{CATALOG_TABLE, Error, Result};
use serde::{Deserialize, Serialize};
use std::pin::pin;
use std::time::Instant;
use tokio_postgres::binary_copy::BinaryCopyInWriter;
use tokio_postgres::{Client, NoTls};

/// Largest dimension pgvector's HNSW index takes for `vector`.
pub const MAX_DIM: usize = 2000;

/// The candidates to export, borrowed: one entry per candidate (a model's OOV row left out),
/// in the model's row order, which breaks ties of popularity.
#[derive(Debug, Clone, Copy)]
pub struct Catalogue<'a> {
    ids: &'a [String],
    titles: &'a [String],
    popularity: &'a [f32],
    embeddings: &'a [f32],
    dim: usize,
}

impl<'a> Catalogue<'a> {
    /// Checks that the lengths agree (`embeddings` is `ids.len() × dim`, row-major) and that
    /// every number is finite.
    pub fn new(
        ids: &'a [String],
        titles: &'a [String],
        popularity: &'a [f32],
        embeddings: &'a [f32],
        dim: usize,
    ) -> Result<Self> {
        let n = ids.len();
        if n == 0 {
            return Err(Error::Data("the catalogue is empty".into()));
        }
        if !(1..=MAX_DIM).contains(&dim) {
            return Err(Error::Data(format!("dimension {dim}: pgvector's HNSW index takes 1..={MAX_DIM}")));
        }
        if titles.len() != n || popularity.len() != n || embeddings.len() != n * dim {
            return Err(Error::Data(format!(
                "{n} ids but {} titles, {} popularity values and {} embedding values (dim {dim})",
                titles.len(),
                popularity.len(),
                embeddings.len()
            )));
        }
        if n > i32::MAX as usize {
            return Err(Error::Data(format!("{n} candidates: at most {} can be exported", i32::MAX)));
        }
        if let Some(i) = embeddings.iter().position(|v| !v.is_finite()) {
            return Err(Error::Data(format!("candidate '{}' has a non-finite embedding value", ids[i / dim])));
        }
        if let Some(i) = popularity.iter().position(|v| !v.is_finite()) {
            return Err(Error::Data(format!("candidate '{}' has a non-finite popularity", ids[i])));
        }
        Ok(Catalogue { ids, titles, popularity, embeddings, dim })
    }

    /// Candidates.
    pub fn len(&self) -> usize {
        self.ids.len()
    }

    /// Never true: an empty catalogue is refused.
    pub fn is_empty(&self) -> bool {
        self.ids.is_empty()
    }

    /// Embedding width.
    pub fn dim(&self) -> usize {
        self.dim
    }
}

/// Settings of an export, with pgvector's defaults for the index.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct ExportConfig {
    /// HNSW: neighbours per node (pgvector: 2..=100, default 16).
    pub m: u32,
    /// HNSW: candidate list while building (4..=1000, at least 2·m; default 64).
    pub ef_construction: u32,
    /// Memory for building the index, in MiB (the graph should fit: ~1 GiB for 1M × 32).
    pub maintenance_work_mem_mb: u32,
    /// How long the switch and the drops of old versions wait for readers' locks, in seconds.
    pub lock_timeout_s: u32,
}

impl Default for ExportConfig {
    fn default() -> Self {
        ExportConfig { m: 16, ef_construction: 64, maintenance_work_mem_mb: 1024, lock_timeout_s: 30 }
    }
}

impl ExportConfig {
    /// Checks every value's range.
    pub fn validate(&self) -> Result<()> {
        if !(2..=100).contains(&self.m) {
            return Err(Error::config("m", format!("{} (pgvector takes 2..=100)", self.m)));
        }
        if !(4..=1000).contains(&self.ef_construction) || self.ef_construction < 2 * self.m {
            return Err(Error::config(
                "ef_construction",
                format!("{} (4..=1000 and at least 2·m)", self.ef_construction),
            ));
        }
        if !(64..=65536).contains(&self.maintenance_work_mem_mb) {
            return Err(Error::config(
                "maintenance_work_mem_mb",
                format!("{} (64..=65536)", self.maintenance_work_mem_mb),
            ));
        }
        if !(1..=3600).contains(&self.lock_timeout_s) {
            return Err(Error::config("lock_timeout_s", format!("{} (1..=3600)", self.lock_timeout_s)));
        }
        Ok(())
    }
}

/// What an export did.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ExportReport {
    /// The view readers query.
    pub table: String,
    /// The version now serving.
    pub version: i64,
    /// Its table.
    pub version_table: String,
    /// Rows written.
    pub items: u64,
    /// Embedding width.
    pub dim: usize,
    /// Seconds of the whole export.
    pub seconds: f64,
    /// Seconds of the COPY.
    pub copy_s: f64,
    /// Seconds building the indexes (primary key, popularity, HNSW).
    pub index_s: f64,
    /// Bytes of the table (heap and TOAST).
    pub table_bytes: i64,
    /// Bytes of its indexes.
    pub index_bytes: i64,
    /// Older version tables dropped after the switch.
    pub dropped: Vec<String>,
}

/// Writes a catalogue as a new version and switches readers to it.
#[derive(Debug, Clone)]
pub struct Exporter {
    url: String,
    table: TableName,
    model_version: String,
    config: ExportConfig,
}

/// Connects and drives the connection on the current tokio runtime.
pub(crate) async fn connect(url: &str) -> Result<Client> {
    let config: tokio_postgres::Config =
        url.parse().map_err(|e: tokio_postgres::Error| Error::config("PostgreSQL URL", e.to_string()))?;
    let (client, connection) = config.connect(NoTls).await?;
    tokio::spawn(async move {
        if let Err(e) = connection.await {
            tracing::debug!("postgres connection ended: {e}");
        }
    });
    Ok(client)
}

impl Exporter {
    /// Exports into the catalogue `table` of the database at `url` (`postgresql://…`).
    pub fn new(url: impl Into<String>, table: TableName) -> Self {
        Exporter { url: url.into(), table, model_version: String::new(), config: ExportConfig::default() }
    }

    /// Records which model the embeddings come from (shown by readers).
    pub fn model_version(mut self, version: impl Into<String>) -> Self {
        self.model_version = version.into();
        self
    }

    /// Index and lock settings.
    pub fn config(mut self, config: ExportConfig) -> Self {
        self.config = config;
        self
    }

    /// Runs the export. Safe to re-run, and serialised per catalogue name (an advisory lock):
    /// each run writes a new version; until the switch commits, readers see the previous one,
    /// and a failure before it removes the new table and leaves the previous version serving.
    pub async fn run(&self, catalogue: &Catalogue<'_>) -> Result<ExportReport> {
        self.config.validate()?;
        let start = Instant::now();
        let client = connect(&self.url).await?;
        let t = &self.table;
        client.execute("SELECT pg_advisory_lock(hashtextextended($1, 0))", &[&format!("towers:{t}")]).await?;
        setup(&client).await?;
        let kind: Option<i8> = client
            .query_opt(
                "SELECT relkind FROM pg_class WHERE relname = $1 \
                 AND relnamespace = current_schema()::regnamespace",
                &[&t.as_str()],
            )
            .await?
            .map(|r| r.get(0));
        if kind.is_some_and(|k| k as u8 != b'v') {
            return Err(Error::config("table name", format!("'{t}' exists and is not a towers catalogue view")));
        }
        let current: Option<i64> = client
            .query_opt(&format!("SELECT version FROM {CATALOG_TABLE} WHERE name = $1"), &[&t.as_str()])
            .await?
            .map(|r| r.get(0));
        let existing = version_tables(&client, t).await?;
        let version = existing.iter().map(|(v, _)| *v).chain(current).max().unwrap_or(0) + 1;
        for (v, name) in &existing {
            if Some(*v) != current {
                // left by a failed export: never served
                client.batch_execute(&format!("DROP TABLE IF EXISTS \"{name}\"")).await?;
            }
        }
        let vt = t.version_table(version);
        let (copy_s, index_s) = match self.write(&client, &vt, catalogue).await {
            Ok(times) => times,
            Err(e) => {
                let _ = client.batch_execute(&format!("DROP TABLE IF EXISTS \"{vt}\"")).await;
                return Err(e);
            }
        };
        if let Err(e) = self.switch(&client, &vt, version, catalogue).await {
            let _ = client.batch_execute("ROLLBACK").await;
            let _ = client.batch_execute(&format!("DROP TABLE IF EXISTS \"{vt}\"")).await;
            return Err(e);
        }
        let mut dropped = Vec::new();
        for (v, name) in existing {
            if v != version {
                match client.batch_execute(&format!("DROP TABLE IF EXISTS \"{name}\"")).await {
                    Ok(()) => dropped.push(name),
                    Err(e) => tracing::warn!("could not drop the old version {name} (dropped at the next export): {e}"),
                }
            }
        }
        let sizes = client
            .query_one("SELECT pg_table_size($1::text::regclass), pg_indexes_size($1::text::regclass)", &[&vt])
            .await?;
        Ok(ExportReport {
            table: t.to_string(),
            version,
            version_table: vt,
            items: catalogue.len() as u64,
            dim: catalogue.dim,
            seconds: start.elapsed().as_secs_f64(),
            copy_s,
            index_s,
            table_bytes: sizes.get(0),
            index_bytes: sizes.get(1),
            dropped,
        })
    }

    /// The new table, its rows and its indexes: (copy seconds, index seconds).
    async fn write(&self, client: &Client, vt: &str, c: &Catalogue<'_>) -> Result<(f64, f64)> {
        let q = format!("\"{vt}\"");
        client
            .batch_execute(&format!(
                "CREATE TABLE {q} (pos integer NOT NULL, id text NOT NULL, title text NOT NULL, \
                 popularity real NOT NULL, embedding vector({}) NOT NULL)",
                c.dim
            ))
            .await?;
        let start = Instant::now();
        let types: Vec<_> = client
            .prepare(&format!("SELECT pos, id, title, popularity, embedding FROM {q}"))
            .await?
            .columns()
            .iter()
            .map(|c| c.type_().clone())
            .collect();
        let sink = client
            .copy_in(&format!("COPY {q} (pos, id, title, popularity, embedding) FROM STDIN (FORMAT binary)"))
            .await?;
        let mut writer = pin!(BinaryCopyInWriter::new(sink, &types));
        for i in 0..c.len() {
            let v = pgvector::Vector::from(c.embeddings[i * c.dim..(i + 1) * c.dim].to_vec());
            let pos = i as i32;
            writer.as_mut().write(&[&pos, &c.ids[i], &c.titles[i], &c.popularity[i], &v]).await?;
        }
        writer.finish().await?;
        let copy_s = start.elapsed().as_secs_f64();
        let start = Instant::now();
        let mem = format!("{}MB", self.config.maintenance_work_mem_mb);
        client.execute("SELECT set_config('maintenance_work_mem', $1, false)", &[&mem]).await?;
        client
            .batch_execute(&format!(
                "ALTER TABLE {q} ADD PRIMARY KEY (id); \
                 CREATE INDEX ON {q} (popularity DESC, pos); \
                 CREATE INDEX ON {q} USING hnsw (embedding vector_ip_ops) WITH (m = {}, ef_construction = {}); \
                 ANALYZE {q}",
                self.config.m, self.config.ef_construction
            ))
            .await?;
        Ok((copy_s, start.elapsed().as_secs_f64()))
    }

    /// One transaction: the view points at the new table and the catalogue row says so.
    async fn switch(&self, client: &Client, vt: &str, version: i64, c: &Catalogue<'_>) -> Result<()> {
        let view = self.table.view();
        client.batch_execute("BEGIN").await?;
        let lock = format!("{}s", self.config.lock_timeout_s);
        client.execute("SELECT set_config('lock_timeout', $1, true)", &[&lock]).await?;
        client
            .batch_execute(&format!(
                "DROP VIEW IF EXISTS {view}; \
                 CREATE VIEW {view} AS SELECT pos, id, title, popularity, embedding FROM \"{vt}\""
            ))
            .await?;
        client
            .execute(
                &format!(
                    "INSERT INTO {CATALOG_TABLE} (name, version, version_table, dim, items, model) \
                     VALUES ($1, $2, $3, $4, $5, $6) ON CONFLICT (name) DO UPDATE SET \
                     version = EXCLUDED.version, version_table = EXCLUDED.version_table, dim = EXCLUDED.dim, \
                     items = EXCLUDED.items, model = EXCLUDED.model, exported_at = now()"
                ),
                &[&self.table.as_str(), &version, &vt, &(c.dim as i32), &(c.len() as i64), &self.model_version],
            )
            .await?;
        client.batch_execute("COMMIT").await?;
        Ok(())
    }
}

/// The extension and the catalogue table, created once (serialised across exporters).
async fn setup(client: &Client) -> Result<()> {
    client
        .batch_execute(&format!(
            "BEGIN; SELECT pg_advisory_xact_lock(hashtextextended('towers:setup', 0)); \
             CREATE EXTENSION IF NOT EXISTS vector; \
             CREATE TABLE IF NOT EXISTS {CATALOG_TABLE} (name text PRIMARY KEY, version bigint NOT NULL, \
             version_table text NOT NULL, dim integer NOT NULL, items bigint NOT NULL, model text NOT NULL, \
             exported_at timestamptz NOT NULL DEFAULT now()); COMMIT"
        ))
        .await
        .map_err(|e| {
            let e = Error::from(e);
            match e {
                Error::Database(m) => Error::Database(format!("{m}; is pgvector installed (CREATE EXTENSION vector)?")),
                e => e,
            }
        })
}

/// The version tables of a catalogue in the current schema: (version, table name).
async fn version_tables(client: &Client, t: &TableName) -> Result<Vec<(i64, String)>> {
    let rows = client
        .query(
            "SELECT relname::text FROM pg_class WHERE relkind IN ('r', 'p') \
             AND relnamespace = current_schema()::regnamespace AND starts_with(relname::text, $1)",
            &[&t.as_str()],
        )
        .await?;
    let mut out: Vec<(i64, String)> = rows
        .iter()
        .filter_map(|r| {
            let name: String = r.get(0);
            t.version_of(&name).map(|v| (v, name))
        })
        .collect();
    out.sort();
    Ok(out)
}
