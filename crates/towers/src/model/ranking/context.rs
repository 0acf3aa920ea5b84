//! Context features: what a pipeline knows about a candidate for one user besides ids — the
//! retriever's score and embeddings, and statistics of the training data (popularity, when the
//! item was interacted with against when the user was active, how the item's attributes match
//! the user's history). A ranker reads them to reorder the retriever's candidates.

use super::cooccurrence;
use crate::data::features::{AttributeTable, Bags, FeatureSpec, encode_feature};
use crate::kernels::matmul_abt;
use crate::tensors::{TensorReader, TensorWriter};
use crate::{Error, Result};
use serde::{Deserialize, Serialize};

/// Seconds on either side of a user's active period that [`ContextFeature::ActiveWindow`] counts.
pub const ACTIVE_WINDOW_S: i64 = 7 * 86_400;

/// One context feature of a (user, candidate) pair; written as in the manifest
/// (`retrieval_score`, `popularity`, `history_similarity`, `arrived_after`, `active_window`,
/// `affinity:COLUMN`, `co_occurrence`).
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub enum ContextFeature {
    /// The retriever's score of the candidate.
    RetrievalScore,
    /// `ln(1 + the item's training interactions)`.
    Popularity,
    /// The largest cosine similarity between the candidate's retriever embedding and those of
    /// the user's training items.
    HistorySimilarity,
    /// 1 when the item's first training interaction is later than the user's last one (the
    /// item was not there yet while the user was active), else 0. Needs timestamps.
    ArrivedAfter,
    /// `ln(1 + the item's training interactions during the user's active period, ± 7 days)`.
    /// Needs timestamps.
    ActiveWindow,
    /// The cosine similarity between the candidate's values of an item attribute (e.g. its
    /// genres) and the user's profile: the values of their training items, summed.
    Affinity(String),
    /// `ln(1 + Σ)` over the user's training items of their co-occurrence similarity with the
    /// candidate (cosine of the items' user sets; each item's 200 nearest kept).
    CoOccurrence,
}

impl std::fmt::Display for ContextFeature {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            ContextFeature::RetrievalScore => f.write_str("retrieval_score"),
            ContextFeature::Popularity => f.write_str("popularity"),
            ContextFeature::HistorySimilarity => f.write_str("history_similarity"),
            ContextFeature::ArrivedAfter => f.write_str("arrived_after"),
            ContextFeature::ActiveWindow => f.write_str("active_window"),
            ContextFeature::Affinity(c) => write!(f, "affinity:{c}"),
            ContextFeature::CoOccurrence => f.write_str("co_occurrence"),
        }
    }
}

impl std::str::FromStr for ContextFeature {
    type Err = Error;

    fn from_str(s: &str) -> Result<Self> {
        Ok(match s {
            "retrieval_score" => ContextFeature::RetrievalScore,
            "popularity" => ContextFeature::Popularity,
            "history_similarity" => ContextFeature::HistorySimilarity,
            "arrived_after" => ContextFeature::ArrivedAfter,
            "active_window" => ContextFeature::ActiveWindow,
            "co_occurrence" => ContextFeature::CoOccurrence,
            _ => match s.strip_prefix("affinity:") {
                Some(c) if !c.is_empty() => ContextFeature::Affinity(c.to_string()),
                _ => {
                    return Err(Error::Config(format!(
                        "unknown context feature '{s}' (retrieval_score, popularity, history_similarity, \
                         arrived_after, active_window, affinity:COLUMN, co_occurrence)"
                    )));
                }
            },
        })
    }
}

impl TryFrom<String> for ContextFeature {
    type Error = Error;
    fn try_from(s: String) -> Result<Self> {
        s.parse()
    }
}

impl From<ContextFeature> for String {
    fn from(f: ContextFeature) -> String {
        f.to_string()
    }
}

