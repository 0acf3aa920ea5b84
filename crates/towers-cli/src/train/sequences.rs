//! Training a sequential model on item sequences: sessions, user histories, RetailRocket events.

use super::Args;
use crate::progress::Bar;
use towers::data::{Catalog, InputFormat};
use towers::{Artifact, Error, EvalOptions, Evaluation, TrainConfig, Trainer, evaluate};

/// Reads the sequences (holding out the format's own test part, or each user's last item with
/// `--split last`), trains, and evaluates on the test sequences.
pub fn train(
    a: &Args,
    config: TrainConfig,
    catalog: Option<&Catalog>,
) -> towers::Result<(Artifact, Option<Evaluation>)> {
    let table = a.table.format()?;
    let format = a.options.train_format;
    let read = match (format, a.split.as_deref()) {
        (InputFormat::Interactions, Some("last")) => {
            let (train, test) = format.read_sequences(&a.train, &table)?.sequences.hold_out_last();
            towers::data::ReadSequences { sequences: train, held_out: Some(test) }
        }
        (_, Some(_)) => {
            return Err(Error::Config(
                "--task sequential splits only an interaction table, with --split last (each user's last item); \
                 otherwise give a test file with --test"
                    .into(),
            ));
        }
        (_, None) => format.read_sequences(&a.train, &table)?,
    };
    let test = match &a.test {
        Some(t) => Some(format.read_test_sequences(t, &table)?),
        None => read.held_out,
    };
    let mut bar = Bar::new(!a.json);
    let mut trainer = Trainer::new(a.options.spec(None)?).config(config).observer(&mut bar);
    if let Some(c) = catalog {
        trainer = trainer.catalog(c);
    }
    if let Some(t) = &test {
        trainer = trainer.validation(t);
    }
    let model = trainer.fit(&read.sequences)?;
    let evaluation = test.as_ref().map(|t| evaluate(&model, t, &EvalOptions::new())).transpose()?;
    Ok((model, evaluation))
}
