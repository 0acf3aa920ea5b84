//! The candidates of a model: one row per candidate key, with the item ids and titles behind it.

use super::{Catalog, Vocabulary};
use crate::{Error, Result};
use serde::{Deserialize, Serialize};
use std::collections::HashMap;

/// What identifies a candidate.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[cfg_attr(feature = "clap", derive(clap::ValueEnum))]
#[serde(rename_all = "snake_case")]
pub enum CandidateKey {
    /// The item id.
    #[default]
    Id,
    /// The item's title, as TFRS's basic-retrieval tutorial does (items sharing a title are
    /// one candidate). Needs a catalogue.
    Title,
}

/// The candidates of a model: one row per key (row 0 = OOV), each with a representative item
/// id and title, and every known item id mapped to its row.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Items {
    /// How candidates are keyed.
    pub key: CandidateKey,
    /// Item id of each row (`ids[0]` is empty: the OOV row).
    pub ids: Vec<String>,
    /// Title of each row (empty where unknown).
    pub titles: Vec<String>,
    /// Item id → row, for every item id known (several ids share a row when keyed by title).
    pub rows: HashMap<String, u32>,
}

impl Items {
    /// The candidate rows of a catalogue (if any) and of the item ids of training data, in
    /// that order; returns them with the row of each training id. Keyed by title, every item
    /// must be in the catalogue.
    pub fn build<'a>(
        catalog: Option<&Catalog>,
        key: CandidateKey,
        ids: impl Iterator<Item = &'a str>,
    ) -> Result<(Items, Vec<u32>)> {
        Items::build_on(None, catalog, key, ids)
    }

    /// As [`Items::build`], after the rows of `earlier` (a model trained before): they keep
    /// their rows, and new items come after them.
    pub fn build_on<'a>(
        earlier: Option<&Items>,
        catalog: Option<&Catalog>,
        key: CandidateKey,
        ids: impl Iterator<Item = &'a str>,
    ) -> Result<(Items, Vec<u32>)> {
        let mut vocab = Vocabulary::default();
        let mut items = Items { key, ids: vec![String::new()], titles: vec![String::new()], rows: HashMap::new() };
        let mut add = |items: &mut Items, id: &str, title: &str| {
            let k = match key {
                CandidateKey::Id => id,
                CandidateKey::Title => title,
            };
            let row = vocab.insert(k);
            if row as usize == items.ids.len() {
                items.ids.push(id.to_string());
                items.titles.push(title.to_string());
            }
            items.rows.insert(id.to_string(), row);
            row
        };
        if let Some(e) = earlier {
            if e.key != key {
                return Err(Error::Config(format!(
                    "the model continued keys its candidates by {:?}, this run by {key:?}",
                    e.key
                )));
            }
            for (id, title) in e.ids.iter().zip(&e.titles).skip(1) {
                add(&mut items, id, title);
            }
            for (id, &row) in &e.rows {
                items.rows.entry(id.clone()).or_insert(row);
            }
        }
        if let Some(c) = catalog {
            for (id, title) in c.ids.iter().zip(&c.titles) {
                add(&mut items, id, title);
            }
        }
        let mut rows = Vec::new();
        for id in ids {
            let row = match (items.rows.get(id), key) {
                (Some(&r), _) => r,
                (None, CandidateKey::Id) => add(&mut items, id, ""),
                (None, CandidateKey::Title) => {
                    return Err(Error::Data(match catalog {
                        None => "candidates keyed by title need an item catalogue (`items`)".into(),
                        Some(_) => {
                            format!("item '{id}' of the training set is not in the item catalogue, so it has no title")
                        }
                    }));
                }
            };
            rows.push(row);
        }
        Ok((items, rows))
    }

    /// Number of rows, the OOV row included.
    pub fn len(&self) -> usize {
        self.ids.len()
    }

    /// Whether there are no candidates besides the OOV row.
    pub fn is_empty(&self) -> bool {
        self.ids.len() <= 1
    }

    /// The row of an item id, or of a title (the first row with that title).
    pub fn find(&self, id_or_title: &str) -> Option<u32> {
        self.rows
            .get(id_or_title)
            .copied()
            .or_else(|| self.titles.iter().position(|t| t == id_or_title).map(|r| r as u32))
    }
}