impl ContextFeature {
    /// The features of a pipeline's ranker by default: chosen on a validation split of the
    /// MovieLens training data (the book's pipeline guide); `affinity` for each attribute given.
    pub fn defaults(affinity: &[String], timestamps: bool) -> Vec<ContextFeature> {
        let mut v = vec![
            ContextFeature::RetrievalScore,
            ContextFeature::Popularity,
            ContextFeature::HistorySimilarity,
            ContextFeature::CoOccurrence,
        ];
        if timestamps {
            v.extend([ContextFeature::ArrivedAfter, ContextFeature::ActiveWindow]);
        }
        v.extend(affinity.iter().map(|c| ContextFeature::Affinity(c.clone())));
        v
    }

    fn needs_time(&self) -> bool {
        matches!(self, ContextFeature::ArrivedAfter | ContextFeature::ActiveWindow)
    }
}

/// When each user was active and when each item was interacted with, in seconds after `base`.
#[derive(Debug, Clone, PartialEq)]
pub struct TimeContext {
    /// The earliest training timestamp.
    pub base: i64,
    /// Each user row's first interaction (`u32::MAX`: none).
    pub user_first: Vec<u32>,
    /// Each user row's last interaction (0: none).
    pub user_last: Vec<u32>,
    /// `item_offsets[i]..item_offsets[i + 1]` indexes `item_times` for item row `i`.
    pub item_offsets: Vec<u32>,
    /// Each item's interaction times, sorted.
    pub item_times: Vec<u32>,
}

/// What a ranker's context features are computed from (saved with the ranker).
#[derive(Debug, Clone, PartialEq)]
pub struct Context {
    /// The features, in input order.
    pub features: Vec<ContextFeature>,
    /// `ln(1 + count)` per item row.
    pub popularity: Vec<f32>,
    /// Timestamps, when a feature needs them.
    pub time: Option<TimeContext>,
    /// One per [`ContextFeature::Affinity`] feature, in order: each item row's values.
    pub affinity: Vec<Bags>,
    /// Number of distinct values of each affinity attribute (rows of its profile).
    pub affinity_values: Vec<usize>,
    /// Each item row's nearest items by co-occurrence, for [`ContextFeature::CoOccurrence`].
    pub neighbours: Option<Bags>,
}

/// The training data a [`Context`] is built from, encoded against the ranker's rows.
#[derive(Debug, Clone, Copy)]
pub struct ContextData<'a> {
    /// User rows (OOV included).
    pub users: usize,
    /// Each item row's id (`None` for the OOV row).
    pub items: &'a [Option<&'a str>],
    /// (user row, item row) of each training interaction.
    pub pairs: &'a [(u32, u32)],
    /// Each interaction's timestamp.
    pub timestamps: Option<&'a [i64]>,
    /// Item attributes, for affinities.
    pub attributes: Option<&'a AttributeTable>,
    /// How each affinity attribute is encoded, in the order of the affinity features.
    pub affinity: &'a [FeatureSpec],
}

/// What the retriever said about a user's candidates.
#[derive(Debug, Clone, Copy)]
pub struct Retrieved<'a> {
    /// The retriever's score of each candidate (aligned with the candidates).
    pub scores: &'a [f32],
    /// The retriever's candidate embeddings, every item row (`rows × dim`).
    pub embeddings: &'a [f32],
    /// Their width.
    pub dim: usize,
    /// Each row's L2 norm ([`norms`]), when the caller keeps them; computed as needed otherwise.
    pub norms: Option<&'a [f32]>,
}

/// The L2 norm of each `dim`-wide row of `embeddings`: what [`Retrieved::norms`] holds.
pub fn norms(embeddings: &[f32], dim: usize) -> Vec<f32> {
    embeddings.chunks_exact(dim.max(1)).map(norm).collect()
}

fn norm(row: &[f32]) -> f32 {
    row.iter().map(|x| x * x).sum::<f32>().sqrt()
}

#[derive(Serialize, Deserialize)]
struct ContextMeta {
    features: Vec<ContextFeature>,
    base: Option<i64>,
    affinity_values: Vec<usize>,
    #[serde(default)]
    neighbours: bool,
}

