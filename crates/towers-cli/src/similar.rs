//! `towers similar`.

use crate::common::{check_k, print_json};
use clap::Args as ClapArgs;
use std::path::PathBuf;
use towers::{Artifact, Recommender, Request};

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
    let recommender = Recommender::new(Artifact::load(&a.model)?);
    let items = recommender.similar(&a.item, &Request::top(check_k(a.k)?))?;
    if a.json {
        return print_json(&serde_json::json!({ "items": items }));
    }
    for (i, r) in items.iter().enumerate() {
        crate::outln!("{:>3}. {:<8} {:<60} cosine {:.4}", i + 1, r.id, r.title, r.score)?;
    }
    Ok(())
}
