//! [`Trainer`]: the one entry to train any model kind, from a spec, a configuration and data,
//! to an [`Artifact`].

use super::epochs::Run;
use super::features::Attributes;
use super::pipeline::{PipelineConfig, PipelineTrainer};
use super::{features, multitask, ranking, rating, retrieval, sequential};
use crate::artifact::{Artifact, History, TrainSummary};
use crate::config::TrainConfig;
use crate::data::features::AttributeTable;
use crate::data::{
    CandidateKey, Catalog, Data, Dataset, Interactions, Items, Positions, Seen, SequenceExamples, Vocabulary, counts,
};
use crate::eval::Encoded;
use crate::model::{FeatureConfig, Model, ModelSpec};
use crate::progress::{Observer, quiet};
use crate::recommend::Served;
use crate::task::RatingScale;
use crate::{Error, Result};

/// Trains a model of any kind, or a pipeline:
///
/// ```no_run
/// # fn main() -> towers::Result<()> {
/// use towers::data::{Catalog, Interactions, TableFormat};
/// use towers::train::PipelineConfig;
/// use towers::{ModelSpec, Trainer};
/// let train = Interactions::read("train.tsv", &TableFormat::default())?;
/// let movies = Catalog::read("movies.tsv")?;
/// let model = Trainer::new(ModelSpec::Retrieval).catalog(&movies).fit(&train)?;
/// let pipeline = Trainer::pipeline(PipelineConfig::default()).catalog(&movies).fit_served(&train)?;
/// pipeline.save("/tmp/p")?;
/// # Ok(()) }
/// ```
/// The configuration is the spec's defaults ([`TrainConfig::for_spec`]) unless set; it and the
/// spec are checked once, when [`Trainer::fit`] starts.
pub struct Trainer<'a> {
    plan: Plan,
    catalog: Option<&'a Catalog>,
    attributes: Attributes<'a>,
    features: Option<&'a FeatureConfig>,
    validation: Option<Data<'a>>,
    observer: Option<&'a mut dyn Observer>,
}

/// What a trainer trains.
enum Plan {
    /// One model.
    Model { spec: Box<ModelSpec>, config: Box<TrainConfig> },
    /// A retriever and a ranker, with post-ranking rules.
    Pipeline { config: Box<PipelineConfig>, misused: Option<&'static str> },
}

impl<'a> Trainer<'a> {
    /// A trainer of the kind `spec` names, with towers' defaults for it
    /// ([`TrainConfig::for_spec`]).
    pub fn new(spec: ModelSpec) -> Self {
        let config = TrainConfig::for_spec(&spec, Default::default());
        Trainer::with(Plan::Model { spec: Box::new(spec), config: Box::new(config) })
    }

    /// A trainer of a pipeline: a retriever, a ranker trained on its hard negatives, and the
    /// post-ranking rules served by default, each configured by `config`.
    pub fn pipeline(config: PipelineConfig) -> Self {
        Trainer::with(Plan::Pipeline { config: Box::new(config), misused: None })
    }

    fn with(plan: Plan) -> Self {
        Trainer {
            plan,
            catalog: None,
            attributes: Attributes::default(),
            features: None,
            validation: None,
            observer: None,
        }
    }

    /// The training configuration (a pipeline takes its models' from its [`PipelineConfig`]).
    pub fn config(mut self, config: TrainConfig) -> Self {
        match &mut self.plan {
            Plan::Model { config: c, .. } => **c = config,
            Plan::Pipeline { misused, .. } => *misused = Some("config"),
        }
        self
    }

    /// The seed of the run (a pipeline's: its retriever's).
    pub fn seed(&self) -> u64 {
        match &self.plan {
            Plan::Model { config, .. } => config.seed,
            Plan::Pipeline { config, .. } => config.retriever.seed,
        }
    }

    /// The item catalogue: titles, and items that never occur in training (`None`: none).
    pub fn catalog(mut self, catalog: impl Into<Option<&'a Catalog>>) -> Self {
        self.catalog = catalog.into();
        self
    }

    /// The user attributes a feature model's query tower reads.
    pub fn user_attributes(mut self, table: &'a AttributeTable) -> Self {
        self.attributes.users = Some(table);
        self
    }

    /// The item attributes a feature model's candidate tower reads, or a pipeline's ranker
    /// (affinities) and post-ranking (caps, dedupe).
    pub fn item_attributes(mut self, table: &'a AttributeTable) -> Self {
        self.attributes.items = Some(table);
        self
    }

