//! The model directory on disk.
//!
//! ```text
//! manifest.json            format, format_version, config, sizes, training figures, sha256 of every file
//! vocab.json               query ids in row order (row 0 = OOV)
//! items.json               candidate rows: key kind, id and title per row, id -> row
//! weights.safetensors      query/candidate embedding tables (+ batch-norm parameters); or
//!                          item/candidate embeddings and the GRU of a sequential model; or a
//!                          ranking model's embeddings and dense layers; or a feature model's
//!                          tables, feature bags and dense layers
//! candidates.safetensors   precomputed candidate embeddings
//! interactions.safetensors what each user saw in training (CSR) and item popularity
//! history.json/.csv/.svg   per-epoch training history and its plot
//! index.ivf.safetensors    optional approximate index (`towers index build`): IVF centroids,
//!                          list offsets, ids in list order, 4-bit codewords and codes; the
//!                          exact vectors are the candidates'
//! ```
//! Saving writes a temporary sibling directory and renames it into place, so a reader never
//! sees half a model. Loading checks the format version and every checksum before parsing.

use super::{Approximate, Artifact, TrainSummary};
use crate::data::features::Bags;
use crate::data::{Items, Vocabulary};
use crate::eval::Seen;
use crate::index::{BruteForceIndex, IvfIndex, Metric};
use crate::kernels::dense::Mlp;
use crate::kernels::gru::GruWeights;
use crate::kernels::table::Table;
use crate::model::{
    BatchNorm, FeatureModel, FeatureTower, Model, RankingModel, SequentialModel, Tower, TowerLayout, TwoTower,
};
use crate::task::RatingScale;
use crate::train::{History, SequenceConfig, TrainConfig};
use crate::{Error, Result};
use safetensors::tensor::{Dtype, SafeTensors, TensorView};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

/// The format version this build writes and the newest it reads.
pub const FORMAT_VERSION: u32 = 1;
const FORMAT_NAME: &str = "towers-model";
/// File of the approximate index in the model directory.
const IVF_FILE: &str = "index.ivf.safetensors";

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
    /// Model kind: `retrieval` (user → item; also the rating task), `sequential` (item history →
    /// next item), `ranking` ((user, item) → rating) or `features` (feature towers).
    pub kind: String,
    /// Sequential models' settings.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sequence: Option<SequenceConfig>,
    /// Range and mean of the training ratings (rating and ranking models).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rating_scale: Option<RatingScale>,
    /// Feature models: the layout of the query and the candidate tower.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub feature_towers: Option<[TowerLayout; 2]>,
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
    pub metrics: Option<crate::eval::TopKMetrics>,
    /// The approximate index, if one was built.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub index: Option<IndexManifest>,
    /// File name → sha256 (hex) of every other file of the directory.
    pub files: BTreeMap<String, String>,
}

fn sha256_hex(bytes: &[u8]) -> String {
    Sha256::digest(bytes).iter().map(|b| format!("{b:02x}")).collect()
}

fn f32_bytes(v: &[f32]) -> Vec<u8> {
    v.iter().flat_map(|x| x.to_le_bytes()).collect()
}

fn u32_bytes(v: &[u32]) -> Vec<u8> {
    v.iter().flat_map(|x| x.to_le_bytes()).collect()
}

fn safetensors_bytes(tensors: Vec<(String, Dtype, Vec<usize>, Vec<u8>)>) -> Result<Vec<u8>> {
    let views: Vec<(String, TensorView)> = tensors
        .iter()
        .map(|(n, dt, shape, data)| TensorView::new(*dt, shape.clone(), data).map(|v| (n.clone(), v)))
        .collect::<std::result::Result<_, _>>()
        .map_err(|e| Error::Invalid(format!("building tensors: {e}")))?;
    safetensors::serialize(views, None).map_err(|e| Error::Invalid(format!("serialising tensors: {e}")))
}

fn tower_tensors(prefix: &str, t: &Tower, out: &mut Vec<(String, Dtype, Vec<usize>, Vec<u8>)>) {
    let d = t.dim();
    out.push((format!("{prefix}.embedding"), Dtype::F32, vec![t.embedding.rows, d], f32_bytes(&t.embedding.data)));
    if let Some(bn) = &t.batch_norm {
        for (name, v) in [
            ("gamma", &bn.gamma.data),
            ("beta", &bn.beta.data),
            ("moving_mean", &bn.moving_mean),
            ("moving_var", &bn.moving_var),
        ] {
            out.push((format!("{prefix}.batch_norm.{name}"), Dtype::F32, vec![d], f32_bytes(v)));
        }
    }
}

