//! `towers similar`.

use crate::common::print_json;
use clap::Args as ClapArgs;
use std::path::PathBuf;
use towers::recommend::DEFAULT_K;
use towers::{Request, Served};

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
    #[arg(short, default_value_t = DEFAULT_K)]
    pub k: usize,
    /// Print {"items":[{"id","title","score"}…]}.
    #[arg(long)]
    pub json: bool,
}

pub fn run(a: Args) -> towers::Result<()> {
    let items = Served::load(&a.model)?.similar(&a.item, &Request::top(a.k))?.items;
    if a.json {
        return print_json(&serde_json::json!({ "items": items }));
    }
    for (i, r) in items.iter().enumerate() {
        crate::outln!("{:>3}. {:<8} {:<60} cosine {:.4}", i + 1, r.id, r.title, r.score)?;
    }
    Ok(())
}
