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
    /// User id (user → item models).
    #[arg(long, required_unless_present = "history", conflicts_with = "history")]
    pub user: Option<String>,
    /// Items seen so far, oldest first, by id or title, comma-separated (sequential models).
    #[arg(long, value_delimiter = ',')]
    pub history: Option<Vec<String>>,
    /// Number of items.
    #[arg(short, default_value_t = 10)]
    pub k: usize,
    /// Leave out the items the user interacted with in training (user → item models).
    #[arg(long)]
    pub exclude_seen: bool,
    /// Search the exact index even when the model holds an approximate one.
    #[arg(long)]
    pub exact: bool,
    /// Print {"items":[{"id","title","score"}…],"cold_start":bool}.
    #[arg(long)]
    pub json: bool,
}

pub fn run(a: Args) -> towers::Result<()> {
    let mut model = Artifact::load(&a.model)?;
    if a.exact {
        model.approximate = None;
    }
    let k = check_k(a.k)?;
    let recs = match (&a.user, &a.history) {
        (Some(user), _) => model.recommend(user, k, a.exclude_seen)?,
        (None, history) => model.recommend_history(history.as_deref().unwrap_or_default(), k)?,
    };
    if recs.cold_start {
        let who = match &a.user {
            Some(u) => format!("user '{u}' is not in the training data"),
            None => "no item of the history is known to the model".to_string(),
        };
        eprintln!("{who}: showing the {} most popular items instead", recs.items.len());
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
