//! Model kinds: each module holds one kind's towers, their forward and backward passes, and
//! how they save and load their own named tensors. [`ModelSpec`] is the taxonomy; a trained
//! model of any kind is a `Box<dyn Model>`.

mod attention;
mod features;
mod multitask;
mod ranking;
mod sequential;
mod spec;
mod tower;
mod two_tower;

pub use attention::{AttentionConfig, AttentionModel, EncoderCache, EncoderGrads};
pub(crate) use features::Instances;
pub use features::{
    Entities, FeatureConfig, FeatureModel, FeatureTower, TimeFeature, TimeSpec, TowerFeatures, TowerLayout,
};
pub use multitask::{MultitaskModel, MultitaskSpec};
pub use ranking::{
    ACTIVE_WINDOW_S, Context, ContextData, ContextFeature, CrossSpec, FeatureCrossing, RankerKind, RankingInputs,
    RankingModel, RankingSpec, Retrieved, Scorer, ScorerCache, ScorerGrads, Structure, TimeContext, norms,
};
pub use sequential::{Encoder, QueryCache, SequenceConfig, SequentialGrads, SequentialModel, last_position};
pub use spec::{ModelKind, ModelSpec, Recipe, Task};
pub use tower::{BatchNorm, Normalization, Tower, TowerCache, TowerGrads};
pub use two_tower::TwoTower;

use crate::task::RatingScale;
use crate::tensors::{TensorReader, TensorWriter};
use crate::{Error, Result};

/// What a model's query tower reads.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum QueryKind {
    /// A user (query) id.
    User,
    /// A user id at a point in time: every query is its own (feature models).
    UserAtTime,
    /// A history of items (sequential models).
    History,
    /// No query tower: the model scores (user, item) pairs (ranking models).
    Pairs,
}

/// When queries are made, for models that read the time.
#[derive(Debug, Clone, Copy)]
pub enum At<'a> {
    /// Each query's own timestamp.
    Each(&'a [i64]),
    /// Unknown: the time feature's out-of-vocabulary row.
    Unknown,
    /// The end of the training period ("now", for recommendations).
    TrainingEnd,
}

/// A batch of queries for [`Model::queries`].
#[derive(Debug, Clone, Copy)]
pub enum Queries<'a> {
    /// Query (user) rows.
    Users {
        /// Rows of the query vocabulary (0 = unknown).
        rows: &'a [u32],
        /// When, for models that read the time.
        at: At<'a>,
    },
    /// Item histories, `n × steps` candidate rows (the model's history length), oldest first,
    /// padding (`mask` false) after the real items.
    Histories {
        /// Item rows.
        contexts: &'a [u32],
        /// True for real items.
        mask: &'a [bool],
    },
}

/// A user's candidates for a ranking model to score, with what the retriever said about them.
#[derive(Debug, Clone, Copy)]
pub struct Candidates<'a> {
    /// The user's row.
    pub user: u32,
    /// Candidate rows.
    pub items: &'a [u32],
    /// The user's training items (rows), for context features.
    pub history: &'a [u32],
    /// The retriever's scores and embeddings, for context features.
    pub retrieved: Option<Retrieved<'a>>,
}

/// The sizes a model's tensors are checked against when it is loaded.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Shape {
    /// Query rows (the OOV row included).
    pub queries: usize,
    /// Candidate rows (the OOV row included).
    pub candidates: usize,
    /// Embedding width.
    pub dim: usize,
}

/// A trained model of any kind: its embeddings, scores, and its own tensors.
pub trait Model: std::fmt::Debug + Send + Sync {
    /// Its kind and settings.
    fn spec(&self) -> ModelSpec;

    /// Embedding width.
    fn dim(&self) -> usize;

    /// What its query tower reads.
    fn query_kind(&self) -> QueryKind;

    /// The candidate tower's output for every candidate row (`rows × dim`; ranking models:
    /// their item embeddings).
    fn candidates(&self) -> Vec<f32>;

    /// The query tower's output for a batch of queries (`n × dim`).
    fn queries(&self, queries: &Queries) -> Result<Vec<f32>> {
        let _ = queries;
        Err(Error::Unsupported(format!(
            "a {} model has no query tower: it scores (user, item) pairs",
            self.spec().kind()
        )))
    }

    /// The range and mean of the training ratings, for models that predict ratings.
    fn rating_scale(&self) -> Option<RatingScale> {
        None
    }

    /// Predicted ratings of (user row, item row) pairs, on the rating scale.
    fn predict(&self, pairs: &[(u32, u32)]) -> Result<Vec<f32>> {
        let _ = pairs;
        Err(Error::Unsupported(format!("a {} model does not predict ratings", self.spec().kind())))
    }

