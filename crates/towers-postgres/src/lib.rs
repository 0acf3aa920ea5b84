//! # towers-postgres — PostgreSQL + pgvector as the candidate store of towers
//!
//! When one process is not enough, the candidate embeddings of a model live in a database that
//! many servers share and that scales with its own tools (replicas). This crate holds everything
//! that speaks to PostgreSQL, so that the core `towers` crate stays free of database code:
//!
//! - [`Exporter`] writes a catalogue (ids, titles, popularity, embeddings as `vector(dim)`) with
//!   `COPY … (FORMAT binary)` into a new versioned table `NAME_vN`, builds its HNSW index over
//!   `vector_ip_ops`, then, in one transaction, points the view `NAME` at it and records the
//!   version in `towers_catalog`; older versions are dropped after the switch. A failure before the
//!   switch leaves the previous version serving.
//! - [`Reader`] answers top-k queries (`ORDER BY embedding <#> $1 LIMIT $3`, exclusions as a
//!   parameterised `id <> ALL($2)`, `hnsw.iterative_scan` on) and popular items, spreading reads
//!   over replicas and falling back to the primary; a server that cannot be reached is an
//!   [`Error::Unavailable`], never a panic, and the pools reconnect by themselves.
//!
//! - [`PgStore`] is a [`Reader`] as the `towers` library's `CandidateStore`: `Served::with_store`
//!   answers a model's queries from it (the query tower runs in the caller's process).
//!
//! Table names are validated ([`TableName`]); every value travels as a query parameter or in the
//! binary COPY stream, never inside SQL text.
//!
//! ```no_run
//! # async fn demo() -> Result<(), towers_postgres::Error> {
//! use towers_postgres::{Catalogue, Exporter, Reader, TableName};
//! let table = TableName::new("towers_items")?;
//! let ids = vec!["1".to_string(), "2".to_string()];
//! let titles = vec!["Toy Story".to_string(), "GoldenEye".to_string()];
//! let catalogue = Catalogue::new(&ids, &titles, &[10.0, 3.0], &[1.0, 0.0, 0.0, 1.0], 2)?;
//! let report = Exporter::new("postgresql://postgres@127.0.0.1:5432/towers", table.clone())
//!     .model_version("abc123")
//!     .run(&catalogue)
//!     .await?;
//! println!("version {} in {:.1} s", report.version, report.seconds);
//! let reader = Reader::builder("postgresql://postgres@127.0.0.1:5432/towers").table(table).build()?;
//! let hits = reader.search(&[1.0, 0.0], 10, &[]).await?;
//! # Ok(()) }
//! ```

#![warn(missing_docs)]

mod error;
mod export;
mod name;
mod reader;
mod store;

pub use error::{Error, Result};
pub use export::{Catalogue, ExportConfig, ExportReport, Exporter};
pub use name::TableName;
pub use reader::{CatalogVersion, Hit, Reader, ReaderBuilder, ReaderConfig, Role};
pub use store::PgStore;

/// The table that records, per catalogue name, the version readers see.
pub const CATALOG_TABLE: &str = "towers_catalog";
