//! `towers train --distributed`: one rank of an MPI job (`mpirun -np N towers train …
//! --distributed`). Each rank reads its share of `--train`; rank 0 writes `--out` and reports.

use super::Args;
use crate::progress::Bar;
use towers::data::{Catalog, Interactions, OwnedData, Sessions, Share};
use towers::dist::{Collective, agree};
use towers::train::FeatureData;
use towers::{Error, EvalOptions, Result};

pub fn run(a: &Args, features: Option<&FeatureData>) -> Result<()> {
    crate::mpi::as_rank(|comm| rank(comm, a, features))
}

fn rank(comm: &dyn Collective, a: &Args, features: Option<&FeatureData>) -> Result<()> {
    if a.split.is_some() {
        return Err(Error::Config("--distributed takes no --split: give --test".into()));
    }
    let root = comm.rank() == 0;
    // one writer: rank 0 holds the lock of --out from the start
    let lock =
        agree(comm, a.out.as_deref().filter(|_| root).map(|o| crate::common::lock_model_dir(o, a.wait)).transpose())?;
    let catalog = agree(comm, a.items.as_ref().map(Catalog::read).transpose())?;
    let share = Share { rank: comm.rank(), ranks: comm.size() };
    let (train, test) = agree(comm, read(a, share))?;
    let mut bar = Bar::new(root && !a.json);
    // every rank reads the model it continues
    let prior = agree(comm, a.init_from.as_ref().map(towers::Served::load).transpose())?;
    let mut trainer = a.options.trainer(features)?.catalog(catalog.as_ref()).observer(&mut bar);
    if let Some(p) = &prior {
        trainer = trainer.init_from(p).count_decay(a.count_decay);
    }
    // rank 0 writes them, every rank resumes from them
    let checkpoints = super::checkpoints(a);
    if let Some(c) = &checkpoints {
        trainer = trainer.checkpoints(c);
    }
    if a.shard_tables {
        trainer = trainer.sharding(towers::train::Sharding { min_rows: a.shard_min_rows });
    }
    if let Some(t) = &test {
        trainer = trainer.validation(t);
    }
    if a.shard_tables && a.out.is_some() {
        // no table whole on any rank: rank 0 writes the sharded ones' rows as their ranks send
        // them; --test is measured after every epoch, each rank its share
        let Some(w) = trainer.fit_distributed_into(comm, &train, lock.as_ref())? else { return Ok(()) };
        return super::report(a, (&w.manifest.training, &w.history), None);
    }
    let Some(model) = trainer.fit_distributed(comm, &train)? else { return Ok(()) };
    drop(train);
    let served = towers::Served::from(model);
    if let Some(lock) = &lock {
        served.save_locked(lock)?;
        checkpoints.as_ref().map(|c| c.remove()).transpose()?;
    }
    let evaluation = test.as_ref().map(|t| served.evaluate(t, &EvalOptions::new())).transpose()?;
    let model = served.retriever().artifact();
    super::report(a, (&model.summary, &model.history), evaluation.as_ref())
}

/// This rank's share of `--train` (an interaction table, or a sessions or examples file of
/// sequences), and the whole of `--test`.
fn read(a: &Args, share: Share) -> Result<(OwnedData, Option<OwnedData>)> {
    let table = a.table.format()?;
    if !a.options.reads_sequences() {
        let train = Interactions::read_share(&a.train, &table, share)?;
        let test = a.test.as_ref().map(|t| a.table.read(t)).transpose()?;
        return Ok((OwnedData::Interactions(Box::new(train)), test.map(|t| OwnedData::Interactions(Box::new(t)))));
    }
    let format = a.options.train_format;
    let train = Sessions::read_share(&a.train, format, share)?;
    let test = a.test.as_ref().map(|t| format.read_test_sequences(t, &table)).transpose()?;
    Ok((OwnedData::Sequences(Box::new(train)), test.map(|t| OwnedData::Sequences(Box::new(t)))))
}