fn mlp_tensors(prefix: &str, mlp: &Mlp, out: &mut Vec<(String, Dtype, Vec<usize>, Vec<u8>)>) {
    for (l, (w, b)) in mlp.weights.iter().zip(&mlp.biases).enumerate() {
        out.push((format!("{prefix}.{l}.weight"), Dtype::F32, vec![w.rows, w.dim], f32_bytes(&w.data)));
        out.push((format!("{prefix}.{l}.bias"), Dtype::F32, vec![b.dim], f32_bytes(&b.data)));
    }
}

fn feature_tower_tensors(prefix: &str, t: &FeatureTower, out: &mut Vec<(String, Dtype, Vec<usize>, Vec<u8>)>) {
    for (k, table) in t.tables.iter().enumerate() {
        out.push((format!("{prefix}.{k}.table"), Dtype::F32, vec![table.rows, table.dim], f32_bytes(&table.data)));
    }
    for (k, b) in t.bags.iter().enumerate() {
        out.push((format!("{prefix}.{k}.offsets"), Dtype::U32, vec![b.offsets.len()], u32_bytes(&b.offsets)));
        out.push((format!("{prefix}.{k}.rows"), Dtype::U32, vec![b.rows.len()], u32_bytes(&b.rows)));
        out.push((format!("{prefix}.{k}.weights"), Dtype::F32, vec![b.weights.len()], f32_bytes(&b.weights)));
    }
    mlp_tensors(&format!("{prefix}.mlp"), &t.mlp, out);
}

/// Reads a feature tower of `entities` entities, checking that its bags stay inside its tables.
fn read_feature_tower(w: &Tensors, prefix: &str, layout: &TowerLayout, entities: usize) -> Result<FeatureTower> {
    let bad = |m: String| Error::artifact(w.dir, format!("{}: {prefix} tower: {m}", w.name));
    let n = layout.names.len();
    if layout.rows.len() != n || layout.dims.len() != n || n == 0 {
        return Err(bad("inconsistent layout".into()));
    }
    let mut tables = Vec::new();
    for k in 0..n {
        let (rows, dim) = (layout.rows[k], layout.dims[k]);
        tables.push(Table { rows, dim, data: w.f32(&format!("{prefix}.{k}.table"), &[rows, dim])? });
    }
    let with_bags = n - usize::from(layout.time.is_some());
    let mut bags = Vec::new();
    for k in 0..with_bags {
        let offsets = w.u32(&format!("{prefix}.{k}.offsets"), Some(entities + 1))?;
        let rows = w.u32(&format!("{prefix}.{k}.rows"), None)?;
        let weights = w.f32(&format!("{prefix}.{k}.weights"), &[rows.len()])?;
        let ok = offsets.windows(2).all(|p| p[0] <= p[1])
            && offsets.last() == Some(&(rows.len() as u32))
            && rows.iter().all(|&r| (r as usize) < layout.rows[k]);
        if !ok {
            return Err(bad(format!("feature '{}' has bags outside its table", layout.names[k])));
        }
        bags.push(Bags { offsets, rows, weights });
    }
    if layout.time.is_some_and(|t| t.buckets == 0 || t.rows() != layout.rows[n - 1]) {
        return Err(bad("time feature does not match its table".into()));
    }
    let input: usize = layout.dims.iter().sum();
    let mlp = read_mlp(w, &format!("{prefix}.mlp"), input, &layout.layers)?;
    Ok(FeatureTower { names: layout.names.clone(), tables, bags, time: layout.time, mlp })
}

/// Reads dense layers of the given widths after an input of width `input`.
fn read_mlp(w: &Tensors, prefix: &str, input: usize, widths: &[usize]) -> Result<Mlp> {
    let mut mlp = Mlp::default();
    let mut fan_in = input;
    for (l, &out) in widths.iter().enumerate() {
        let weight = w.f32(&format!("{prefix}.{l}.weight"), &[fan_in, out])?;
        mlp.weights.push(Table { rows: fan_in, dim: out, data: weight });
        mlp.biases.push(Table { rows: 1, dim: out, data: w.f32(&format!("{prefix}.{l}.bias"), &[out])? });
        fan_in = out;
    }
    Ok(mlp)
}

