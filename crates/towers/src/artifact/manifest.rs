//! `manifest.json`: what a model directory holds, and the upgrade of manifests written in an
//! older format.

use super::TrainSummary;
use crate::config::TrainConfig;
use crate::metrics::TopKMetrics;
use crate::model::{FeatureConfig, ModelSpec, RankingSpec, SequenceConfig, TimeSpec, TowerFeatures, TowerLayout};
use crate::task::RatingScale;
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};
use std::collections::BTreeMap;

/// The format version this build writes. It reads this one and every older one, back to 1.
pub const FORMAT_VERSION: u32 = 2;
/// The `format` of every manifest.
pub const FORMAT_NAME: &str = "towers-model";

/// `manifest.json`'s record of the approximate index.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct IndexManifest {
    /// Always `ivf`.
    pub kind: String,
    /// Its file in the model directory.
    pub file: String,
    /// Lists.
    pub nlist: usize,
    /// Lists scanned per query.
    pub nprobe: usize,
    /// Recall@10 against the exact index at build time.
    pub recall_10: f64,
    /// Queries that recall was measured on.
    pub recall_queries: usize,
    /// Seconds to build it.
    pub build_s: f64,
}

/// `manifest.json`.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Manifest {
    /// Always `towers-model`.
    pub format: String,
    /// Format version.
    pub format_version: u32,
    /// Version of towers that wrote it.
    pub towers_version: String,
    /// The model's kind and settings.
    pub model: ModelSpec,
    /// Training configuration.
    pub config: TrainConfig,
    /// Embedding width.
    pub dim: usize,
    /// Query rows (OOV included).
    pub query_rows: usize,
    /// Candidate rows (OOV included).
    pub candidate_rows: usize,
    /// Training figures.
    pub training: TrainSummary,
    /// Validation metrics of the last epoch, if a validation set was given.
    pub metrics: Option<TopKMetrics>,
    /// The approximate index, if one was built.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub index: Option<IndexManifest>,
    /// File name → sha256 (hex) of every other file of the directory.
    pub files: BTreeMap<String, String>,
}

/// Format 1: the model kind as a string beside the training configuration (which held the task
/// and the dense layers), the settings a model's weights need in the manifest.
#[derive(Deserialize)]
struct ManifestV1 {
    towers_version: String,
    kind: String,
    #[serde(default)]
    sequence: Option<SequenceConfig>,
    #[serde(default)]
    rating_scale: Option<RatingScale>,
    #[serde(default)]
    feature_towers: Option<[TowerLayout; 2]>,
    config: Map<String, Value>,
    dim: usize,
    query_rows: usize,
    candidate_rows: usize,
    training: TrainSummary,
    metrics: Option<TopKMetrics>,
    #[serde(default)]
    index: Option<IndexManifest>,
    files: BTreeMap<String, String>,
}

/// A manifest read from disk, with the metadata its weights file lacks (format 1 kept it in the
/// manifest).
pub(super) struct Read {
    pub manifest: Manifest,
    pub weights_meta: Vec<(&'static str, Value)>,
}

/// Parses a manifest of any format version up to [`FORMAT_VERSION`] (already checked).
pub(super) fn read(bytes: &[u8], version: u32) -> Result<Read, String> {
    if version >= 2 {
        let manifest = serde_json::from_slice(bytes).map_err(|e| e.to_string())?;
        return Ok(Read { manifest, weights_meta: Vec::new() });
    }
    let mut v1: ManifestV1 = serde_json::from_slice(bytes).map_err(|e| e.to_string())?;
    let task = v1.config.remove("task").and_then(|t| t.as_str().map(String::from)).unwrap_or_default();
    let layers: Vec<usize> = match v1.config.remove("layers") {
        Some(l) => serde_json::from_value(l).map_err(|e| format!("config.layers: {e}"))?,
        None => Vec::new(),
    };
    let config: TrainConfig = serde_json::from_value(Value::Object(v1.config)).map_err(|e| format!("config: {e}"))?;
    let model = match (v1.kind.as_str(), task.as_str()) {
        ("retrieval", "rating") => ModelSpec::Rating,
        ("retrieval", _) => ModelSpec::Retrieval,
        ("ranking", _) => ModelSpec::Ranking(RankingSpec::mlp(layers)),
        ("features", _) => {
            let towers = v1.feature_towers.as_ref().ok_or("a feature model without its layout")?;
            ModelSpec::Features(feature_config(towers))
        }
        ("sequential", _) => ModelSpec::Sequential(v1.sequence.ok_or("a sequential model without its settings")?),
        (kind, _) => return Err(format!("unknown model kind '{kind}'")),
    };
    let mut weights_meta = vec![("normalization", serde_json::json!(config.normalization))];
    if let Some(s) = v1.rating_scale {
        weights_meta.push(("rating_scale", serde_json::json!(s)));
    }
    if let Some(t) = v1.feature_towers {
        weights_meta.push(("feature_towers", serde_json::json!(t)));
    }
    let manifest = Manifest {
        format: FORMAT_NAME.into(),
        format_version: FORMAT_VERSION,
        towers_version: v1.towers_version,
        model,
        config,
        dim: v1.dim,
        query_rows: v1.query_rows,
        candidate_rows: v1.candidate_rows,
        training: v1.training,
        metrics: v1.metrics,
        index: v1.index,
        files: v1.files,
    };
    Ok(Read { manifest, weights_meta })
}

/// A format-1 feature model's configuration, from its towers' layouts: format 1 did not record
/// the encoders (see [`Encoder::Unrecorded`](crate::data::features::Encoder::Unrecorded)).
fn feature_config([q, c]: &[TowerLayout; 2]) -> FeatureConfig {
    let tower = |l: &TowerLayout| {
        let dim_of = |name: &str| l.names.iter().position(|n| n == name).map(|k| l.dims[k]);
        let features = l
            .names
            .iter()
            .zip(&l.dims)
            .filter(|(n, _)| *n != "id" && *n != "time")
            .map(|(n, &d)| crate::data::features::FeatureSpec::new(n, crate::data::features::Encoder::Unrecorded, d))
            .collect();
        TowerFeatures {
            id_dim: dim_of("id").unwrap_or(0),
            table: None,
            features,
            time: l.time.map(|t| TimeSpec { buckets: t.buckets, dim: dim_of("time").unwrap_or(0) }),
            id_dropout: 0.0,
        }
    };
    FeatureConfig { layers: q.layers.clone(), query: tower(q), candidate: tower(c) }
}
