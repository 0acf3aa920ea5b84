//! `towers quickstart`: MovieLens 100K end to end in one command.

use crate::common::{movielens_dir, print_report};
use clap::Args as ClapArgs;
use std::path::PathBuf;
use towers::data::Split;
use towers::data::movielens::{Download, MOVIELENS_100K_URL, MovieLens};
use towers::{Error, EvalOptions, ModelSpec, Query, Recommender, Request, TrainConfig, Trainer, evaluate};

/// Options of `towers quickstart`.
#[derive(ClapArgs, Debug)]
pub struct Args {
    /// MovieLens 100K directory (u.data, u.item, …); default $TOWERS_DATA, else a copy
    /// downloaded on first use into $TOWERS_CACHE_DIR (default the platform's cache directory)
    /// from GroupLens ($TOWERS_MOVIELENS_URL overrides the address).
    #[arg(long)]
    pub data: Option<PathBuf>,
    /// Also save the model here.
    #[arg(long)]
    pub out: Option<PathBuf>,
    /// User to recommend for.
    #[arg(long, default_value = "42")]
    pub user: String,
}

pub fn run(a: Args) -> towers::Result<()> {
    let dir = match (movielens_dir(a.data.clone()), &a.data) {
        (Some(dir), _) => dir,
        (None, Some(d)) => {
            return Err(Error::Data(format!(
                "MovieLens 100K not found in {}: no u.data and u.item there. Leave out --data to download it, or get \
                 {MOVIELENS_100K_URL} and unzip it",
                d.display()
            )));
        }
        (None, None) => download()?,
    };
    crate::outln!("MovieLens 100K from {}", dir.display())?;
    let ml = MovieLens::load(&dir)?;
    let config = TrainConfig::default();
    let (train, test) = Split::Random { test_fraction: 0.2, seed: config.seed }.apply(&ml.ratings)?;
    crate::outln!(
        "{} ratings: {} for training, {} for testing (seeded random 80/20 split)",
        ml.ratings.len(),
        train.len(),
        test.len()
    )?;
    let mut bar = crate::progress::Bar::new(true);
    let model = Trainer::new(ModelSpec::Retrieval).config(config).catalog(&ml.movies).observer(&mut bar).fit(&train)?;
    crate::outln!("trained {} epochs in {:.2} s", model.history.epochs.len(), model.summary.train_s)?;
    print_report(&evaluate(&model, &test, &EvalOptions::new())?)?;
    print_report(&evaluate(&model, &test, &EvalOptions::new().exclude_seen(true))?)?;
    if let Some(out) = &a.out {
        model.save(out)?;
        crate::outln!("model written to {}", out.display())?;
    }
    crate::outln!("\ntop 10 for user {} (already-seen movies excluded):", a.user)?;
    let recs = Recommender::new(model).recommend(Query::User(&a.user), &Request::top(10).exclude_seen(true))?;
    if recs.cold_start {
        crate::outln!("(unknown user: most popular movies)")?;
    }
    for (i, r) in recs.items.iter().enumerate() {
        crate::outln!("{:>3}. {}  ({:.3})", i + 1, r.title, r.score)?;
    }
    Ok(())
}

/// MovieLens 100K from the cache, downloaded there on first use.
fn download() -> towers::Result<PathBuf> {
    let download = Download::from_env()?;
    if !download.is_cached() {
        eprintln!("downloading MovieLens 100K from {} into {} …", download.source(), download.dir().display());
    }
    download.fetch()
}