impl Artifact {
    /// Writes the model directory atomically; an existing model directory at `dir` is replaced.
    pub fn save(&self, dir: impl AsRef<Path>) -> Result<()> {
        let dir = dir.as_ref();
        let mut files: Vec<(&str, Vec<u8>)> = Vec::new();
        files.push(("vocab.json", json(&self.query_vocab)?));
        files.push(("items.json", json(&self.items)?));
        let mut w = Vec::new();
        match &self.model {
            Model::TwoTower(m) => {
                tower_tensors("query", &m.query, &mut w);
                tower_tensors("candidate", &m.candidate, &mut w);
            }
            Model::Features(m) => {
                feature_tower_tensors("query", &m.query, &mut w);
                feature_tower_tensors("candidate", &m.candidate, &mut w);
            }
            Model::Ranking(m) => {
                let t = |name: &str, shape: Vec<usize>, v: &[f32]| (name.to_string(), Dtype::F32, shape, f32_bytes(v));
                w.push(t("user.embedding", vec![m.user.rows, m.user.dim], &m.user.data));
                w.push(t("item.embedding", vec![m.item.rows, m.item.dim], &m.item.data));
                mlp_tensors("mlp", &m.mlp, &mut w);
            }
            Model::Sequential(m) => {
                let t = |name: &str, shape: Vec<usize>, v: &[f32]| (name.to_string(), Dtype::F32, shape, f32_bytes(v));
                let (e, g) = (&m.item_embedding, &m.gru);
                w.push(t("items.embedding", vec![e.rows, e.dim], &e.data));
                if let Some(c) = &m.candidate_embedding {
                    w.push(t("candidates.embedding", vec![c.rows, c.dim], &c.data));
                }
                w.push(t("gru.w", vec![g.input, 3 * g.hidden], &g.w));
                w.push(t("gru.u", vec![g.hidden, 3 * g.hidden], &g.u));
                w.push(t("gru.b_in", vec![3 * g.hidden], &g.b_in));
                w.push(t("gru.b_rec", vec![3 * g.hidden], &g.b_rec));
                if let Some(p) = &m.projection {
                    mlp_tensors("projection", p, &mut w);
                }
            }
        }
        files.push(("weights.safetensors", safetensors_bytes(w)?));
        let d = self.dim();
        files.push((
            "candidates.safetensors",
            safetensors_bytes(vec![(
                "embeddings".into(),
                Dtype::F32,
                vec![self.items.len(), d],
                f32_bytes(self.candidates.vectors()),
            )])?,
        ));
        files.push((
            "interactions.safetensors",
            safetensors_bytes(vec![
                ("seen.offsets".into(), Dtype::U32, vec![self.seen.offsets.len()], u32_bytes(&self.seen.offsets)),
                ("seen.items".into(), Dtype::U32, vec![self.seen.items.len()], u32_bytes(&self.seen.items)),
                ("popularity".into(), Dtype::F32, vec![self.popularity.len()], f32_bytes(&self.popularity)),
            ])?,
        ));
        files.push(("history.json", self.history.to_json()?.into_bytes()));
        files.push(("history.csv", self.history.to_csv().into_bytes()));
        files.push(("history.svg", self.history.to_svg().into_bytes()));
        let index = match &self.approximate {
            Some(a) => {
                files.push((IVF_FILE, a.index.to_bytes()?));
                Some(IndexManifest {
                    kind: "ivf".into(),
                    file: IVF_FILE.into(),
                    nlist: a.index.nlist(),
                    nprobe: a.index.nprobe(),
                    recall_10: a.recall_10,
                    recall_queries: a.recall_queries,
                    build_s: a.build_s,
                })
            }
            None => None,
        };
        let manifest = Manifest {
            format: FORMAT_NAME.into(),
            format_version: FORMAT_VERSION,
            towers_version: env!("CARGO_PKG_VERSION").into(),
            kind: self.model.kind().into(),
            sequence: self.sequence,
            rating_scale: self.rating_scale,
            feature_towers: match &self.model {
                Model::Features(m) => Some([m.query.layout(), m.candidate.layout()]),
                _ => None,
            },
            config: self.config.clone(),
            dim: d,
            query_rows: self.query_vocab.rows(),
            candidate_rows: self.items.len(),
            training: self.summary.clone(),
            metrics: self.history.epochs.last().and_then(|e| e.validation),
            index,
            files: files.iter().map(|(n, b)| (n.to_string(), sha256_hex(b))).collect(),
        };
        files.push(("manifest.json", json(&manifest)?));
        write_dir_atomically(dir, &files)
    }

