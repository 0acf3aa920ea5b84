//! `towers index build`: an approximate index saved in the model directory.

use crate::common::print_json;
use clap::{Args as ClapArgs, Subcommand, ValueEnum};
use serde_json::json;
use std::path::PathBuf;
use towers::Artifact;
use towers::index::{Index, IvfParams};
use towers::recommend::build_index;

/// What to do with a model's index.
#[derive(Subcommand, Debug)]
pub enum Args {
    /// Build an approximate index over the candidates, save it in the model directory and
    /// report its recall@10 against the exact index.
    Build(BuildArgs),
}

/// Index kinds.
#[derive(ValueEnum, Clone, Copy, Debug, PartialEq)]
pub enum Kind {
    /// Inverted file: k-means lists of 4-bit codes, `nprobe` of them scanned per query and the
    /// best `reorder` candidates re-scored exactly.
    Ivf,
    /// Builds the IVF index: towers has no HNSW index (the book's indexes guide says why).
    Hnsw,
    /// No approximate index: removes one, so that queries use the exact index.
    Exact,
}

/// Options of `towers index build`.
#[derive(ClapArgs, Debug)]
pub struct BuildArgs {
    /// Model directory (rewritten atomically with the index).
    #[arg(long)]
    pub model: PathBuf,
    /// Index kind.
    #[arg(long, value_enum, default_value = "ivf")]
    pub kind: Kind,
    /// Lists, 1..=1000000 (default min(4·√candidates, candidates / 32)).
    #[arg(long, value_parser = count(1_000_000))]
    pub nlist: Option<usize>,
    /// Lists scanned per query, 1..=1000000 (default 22% of nlist; at most nlist).
    #[arg(long, value_parser = count(1_000_000))]
    pub nprobe: Option<usize>,
    /// Candidates re-scored exactly per query, 1..=1000000 (default 300; at most the candidates).
    #[arg(long, value_parser = count(1_000_000))]
    pub reorder: Option<usize>,
    /// k-means iterations, 1..=1000.
    #[arg(long, default_value_t = 10, value_parser = count(1000))]
    pub iterations: usize,
    /// Seed of the k-means sample and initial centroids.
    #[arg(long, default_value_t = 42)]
    pub seed: u64,
    /// If another process is writing the model directory, wait for it instead of failing.
    #[arg(long)]
    pub wait: bool,
    /// Print one JSON object.
    #[arg(long)]
    pub json: bool,
}

/// A count option in `1..=max`: 0 or more is a usage error (exit 2), not a silent default.
fn count(max: u64) -> clap::builder::RangedU64ValueParser<usize> {
    clap::builder::RangedU64ValueParser::new().range(1..=max)
}

pub fn run(a: Args) -> towers::Result<()> {
    match a {
        Args::Build(a) => build(a),
    }
}

fn build(a: BuildArgs) -> towers::Result<()> {
    let lock = crate::common::lock_model_dir(&a.model, a.wait)?;
    let mut model = Artifact::load(&a.model)?;
    if a.kind == Kind::Exact {
        let had = model.approximate.take().is_some();
        model.save_locked(&lock)?;
        if a.json {
            return print_json(&json!({ "kind": "exact", "removed": had }));
        }
        crate::outln!(
            "{}: queries use the exact index",
            if had { "approximate index removed" } else { "no approximate index" }
        )?;
        return Ok(());
    }
    if a.kind == Kind::Hnsw && !a.json {
        eprintln!(
            "note: towers' approximate index is IVF (k-means lists of 4-bit codes, re-ranked exactly); --kind hnsw builds it"
        );
    }
    let params = IvfParams {
        nlist: a.nlist.unwrap_or(0),
        nprobe: a.nprobe.unwrap_or(0),
        reorder: a.reorder.unwrap_or(0),
        iterations: a.iterations,
        seed: a.seed,
        ..Default::default()
    };
    let built = build_index(&mut model, &params, &mut crate::progress::Bar::new(!a.json))?.clone();
    model.save_locked(&lock)?;
    let ix = &built.index;
    if a.json {
        return print_json(&json!({
            "kind": "ivf", "requested_kind": format!("{:?}", a.kind).to_lowercase(),
            "n": ix.len(), "dim": model.dim(), "nlist": ix.nlist(), "nprobe": ix.nprobe(), "reorder": ix.reorder(),
            "build_s": built.build_s, "recall_10": built.recall_10, "recall_queries": built.recall_queries,
        }));
    }
    crate::outln!(
        "IVF index over {} candidates (nlist {}, nprobe {}, reorder {}) built in {:.2} s; recall@10 against the exact index: {:.4} on {} queries; saved in {}",
        ix.len(),
        ix.nlist(),
        ix.nprobe(),
        ix.reorder(),
        built.build_s,
        built.recall_10,
        built.recall_queries,
        a.model.display()
    )?;
    Ok(())
}
