//! [`Trainer`]: the one entry to train any model kind, from a spec, a configuration and data,
//! to an [`Artifact`].

use super::checkpoint::{Checkpoints, digest};
use super::continuing::{Continued, Continuing, continued, earlier, seen_after};
use super::distributed::{self, Job, Output, Sharding, Written};
use super::epochs::Run;
use super::features::Attributes;
use super::pipeline::{PipelineConfig, PipelineTrainer};
use super::{attention, features, multitask, ranking, rating, retrieval, sequential};
use crate::artifact::{Artifact, DirLock, History, TrainSummary};
use crate::config::TrainConfig;
use crate::data::features::AttributeTable;
use crate::data::{
    CandidateKey, Catalog, Data, Dataset, Interactions, Items, Positions, Seen, SequenceExamples, Sequences,
    Vocabulary, counts,
};
use crate::dist::Collective;
use crate::eval::Encoded;
use crate::model::{Encoder, FeatureConfig, Model, ModelSpec};
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
    prior: Option<Continued<'a>>,
    decay: f32,
    checkpoints: Option<&'a Checkpoints>,
    spill: Option<&'a std::path::Path>,
    sharding: Option<Sharding>,
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
            prior: None,
            decay: 1.0,
            checkpoints: None,
            spill: None,
            sharding: None,
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

    /// Continues `prior`, a model (or pipeline) of the same spec trained before on earlier
    /// data, instead of starting from random weights: every id it knows starts from its
    /// embedding and optimizer state there, new users and items get fresh rows after them (the
    /// vocabularies grow; ids absent from the new data keep their rows), what each user has
    /// seen and the counts of each item carry over (see [`count_decay`](Self::count_decay)).
    /// A different kind, spec, width or optimizer is refused.
    pub fn init_from(mut self, prior: &'a Served) -> Self {
        self.prior = Some(Continued::Served(prior));
        self
    }

    /// Continues one model (a pipeline's retriever).
    pub(crate) fn init_from_model(mut self, prior: Option<&'a Artifact>) -> Self {
        self.prior = prior.map(Continued::Model);
        self
    }

    /// With [`init_from`](Self::init_from): what an occurrence counted by the model continued
    /// weighs in this run's popularity and logQ counts, in `[0, 1]` (default 1: as much as a
    /// new one; 0 forgets them).
    pub fn count_decay(mut self, decay: f32) -> Self {
        self.decay = decay;
        self
    }

    /// Keeps the optimizer's state at the end of training (saved with the model, to continue
    /// it) in a temporary file in `dir` rather than in memory, so that what is allocated after
    /// training does not add to it (the CLI gives the folder of `--out`; a pipeline keeps its
    /// models' in memory).
    pub fn spill_optimizer(mut self, dir: &'a std::path::Path) -> Self {
        self.spill = Some(dir);
        self
    }

    /// Writes checkpoints while training, and resumes from one (see [`Checkpoints`]); a
    /// pipeline refuses them.
    pub fn checkpoints(mut self, checkpoints: &'a Checkpoints) -> Self {
        self.checkpoints = Some(checkpoints);
        self
    }

    /// Distributed training shards the id tables of at least `sharding.min_rows` rows across
    /// the ranks (row-wise, with their optimizer state) instead of replicating them.
    pub fn sharding(mut self, sharding: Sharding) -> Self {
        self.sharding = Some(sharding);
        self
    }

    /// Trains one model as one rank of a distributed job: every rank of `comm` calls this with
    /// the same trainer options and its own `share` of the data (see
    /// [`Interactions::read_share`]). The global batch is the union of the ranks' batches and
    /// every query is scored against all its candidates, so N ranks at batch size B train the
    /// model one process trains at B with the same seed (within float rounding). Returns the
    /// whole model on rank 0 (sharded tables gathered there), `None` on the others; every rank
    /// returns the same error. Built for the retrieval and multitask kinds (id tables replicated
    /// or sharded, no batch normalisation) and the feature kind (every table replicated); dense
    /// layers are replicated, their gradients all-reduced. Validation data is measured after
    /// every epoch, each rank ranking its share.
    pub fn fit_distributed<'d>(self, comm: &dyn Collective, share: impl Into<Data<'d>>) -> Result<Option<Artifact>> {
        self.distributed(comm, share.into(), Output::Memory)
    }

    /// [`fit_distributed`](Self::fit_distributed), the model written to the directory `out`
    /// that rank 0 holds (`None` elsewhere), replaced as [`Artifact::save_locked`] does: no
    /// sharded table is ever whole on a rank, its ranks send its rows (and their candidate
    /// embeddings and optimizer state) in blocks as rank 0 writes them. Returns what was
    /// written on rank 0, `None` on the others.
    pub fn fit_distributed_into<'d>(
        self,
        comm: &dyn Collective,
        share: impl Into<Data<'d>>,
        out: Option<&DirLock>,
    ) -> Result<Option<Written>> {
        let written = self.distributed(comm, share.into(), Output::Dir(out))?;
        Ok(written.map(|a| Written { manifest: a.manifest(), history: a.history }))
    }

    fn distributed(self, comm: &dyn Collective, share: Data, out: Output) -> Result<Option<Artifact>> {
        let Trainer {
            plan, catalog, validation, observer, prior, decay, checkpoints, spill, sharding, attributes, ..
        } = self;
        let Plan::Model { spec, mut config } = plan else {
            return Err(Error::Config("distributed training trains one model, not a pipeline".into()));
        };
        checked(&spec, &mut config)?;
        let prior = continued(prior, &spec, &config, decay)?;
        let sequences = |d: &Data| matches!(d, Data::Sequences(_));
        let sequential = matches!(*spec, ModelSpec::Sequential(_));
        if sequences(&share) != sequential || validation.as_ref().is_some_and(|v| sequences(v) != sequential) {
            return Err(wrong_data(&spec));
        }
        let (mut fallback, (spec, config)) = (quiet(), (*spec, *config));
        let observer = observer.unwrap_or(&mut fallback);
        let from = Continuing { prior, decay, checkpoints, spill };
        let job = Job { spec, config, catalog, observer, sharding, validation, from, attributes, out };
        distributed::fit(job, comm, share)
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
        if self.checkpoints.is_some() {
            return Err(Error::Config("a pipeline keeps no checkpoints (it trains three models in turn)".into()));
        }
        let prior = match self.prior {
            None => None,
            Some(Continued::Model(_)) => return Err(Error::internal("a pipeline continues a pipeline")),
            Some(Continued::Served(p)) => Some(p.pipeline().ok_or_else(|| {
                Error::Config(
                    "`init_from`: the old model is a single model, not a pipeline: train a pipeline from scratch"
                        .into(),
                )
            })?),
        };
        let pipeline = PipelineTrainer {
            config: *config,
            catalog: self.catalog,
            items: self.attributes.items,
            features: self.features,
            validation,
            observer: self.observer.unwrap_or(&mut fallback),
            prior,
            decay: self.decay,
        };
        Ok(Served::from(pipeline.fit(train)?))
    }

    /// Trains one model on `data` and returns it with everything needed to evaluate and serve
    /// it (a pipeline, two models, is trained by [`Trainer::fit_served`]).
    pub fn fit(self, data: impl Into<Data<'a>>) -> Result<Artifact> {
        let Trainer {
            plan, catalog, attributes, features, validation, observer, prior, decay, checkpoints, spill, ..
        } = self;
        let Plan::Model { spec, config } = plan else {
            return Err(Error::Config("a pipeline is two models: train it with fit_served".into()));
        };
        let (spec, mut config) = (*spec, *config);
        if features.is_some() {
            return Err(Error::Config(
                "feature_config is for pipelines: a feature model has its own in its spec".into(),
            ));
        }
        checked(&spec, &mut config)?;
        if config.average_last.is_some() && !matches!(spec, ModelSpec::Ranking(_)) {
            // tried on retrieval (MovieLens validation splits): no gain, so ranking only
            return Err(Error::Config(format!("average_last is for ranking models, not {}", spec.kind())));
        }
        let prior = continued(prior, &spec, &config, decay)?;
        let from = Continuing { prior, decay, checkpoints, spill };
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
                fit_interactions(&spec, &config, observer, (train, val), catalog, attributes, from)?
            }
            (Data::Sequences(train), val) => {
                let ModelSpec::Sequential(seq) = spec else { return Err(wrong_data(&spec)) };
                let val = match val {
                    Some(Data::Sequences(v)) => Some(v),
                    None => None,
                    Some(Data::Interactions(_)) => return Err(wrong_data(&spec)),
                };
                let ids = train.items.iter().flatten().map(String::as_str);
                let (items, _) = Items::build_on(prior.map(|p| &p.items), catalog, CandidateKey::Id, ids)?;
                let row = |id: &str| items.rows.get(id).copied().unwrap_or(0);
                // the GRU trains on an examples file's lines as they are; SASRec on every
                // position of each line's items (its history and its target)
                let gru_positions = match seq.format {
                    crate::data::InputFormat::Examples => Positions::Last,
                    _ => Positions::All,
                };
                let val = val.map(|v| Encoded::Sequences(SequenceExamples::build(v, row, seq.steps, Positions::Last)));
                let mut run = Run::new(&config, observer, val.as_ref());
                let earlier = |popularity: &mut Vec<f32>| prior.map(|p| earlier(p, decay).add_counts(popularity));
                let rows = (prior.map_or(1, |p| p.query_vocab.rows()), items.len());
                let (model, history, popularity, n): (Box<dyn Model>, _, _, _) = match seq.encoder {
                    Encoder::Gru => {
                        let data = SequenceExamples::build(train, row, seq.steps, gru_positions);
                        let mut popularity = counts(&data.targets, items.len());
                        earlier(&mut popularity);
                        from.prepare(&mut run, rows, || digest(&[&data.targets, &data.contexts]))?;
                        let (model, history) = sequential::fit(&mut run, seq, &data, &popularity)?;
                        (Box::new(model), history, popularity, data.len())
                    }
                    Encoder::Sasrec => {
                        let data = Sequences::build(train, row, seq.steps);
                        let mut popularity = counts(&data.targets, items.len());
                        earlier(&mut popularity);
                        from.prepare(&mut run, rows, || digest(&[&data.targets, &data.items]))?;
                        let (model, history) = attention::fit(&mut run, seq, &data, &popularity)?;
                        (Box::new(model), history, popularity, data.targets.len())
                    }
                };
                let (query_vocab, seen, histories) = train.user_histories(row, seq.steps);
                Trained {
                    model,
                    history,
                    query_vocab,
                    items,
                    seen,
                    histories,
                    popularity,
                    n,
                    seconds: run.seconds,
                    optimizer: run.optimizer,
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
            histories: trained.histories,
            popularity: trained.popularity,
            history: trained.history,
            summary,
            optimizer: trained.optimizer,
            origin: Default::default(),
        })
    }
}