    /// Pipelines: how the item attribute columns are encoded (a feature model has its own in
    /// its spec).
    pub fn feature_config(mut self, features: &'a FeatureConfig) -> Self {
        self.features = Some(features);
        self
    }

    /// Data to measure after every epoch (kept in the history; training ignores it); a
    /// pipeline measures its served retriever.
    pub fn validation(mut self, data: impl Into<Data<'a>>) -> Self {
        self.validation = Some(data.into());
        self
    }

    /// Receives progress; returning `Break` stops training with [`Error::Interrupted`].
    pub fn observer(mut self, observer: &'a mut dyn Observer) -> Self {
        self.observer = Some(observer);
        self
    }

    /// Trains whatever this trainer holds — one model or a pipeline — ready to serve.
    pub fn fit_served(self, data: impl Into<Data<'a>>) -> Result<Served> {
        let Plan::Pipeline { config, misused } = self.plan else { return self.fit(data).map(Served::from) };
        if let Some(what) = misused {
            return Err(Error::Config(format!(
                "{what}: a pipeline takes its models' settings from its configuration (retriever, ranker)"
            )));
        }
        let Data::Interactions(train) = data.into() else {
            return Err(Error::Config("a pipeline trains on an interaction table, not on sequences".into()));
        };
        let validation = match self.validation {
            Some(Data::Interactions(v)) => Some(v),
            Some(Data::Sequences(_)) => {
                return Err(Error::Config("a pipeline is validated on an interaction table".into()));
            }
            None => None,
        };
        if self.attributes.users.is_some() {
            return Err(Error::Config("a pipeline reads item attributes, not user attributes".into()));
        }
        let mut fallback = quiet();
        let pipeline = PipelineTrainer {
            config: *config,
            catalog: self.catalog,
            items: self.attributes.items,
            features: self.features,
            validation,
            observer: self.observer.unwrap_or(&mut fallback),
        };
        Ok(Served::from(pipeline.fit(train)?))
    }

    /// Trains one model on `data` and returns it with everything needed to evaluate and serve
    /// it (a pipeline, two models, is trained by [`Trainer::fit_served`]).
    pub fn fit(self, data: impl Into<Data<'a>>) -> Result<Artifact> {
        let Trainer { plan, catalog, attributes, features, validation, observer } = self;
        let Plan::Model { spec, config } = plan else {
            return Err(Error::Config("a pipeline is two models: train it with fit_served".into()));
        };
        let (spec, mut config) = (*spec, *config);
        if features.is_some() {
            return Err(Error::Config(
                "feature_config is for pipelines: a feature model has its own in its spec".into(),
            ));
        }
        if let Some(d) = spec.dim() {
            config.dim = d;
        }
        config.validate()?;
        spec.validate()?;
        if config.average_last.is_some() && !matches!(spec, ModelSpec::Ranking(_)) {
            // tried on retrieval (MovieLens validation splits): no gain, so ranking only
            return Err(Error::Config(format!("average_last is for ranking models, not {}", spec.kind())));
        }
        let mut fallback = quiet();
        let observer = match observer {
            Some(o) => o,
            None => &mut fallback,
        };
        let trained = match (data.into(), validation) {
            (Data::Interactions(train), val) if !matches!(spec, ModelSpec::Sequential(_)) => {
                let val = match val {
                    Some(Data::Interactions(v)) => Some(v),
                    None => None,
                    Some(Data::Sequences(_)) => return Err(wrong_data(&spec)),
                };
                fit_interactions(&spec, &config, observer, train, val, catalog, attributes)?
            }
            (Data::Sequences(train), val) => {
                let ModelSpec::Sequential(seq) = spec else { return Err(wrong_data(&spec)) };
                let val = match val {
                    Some(Data::Sequences(v)) => Some(v),
                    None => None,
                    Some(Data::Interactions(_)) => return Err(wrong_data(&spec)),
                };
                let (items, _) =
                    Items::build(catalog, CandidateKey::Id, train.items.iter().flatten().map(String::as_str))?;
                let row = |id: &str| items.rows.get(id).copied().unwrap_or(0);
                let positions = match seq.format {
                    crate::data::InputFormat::Examples => Positions::Last,
                    _ => Positions::All,
                };
                let data = SequenceExamples::build(train, row, seq.steps, positions);
                let val = val.map(|v| Encoded::Sequences(SequenceExamples::build(v, row, seq.steps, Positions::Last)));
                let mut run = Run { config: &config, observer, validation: val.as_ref(), seconds: 0.0 };
                let (model, history) = sequential::fit(&mut run, seq, items.len(), &data)?;
                let popularity = counts(&data.targets, items.len());
                Trained {
                    model: Box::new(model),
                    history,
                    query_vocab: Vocabulary::default(),
                    items,
                    seen: Seen::from_pairs(1, []),
                    popularity,
                    n: data.len(),
                    seconds: run.seconds,
                }
            }
            (Data::Interactions(_), _) => return Err(wrong_data(&spec)),
        };
        let summary = TrainSummary::new(trained.n, &trained.history, trained.seconds);
        Ok(Artifact {
            candidates: trained.model.candidates().into(),
            model: trained.model,
            config,
            query_vocab: trained.query_vocab,
            items: trained.items,
            approximate: None,
            seen: trained.seen,
            popularity: trained.popularity,
            history: trained.history,
            summary,
            origin: Default::default(),
        })
    }
}

/// What a kind's training gives, before it becomes an [`Artifact`].
struct Trained {
    model: Box<dyn Model>,
    history: History,
    query_vocab: Vocabulary,
    items: Items,
    seen: Seen,
    popularity: Vec<f32>,
    /// Training examples.
    n: usize,
    /// Seconds of the training loop.
    seconds: f64,
}

fn wrong_data(spec: &ModelSpec) -> Error {
    match spec {
        ModelSpec::Sequential(_) => {
            Error::Config("a sequential model trains on item sequences, not an interaction table".into())
        }
        other => Error::Config(format!("a {} model trains on an interaction table, not on sequences", other.kind())),
    }
}

/// The ratings of a training table, and their scale.
fn ratings<'t>(spec: &ModelSpec, train: &'t Interactions) -> Result<(&'t [f32], RatingScale)> {
    let r = train.ratings.as_deref().ok_or_else(|| {
        Error::Data(format!("a {} model needs ratings: the training table has no rating column", spec.kind()))
    })?;
    let scale =
        RatingScale::of(r).ok_or_else(|| Error::Data("the training ratings are all equal: nothing to learn".into()))?;
    Ok((r, scale))
}

