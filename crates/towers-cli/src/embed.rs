//! `towers embed`: a model's embeddings with their ids, for other systems.

use crate::common::print_json;
use clap::Args as ClapArgs;
use std::path::PathBuf;
use towers::Served;

/// Options of `towers embed`.
#[derive(ClapArgs, Debug)]
pub struct Args {
    /// Model or pipeline directory written by `towers train --out`.
    #[arg(long)]
    pub model: PathBuf,
    /// Folder to write items.parquet and items.npy (the candidate embeddings) and, for a model
    /// with a user tower, users.parquet and users.npy (each known user's query embedding); the
    /// Parquet files hold `id` and `e0`, `e1`, … columns, the .npy files the same rows.
    #[arg(long)]
    pub out: PathBuf,
    /// Print {"items", "users", "dim", "out"}.
    #[arg(long)]
    pub json: bool,
}

pub fn run(a: Args) -> towers::Result<()> {
    let served = Served::load(&a.model)?;
    let (items, users) = served.embed(&a.out, &mut crate::progress::Bar::new(!a.json))?;
    let dim = served.describe().dim;
    if a.json {
        return print_json(&serde_json::json!({ "items": items, "users": users, "dim": dim, "out": a.out }));
    }
    crate::outln!("{items} item and {users} user embeddings of {dim} dimensions written to {}", a.out.display())
}
