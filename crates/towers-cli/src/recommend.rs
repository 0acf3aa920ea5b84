//! `towers recommend`.

use crate::common::{PostArgs, print_json};
use clap::Args as ClapArgs;
use std::path::PathBuf;
use towers::data::RecommendationsWriter;
use towers::recommend::DEFAULT_K;
use towers::{Query, Request, Served};

/// Options of `towers recommend`.
#[derive(ClapArgs, Debug)]
pub struct Args {
    /// Model or pipeline directory written by `towers train --out`.
    #[arg(long)]
    pub model: PathBuf,
    /// User id (user → item models).
    #[arg(long, required_unless_present_any = ["history", "all_users", "users"], conflicts_with_all = ["history", "all_users", "users"])]
    pub user: Option<String>,
    /// Every user the model knows, written to --out (one row per user and rank).
    #[arg(long, requires = "out", conflicts_with_all = ["history", "users"])]
    pub all_users: bool,
    /// The users listed in this file (one id per line), written to --out.
    #[arg(long, value_name = "FILE", requires = "out", conflicts_with = "history")]
    pub users: Option<PathBuf>,
    /// With --all-users or --users: the file to write (.parquet, .tsv or .jsonl; columns user,
    /// rank, item, score), whole or not at all.
    #[arg(long, value_name = "FILE")]
    pub out: Option<PathBuf>,
    /// With --all-users or --users: search the model's approximate (IVF) index when it has one
    /// (default: the exact index).
    #[arg(long, conflicts_with = "exact")]
    pub index: bool,
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
    let batch = a.all_users || a.users.is_some();
    if a.exact || (batch && !a.index) {
        served = served.exact();
    }
    if let Some(out) = a.out.as_deref().filter(|_| batch) {
        return batch_to(&served, &a, &request, out);
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

/// `--all-users` / `--users FILE`: every list written to `out`.
fn batch_to(served: &Served, a: &Args, request: &Request, out: &std::path::Path) -> towers::Result<()> {
    let users = match &a.users {
        Some(file) => towers::data::read_ids(file)?,
        None => served.users(),
    };
    let mut writer = RecommendationsWriter::create(out)?;
    let mut bar = crate::progress::Bar::new(!a.json);
    let start = std::time::Instant::now();
    let rows = served.recommend_users(&users, request, &mut bar, &mut |rows| writer.write(rows))?;
    writer.finish()?;
    let seconds = start.elapsed().as_secs_f64();
    if a.json {
        return print_json(&serde_json::json!({ "users": users.len(), "rows": rows, "seconds": seconds, "out": out }));
    }
    crate::outln!("{} users, {rows} rows written to {} in {seconds:.1} s", users.len(), out.display())
}