impl Context {
    /// Computes the statistics `features` need from the training data.
    pub fn build(features: &[ContextFeature], data: &ContextData) -> Result<Context> {
        let n_items = data.items.len();
        let mut counts = vec![0f32; n_items];
        for &(_, i) in data.pairs {
            if let Some(c) = counts.get_mut(i as usize) {
                *c += 1.0;
            }
        }
        let popularity = counts.iter().map(|&c| c.ln_1p()).collect();
        let time = if features.iter().any(ContextFeature::needs_time) {
            let ts = data.timestamps.ok_or_else(|| {
                Error::Data("context features arrived_after and active_window need a timestamp column".into())
            })?;
            Some(time_context(data.users, n_items, data.pairs, ts))
        } else {
            None
        };
        let columns: Vec<&String> =
            features.iter().filter_map(|f| if let ContextFeature::Affinity(c) = f { Some(c) } else { None }).collect();
        if columns.len() != data.affinity.len() || columns.iter().zip(data.affinity).any(|(c, s)| **c != s.column) {
            return Err(Error::Internal("affinity encoders do not match the affinity features".into()));
        }
        let (mut affinity, mut affinity_values) = (Vec::new(), Vec::new());
        if !columns.is_empty() {
            let table = data
                .attributes
                .ok_or_else(|| Error::Config("affinity context features need item attributes (`features`)".into()))?;
            let fit: Vec<bool> = counts.iter().map(|&c| c > 0.0).collect();
            for spec in data.affinity {
                let (bags, rows) = encode_feature(spec, table, data.items, &fit)?;
                affinity.push(bags);
                affinity_values.push(rows);
            }
        }
        let neighbours = features
            .contains(&ContextFeature::CoOccurrence)
            .then(|| cooccurrence::neighbours(data.users, n_items, data.pairs, cooccurrence::NEIGHBOURS));
        Ok(Context { features: features.to_vec(), popularity, time, affinity, affinity_values, neighbours })
    }

    /// Number of features.
    pub fn width(&self) -> usize {
        self.features.len()
    }

    /// The features of `items` (item rows) for a user (`user` row, `history` its training
    /// items), `items.len() × width`, row-major.
    pub fn compute(
        &self,
        user: u32,
        history: &[u32],
        items: &[u32],
        retrieved: Option<&Retrieved>,
    ) -> Result<Vec<f32>> {
        let (n, w) = (items.len(), self.width());
        let mut out = vec![0f32; n * w];
        let n_items = self.popularity.len();
        if let Some(&bad) = items.iter().chain(history).find(|&&i| i as usize >= n_items) {
            return Err(Error::Data(format!("item row {bad} is outside the ranker's {n_items} items")));
        }
        let mut affinity_k = 0;
        for (f, feature) in self.features.iter().enumerate() {
            let mut set = |values: &[f32]| values.iter().enumerate().for_each(|(i, &v)| out[i * w + f] = v);
            match feature {
                ContextFeature::RetrievalScore => {
                    let r = need(retrieved, feature)?;
                    if r.scores.len() != n {
                        return Err(Error::Data(format!("{} retrieval scores for {n} candidates", r.scores.len())));
                    }
                    set(r.scores);
                }
                ContextFeature::Popularity => {
                    set(&items.iter().map(|&i| self.popularity[i as usize]).collect::<Vec<_>>());
                }
                ContextFeature::HistorySimilarity => {
                    set(&history_similarity(need(retrieved, feature)?, history, items)?);
                }
                ContextFeature::ArrivedAfter | ContextFeature::ActiveWindow => {
                    let t = self.time.as_ref().ok_or_else(|| Error::Internal("no time context".into()))?;
                    let u = user as usize;
                    let (first, last) =
                        (t.user_first.get(u).copied().unwrap_or(u32::MAX), t.user_last.get(u).copied().unwrap_or(0));
                    let values: Vec<f32> = items
                        .iter()
                        .map(|&i| {
                            let times = &t.item_times
                                [t.item_offsets[i as usize] as usize..t.item_offsets[i as usize + 1] as usize];
                            if *feature == ContextFeature::ArrivedAfter {
                                f32::from(times.first().is_none_or(|&f| f > last))
                            } else if first > last {
                                0.0
                            } else {
                                let lo = (first as i64 - ACTIVE_WINDOW_S).max(0) as u64;
                                let hi = last as u64 + ACTIVE_WINDOW_S as u64;
                                let a = times.partition_point(|&x| (x as u64) < lo);
                                let b = times.partition_point(|&x| (x as u64) <= hi);
                                ((b - a) as f32).ln_1p()
                            }
                        })
                        .collect();
                    set(&values);
                }
                ContextFeature::Affinity(_) => {
                    let bags = &self.affinity[affinity_k];
                    let mut profile = vec![0f32; self.affinity_values[affinity_k]];
                    affinity_k += 1;
                    for &h in history {
                        let (rows, ws) = bags.of(h as usize);
                        rows.iter().zip(ws).for_each(|(&r, &x)| profile[r as usize] += x);
                    }
                    let norm = profile.iter().map(|x| x * x).sum::<f32>().sqrt();
                    let values: Vec<f32> = items
                        .iter()
                        .map(|&i| {
                            let (rows, ws) = bags.of(i as usize);
                            let dot: f32 = rows.iter().zip(ws).map(|(&r, &x)| profile[r as usize] * x).sum();
                            let bn = ws.iter().map(|x| x * x).sum::<f32>().sqrt();
                            if norm > 0.0 && bn > 0.0 { dot / (norm * bn) } else { 0.0 }
                        })
                        .collect();
                    set(&values);
                }
                ContextFeature::CoOccurrence => {
                    let b = self.neighbours.as_ref().ok_or_else(|| Error::Internal("no co-occurrence".into()))?;
                    set(&cooccurrence::scores(b, history, items));
                }
            }
        }
        Ok(out)
    }

