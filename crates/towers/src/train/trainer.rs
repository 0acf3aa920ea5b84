//! [`Trainer`]: the one entry to train any model kind, from a spec, a configuration and data,
//! to an [`Artifact`].

use super::epochs::Run;
use super::features::Attributes;
use super::{features, multitask, ranking, rating, retrieval, sequential};
use crate::artifact::{Artifact, History, TrainSummary};
use crate::config::TrainConfig;
use crate::data::features::AttributeTable;
use crate::data::{
    CandidateKey, Catalog, Data, Dataset, Interactions, Items, Positions, Seen, SequenceExamples, Vocabulary, counts,
};
use crate::eval::Encoded;
use crate::model::{Model, ModelSpec};
use crate::progress::{Observer, quiet};
use crate::task::RatingScale;
use crate::{Error, Result};

/// Trains a model of any kind:
///
/// ```no_run
/// # fn main() -> towers::Result<()> {
/// use towers::data::{Catalog, Interactions, TableFormat};
/// use towers::{ModelSpec, Trainer};
/// let train = Interactions::read("train.tsv", &TableFormat::default())?;
/// let movies = Catalog::read("movies.tsv")?;
/// let model = Trainer::new(ModelSpec::Retrieval).catalog(&movies).fit(&train)?;
/// # Ok(()) }
/// ```
/// The configuration is the spec's defaults ([`TrainConfig::for_spec`]) unless set; it and the
/// spec are checked once, when [`Trainer::fit`] starts.
pub struct Trainer<'a> {
    spec: ModelSpec,
    config: TrainConfig,
    catalog: Option<&'a Catalog>,
    attributes: Attributes<'a>,
    validation: Option<Data<'a>>,
    observer: Option<&'a mut dyn Observer>,
}

impl<'a> Trainer<'a> {
    /// A trainer of the kind `spec` names, with towers' defaults for it
    /// ([`TrainConfig::for_spec`]).
    pub fn new(spec: ModelSpec) -> Self {
        let config = TrainConfig::for_spec(&spec, Default::default());
        Trainer { spec, config, catalog: None, attributes: Attributes::default(), validation: None, observer: None }
    }

    /// The training configuration.
    pub fn config(mut self, config: TrainConfig) -> Self {
        self.config = config;
        self
    }

    /// The item catalogue: titles, and items that never occur in training.
    pub fn catalog(mut self, catalog: &'a Catalog) -> Self {
        self.catalog = Some(catalog);
        self
    }

    /// The user attributes a feature model's query tower reads.
    pub fn user_attributes(mut self, table: &'a AttributeTable) -> Self {
        self.attributes.users = Some(table);
        self
    }

    /// The item attributes a feature model's candidate tower reads.
    pub fn item_attributes(mut self, table: &'a AttributeTable) -> Self {
        self.attributes.items = Some(table);
        self
    }

    /// Data to measure after every epoch (kept in the history; training ignores it).
    pub fn validation(mut self, data: impl Into<Data<'a>>) -> Self {
        self.validation = Some(data.into());
        self
    }

    /// Receives progress; returning `Break` stops training with [`Error::Interrupted`].
    pub fn observer(mut self, observer: &'a mut dyn Observer) -> Self {
        self.observer = Some(observer);
        self
    }

    /// Trains on `data` and returns the model with everything needed to evaluate and serve it.
    pub fn fit(self, data: impl Into<Data<'a>>) -> Result<Artifact> {
        let Trainer { spec, mut config, catalog, attributes, validation, observer } = self;
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
