//! What `towers train` reads: an interaction table (split, or with its test file), or item
//! sequences for a sequential model (the format's own test part, each user's last item with
//! `--split last`, or a test file).

use super::Args;
use towers::data::{InputFormat, OwnedData, ReadSequences, Split};
use towers::{Error, Result};

/// The training data and the test data, if any; `seed` splits a table.
pub fn read(a: &Args, seed: u64) -> Result<(OwnedData, Option<OwnedData>)> {
    if a.options.reads_sequences() {
        let (train, test) = sequences(a)?;
        return Ok((OwnedData::Sequences(Box::new(train)), test.map(|t| OwnedData::Sequences(Box::new(t)))));
    }
    if a.options.train_format != InputFormat::Interactions {
        return Err(Error::Config(
            "--train-format other than interactions is for sequences: add --task sequential".into(),
        ));
    }
    let data = a.table.read(&a.train)?;
    let (train, test) = match (&a.split, &a.test) {
        (Some(s), _) => {
            let (tr, te) = Split::parse(s, seed)?.apply(&data)?;
            (tr, Some(te))
        }
        (None, Some(t)) => (data, Some(a.table.read(t)?)),
        (None, None) => (data, None),
    };
    Ok((OwnedData::Interactions(Box::new(train)), test.map(|t| OwnedData::Interactions(Box::new(t)))))
}

fn sequences(a: &Args) -> Result<(towers::data::Sessions, Option<towers::data::Sessions>)> {
    let table = a.table.format()?;
    let format = a.options.train_format;
    let read = match (format, a.split.as_deref()) {
        (InputFormat::Interactions, Some("last")) => {
            let (train, test) = format.read_sequences(&a.train, &table)?.sequences.hold_out_last();
            ReadSequences { sequences: train, held_out: Some(test) }
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
    Ok((read.sequences, test))
}
