//! `towers rank`: re-score items for a user with a ranking model.

use crate::common::print_json;
use clap::Args as ClapArgs;
use std::path::PathBuf;
use towers::recommend::DEFAULT_K;
use towers::{Recommendations, Request, Served};

/// Options of `towers rank`.
#[derive(ClapArgs, Debug)]
pub struct Args {
    /// Ranking (or rating) model directory (`towers train --task ranking --out`).
    #[arg(long)]
    pub model: PathBuf,
    /// User id.
    #[arg(long)]
    pub user: String,
    /// Items to re-score, comma-separated ids.
    #[arg(long, value_delimiter = ',', required_unless_present = "retriever", conflicts_with = "retriever")]
    pub items: Option<Vec<String>>,
    /// A retrieval model directory: re-rank its --candidates best items for the user.
    #[arg(long)]
    pub retriever: Option<PathBuf>,
    /// Items the retriever hands to the ranking model.
    #[arg(long, default_value_t = 100)]
    pub candidates: usize,
    /// Number of items shown.
    #[arg(short, default_value_t = DEFAULT_K)]
    pub k: usize,
    /// Leave out the items the user rated in the retriever's training data.
    #[arg(long)]
    pub exclude_seen: bool,
    /// Print {"items":[{"id","title","score"}…],"cold_start":bool}; scores are predicted ratings.
    #[arg(long)]
    pub json: bool,
}

pub fn run(a: Args) -> towers::Result<()> {
    let ranker = Served::load(&a.model)?;
    let request = Request::top(a.k).exclude_seen(a.exclude_seen);
    request.validate()?;
    let recs = match (&a.items, &a.retriever) {
        (Some(items), _) => Recommendations {
            items: ranker.rank(&a.user, items)?.into_iter().take(request.k).collect(),
            cold_start: false,
            timings: None,
        },
        (None, Some(dir)) => ranker.rerank(&Served::load(dir)?, &a.user, a.candidates, &request)?,
        (None, None) => return Err(towers::Error::Config("give --items or --retriever".into())),
    };
    if recs.cold_start {
        eprintln!("user '{}' is not in the training data: showing popular items", a.user);
    }
    if a.json {
        return print_json(&recs);
    }
    for (i, r) in recs.items.iter().enumerate() {
        crate::outln!("{:>3}. {:<8} {:<60} rating {:.2}", i + 1, r.id, r.title, r.score)?;
    }
    Ok(())
}