    /// Loads a model directory, verifying its format version and every file's checksum.
    pub fn load(dir: impl AsRef<Path>) -> Result<Artifact> {
        let dir = dir.as_ref();
        let bad = |msg: String| Error::artifact(dir, msg);
        let mpath = dir.join("manifest.json");
        if !dir.is_dir() {
            return Err(bad("no such model directory".into()));
        }
        let mbytes =
            std::fs::read(&mpath).map_err(|e| bad(format!("manifest.json: {e} (not a towers model directory?)")))?;
        let head: serde_json::Value =
            serde_json::from_slice(&mbytes).map_err(|e| bad(format!("manifest.json is not valid JSON: {e}")))?;
        if head.get("format").and_then(|v| v.as_str()) != Some(FORMAT_NAME) {
            return Err(bad(format!("manifest.json: not a {FORMAT_NAME} manifest")));
        }
        let version = head.get("format_version").and_then(|v| v.as_u64()).unwrap_or(0);
        if version > FORMAT_VERSION as u64 {
            return Err(bad(format!(
                "format version {version} is newer than this towers reads ({FORMAT_VERSION}); upgrade towers"
            )));
        }
        if version < 1 {
            return Err(bad(format!("manifest.json: unsupported format version {version}")));
        }
        let manifest: Manifest = serde_json::from_slice(&mbytes).map_err(|e| bad(format!("manifest.json: {e}")))?;
        let read = |name: &str| -> Result<Vec<u8>> {
            let want =
                manifest.files.get(name).ok_or_else(|| bad(format!("manifest.json lists no checksum for {name}")))?;
            let bytes = std::fs::read(dir.join(name)).map_err(|e| bad(format!("{name}: {e}")))?;
            if &sha256_hex(&bytes) != want {
                return Err(bad(format!("{name} is corrupt: its sha256 does not match the manifest")));
            }
            Ok(bytes)
        };
        let query_vocab: Vocabulary = parse_json(dir, "vocab.json", &read("vocab.json")?)?;
        let items: Items = parse_json(dir, "items.json", &read("items.json")?)?;
        let history: History = parse_json(dir, "history.json", &read("history.json")?)?;
        let (d, qr, cr) = (manifest.dim, manifest.query_rows, manifest.candidate_rows);
        if query_vocab.rows() != qr || items.len() != cr {
            return Err(bad("vocabulary sizes do not match the manifest".into()));
        }
        let wbytes = read("weights.safetensors")?;
        let w = Tensors::parse(dir, "weights.safetensors", &wbytes)?;
        let tower = |prefix: &str, rows: usize| -> Result<Tower> {
            let embedding = Table { rows, dim: d, data: w.f32(&format!("{prefix}.embedding"), &[rows, d])? };
            let batch_norm = match manifest.config.normalization {
                crate::model::Normalization::BatchNorm => Some(BatchNorm {
                    gamma: Table { rows: 1, dim: d, data: w.f32(&format!("{prefix}.batch_norm.gamma"), &[d])? },
                    beta: Table { rows: 1, dim: d, data: w.f32(&format!("{prefix}.batch_norm.beta"), &[d])? },
                    moving_mean: w.f32(&format!("{prefix}.batch_norm.moving_mean"), &[d])?,
                    moving_var: w.f32(&format!("{prefix}.batch_norm.moving_var"), &[d])?,
                }),
                _ => None,
            };
            Ok(Tower { embedding, normalization: manifest.config.normalization, batch_norm })
        };
        let model = match (manifest.kind.as_str(), manifest.sequence) {
            ("retrieval", _) => {
                Model::TwoTower(TwoTower { query: tower("query", qr)?, candidate: tower("candidate", cr)? })
            }
            ("features", _) => {
                let [q, c] = manifest
                    .feature_towers
                    .as_ref()
                    .ok_or_else(|| bad("manifest.json: feature model without its layout".into()))?;
                let (query, candidate) =
                    (read_feature_tower(&w, "query", q, qr)?, read_feature_tower(&w, "candidate", c, cr)?);
                if query.dim() != d || candidate.dim() != d {
                    return Err(bad("feature towers' width does not match the manifest".into()));
                }
                Model::Features(FeatureModel { query, candidate })
            }
            ("ranking", _) => {
                let table = |name: &str, rows: usize| -> Result<Table> {
                    Ok(Table { rows, dim: d, data: w.f32(name, &[rows, d])? })
                };
                let widths: Vec<usize> = manifest.config.layers.iter().copied().chain([1]).collect();
                Model::Ranking(RankingModel {
                    user: table("user.embedding", qr)?,
                    item: table("item.embedding", cr)?,
                    mlp: read_mlp(&w, "mlp", 2 * d, &widths)?,
                })
            }
            ("sequential", Some(_)) => {
                let table =
                    |name: &str| -> Result<Table> { Ok(Table { rows: cr, dim: d, data: w.f32(name, &[cr, d])? }) };
                let candidate_embedding = match w.st.tensor("candidates.embedding") {
                    Ok(_) => Some(table("candidates.embedding")?),
                    Err(_) => None,
                };
                let gru = GruWeights {
                    input: d,
                    hidden: d,
                    w: w.f32("gru.w", &[d, 3 * d])?,
                    u: w.f32("gru.u", &[d, 3 * d])?,
                    b_in: w.f32("gru.b_in", &[3 * d])?,
                    b_rec: w.f32("gru.b_rec", &[3 * d])?,
                };
                let add_last_item = manifest.sequence.is_some_and(|s| s.add_last_item);
                let projection = match manifest.sequence.is_some_and(|s| s.projection) {
                    true => Some(read_mlp(&w, "projection", d, &[d])?),
                    false => None,
                };
                Model::Sequential(SequentialModel {
                    item_embedding: table("items.embedding")?,
                    candidate_embedding,
                    gru,
                    projection,
                    add_last_item,
                })
            }
            (kind, _) => {
                return Err(bad(format!(
                    "manifest.json: unknown model kind '{kind}' (or a sequential model without its settings)"
                )));
            }
        };
        let cbytes = read("candidates.safetensors")?;
        let embeddings = Tensors::parse(dir, "candidates.safetensors", &cbytes)?.f32("embeddings", &[cr, d])?;
        let candidates = BruteForceIndex::new(embeddings, d, Metric::Dot);
        let ibytes = read("interactions.safetensors")?;
        let it = Tensors::parse(dir, "interactions.safetensors", &ibytes)?;
        let seen = Seen { offsets: it.u32("seen.offsets", Some(qr + 1))?, items: it.u32("seen.items", None)? };
        if seen.offsets.last().copied() != Some(seen.items.len() as u32) || seen.items.iter().any(|&c| c as usize >= cr)
        {
            return Err(bad("interactions.safetensors: inconsistent seen-item index".into()));
        }
        let popularity = it.f32("popularity", &[cr])?;
        let approximate = match &manifest.index {
            Some(m) if m.kind == "ivf" && m.file == IVF_FILE => {
                let bytes = read(IVF_FILE)?;
                let index = IvfIndex::from_bytes(&bytes, candidates.vectors(), d)
                    .map_err(|e| bad(format!("{IVF_FILE}: {e}")))?;
                if index.nlist() != m.nlist || index.nprobe() != m.nprobe {
                    return Err(bad(format!("{IVF_FILE} does not match the manifest's nlist and nprobe")));
                }
                Some(Approximate {
                    index,
                    recall_10: m.recall_10,
                    recall_queries: m.recall_queries,
                    build_s: m.build_s,
                })
            }
            Some(m) => {
                return Err(bad(format!(
                    "manifest.json: unknown index kind '{}' (file {}); upgrade towers or rebuild the index",
                    m.kind, m.file
                )));
            }
            None => None,
        };
        let mut artifact = Artifact::from_parts(
            manifest.config,
            query_vocab,
            items,
            model,
            manifest.sequence,
            manifest.rating_scale,
            candidates,
            seen,
            popularity,
            history,
            manifest.training,
        );
        artifact.approximate = approximate;
        Ok(artifact)
    }
}