/// Takes the spec's width, if it has one, and checks the spec and the configuration.
fn checked(spec: &ModelSpec, config: &mut TrainConfig) -> Result<()> {
    if let Some(d) = spec.dim() {
        config.dim = d;
    }
    config.validate()?;
    spec.validate()
}

/// What a kind's training gives, before it becomes an [`Artifact`].
struct Trained {
    model: Box<dyn Model>,
    history: History,
    query_vocab: Vocabulary,
    items: Items,
    seen: Seen,
    histories: Seen,
    popularity: Vec<f32>,
    /// Training examples.
    n: usize,
    /// Seconds of the training loop.
    seconds: f64,
    optimizer: Option<crate::artifact::OptimizerState>,
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
    (train, validation): (&Interactions, Option<&Interactions>),
    catalog: Option<&Catalog>,
    attributes: Attributes,
    from: Continuing,
) -> Result<Trained> {
    let data = Dataset::build_on(from.prior.map(|p| earlier(p, from.decay)), train, catalog, config.key)?;
    let val = validation.map(|v| Encoded::interactions(&data.query_vocab, &data.items, v));
    let mut run = Run::new(config, observer, val.as_ref());
    let rows = (data.query_vocab.rows(), data.items.len());
    from.prepare(&mut run, rows, || digest(&[&data.queries, &data.candidates]))?;
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
    let pairs = data.queries.iter().copied().zip(data.candidates.iter().copied());
    let seen = seen_after(from.prior, data.query_vocab.rows(), pairs);
    let popularity = data.counts.clone();
    Ok(Trained {
        model,
        history,
        n: data.len(),
        seconds: run.seconds,
        optimizer: run.optimizer.take(),
        query_vocab: data.query_vocab,
        items: data.items,
        seen,
        histories: Seen::default(),
        popularity,
    })
}