    /// Writes its tensors (`context.*`) and metadata (`context`).
    pub fn save(&self, w: &mut TensorWriter) -> Result<()> {
        w.f32("context.popularity", &[self.popularity.len()], &self.popularity);
        if let Some(t) = &self.time {
            w.u32("context.user_first", &t.user_first);
            w.u32("context.user_last", &t.user_last);
            w.u32("context.item_offsets", &t.item_offsets);
            w.u32("context.item_times", &t.item_times);
        }
        for (k, b) in self.affinity.iter().enumerate() {
            w.u32(format!("context.affinity.{k}.offsets"), &b.offsets);
            w.u32(format!("context.affinity.{k}.rows"), &b.rows);
            w.f32(format!("context.affinity.{k}.weights"), &[b.weights.len()], &b.weights);
        }
        if let Some(b) = &self.neighbours {
            w.u32("context.neighbours.offsets", &b.offsets);
            w.u32("context.neighbours.rows", &b.rows);
            w.f32("context.neighbours.weights", &[b.weights.len()], &b.weights);
        }
        let meta = ContextMeta {
            features: self.features.clone(),
            base: self.time.as_ref().map(|t| t.base),
            affinity_values: self.affinity_values.clone(),
            neighbours: self.neighbours.is_some(),
        };
        w.meta("context", &meta)
    }

