//! Training on an interaction table: retrieval, rating, ranking and feature models.

use super::Args;
use crate::progress::Bar;
use towers::data::{Catalog, Split};
use towers::{Artifact, EvalOptions, Evaluation, TrainConfig, Trainer, evaluate};

/// Reads the table (split, or with its test file), trains, and evaluates on the test part.
pub fn train(
    a: &Args,
    config: TrainConfig,
    catalog: Option<&Catalog>,
) -> towers::Result<(Artifact, Option<Evaluation>)> {
    let data = a.table.read(&a.train)?;
    let (train, test) = match (&a.split, &a.test) {
        (Some(s), _) => {
            let (tr, te) = Split::parse(s, config.seed)?.apply(&data)?;
            (tr, Some(te))
        }
        (None, Some(t)) => (data, Some(a.table.read(t)?)),
        (None, None) => (data, None),
    };
    let features = a.options.read_features(crate::common::movielens_dir(None))?;
    let (features, users, items) = match features {
        Some(f) => (Some(f.config), f.users, f.items),
        None => (None, None, None),
    };
    let mut bar = Bar::new(!a.json);
    let mut trainer = Trainer::new(a.options.spec(features)?).config(config).observer(&mut bar);
    if let Some(c) = catalog {
        trainer = trainer.catalog(c);
    }
    if let Some(t) = &users {
        trainer = trainer.user_attributes(t);
    }
    if let Some(t) = &items {
        trainer = trainer.item_attributes(t);
    }
    if let Some(t) = &test {
        trainer = trainer.validation(t);
    }
    let model = trainer.fit(&train)?;
    let evaluation = test.as_ref().map(|t| evaluate(&model, t, &EvalOptions::new())).transpose()?;
    Ok((model, evaluation))
}
