//! `towers recommend`.

use crate::common::{PostArgs, print_json};
use clap::Args as ClapArgs;
use std::path::PathBuf;
use towers::recommend::DEFAULT_K;
use towers::{Query, Request, Served};

/// Options of `towers recommend`.
#[derive(ClapArgs, Debug)]
pub struct Args {
    /// Model or pipeline directory written by `towers train --out`.
    #[arg(long)]
    pub model: PathBuf,
    /// User id (user → item models).
    #[arg(long, required_unless_present = "history", conflicts_with = "history")]
    pub user: Option<String>,
    /// Items seen so far, oldest first, by id or title, comma-separated (sequential models).
    #[arg(long, value_delimiter = ',')]
    pub history: Option<Vec<String>>,
    /// Number of items.
    #[arg(short, default_value_t = DEFAULT_K)]
    pub k: usize,
    /// Leave out the items the user interacted with in training (sequential models: the
    /// history's items).
    #[arg(long)]
    pub exclude_seen: bool,
    /// Search the exact index even when the model holds an approximate one.
    #[arg(long)]
    pub exact: bool,
    #[command(flatten)]
    pub post: PostArgs,
    /// Print the time each stage took (with --json: a "timings" object).
    #[arg(long)]
    pub debug: bool,
    /// Print {"items":[{"id","title","score"}…],"cold_start":bool}.
    #[arg(long)]
    pub json: bool,
}

pub fn run(a: Args) -> towers::Result<()> {
    let request = Request {
        k: a.k,
        exclude_seen: a.exclude_seen,
        post: a.post.overrides()?,
        retrieve: a.post.retrieve,
        debug: a.debug,
        ..Request::default()
    };
    let history = a.history.clone().unwrap_or_default();
    let query = match &a.user {
        Some(user) => Query::User(user),
        None => Query::History(&history),
    };
    let mut served = Served::load(&a.model)?;
    if a.exact {
        served = served.exact();
    }
    let recs = served.recommend(query, &request)?;
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
        crate::outln!("{:>3}. {:<8} {:<60} {label} {:.4}", i + 1, r.id, r.title, r.score)?;
    }
    if let Some(t) = recs.timings {
        crate::outln!(
            "retrieve {:.3} ms, rank {:.3} ms, post-rank {:.3} ms, total {:.3} ms",
            t.retrieve_ms,
            t.rank_ms,
            t.post_rank_ms,
            t.total_ms
        )?;
    }
    Ok(())
}
