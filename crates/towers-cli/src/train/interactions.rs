//! Training on an interaction table: retrieval, rating, ranking and feature models.

use super::Args;
use crate::progress::Bar;
use std::path::PathBuf;
use towers::data::features::AttributeTable;
use towers::data::movielens::MovieLens;
use towers::data::{Catalog, Split};
use towers::model::FeatureConfig;
use towers::{Artifact, Error, Evaluation, TrainConfig, Trainer, evaluate};

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
    let (features, users, items) = match &a.features {
        Some(f) => {
            let (config, users, items) = read_features(f, a.movielens_dir.clone())?;
            (Some(config), users, items)
        }
        None => (None, None, None),
    };
    let mut bar = Bar::new(!a.json);
    let mut trainer = Trainer::new(a.spec(features)?).config(config).observer(&mut bar);
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
    let evaluation = test.as_ref().map(|t| evaluate(&model, t, false)).transpose()?;
    Ok((model, evaluation))
}

/// The feature configuration and attribute tables (users, items) named by `--features`.
pub(super) fn read_features(
    name: &str,
    movielens: Option<PathBuf>,
) -> towers::Result<(FeatureConfig, Option<AttributeTable>, Option<AttributeTable>)> {
    if name == "movielens" {
        let dir = match movielens {
            Some(d) => d,
            None => crate::common::movielens_dir(None).ok_or_else(|| {
                Error::Config("--features movielens needs --movielens-dir (the folder with u.user and u.item)".into())
            })?,
        };
        if !dir.join("u.user").is_file() || !dir.join("u.item").is_file() {
            return Err(Error::Config(format!("{}: no u.user and u.item here (--movielens-dir)", dir.display())));
        }
        let ml = MovieLens::load(&dir)?;
        return Ok((
            FeatureConfig::movielens(),
            Some(AttributeTable::movielens_users(&ml)),
            Some(AttributeTable::movielens_items(&ml)),
        ));
    }
    let config = FeatureConfig::load(name)?;
    let users = config.query.table.as_ref().map(AttributeTable::read).transpose()?;
    let items = config.candidate.table.as_ref().map(AttributeTable::read).transpose()?;
    Ok((config, users, items))
}