fn json<T: Serialize>(v: &T) -> Result<Vec<u8>> {
    serde_json::to_vec_pretty(v).map_err(|e| Error::Invalid(e.to_string()))
}

fn parse_json<T: serde::de::DeserializeOwned>(dir: &Path, name: &str, bytes: &[u8]) -> Result<T> {
    serde_json::from_slice(bytes).map_err(|e| Error::artifact(dir, format!("{name}: {e}")))
}

/// A parsed safetensors file with shape-checked accessors.
struct Tensors<'a> {
    dir: &'a Path,
    name: &'a str,
    st: SafeTensors<'a>,
}

impl<'a> Tensors<'a> {
    fn parse(dir: &'a Path, name: &'a str, bytes: &'a [u8]) -> Result<Self> {
        let st = SafeTensors::deserialize(bytes).map_err(|e| Error::artifact(dir, format!("{name}: {e}")))?;
        Ok(Tensors { dir, name, st })
    }

    fn view(&self, tensor: &str, dtype: Dtype, shape: Option<&[usize]>) -> Result<TensorView<'a>> {
        let bad = |m: String| Error::artifact(self.dir, format!("{}: {m}", self.name));
        let v = self.st.tensor(tensor).map_err(|_| bad(format!("missing tensor '{tensor}'")))?;
        if v.dtype() != dtype || shape.is_some_and(|s| v.shape() != s) || (shape.is_none() && v.shape().len() != 1) {
            return Err(bad(format!(
                "tensor '{tensor}' is {:?} {:?}, expected {dtype:?} {:?}",
                v.dtype(),
                v.shape(),
                shape
            )));
        }
        Ok(v)
    }

    fn f32(&self, tensor: &str, shape: &[usize]) -> Result<Vec<f32>> {
        let v = self.view(tensor, Dtype::F32, Some(shape))?;
        Ok(v.data().chunks_exact(4).map(|b| f32::from_le_bytes([b[0], b[1], b[2], b[3]])).collect())
    }

    fn u32(&self, tensor: &str, len: Option<usize>) -> Result<Vec<u32>> {
        let shape = len.map(|l| vec![l]);
        let v = self.view(tensor, Dtype::U32, shape.as_deref())?;
        Ok(v.data().chunks_exact(4).map(|b| u32::from_le_bytes([b[0], b[1], b[2], b[3]])).collect())
    }
}