    /// Scores a user's candidates: by default the predicted ratings of the pairs; a ranker
    /// with context features also reads what the retriever said about them.
    fn score(&self, candidates: &Candidates) -> Result<Vec<f32>> {
        let pairs: Vec<(u32, u32)> = candidates.items.iter().map(|&i| (candidates.user, i)).collect();
        self.predict(&pairs)
    }

    /// What a history adds to the scores of the items in it (sequential models that learned
    /// how likely an item seen `a` steps ago comes again): `(row, added score)` for one history
    /// window (`steps` rows, oldest first, `mask` true for real items, as in
    /// [`Queries::Histories`]), sorted by row. Default: nothing.
    fn repeat_scores(&self, context: &[u32], mask: &[bool]) -> Vec<(u32, f32)> {
        let _ = (context, mask);
        Vec::new()
    }

    /// A DCN's feature crossing (the norms of its cross matrix's blocks), for other kinds none.
    fn feature_crossing(&self) -> Option<FeatureCrossing> {
        None
    }

    /// Writes its tensors (and what reading them back needs, as metadata).
    fn save(&self, w: &mut TensorWriter) -> Result<()>;
}

impl dyn Model {
    /// Predicted ratings of (user row, item row) pairs; a pair with an unknown user or item
    /// (row 0) gets the mean training rating.
    pub fn ratings(&self, pairs: &[(u32, u32)]) -> Result<Vec<f32>> {
        let scale = self
            .rating_scale()
            .ok_or_else(|| Error::Unsupported(format!("a {} model does not predict ratings", self.spec().kind())))?;
        let raw = self.predict(pairs)?;
        Ok(raw.into_iter().zip(pairs).map(|(r, &(u, i))| if u == 0 || i == 0 { scale.mean } else { r }).collect())
    }

    /// Scores of (user row, item row) pairs: the predicted ratings (`ratings`)
    /// of models that predict them, the raw scores of other ranking models (listwise losses).
    pub fn scores(&self, pairs: &[(u32, u32)]) -> Result<Vec<f32>> {
        match self.rating_scale() {
            Some(_) => self.ratings(pairs),
            None => self.predict(pairs),
        }
    }
}

/// Reads a model of the kind `spec` names from its tensors, checking them against `shape`.
pub fn load(spec: &ModelSpec, shape: Shape, r: &TensorReader) -> Result<Box<dyn Model>> {
    Ok(match spec {
        ModelSpec::Retrieval => Box::new(TwoTower::load(r, shape, false)?),
        ModelSpec::Rating => Box::new(TwoTower::load(r, shape, true)?),
        ModelSpec::Ranking(s) => Box::new(RankingModel::load(r, shape, s)?),
        ModelSpec::Multitask(s) => Box::new(MultitaskModel::load(r, shape, s)?),
        ModelSpec::Features(c) => Box::new(FeatureModel::load(r, shape, c)?),
        ModelSpec::Sequential(s) => match s.encoder {
            Encoder::Gru => Box::new(SequentialModel::load(r, shape, *s)?),
            Encoder::Sasrec => Box::new(AttentionModel::load(r, shape, *s)?),
        },
    })
}

/// Writes a table of embeddings.
pub(crate) fn put_table(w: &mut TensorWriter, name: &str, t: &crate::kernels::table::Table) {
    w.f32(name, &[t.rows, t.dim], &t.data);
}

/// Reads a `rows × dim` table of embeddings.
pub(crate) fn read_table(
    r: &TensorReader,
    name: &str,
    rows: usize,
    dim: usize,
) -> Result<crate::kernels::table::Table> {
    Ok(crate::kernels::table::Table { rows, dim, data: r.f32(name, &[rows, dim])? })
}

/// Writes dense layers as `{prefix}.{l}.weight` and `{prefix}.{l}.bias`.
pub(crate) fn put_mlp(w: &mut TensorWriter, prefix: &str, mlp: &crate::kernels::dense::Mlp) {
    for (l, (weight, bias)) in mlp.weights.iter().zip(&mlp.biases).enumerate() {
        put_table(w, &format!("{prefix}.{l}.weight"), weight);
        w.f32(format!("{prefix}.{l}.bias"), &[bias.dim], &bias.data);
    }
}

/// Reads dense layers of the given widths after an input of width `input`.
pub(crate) fn read_mlp(
    r: &TensorReader,
    prefix: &str,
    input: usize,
    widths: &[usize],
) -> Result<crate::kernels::dense::Mlp> {
    use crate::kernels::table::Table;
    let mut mlp = crate::kernels::dense::Mlp::default();
    let mut fan_in = input;
    for (l, &out) in widths.iter().enumerate() {
        mlp.weights.push(read_table(r, &format!("{prefix}.{l}.weight"), fan_in, out)?);
        mlp.biases.push(Table { rows: 1, dim: out, data: r.f32(&format!("{prefix}.{l}.bias"), &[out])? });
        fan_in = out;
    }
    Ok(mlp)
}
