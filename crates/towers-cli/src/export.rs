//! `towers export`: a model's candidates into PostgreSQL + pgvector, as a new version of a
//! catalogue that `towers serve --postgres` reads (see the `towers-postgres` crate).

use clap::Args as ClapArgs;
use std::path::PathBuf;
use towers::{Artifact, Error};
use towers_postgres::{Catalogue, ExportConfig, Exporter, TableName};

/// Options of `towers export`.
#[derive(ClapArgs, Debug)]
pub struct Args {
    /// Model directory written by `towers train --out`.
    #[arg(long)]
    pub model: PathBuf,
    /// The database: postgresql://user@host:port/dbname (pgvector installed).
    #[arg(long, value_name = "URL")]
    pub postgres: String,
    /// Catalogue name: the view readers query; versions are tables NAME_v1, NAME_v2, …
    /// (a-z, 0-9 and _, at most 40 characters).
    #[arg(long, default_value = "towers_items")]
    pub table: String,
    /// HNSW neighbours per node (2..=100).
    #[arg(long, default_value_t = 16)]
    pub m: u32,
    /// HNSW candidate list while building (4..=1000, at least 2·m).
    #[arg(long, default_value_t = 64)]
    pub ef_construction: u32,
    /// Memory for building the index, in MiB (64..=65536).
    #[arg(long, default_value_t = 1024)]
    pub maintenance_work_mem_mb: u32,
    /// Print the report as one line of JSON.
    #[arg(long)]
    pub json: bool,
}

pub fn run(a: Args) -> towers::Result<()> {
    let table = TableName::new(&a.table)?;
    let config = ExportConfig {
        m: a.m,
        ef_construction: a.ef_construction,
        maintenance_work_mem_mb: a.maintenance_work_mem_mb,
        ..Default::default()
    };
    config.validate()?;
    let artifact = Artifact::load(&a.model)?;
    let version = artifact.version();
    let (d, items) = (artifact.dim(), &artifact.items);
    // row 0 is the OOV slot: never a candidate
    let n = items.len().min(artifact.popularity.len());
    if n < 2 || artifact.candidates.len() < n * d {
        return Err(Error::artifact(&a.model, "no candidates to export"));
    }
    let catalogue = Catalogue::new(
        &items.ids[1..n],
        &items.titles[1..n],
        &artifact.popularity[1..n],
        &artifact.candidates[d..n * d],
        d,
    )?;
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(|e| Error::io("tokio runtime", e))?;
    let report =
        rt.block_on(Exporter::new(&a.postgres, table).model_version(version.clone()).config(config).run(&catalogue))?;
    if a.json {
        crate::common::print_json(&report)?;
    } else {
        crate::outln!(
            "exported {} items × {} of model {version} to '{}' version {} ({}) in {:.2} s (copy {:.2} s, indexes {:.2} s); \
             table {:.1} MiB, indexes {:.1} MiB",
            report.items,
            report.dim,
            report.table,
            report.version,
            report.version_table,
            report.seconds,
            report.copy_s,
            report.index_s,
            report.table_bytes as f64 / (1 << 20) as f64,
            report.index_bytes as f64 / (1 << 20) as f64,
        )?;
    }
    Ok(())
}