    /// Reads what [`Context::save`] wrote, for `users` user rows and `items` item rows,
    /// checking every index against its table.
    pub fn load(r: &TensorReader, users: usize, items: usize) -> Result<Context> {
        let meta: ContextMeta = r.meta("context")?;
        let popularity = r.f32("context.popularity", &[items])?;
        let time = match meta.base {
            None => None,
            Some(base) => {
                let item_offsets = r.u32("context.item_offsets", Some(items + 1))?;
                let item_times = r.u32("context.item_times", None)?;
                if !item_offsets.windows(2).all(|p| p[0] <= p[1])
                    || item_offsets.last() != Some(&(item_times.len() as u32))
                {
                    return Err(r.error("context: inconsistent item times"));
                }
                Some(TimeContext {
                    base,
                    user_first: r.u32("context.user_first", Some(users))?,
                    user_last: r.u32("context.user_last", Some(users))?,
                    item_offsets,
                    item_times,
                })
            }
        };
        let n_aff = meta.features.iter().filter(|f| matches!(f, ContextFeature::Affinity(_))).count();
        if meta.affinity_values.len() != n_aff || (time.is_none() && meta.features.iter().any(|f| f.needs_time())) {
            return Err(r.error("context: metadata does not match its features"));
        }
        let mut affinity = Vec::new();
        for (k, &values) in meta.affinity_values.iter().enumerate() {
            let offsets = r.u32(&format!("context.affinity.{k}.offsets"), Some(items + 1))?;
            let rows = r.u32(&format!("context.affinity.{k}.rows"), None)?;
            let weights = r.f32(&format!("context.affinity.{k}.weights"), &[rows.len()])?;
            let ok = offsets.windows(2).all(|p| p[0] <= p[1])
                && offsets.last() == Some(&(rows.len() as u32))
                && rows.iter().all(|&v| (v as usize) < values);
            if !ok {
                return Err(r.error(format!("context: affinity {k} has values outside its table")));
            }
            affinity.push(Bags { offsets, rows, weights });
        }
        let neighbours = if meta.neighbours {
            let offsets = r.u32("context.neighbours.offsets", Some(items + 1))?;
            let rows = r.u32("context.neighbours.rows", None)?;
            let weights = r.f32("context.neighbours.weights", &[rows.len()])?;
            let ok = offsets.windows(2).all(|p| p[0] <= p[1])
                && offsets.last() == Some(&(rows.len() as u32))
                && rows.iter().all(|&v| (v as usize) < items);
            if !ok {
                return Err(r.error("context: co-occurrence neighbours outside the items"));
            }
            Some(Bags { offsets, rows, weights })
        } else {
            None
        };
        if neighbours.is_some() != meta.features.contains(&ContextFeature::CoOccurrence) {
            return Err(r.error("context: metadata does not match its features"));
        }
        Ok(Context {
            features: meta.features,
            popularity,
            time,
            affinity,
            affinity_values: meta.affinity_values,
            neighbours,
        })
    }
}

fn need<'a>(retrieved: Option<&'a Retrieved<'a>>, feature: &ContextFeature) -> Result<&'a Retrieved<'a>> {
    retrieved.ok_or_else(|| {
        Error::Unsupported(format!("the context feature {feature} needs a retriever: this ranker serves in a pipeline"))
    })
}

fn time_context(users: usize, items: usize, pairs: &[(u32, u32)], ts: &[i64]) -> TimeContext {
    let base = ts.iter().copied().min().unwrap_or(0);
    let rel = |t: i64| (t - base).clamp(0, u32::MAX as i64 - 1) as u32;
    let (mut user_first, mut user_last) = (vec![u32::MAX; users], vec![0u32; users]);
    let mut per_item: Vec<Vec<u32>> = vec![Vec::new(); items];
    for (&(u, i), &t) in pairs.iter().zip(ts) {
        let t = rel(t);
        if let Some(f) = user_first.get_mut(u as usize) {
            *f = (*f).min(t);
            user_last[u as usize] = user_last[u as usize].max(t);
        }
        if let Some(v) = per_item.get_mut(i as usize) {
            v.push(t);
        }
    }
    let mut item_offsets = vec![0u32];
    let mut item_times = Vec::with_capacity(pairs.len());
    for mut v in per_item {
        v.sort_unstable();
        item_times.extend(v);
        item_offsets.push(item_times.len() as u32);
    }
    TimeContext { base, user_first, user_last, item_offsets, item_times }
}