/// Writes `files` into a fresh temporary sibling of `dir`, then renames it to `dir`. An
/// existing `dir` is replaced only if it is empty or a towers model directory.
fn write_dir_atomically(dir: &Path, files: &[(&str, Vec<u8>)]) -> Result<()> {
    let name =
        dir.file_name().ok_or_else(|| Error::artifact(dir, "not a directory name"))?.to_string_lossy().to_string();
    let parent = match dir.parent() {
        Some(p) if !p.as_os_str().is_empty() => p.to_path_buf(),
        _ => PathBuf::from("."),
    };
    std::fs::create_dir_all(&parent).map_err(|e| Error::io(&parent, e))?;
    if dir.exists() {
        let is_model = dir.join("manifest.json").is_file();
        let is_empty = std::fs::read_dir(dir).map(|mut d| d.next().is_none()).unwrap_or(false);
        if !(is_model || is_empty) {
            return Err(Error::artifact(dir, "exists and is not a towers model directory; refusing to replace it"));
        }
    }
    let stamp = format!(
        "{}-{}",
        std::process::id(),
        std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map(|d| d.as_nanos()).unwrap_or(0)
    );
    let tmp = parent.join(format!(".{name}.tmp-{stamp}"));
    let result = (|| -> Result<()> {
        std::fs::create_dir(&tmp).map_err(|e| Error::io(&tmp, e))?;
        for (f, bytes) in files {
            let p = tmp.join(f);
            let mut file = std::fs::File::create(&p).map_err(|e| Error::io(&p, e))?;
            std::io::Write::write_all(&mut file, bytes).map_err(|e| Error::io(&p, e))?;
            file.sync_all().map_err(|e| Error::io(&p, e))?;
        }
        if dir.exists() {
            let old = parent.join(format!(".{name}.old-{stamp}"));
            std::fs::rename(dir, &old).map_err(|e| Error::io(dir, e))?;
            std::fs::rename(&tmp, dir).map_err(|e| Error::io(dir, e))?;
            let _ = std::fs::remove_dir_all(&old);
        } else {
            std::fs::rename(&tmp, dir).map_err(|e| Error::io(dir, e))?;
        }
        Ok(())
    })();
    if result.is_err() {
        let _ = std::fs::remove_dir_all(&tmp);
    }
    result
}
