//! `towers similar`.

use crate::common::print_json;
use clap::Args as ClapArgs;
use std::path::PathBuf;
use towers::{Artifact, Error};

/// Options of `towers similar`.
#[derive(ClapArgs, Debug)]
pub struct Args {
    /// Model directory written by `towers train --out`.
    #[arg(long)]
    pub model: PathBuf,
    /// Item id.
    #[arg(long)]
    pub item: String,
    /// Number of items.
    #[arg(short, default_value_t = 10)]
    pub k: usize,
    /// Print {"items":[{"id","title","score"}…]}.
    #[arg(long)]
    pub json: bool,
}

pub fn run(a: Args) -> towers::Result<()> {
    if a.k == 0 || a.k > 100_000 {
        return Err(Error::Config(format!("-k must be in 1..=100000, got {}", a.k)));
    }
    let model = Artifact::load(&a.model)?;
    let items = model.similar(&a.item, a.k)?;
    if a.json {
        return print_json(&serde_json::json!({ "items": items }));
    }
    for (i, r) in items.iter().enumerate() {
        println!("{:>3}. {:<8} {:<60} cosine {:.4}", i + 1, r.id, r.title, r.score);
    }
    Ok(())
}
