//! Training ranking models on lists: each user's rated items (squared error: one item per
//! list; pairwise and listwise losses: lists of `list_size`), or, in a pipeline, each user's
//! candidates from a retriever labelled by the held-out interactions (implicit feedback).

use super::epochs::{Dedup, Run};
use super::features::Attributes;
use super::optimizer::{Optimizer, Slots, Update};
use super::state::{Part, State};
use crate::artifact::History;
use crate::config::{OptimizerConfig, TrainConfig};
use crate::data::{Dataset, counts};
use crate::kernels::table::Table;
use crate::model::{Entities, FeatureTower, Instances, RankingInputs, RankingModel, RankingSpec, TowerFeatures};
use crate::rng::Rng;
use crate::task::{RankingLoss, RatingScale};
use crate::{Error, Result};
use std::borrow::Cow;

/// Training lists: each a user's items with their labels (ratings, or 1 for a positive) and,
/// for a ranker with context, the items' context features.
#[derive(Debug, Clone, Default)]
pub(crate) struct Lists {
    /// The user row of each list.
    pub users: Vec<u32>,
    /// `offsets[l]..offsets[l + 1]` indexes `items` and `labels` for list `l`.
    pub offsets: Vec<usize>,
    /// Item rows.
    pub items: Vec<u32>,
    /// Labels.
    pub labels: Vec<f32>,
    /// Context features, `items.len() × width`.
    pub context: Option<(Vec<f32>, usize)>,
}

impl Lists {
    /// Number of lists.
    pub fn len(&self) -> usize {
        self.users.len()
    }

    /// Appends a list.
    pub fn push(&mut self, user: u32, items: &[u32], labels: &[f32]) {
        if self.offsets.is_empty() {
            self.offsets.push(0);
        }
        self.users.push(user);
        self.items.extend_from_slice(items);
        self.labels.extend_from_slice(labels);
        self.offsets.push(self.items.len());
    }

    /// Lists of ratings: one example each for the squared error; otherwise each user's items,
    /// shuffled (seeded) and cut into lists of `size` (a last piece of one item is dropped):
    /// every seed gives the same number of lists.
    pub fn of_ratings(data: &Dataset, ratings: &[f32], loss: RankingLoss, size: usize, seed: u64) -> Lists {
        let mut lists = Lists::default();
        if loss == RankingLoss::Mse {
            for i in 0..data.len() {
                lists.push(data.queries[i], &[data.candidates[i]], &[ratings[i]]);
            }
            return lists;
        }
        let mut by_user: Vec<Vec<(u32, f32)>> = vec![Vec::new(); data.query_vocab.rows()];
        for ((&u, &c), &r) in data.queries.iter().zip(&data.candidates).zip(ratings) {
            by_user[u as usize].push((c, r));
        }
        let mut rng = Lists::shuffler(seed);
        for (u, mut examples) in by_user.into_iter().enumerate() {
            lists.push_user(&mut rng, u as u32, &mut examples, size);
        }
        lists
    }

    /// The generator that shuffles each user's items into the lists of `seed`.
    pub fn shuffler(seed: u64) -> Rng {
        Rng::new(seed ^ 0x11_57)
    }

    /// Appends `user`'s lists: its (item, label) `examples` shuffled by `rng` and cut into
    /// lists of `size` (a last piece of one item is dropped).
    pub fn push_user(&mut self, rng: &mut Rng, user: u32, examples: &mut [(u32, f32)], size: usize) {
        rng.shuffle(examples);
        for chunk in examples.chunks(size).filter(|c| c.len() > 1) {
            let (items, labels): (Vec<u32>, Vec<f32>) = chunk.iter().copied().unzip();
            self.push(user, &items, &labels);
        }
    }
}

