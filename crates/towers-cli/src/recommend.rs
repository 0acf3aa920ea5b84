//! `towers recommend`.

use crate::common::{PostArgs, check_k, print_json};
use clap::Args as ClapArgs;
use std::path::PathBuf;
use towers::recommend::{Pipeline, is_pipeline};
use towers::{Artifact, Query, Recommender, Request};

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
    /// Leave out the items the user interacted with in training (sequential models: the
    /// history's items).
    #[arg(long)]
    pub exclude_seen: bool,
    /// Search the exact index even when the model holds an approximate one.
    #[arg(long)]
    pub exact: bool,
    #[command(flatten)]
    pub post: PostArgs,
    /// Pipelines: print the time each stage took (with --json: a "timings" object).
    #[arg(long)]
    pub debug: bool,
    /// Print {"items":[{"id","title","score"}…],"cold_start":bool}.
    #[arg(long)]
    pub json: bool,
}

pub fn run(a: Args) -> towers::Result<()> {
    let mut request = Request::top(check_k(a.k)?).exclude_seen(a.exclude_seen);
    let history = a.history.clone().unwrap_or_default();
    let query = match &a.user {
        Some(user) => Query::User(user),
        None => Query::History(&history),
    };
    let (recs, timings) = if is_pipeline(&a.model) {
        let pipeline = Pipeline::load(&a.model)?;
        if let Some(p) = a.post.apply(&pipeline.settings().post)? {
            request = request.post(p);
        }
        if let Some(r) = a.post.retrieve {
            request = request.retrieve(r);
        }
        let answer = pipeline.recommend(query, &request)?;
        (answer.recommendations, Some(answer.timings))
    } else {
        a.post.refuse()?;
        let mut recommender = Recommender::new(Artifact::load(&a.model)?);
        if a.exact {
            recommender = recommender.exact();
        }
        (recommender.recommend(query, &request)?, None)
    };
    if recs.cold_start {
        let who = match &a.user {
            Some(u) => format!("user '{u}' is not in the training data"),
            None => "no item of the history is known to the model".to_string(),
        };
        eprintln!("{who}: showing the {} most popular items instead", recs.items.len());
    }
    if a.json {
        let mut v = serde_json::to_value(&recs).map_err(towers::Error::internal)?;
        if let (Some(t), Some(obj), true) = (timings, v.as_object_mut(), a.debug) {
            obj.insert("timings".into(), serde_json::to_value(t).map_err(towers::Error::internal)?);
        }
        return print_json(&v);
    }
    for (i, r) in recs.items.iter().enumerate() {
        let label = if recs.cold_start { "popular" } else { "score" };
        crate::outln!("{:>3}. {:<8} {:<60} {label} {:.4}", i + 1, r.id, r.title, r.score)?;
    }
    if let (Some(t), true) = (timings, a.debug) {
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
