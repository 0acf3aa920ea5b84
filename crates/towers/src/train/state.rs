//! What a training run keeps beside its model — optimizer slots, random generators, the step —
//! and how a run starts from an earlier one: a checkpoint of the same run (resume), or a model
//! trained on earlier data (continue), whose id tables grow with the new ids.

use super::optimizer::Slots;
use crate::kernels::table::Table;
use crate::model::{
    AttentionModel, FeatureModel, Model, MultitaskModel, RankingModel, SequentialModel, Shape, TwoTower,
};
use crate::rng::Rng;
use crate::tensors::{TensorReader, TensorWriter};
use crate::{Error, Result};
use safetensors::Dtype;
use std::path::Path;

/// One piece of a training loop's state besides the model.
pub(crate) enum Part<'a> {
    Slots(&'a mut Slots),
    Rng(&'a mut Rng),
    /// Values of any length (a running mean of parameters).
    Floats(&'a mut Vec<f32>),
    Scalar(&'a mut f32),
}

/// A training loop's state besides the model, visited in a fixed order (the order names the
/// pieces in a checkpoint).
pub(crate) trait State {
    fn visit(&mut self, f: &mut dyn FnMut(Part<'_>));
}

impl State for () {
    fn visit(&mut self, _: &mut dyn FnMut(Part<'_>)) {}
}

impl State for Slots {
    fn visit(&mut self, f: &mut dyn FnMut(Part<'_>)) {
        f(Part::Slots(self))
    }
}

impl State for Rng {
    fn visit(&mut self, f: &mut dyn FnMut(Part<'_>)) {
        f(Part::Rng(self))
    }
}

impl<T: State> State for Option<T> {
    fn visit(&mut self, f: &mut dyn FnMut(Part<'_>)) {
        if let Some(t) = self {
            t.visit(f)
        }
    }
}

impl<T: State> State for Vec<T> {
    fn visit(&mut self, f: &mut dyn FnMut(Part<'_>)) {
        self.iter_mut().for_each(|t| t.visit(f))
    }
}

impl<T: State, const N: usize> State for [T; N] {
    fn visit(&mut self, f: &mut dyn FnMut(Part<'_>)) {
        self.iter_mut().for_each(|t| t.visit(f))
    }
}

macro_rules! tuple_state {
    ($($t:ident $i:tt),+) => {
        impl<$($t: State),+> State for ($($t,)+) {
            fn visit(&mut self, f: &mut dyn FnMut(Part<'_>)) {
                $(self.$i.visit(f);)+
            }
        }
    };
}
tuple_state!(A 0, B 1);
tuple_state!(A 0, B 1, C 2);
tuple_state!(A 0, B 1, C 2, D 3);
tuple_state!(A 0, B 1, C 2, D 3, E 4);

/// How [`write_state`] treats the state.
#[derive(Clone, Copy, PartialEq)]
pub(crate) enum Keep {
    /// Copies it all (a checkpoint, training goes on).
    Copy,
    /// Moves the optimizer slots out, and only them (the state kept with the model at the end).
    Move,
}

/// The names of the `i`-th optimizer slots' first and second tables in a written state.
fn slot_names(i: usize) -> [String; 2] {
    [format!("slot.{i}.first"), format!("slot.{i}.second")]
}

/// The names under which [`write_state`] keeps the tables of `slots`, when they are part of
/// `state`.
pub(crate) fn names_of(state: &mut dyn State, slots: *const Slots) -> Option<[String; 2]> {
    let (mut i, mut found) = (0, None);
    state.visit(&mut |part| {
        if let Part::Slots(s) = part {
            if std::ptr::eq(s, slots) {
                found = Some(i);
            }
            i += 1;
        }
    });
    found.map(slot_names)
}

/// Writes `state` as tensors `slot.{i}.first`, `slot.{i}.second`, `rng.{j}` and `value.{j}`.
pub(crate) fn write_state(w: &mut TensorWriter, state: &mut dyn State, keep: Keep) {
    let (mut i, mut j) = (0, 0);
    let put = |w: &mut TensorWriter, name: String, t: &mut Table| match keep {
        Keep::Copy => w.f32(name, &[t.rows, t.dim], &t.data),
        Keep::Move => w.f32_owned(name, &[t.rows, t.dim], std::mem::take(&mut t.data)),
    };
    state.visit(&mut |part| match part {
        Part::Slots(s) => {
            let [first, second] = slot_names(i);
            put(w, first, &mut s.first);
            if let Some(t) = s.second.as_mut() {
                put(w, second, t);
            }
            i += 1;
        }
        _ if keep == Keep::Move => {}
        Part::Floats(v) => {
            w.f32(format!("value.{j}"), &[v.len()], v);
            j += 1;
        }
        Part::Scalar(x) => {
            w.f32(format!("value.{j}"), &[1], &[*x]);
            j += 1;
        }
        Part::Rng(r) => {
            let words: Vec<u32> = r.state().iter().flat_map(|&x| [x as u32, (x >> 32) as u32]).collect();
            w.u32(format!("rng.{j}"), &words);
            j += 1;
        }
    });
}

/// Reads `state` back from what [`write_state`] wrote: exactly (a checkpoint of this run), or,
/// with `growth`, the slots of a model trained before, grown to this run's tables (random
/// generators and other values stay this run's).
pub(crate) fn read_state(r: &TensorReader, state: &mut dyn State, growth: Option<&Growth>) -> Result<()> {
    let (mut i, mut j, mut failed) = (0, 0, None);
    state.visit(&mut |part| {
        if failed.is_some() {
            return;
        }
        let result = match part {
            Part::Slots(s) => {
                let [first, second] = slot_names(i);
                let first = restore(r, &first, &mut s.first, growth);
                let second = match s.second.as_mut() {
                    Some(t) => restore(r, &second, t, growth),
                    None => Ok(()),
                };
                i += 1;
                first.and(second)
            }
            _ if growth.is_some() => Ok(()),
            Part::Rng(rng) => {
                let words = r.u32(&format!("rng.{j}"), Some(8));
                j += 1;
                words.map(|w| {
                    *rng = Rng::from_state(std::array::from_fn(|k| w[2 * k] as u64 | (w[2 * k + 1] as u64) << 32))
                })
            }
            Part::Floats(v) => {
                j += 1;
                r.f32_any(&format!("value.{}", j - 1)).map(|(x, _)| *v = x)
            }
            Part::Scalar(x) => {
                j += 1;
                r.f32(&format!("value.{}", j - 1), &[1]).map(|v| *x = v[0])
            }
        };
        failed = result.err();
    });
    match failed {
        Some(e) => Err(e),
        None if r.has(&slot_names(i)[0]) => Err(r.error("it holds more optimizer state than this run has")),
        None => Ok(()),
    }
}

/// Replaces `table` by the tensor `name` of `r`, grown by `growth` when given.
fn restore(r: &TensorReader, name: &str, table: &mut Table, growth: Option<&Growth>) -> Result<()> {
    let (data, shape) = r.f32_any(name)?;
    let want = [table.rows, table.dim];
    if shape == want {
        table.data = data;
        return Ok(());
    }
    match growth {
        Some(g) if g.allows(&shape, &want) => {
            table.data[..data.len()].copy_from_slice(&data);
            Ok(())
        }
        _ => Err(r.error(format!("tensor '{name}' has shape {shape:?}, this run's {want:?}"))),
    }
}

/// How id tables grow from a model trained before to this run: the old and new row counts of
/// its queries and of its candidates. Old ids keep their rows; new ids come after them.
#[derive(Debug, Clone, Copy, PartialEq)]
pub(crate) struct Growth {
    pub queries: (usize, usize),
    pub candidates: (usize, usize),
}

impl Growth {
    /// Whether a tensor of shape `old` may become one of shape `new`: the same, or an id table
    /// (its rows an old row count) with the matching new rows and the same width.
    fn allows(&self, old: &[usize], new: &[usize]) -> bool {
        old == new
            || (old.len() == new.len()
                && !old.is_empty()
                && old[1..] == new[1..]
                && [self.queries, self.candidates].contains(&(old[0], new[0])))
    }
}

/// `fresh`'s tensors and metadata, each of its parameters (`is_parameter`) taken from `prior`,
/// grown by `growth`: every parameter of `prior` must be one of `fresh`'s, of the same or a
/// grown shape.
pub(crate) fn merge(
    fresh: &TensorReader,
    prior: &TensorReader,
    growth: &Growth,
    is_parameter: impl Fn(&str) -> bool,
) -> Result<TensorWriter> {
    let mut w = TensorWriter::default();
    w.meta_of(fresh);
    let param = |name: &str, dtype: Dtype| dtype == Dtype::F32 && is_parameter(name);
    for name in prior.names() {
        let (dtype, ..) = prior.raw(&name).expect("a listed tensor");
        if param(&name, dtype) && fresh.raw(&name).is_none() {
            return Err(mismatch(format!("its tensor '{name}' is not one of this model's")));
        }
    }
    for name in fresh.names() {
        let (dtype, shape, bytes) = fresh.raw(&name).expect("a listed tensor");
        let mut bytes = bytes.to_vec();
        if let Some((pt, old, old_bytes)) = prior.raw(&name).filter(|_| param(&name, dtype)) {
            if pt != dtype || !growth.allows(&old, &shape) {
                return Err(mismatch(format!("its tensor '{name}' has shape {old:?}, this model's {shape:?}")));
            }
            bytes[..old_bytes.len()].copy_from_slice(old_bytes);
        }
        w.raw(name, dtype, &shape, bytes);
    }
    Ok(w)
}

fn mismatch(what: String) -> Error {
    Error::Config(format!(
        "`init_from`: the old model does not have this model's spec ({what}); continue a model of the same kind, \
         dim, layers and features, or train from scratch"
    ))
}

/// A model a run trains, read back from its tensors with its own shape (after a merge or from
/// a checkpoint); and which of its tensors are parameters (the others are derived from data).
pub(crate) trait Reload: Model + Sized {
    fn reload(&self, r: &TensorReader) -> Result<Self>;

    /// Derived tensors are data, not parameters: `u32` tensors (never merged), bags' weights
    /// (`*.weights`: each entity's attribute values) and a ranker's context statistics
    /// (`context.*`), all this run's.
    fn is_parameter(&self, name: &str) -> bool {
        !name.starts_with("context.") && !name.ends_with(".weights")
    }

    /// Its tensors, parsed back (to merge or check).
    fn tensors(&self) -> Result<Vec<u8>> {
        let mut w = TensorWriter::default();
        self.save(&mut w)?;
        w.to_bytes()
    }
}

/// Reads tensors written in memory.
pub(crate) fn parse<'a>(what: &str, bytes: &'a [u8]) -> Result<TensorReader<'a>> {
    TensorReader::parse(Path::new(what), bytes)
}

fn shape(queries: usize, candidates: usize, dim: usize) -> Shape {
    Shape { queries, candidates, dim }
}

impl Reload for TwoTower {
    fn reload(&self, r: &TensorReader) -> Result<Self> {
        let s = shape(self.query.embedding.rows, self.candidate.embedding.rows, self.dim());
        TwoTower::load(r, s, self.rating_scale.is_some())
    }
}

impl Reload for MultitaskModel {
    fn reload(&self, r: &TensorReader) -> Result<Self> {
        let t = &self.towers;
        MultitaskModel::load(r, shape(t.query.embedding.rows, t.candidate.embedding.rows, self.dim()), &self.spec)
    }
}

impl Reload for RankingModel {
    fn reload(&self, r: &TensorReader) -> Result<Self> {
        RankingModel::load(r, shape(self.users, self.items, self.dim()), &self.spec)
    }
}

impl Reload for SequentialModel {
    fn reload(&self, r: &TensorReader) -> Result<Self> {
        SequentialModel::load(r, shape(0, self.item_embedding.rows, self.dim()), self.config)
    }
}

impl Reload for AttentionModel {
    fn reload(&self, r: &TensorReader) -> Result<Self> {
        AttentionModel::load(r, shape(0, self.item_embedding.rows, self.dim()), self.config)
    }
}

impl Reload for FeatureModel {
    fn reload(&self, r: &TensorReader) -> Result<Self> {
        let entities = |t: &crate::model::FeatureTower| t.bags.first().map_or(0, |b| b.offsets.len() - 1);
        FeatureModel::load(r, shape(entities(&self.query), entities(&self.candidate), self.dim()), &self.config)
    }
}