/// Trains a model of a kind that learns from an interaction table.
fn fit_interactions(
    spec: &ModelSpec,
    config: &TrainConfig,
    observer: &mut dyn Observer,
    train: &Interactions,
    validation: Option<&Interactions>,
    catalog: Option<&Catalog>,
    attributes: Attributes,
) -> Result<Trained> {
    let data = Dataset::build(train, catalog, config.key)?;
    let val = validation.map(|v| Encoded::interactions(&data.query_vocab, &data.items, v));
    let mut run = Run { config, observer, validation: val.as_ref(), seconds: 0.0 };
    let (model, history): (Box<dyn Model>, History) = match spec {
        ModelSpec::Retrieval => {
            let (m, h) = retrieval::fit(&mut run, &data)?;
            (Box::new(m), h)
        }
        ModelSpec::Rating => {
            let (r, scale) = ratings(spec, train)?;
            let (m, h) = rating::fit_rating(&mut run, &data, r, scale)?;
            (Box::new(m), h)
        }
        ModelSpec::Ranking(s) => {
            let (m, h) = ranking::fit_ratings(&mut run, s, &data, ratings(spec, train)?, attributes)?;
            (Box::new(m), h)
        }
        ModelSpec::Multitask(s) => {
            let (m, h) = multitask::fit(&mut run, s, &data, ratings(spec, train)?)?;
            (Box::new(m), h)
        }
        ModelSpec::Features(f) => {
            let model = features::build(f, &data, attributes, train.timestamps.as_deref(), config.seed)?;
            let (m, h) = features::fit(&mut run, model, &data, train.timestamps.as_deref())?;
            (Box::new(m), h)
        }
        ModelSpec::Sequential(_) => return Err(wrong_data(spec)),
    };
    let seen =
        Seen::from_pairs(data.query_vocab.rows(), data.queries.iter().copied().zip(data.candidates.iter().copied()));
    let popularity = counts(&data.candidates, data.items.len());
    Ok(Trained {
        model,
        history,
        n: data.len(),
        seconds: run.seconds,
        query_vocab: data.query_vocab,
        items: data.items,
        seen,
        popularity,
    })
}
