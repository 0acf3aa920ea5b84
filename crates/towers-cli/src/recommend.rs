//! `towers recommend`.

use crate::common::{check_k, print_json};
use clap::Args as ClapArgs;
use std::path::PathBuf;
use towers::Artifact;

/// Options of `towers recommend`.
#[derive(ClapArgs, Debug)]
pub struct Args {
    /// Model directory written by `towers train --out`.
    #[arg(long)]
    pub model: PathBuf,
    /// User id.
    #[arg(long)]
    pub user: String,
    /// Number of items.
    #[arg(short, default_value_t = 10)]
    pub k: usize,
    /// Leave out the items the user interacted with in training.
    #[arg(long)]
    pub exclude_seen: bool,
    /// Print {"items":[{"id","title","score"}…],"cold_start":bool}.
    #[arg(long)]
    pub json: bool,
}

pub fn run(a: Args) -> towers::Result<()> {
    let model = Artifact::load(&a.model)?;
    let recs = model.recommend(&a.user, check_k(a.k)?, a.exclude_seen);
    if recs.cold_start {
        eprintln!(
            "user '{}' is not in the training data: showing the {} most popular items instead",
            a.user,
            recs.items.len()
        );
    }
    if a.json {
        return print_json(&recs);
    }
    for (i, r) in recs.items.iter().enumerate() {
        let label = if recs.cold_start { "popular" } else { "score" };
        println!("{:>3}. {:<8} {:<60} {label} {:.4}", i + 1, r.id, r.title, r.score);
    }
    Ok(())
}