/// The attribute-feature towers of a ranking model (no ids, no layers), built on `data`
/// (fitted on the users, and the items `counts` counts, of the training data).
pub(crate) fn feature_towers(
    spec: &RankingSpec,
    (data, counts): (&Dataset, &[f32]),
    attributes: Attributes,
    rng: &mut Rng,
) -> Result<RankingInputs> {
    let Some(f) = &spec.features else { return Ok(RankingInputs::default()) };
    let user_ids: Vec<Option<&str>> = (0..data.query_vocab.rows() as u32).map(|r| data.query_vocab.key(r)).collect();
    let user_rows: Vec<u32> = (0..user_ids.len() as u32).collect();
    let user_fit: Vec<bool> = user_rows.iter().map(|&r| r > 0).collect();
    let item_ids: Vec<Option<&str>> =
        data.items.ids.iter().enumerate().map(|(r, id)| (r > 0).then_some(id.as_str())).collect();
    let item_rows: Vec<u32> = (0..item_ids.len() as u32).collect();
    let item_fit: Vec<bool> = counts.iter().map(|&c| c > 0.0).collect();
    let mut tower = |t: &TowerFeatures, e: Entities, side: &str| -> Result<Option<FeatureTower>> {
        if t.features.is_empty() {
            return Ok(None);
        }
        if e.attributes.is_none() {
            return Err(Error::Config(format!("ranking features of the {side}s need the {side} attribute table")));
        }
        let t = TowerFeatures { id_dim: 0, time: None, id_dropout: 0.0, ..t.clone() };
        FeatureTower::build(&t, &[], &e, None, rng).map(Some)
    };
    let users = Entities { ids: &user_ids, id_rows: &user_rows, fit: &user_fit, attributes: attributes.users };
    let items = Entities { ids: &item_ids, id_rows: &item_rows, fit: &item_fit, attributes: attributes.items };
    Ok(RankingInputs {
        user_features: tower(&f.query, users, "user")?,
        item_features: tower(&f.candidate, items, "item")?,
        context: None,
    })
}

/// Trains a ranking model on ratings: builds it (ids, features) and fits it on lists of the
/// training ratings with its loss.
pub(crate) fn fit_ratings(
    run: &mut Run,
    spec: &RankingSpec,
    data: &Dataset,
    (ratings, scale): (&[f32], RatingScale),
    attributes: Attributes,
) -> Result<(RankingModel, History)> {
    if !spec.context.is_empty() {
        return Err(Error::Config(
            "a ranker over context features is trained inside a pipeline (`task` pipeline)".into(),
        ));
    }
    let cfg = run.config;
    let mut rng = Rng::new(cfg.seed ^ 0xFEA7);
    let counts = counts(&data.candidates, data.items.len());
    let inputs = feature_towers(spec, (data, &counts), attributes, &mut rng)?;
    let mut model =
        RankingModel::new(spec, (data.query_vocab.rows(), data.items.len()), cfg.dim, inputs, scale, cfg.seed);
    let source = ListSource::Ratings { data, ratings, loss: spec.loss, size: spec.list_size(), seed: cfg.seed };
    let history = fit_lists(run, &mut model, source, &Alone)?;
    Ok((model, history))
}

/// Where a ranker's training lists come from.
pub(crate) enum ListSource<'a> {
    /// The same lists every epoch (a pipeline's candidate lists).
    Fixed(&'a Lists),
    /// Each user's rated items: [`Lists::of_ratings`], reshuffled into new lists every epoch
    /// (pairwise and listwise losses).
    Ratings { data: &'a Dataset, ratings: &'a [f32], loss: RankingLoss, size: usize, seed: u64 },
    /// A distributed run's lists of each epoch, those of the other ranks empty.
    Spread { lists: &'a dyn Fn(usize) -> Lists, reshuffled: bool },
}

/// Where a ranker's lists are: all in this process, or spread over the ranks of a distributed
/// run, whose steps add up every rank's gradients and update the replicated parameters alike.
pub(crate) trait Ranks {
    /// Items in every rank's lists, of which this rank's are `mine`.
    fn items(&self, mine: usize) -> usize {
        mine
    }

    /// Sums a gradient over the ranks.
    fn sum(&self, _: &mut [f32]) {}

    /// Sums a loss over the ranks.
    fn sum_loss(&self, loss: f64) -> f64 {
        loss
    }

    /// Updates a table with every rank's gradients of its rows.
    fn apply(&self, table: &mut Table, slots: &mut Slots, u: Update) {
        let mut grads = u.grads;
        u.opt.apply_regularized(table, slots, u.rows, u.uses, &mut grads, u.l2);
    }
}

/// All lists in this process.
pub(crate) struct Alone;

impl Ranks for Alone {}

impl ListSource<'_> {
    /// The lists of epoch `e` (from 0).
    fn epoch(&self, e: usize) -> Cow<'_, Lists> {
        match *self {
            ListSource::Fixed(l) => Cow::Borrowed(l),
            ListSource::Ratings { data, ratings, loss, size, seed } => {
                Cow::Owned(Lists::of_ratings(data, ratings, loss, size, seed.wrapping_add(e as u64)))
            }
            ListSource::Spread { lists, .. } => Cow::Owned(lists(e)),
        }
    }

    /// Whether the lists change from one epoch to the next.
    fn reshuffled(&self) -> bool {
        match self {
            ListSource::Ratings { loss, .. } => *loss != RankingLoss::Mse,
            ListSource::Spread { reshuffled, .. } => *reshuffled,
            ListSource::Fixed(_) => false,
        }
    }
}

