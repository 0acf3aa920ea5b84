//! `towers rank`: re-score items for a user with a ranking model.

use crate::common::{check_k, print_json};
use clap::Args as ClapArgs;
use std::path::PathBuf;
use towers::{Artifact, Recommendations};

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
    #[arg(short, default_value_t = 10)]
    pub k: usize,
    /// Leave out the items the user rated in the retriever's training data.
    #[arg(long)]
    pub exclude_seen: bool,
    /// Print {"items":[{"id","title","score"}…],"cold_start":bool}; scores are predicted ratings.
    #[arg(long)]
    pub json: bool,
}

pub fn run(a: Args) -> towers::Result<()> {
    let model = Artifact::load(&a.model)?;
    let k = check_k(a.k)?;
    let recs = match (&a.items, &a.retriever) {
        (Some(items), _) => {
            Recommendations { items: model.rank(&a.user, items)?.into_iter().take(k).collect(), cold_start: false }
        }
        (None, Some(dir)) => model.rerank(&Artifact::load(dir)?, &a.user, check_k(a.candidates)?, k, a.exclude_seen)?,
        (None, None) => unreachable!("clap requires --items or --retriever"),
    };
    if recs.cold_start {
        eprintln!("user '{}' is not in the training data: showing popular items", a.user);
    }
    if a.json {
        return print_json(&recs);
    }
    for (i, r) in recs.items.iter().enumerate() {
        println!("{:>3}. {:<8} {:<60} rating {:.2}", i + 1, r.id, r.title, r.score);
    }
    Ok(())
}