/// The largest cosine similarity of each candidate's embedding with the history's.
fn history_similarity(r: &Retrieved, history: &[u32], items: &[u32]) -> Result<Vec<f32>> {
    let d = r.dim;
    let rows = r.embeddings.len() / d.max(1);
    if let Some(&bad) = items.iter().chain(history).find(|&&i| i as usize >= rows) {
        return Err(Error::Data(format!("item row {bad} is outside the retriever's {rows} candidates")));
    }
    if history.is_empty() || d == 0 {
        return Ok(vec![0.0; items.len()]);
    }
    let norms = r.norms.filter(|n| n.len() == rows);
    let unit = |ids: &[u32]| -> Vec<f32> {
        let mut v = Vec::with_capacity(ids.len() * d);
        for &i in ids {
            let row = &r.embeddings[i as usize * d..(i as usize + 1) * d];
            let n = norms.map_or_else(|| norm(row), |n| n[i as usize]);
            v.extend(row.iter().map(|x| if n > 0.0 { x / n } else { 0.0 }));
        }
        v
    };
    let (c, h) = (unit(items), unit(history));
    let mut sims = vec![0f32; items.len() * history.len()];
    matmul_abt(&c, &h, &mut sims, items.len(), history.len(), d);
    Ok(sims.chunks_exact(history.len()).map(|row| row.iter().copied().fold(f32::NEG_INFINITY, f32::max)).collect())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::data::features::Encoder;

    #[test]
    fn features_by_hand() {
        // items: OOV, a (genres x|y), b (y), c (z); user 1 saw a at t=100; b was seen at 50 and 2,000,000
        let table = AttributeTable {
            columns: vec!["genres".into()],
            rows: [("a", "x|y"), ("b", "y"), ("c", "z")]
                .iter()
                .map(|(k, v)| (k.to_string(), vec![v.to_string()]))
                .collect(),
            source: "t".into(),
        };
        let ids = [None, Some("a"), Some("b"), Some("c")];
        let pairs = [(1u32, 1u32), (2, 2), (2, 2), (2, 3)];
        let ts = [100i64, 50, 2_000_000, 3_000_000];
        let genres = FeatureSpec { separator: Some("|".into()), ..FeatureSpec::new("genres", Encoder::MultiHot, 2) };
        let features: Vec<ContextFeature> = [
            "retrieval_score",
            "popularity",
            "history_similarity",
            "arrived_after",
            "active_window",
            "affinity:genres",
        ]
        .iter()
        .map(|s| s.parse().unwrap())
        .collect();
        let data = ContextData {
            users: 3,
            items: &ids,
            pairs: &pairs,
            timestamps: Some(&ts),
            attributes: Some(&table),
            affinity: std::slice::from_ref(&genres),
        };
        let ctx = Context::build(&features, &data).unwrap();
        let emb = [0.0f32, 0.0, 1.0, 0.0, 1.0, 1.0, 0.0, 2.0]; // rows OOV, a, b, c (dim 2)
        let scores = [0.5f32, -1.0];
        let r = Retrieved { scores: &scores, embeddings: &emb, dim: 2, norms: None };
        let x = ctx.compute(1, &[1], &[2, 3], Some(&r)).unwrap();
        let w = 6;
        assert_eq!((x[0], x[w]), (0.5, -1.0));
        assert!((x[1] - 2f32.ln_1p()).abs() < 1e-6 && (x[w + 1] - 1f32.ln_1p()).abs() < 1e-6);
        assert!((x[2] - 0.5f32.sqrt()).abs() < 1e-6 && x[w + 2].abs() < 1e-6);
        // b first appeared at 50 < 100 (user's last); c at 3,000,000 > 100
        assert_eq!((x[3], x[w + 3]), (0.0, 1.0));
        // user active at 100 only: b's interaction at 50 is in the window, 2,000,000 is not (7 days = 604,800 s)
        assert!((x[4] - 1f32.ln_1p()).abs() < 1e-6 && x[w + 4] == 0.0);
        // profile {x: .5, y: .5}; b = {y: 1}: cos = 0.5/(0.7071·1); c = {z}: 0
        assert!((x[5] - 0.5f32.sqrt()).abs() < 1e-6 && x[w + 5] == 0.0);
        // saved and read back, the same features
        let mut wr = TensorWriter::default();
        ctx.save(&mut wr).unwrap();
        let bytes = wr.to_bytes().unwrap();
        let rd = TensorReader::parse(std::path::Path::new("c"), &bytes).unwrap();
        let back = Context::load(&rd, 3, 4).unwrap();
        assert_eq!(back, ctx);
        // a ranker needs its retriever for the retrieval features; rows outside are errors
        assert!(ctx.compute(1, &[1], &[2], None).is_err());
        assert!(ctx.compute(1, &[1], &[9], Some(&r)).is_err());
        assert!("nope".parse::<ContextFeature>().is_err());
        assert_eq!(serde_json::to_string(&features[5]).unwrap(), "\"affinity:genres\"");
    }
}
