//! Distributed training from the library: every rank reads its share of one file, trains with
//! the others (the id tables sharded across them), and rank 0 gets the model and saves it.
//!
//! ```sh
//! cargo run --release --example distributed -- train.tsv /tmp/model            # 3 ranks as threads
//! cargo build --release --example distributed --features mpi
//! mpirun -np 2 target/release/examples/distributed train.tsv /tmp/model      # 2 MPI ranks
//! ```

use towers::data::{Interactions, Share, TableFormat};
use towers::dist::{Collective, agree};
use towers::train::Sharding;
use towers::{ModelSpec, Recipe, TrainConfig, Trainer};

/// One rank: its share of the data, the collective training, the model on rank 0.
fn rank(comm: &dyn Collective, train: &str, out: &str) -> towers::Result<()> {
    let share = Share { rank: comm.rank(), ranks: comm.size() };
    // a rank that cannot read its share stops every rank, with its error
    let data = agree(comm, Interactions::read_share(train, &TableFormat::default(), share))?;
    let config = TrainConfig {
        batch_size: 4096,
        epochs: 2,
        ..TrainConfig::defaults(towers::ModelKind::Retrieval, Recipe::Tfrs)
    };
    let trainer = Trainer::new(ModelSpec::Retrieval).config(config).sharding(Sharding { min_rows: 1 });
    if let Some(model) = trainer.fit_distributed(comm, &data)? {
        let ranks: Vec<usize> = model.summary.ranks.iter().map(|r| r.user_rows).collect();
        println!("user rows per rank {ranks:?}; epoch seconds {:?}", model.summary.epoch_s);
        model.save(out)?;
        println!("model written to {out}");
    }
    Ok(())
}

fn main() -> towers::Result<()> {
    let args: Vec<String> = std::env::args().collect();
    let (train, out) = match args.as_slice() {
        [_, train, out] => (train.as_str(), out.as_str()),
        _ => return Err(towers::Error::Config("usage: distributed TRAIN.tsv OUT".into())),
    };
    #[cfg(feature = "mpi")]
    return rank(&towers::dist::Mpi::init()?, train, out);
    #[cfg(not(feature = "mpi"))]
    std::thread::scope(|s| {
        let ranks: Vec<_> =
            towers::dist::Threads::group(3).into_iter().map(|comm| s.spawn(move || rank(&comm, train, out))).collect();
        ranks.into_iter().try_for_each(|r| r.join().expect("a rank panicked"))
    })
}