/// Stochastic weight averaging (Izmailov et al., 2018): the running mean of a model's
/// parameters at the end of each epoch from `from` (counted from 1) on, which replaces them
/// after training.
struct Averaging {
    from: usize,
    count: f32,
    /// Every parameter's mean, one after the other.
    mean: Vec<f32>,
}

impl Averaging {
    fn add(&mut self, model: &mut RankingModel, epoch: usize) {
        if epoch < self.from {
            return;
        }
        self.count += 1.0;
        let params = model.params_mut();
        if self.mean.is_empty() {
            self.mean = params.iter().flat_map(|p| p.data.iter().copied()).collect();
            return;
        }
        let values = params.iter().flat_map(|p| p.data.iter());
        self.mean.iter_mut().zip(values).for_each(|(m, x)| *m += (x - *m) / self.count);
    }

    fn finish(self, model: &mut RankingModel) {
        let mut rest = &self.mean[..];
        for p in model.params_mut() {
            let (now, after) = rest.split_at(p.data.len());
            p.data.copy_from_slice(now);
            rest = after;
        }
    }
}

impl State for Averaging {
    fn visit(&mut self, f: &mut dyn FnMut(Part<'_>)) {
        f(Part::Floats(&mut self.mean));
        f(Part::Scalar(&mut self.count));
    }
}

/// Optimizer state of every parameter of a ranking model.
struct RankerSlots {
    user: Option<Slots>,
    item: Option<Slots>,
    user_features: Vec<Slots>,
    item_features: Vec<Slots>,
    scorer: Vec<Slots>,
}

impl RankerSlots {
    fn new(opt: &OptimizerConfig, m: &mut RankingModel) -> Self {
        let tables = |t: &Option<FeatureTower>| -> Vec<Slots> {
            t.as_ref().map_or_else(Vec::new, |t| t.tables.iter().map(|x| Slots::new(opt, x.rows, x.dim)).collect())
        };
        RankerSlots {
            user: m.user.as_ref().map(|t| Slots::new(opt, t.rows, t.dim)),
            item: m.item.as_ref().map(|t| Slots::new(opt, t.rows, t.dim)),
            user_features: tables(&m.user_features),
            item_features: tables(&m.item_features),
            scorer: m.scorer.params_mut().into_iter().map(|p| Slots::new(opt, p.rows, p.dim)).collect(),
        }
    }
}

impl State for RankerSlots {
    fn visit(&mut self, f: &mut dyn FnMut(Part<'_>)) {
        self.user.visit(f);
        self.item.visit(f);
        self.user_features.visit(f);
        self.item_features.visit(f);
        self.scorer.visit(f);
    }
}

/// Columns `start..start + w` of a `rows × width` matrix.
fn columns(x: &[f32], width: usize, start: usize, w: usize) -> Vec<f32> {
    x.chunks_exact(width.max(1)).flat_map(|r| r[start..start + w].iter().copied()).collect()
}

/// Fits `model` on `lists` with its loss: each batch's lists are scored together, each list's
/// loss and gradient computed on its own, averaged over the batch's lists. `batch_size` counts
/// items: a batch holds `batch_size / mean list length` lists. With `average_last`, the
/// parameters are averaged over the last epochs. `ranks` says where the lists are.
pub(crate) fn fit_lists(
    run: &mut Run,
    model: &mut RankingModel,
    source: ListSource,
    ranks: &dyn Ranks,
) -> Result<History> {
    let cfg = run.config;
    let mut lists = source.epoch(0);
    let n_lists = lists.len();
    if n_lists == 0 {
        return Err(Error::Data("no training list: nothing to rank".into()));
    }
    let mean_len = (ranks.items(lists.items.len()) as f64 / lists.len() as f64).max(1.0);
    let per_batch = ((cfg.batch_size as f64 / mean_len).round() as usize).max(1);
    let list_cfg = TrainConfig { batch_size: per_batch, ..cfg.clone() };
    let mut list_run = Run::new(&list_cfg, &mut *run.observer, run.validation);
    (list_run.prior, list_run.checkpoints) = (run.prior.take(), run.checkpoints);
    list_run.examples = std::mem::take(&mut run.examples);
    let (mut u_dedup, mut i_dedup) = (Dedup::new(model.users), Dedup::new(model.items));
    let loss_fn = model.spec.loss;
    let l2 = cfg.l2;
    let mut step =
        |model: &mut RankingModel, lists: &Lists, slots: &mut RankerSlots, batch: &[u32], opt: &Optimizer| {
            let mut pairs = Vec::new();
            let mut labels = Vec::new();
            let mut bounds = vec![0usize];
            let mut ctx = Vec::new();
            for &l in batch {
                let (a, b) = (lists.offsets[l as usize], lists.offsets[l as usize + 1]);
                let u = lists.users[l as usize];
                pairs.extend(lists.items[a..b].iter().map(|&i| (u, i)));
                labels.extend_from_slice(&lists.labels[a..b]);
                if let Some((c, w)) = &lists.context {
                    ctx.extend_from_slice(&c[a * w..b * w]);
                }
                bounds.push(pairs.len());
            }
            let context = lists.context.as_ref().map(|_| ctx.as_slice());
            let x = match model.inputs(&pairs, context) {
                Ok(x) => x,
                Err(_) => return f64::NAN,
            };
            let (n, nl) = (pairs.len(), batch.len() as f32);
            let mut loss = 0f64;
            // a rank with no list in the batch adds nothing, but takes part in every sum
            let (mut grads, dx) = match n {
                0 => (model.scorer.params_mut().iter().map(|p| vec![0f32; p.data.len()]).collect(), Vec::new()),
                _ => {
                    let (scores, cache) = model.scorer.forward_train(x, n);
                    let mut g = vec![0f32; n];
                    for w in bounds.windows(2) {
                        loss += loss_fn.list(&scores[w[0]..w[1]], &labels[w[0]..w[1]], &mut g[w[0]..w[1]]);
                    }
                    g.iter_mut().for_each(|v| *v /= nl);
                    let (grads, dx) = model.scorer.backward(&cache, &g);
                    (grads.flat(), dx)
                }
            };
            let width = dx.len() / n.max(1);
            let mut col = 0;
            let l2 = l2 / nl;
            if let (Some(user), Some(item)) = (model.user.as_mut(), model.item.as_mut()) {
                let d = user.dim;
                for &(u, i) in &pairs {
                    u_dedup.index(u);
                    i_dedup.index(i);
                }
                let (mut du, mut di) = (vec![0f32; u_dedup.rows.len() * d], vec![0f32; i_dedup.rows.len() * d]);
                for (&(u, i), r) in pairs.iter().zip(dx.chunks_exact(width)) {
                    let (us, is) = (u_dedup.position(u), i_dedup.position(i));
                    du[us * d..(us + 1) * d].iter_mut().zip(&r[..d]).for_each(|(a, b)| *a += b);
                    di[is * d..(is + 1) * d].iter_mut().zip(&r[d..2 * d]).for_each(|(a, b)| *a += b);
                }
                if let (Some(su), Some(si)) = (slots.user.as_mut(), slots.item.as_mut()) {
                    ranks.apply(user, su, Update { opt, l2, rows: &u_dedup.rows, uses: &u_dedup.weights, grads: du });
                    ranks.apply(item, si, Update { opt, l2, rows: &i_dedup.rows, uses: &i_dedup.weights, grads: di });
                }
                u_dedup.clear();
                i_dedup.clear();
                col = 2 * d;
            }
            let users: Vec<u32> = pairs.iter().map(|p| p.0).collect();
            let items: Vec<u32> = pairs.iter().map(|p| p.1).collect();
            for (tower, tslots, entities) in [
                (model.user_features.as_mut(), &mut slots.user_features, &users),
                (model.item_features.as_mut(), &mut slots.item_features, &items),
            ] {
                let Some(t) = tower else { continue };
                let w = t.input_dim();
                let d_x = columns(&dx, width, col, w);
                col += w;
                let tg = t.table_grads(&Instances { entities, ..Default::default() }, &d_x);
                for ((table, s), rg) in t.tables.iter_mut().zip(tslots.iter_mut()).zip(tg) {
                    ranks.apply(table, s, Update { opt, l2, rows: &rg.rows, uses: &rg.uses, grads: rg.grads });
                }
            }
            grads.iter_mut().for_each(|g| ranks.sum(g));
            for ((p, s), gr) in model.scorer.params_mut().into_iter().zip(&mut slots.scorer).zip(&grads) {
                opt.apply_dense(p, s, gr);
            }
            ranks.sum_loss(loss / nl as f64)
        };
    let steps_per_epoch = n_lists.div_ceil(per_batch);
    let averaging = cfg.average_last.map(|last| Averaging {
        from: cfg.epochs.saturating_sub(last) + 1,
        count: 0.0,
        mean: Vec::new(),
    });
    let mut state = (RankerSlots::new(&cfg.optimizer, model), averaging);
    let mut lists_of = 0;
    let history = list_run.epochs(n_lists, model, &mut state, |model, (slots, averaging), b| {
        if b.index / steps_per_epoch != lists_of && source.reshuffled() {
            lists_of = b.index / steps_per_epoch;
            lists = source.epoch(lists_of);
            debug_assert_eq!(lists.len(), n_lists);
        }
        let loss = step(model, &lists, slots, b.rows, b.opt);
        let steps = b.index + 1;
        if let Some(a) = averaging.as_mut().filter(|_| steps.is_multiple_of(steps_per_epoch)) {
            a.add(model, steps / steps_per_epoch);
        }
        loss
    })?;
    if let Some(a) = state.1 {
        a.finish(model);
    }
    (run.seconds, run.optimizer) = (list_run.seconds, list_run.optimizer.take());
    Ok(history)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::data::{Interactions, Row};

    #[test]
    fn rating_lists_cover_each_users_items_once() {
        let rows = [("a", "1", 5.0), ("a", "2", 3.0), ("a", "3", 1.0), ("b", "1", 2.0), ("c", "2", 4.0)];
        let t = Interactions::from_rows(rows.iter().map(|&(q, c, r)| Row {
            query: q,
            candidate: c,
            rating: Some(r),
            ..Default::default()
        }))
        .unwrap();
        let d = Dataset::build(&t, None, Default::default()).unwrap();
        let r = t.ratings.clone().unwrap();
        let pointwise = Lists::of_ratings(&d, &r, RankingLoss::Mse, 10, 1);
        assert_eq!((pointwise.len(), pointwise.items.len()), (5, 5));
        let lists = Lists::of_ratings(&d, &r, RankingLoss::ListMle, 2, 1);
        // a: 3 items → one list of 2 (the single left over is dropped); b, c: one item each, no list
        assert_eq!((lists.len(), lists.items.len()), (1, 2));
        assert_eq!(lists.users[0], d.query_vocab.get("a").unwrap());
    }

    #[test]
    fn lists_are_reshuffled_every_epoch() {
        let rows: Vec<(String, String)> = (0..8).map(|i| ("a".to_string(), i.to_string())).collect();
        let t = Interactions::from_rows(rows.iter().map(|(q, c)| Row {
            query: q,
            candidate: c,
            rating: Some(c.parse::<f32>().unwrap()),
            ..Default::default()
        }))
        .unwrap();
        let d = Dataset::build(&t, None, Default::default()).unwrap();
        let r = t.ratings.clone().unwrap();
        let source = ListSource::Ratings { data: &d, ratings: &r, loss: RankingLoss::ListMle, size: 3, seed: 1 };
        let (first, second) = (source.epoch(0), source.epoch(1));
        // 8 items: lists of 3, 3, 2 every epoch, of different items
        assert_eq!((first.len(), second.len()), (3, 3));
        assert_ne!(first.items, second.items);
        assert!(source.reshuffled());
        let pointwise = ListSource::Ratings { data: &d, ratings: &r, loss: RankingLoss::Mse, size: 3, seed: 1 };
        assert!(!pointwise.reshuffled() && !ListSource::Fixed(&first).reshuffled());
    }

    #[test]
    fn weights_are_averaged_from_an_epoch_on() {
        let scale = RatingScale { min: 1.0, max: 5.0, mean: 3.0 };
        let mut m = RankingModel::new(&RankingSpec::mlp(vec![4]), (3, 4), 2, RankingInputs::default(), scale, 1);
        let fill = |m: &mut RankingModel, v: f32| m.params_mut().into_iter().for_each(|p| p.data.fill(v));
        let mut a = Averaging { from: 2, count: 0.0, mean: Vec::new() };
        for (epoch, v) in [(1, 100.0), (2, 1.0), (3, 2.0), (4, 6.0)] {
            fill(&mut m, v);
            a.add(&mut m, epoch);
        }
        a.finish(&mut m);
        // epochs 2, 3 and 4: (1 + 2 + 6) / 3
        assert!(m.params_mut().iter().all(|p| p.data.iter().all(|&x| (x - 3.0).abs() < 1e-6)));
    }
}
