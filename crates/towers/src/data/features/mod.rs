//! Features beyond ids: attribute tables of users and items, and their encoders.
//!
//! Every feature is encoded as a *bag*: a few rows of its own embedding table with weights
//! (a category: one row; multi-hot genres and title tokens: their rows, mean-pooled; a numeric
//! value: its bucket's row). Row 0 of every table is the out-of-vocabulary slot: values never
//! seen on a training entity, and missing values, go there. Which features a model reads, and
//! their widths, is the model's [`FeatureConfig`](crate::model::FeatureConfig).

mod encode;
mod table;

pub use encode::{Bags, Encoder, FeatureSpec, encode_feature};
pub use table::AttributeTable;
