//! Models that live: a run resumed from a checkpoint ends with the model an uninterrupted run
//! writes, for every kind; a model continued on new data keeps its ids' rows and state, grows
//! its vocabularies, and refuses a different spec.

mod common;

use common::scratch;
use common::synthetic::{Synthetic, synthetic};
use std::ops::ControlFlow;
use std::path::Path;
use towers::config::TrainConfig;
use towers::data::{Data, Interactions, Row};
use towers::model::{At, ModelKind, MultitaskSpec, Queries, RankingSpec, SequenceConfig};
use towers::progress::{Event, Observer};
use towers::task::RankingLoss;
use towers::tensors::TensorWriter;
use towers::train::{Checkpoints, PipelineConfig};
use towers::{Artifact, Error, ModelSpec, Query, Request, Served, Trainer};

const KINDS: [&str; 6] = ["retrieval", "rating", "ranking", "multitask", "features", "sequential"];

fn config(kind: ModelKind) -> TrainConfig {
    TrainConfig { dim: 8, batch_size: 16, epochs: 3, ..TrainConfig::defaults(kind, Default::default()) }
}

/// Trains a small model of `kind` on the synthetic set, observed by `observer`, with
/// `checkpoints` when given.
fn fit(
    kind: &str,
    s: &Synthetic,
    tables: &Path,
    observer: &mut dyn Observer,
    checkpoints: Option<&Checkpoints>,
) -> towers::Result<Artifact> {
    let (users, items, features) = s.tables(tables);
    let (spec, data): (ModelSpec, Data) = match kind {
        "retrieval" => (ModelSpec::Retrieval, (&s.train).into()),
        "rating" => (ModelSpec::Rating, (&s.train).into()),
        // a listwise loss: its lists are drawn again every epoch
        "ranking" => {
            let spec = RankingSpec { loss: RankingLoss::ListMle, list_size: Some(3), ..RankingSpec::mlp(vec![8]) };
            (ModelSpec::Ranking(spec), (&s.train).into())
        }
        "multitask" => {
            (ModelSpec::Multitask(MultitaskSpec { layers: vec![8], ..Default::default() }), (&s.train).into())
        }
        "features" => (ModelSpec::Features(features), (&s.train).into()),
        "sequential" => {
            (ModelSpec::Sequential(SequenceConfig { steps: 4, ..Default::default() }), (&s.sessions).into())
        }
        other => panic!("no kind {other}"),
    };
    let mut config = config(spec.kind());
    if kind == "features" {
        config = TrainConfig { batch_size: 16, epochs: 3, ..TrainConfig::default() };
    }
    let mut t = Trainer::new(spec).config(config).catalog(&s.catalog).observer(observer);
    if kind == "features" {
        t = t.user_attributes(&users).item_attributes(&items);
    }
    if let Some(c) = checkpoints {
        t = t.checkpoints(c);
    }
    t.fit(data)
}

fn weights(a: &Artifact) -> Vec<f32> {
    let mut w = TensorWriter::default();
    a.model.save(&mut w).unwrap();
    let bytes = w.to_bytes().unwrap();
    let r = towers::tensors::TensorReader::parse(Path::new("w"), &bytes).unwrap();
    r.names().iter().filter_map(|n| r.f32_any(n).ok()).flat_map(|(data, _)| data).collect()
}

fn max_abs_diff(a: &[f32], b: &[f32]) -> f32 {
    assert_eq!(a.len(), b.len());
    a.iter().zip(b).map(|(x, y)| (x - y).abs()).fold(0.0, f32::max)
}

/// Stops training after `n` steps.
fn stop_after(n: usize) -> impl Observer {
    let mut steps = 0;
    move |e: Event<'_>| {
        steps += usize::from(matches!(e, Event::Step));
        if steps >= n { ControlFlow::Break(()) } else { ControlFlow::Continue(()) }
    }
}

#[test]
fn a_resumed_run_ends_with_the_uninterrupted_runs_model() {
    let s = synthetic();
    let dir = scratch("lifecycle-resume");
    for kind in KINDS {
        let full = fit(kind, &s, &dir, &mut towers::progress::quiet(), None).unwrap();
        let c = Checkpoints::beside(dir.join(kind), 2);
        let _ = std::fs::remove_file(&c.path);
        // interrupted in its second epoch, after the checkpoint of step 8 (or 6 of a shorter one)
        let e = fit(kind, &s, &dir, &mut stop_after(9), Some(&c)).unwrap_err();
        assert!(matches!(e, Error::Interrupted), "{kind}: {e}");
        assert!(c.path.is_file(), "{kind}: no checkpoint");
        let resumed = fit(kind, &s, &dir, &mut towers::progress::quiet(), Some(&c.clone().resume(true))).unwrap();
        let d = max_abs_diff(&weights(&full), &weights(&resumed));
        assert!(d <= 1e-6, "{kind}: resumed weights differ by {d}");
        assert_eq!(full.candidates, resumed.candidates, "{kind}");
        assert_eq!(full.history.epochs.len(), resumed.history.epochs.len(), "{kind}");
        // a checkpoint of another run is refused, not half-loaded
        let other = Checkpoints { resume: true, ..c.clone() };
        fit(kind, &s, &dir, &mut stop_after(3), Some(&c)).unwrap_err();
        let e = match kind {
            "sequential" => fit("retrieval", &s, &dir, &mut towers::progress::quiet(), Some(&other)).unwrap_err(),
            _ => fit("sequential", &s, &dir, &mut towers::progress::quiet(), Some(&other)).unwrap_err(),
        };
        assert!(e.to_string().contains("another run"), "{kind}: {e}");
        c.remove().unwrap();
        assert!(!c.path.exists());
    }
}

#[test]
fn resuming_with_no_checkpoint_starts_from_the_beginning() {
    let s = synthetic();
    let dir = scratch("lifecycle-fresh");
    let c = Checkpoints::beside(dir.join("none"), 0).resume(true);
    let full = fit("retrieval", &s, &dir, &mut towers::progress::quiet(), None).unwrap();
    let resumed = fit("retrieval", &s, &dir, &mut towers::progress::quiet(), Some(&c)).unwrap();
    assert_eq!(weights(&full), weights(&resumed));
    assert!(!c.path.exists(), "every 0 steps: no checkpoint written");
}

/// The synthetic set's rows of the users `keep` says.
fn rows_of(t: &Interactions, keep: impl Fn(&str) -> bool) -> Interactions {
    let (q, c) = (t.query_ids(), t.candidate_ids());
    let rows: Vec<(String, String, f32, i64)> = (0..t.len())
        .map(|i| {
            let user = q.key(t.query_indices()[i]).unwrap().to_string();
            let item = c.key(t.candidate_indices()[i]).unwrap().to_string();
            (user, item, t.ratings.as_ref().unwrap()[i], t.timestamps.as_ref().unwrap()[i])
        })
        .filter(|r| keep(&r.0))
        .collect();
    Interactions::from_rows(rows.iter().map(|(u, i, r, ts)| Row {
        query: u,
        candidate: i,
        rating: Some(*r),
        timestamp: Some(*ts),
        weight: None,
    }))
    .unwrap()
}

fn user_number(id: &str) -> u32 {
    id.trim_start_matches(|c: char| !c.is_ascii_digit()).parse().unwrap()
}

#[test]
fn a_continued_model_keeps_its_ids_grows_and_carries_its_state() {
    let s = synthetic();
    let dir = scratch("lifecycle-continue");
    let (old_data, new_data) =
        (rows_of(&s.train, |u| user_number(u) < 30), rows_of(&s.train, |u| user_number(u) >= 20));
    let retrieval = || Trainer::new(ModelSpec::Retrieval).config(config(ModelKind::Retrieval)).catalog(&s.catalog);
    let old = Served::from(retrieval().fit(&old_data).unwrap());
    old.save(dir.join("old")).unwrap();
    assert!(dir.join("old/optimizer.safetensors").is_file());
    let cont = retrieval().init_from(&old).count_decay(0.5).fit(&new_data).unwrap();
    let o = old.retriever().artifact();
    // old ids keep their rows, new ones come after
    let old_users: Vec<&str> = o.query_vocab.iter().collect();
    assert_eq!(cont.query_vocab.iter().take(old_users.len()).collect::<Vec<_>>(), old_users);
    assert_eq!(cont.query_vocab.num_keys(), 40);
    // a user absent from the new data keeps its embedding and what it saw
    let absent = (0..20).map(|u| format!("u{u}")).find(|u| o.query_vocab.get(u).is_some()).unwrap();
    let row = o.query_vocab.get(&absent).unwrap();
    let embed = |a: &Artifact| a.model.queries(&Queries::Users { rows: &[row], at: At::Unknown }).unwrap();
    assert_eq!(embed(o), embed(&cont));
    assert_eq!(o.seen.of(row), cont.seen.of(row));
    // counts: the old ones halved, plus the new
    let new_counts = towers::data::Dataset::build(&new_data, Some(&s.catalog), Default::default()).unwrap();
    for (r, id) in o.items.ids.iter().enumerate().skip(1) {
        let new = new_counts.items.rows.get(id).map_or(0.0, |&n| new_counts.counts[n as usize]);
        assert_eq!(cont.popularity[cont.items.rows[id] as usize], 0.5 * o.popularity[r] + new, "item {id}");
    }
    // a new user is known: personal recommendations, not the popularity list
    let cont = Served::from(cont);
    let recs = cont.recommend(Query::User("u39"), &Request::default()).unwrap();
    assert!(!recs.cold_start && recs.items.len() == 10);
    // continuing a model loaded from its directory (the optimizer state read from there) is
    // continuing the one in memory
    let loaded = Served::load(dir.join("old")).unwrap();
    let again = retrieval().init_from(&loaded).count_decay(0.5).fit(&new_data).unwrap();
    assert_eq!(weights(cont.retriever().artifact()), weights(&again));
    // saving a loaded model again (an index built, a copy elsewhere) keeps its optimizer state
    let mut indexed = Artifact::load(dir.join("old")).unwrap();
    let ivf = towers::index::IvfParams { nlist: 4, nprobe: 2, ..Default::default() };
    towers::recommend::build_index(&mut indexed, &ivf, &mut towers::progress::quiet()).unwrap();
    indexed.save(dir.join("old")).unwrap();
    Served::from(Artifact::load(dir.join("old")).unwrap()).save(dir.join("copy")).unwrap();
    for d in ["old", "copy"] {
        assert!(dir.join(d).join("optimizer.safetensors").is_file(), "{d}");
        let prior = Served::load(dir.join(d)).unwrap();
        let t = Trainer::new(ModelSpec::Retrieval).config(config(ModelKind::Retrieval)).catalog(&s.catalog);
        let again = t.init_from(&prior).count_decay(0.5).fit(&new_data).unwrap();
        assert_eq!(weights(cont.retriever().artifact()), weights(&again), "{d}");
    }
}

#[test]
fn a_different_spec_is_refused() {
    let s = synthetic();
    let old =
        Served::from(Trainer::new(ModelSpec::Retrieval).config(config(ModelKind::Retrieval)).fit(&s.train).unwrap());
    let wider = TrainConfig { dim: 16, ..config(ModelKind::Retrieval) };
    let e = Trainer::new(ModelSpec::Retrieval).config(wider).init_from(&old).fit(&s.train).unwrap_err();
    assert!(matches!(e, Error::Config(_)) && e.to_string().contains("`dim` is 8, this run's 16"), "{e}");
    let e =
        Trainer::new(ModelSpec::Rating).config(config(ModelKind::Rating)).init_from(&old).fit(&s.train).unwrap_err();
    assert!(e.to_string().contains("retrieval model, this run trains a rating model"), "{e}");
    let e = Trainer::pipeline(PipelineConfig::default()).init_from(&old).fit_served(&s.train).unwrap_err();
    assert!(e.to_string().contains("not a pipeline"), "{e}");
    let decay =
        Trainer::new(ModelSpec::Retrieval).config(config(ModelKind::Retrieval)).init_from(&old).count_decay(2.0);
    assert!(decay.fit(&s.train).unwrap_err().to_string().contains("count_decay"));
}

#[test]
fn a_pipeline_continues_its_retriever_and_ranker() {
    let s = synthetic();
    let dir = scratch("lifecycle-pipeline");
    let (_, items, features) = s.tables(&dir);
    let mut c = PipelineConfig { retrieve: 12, ..PipelineConfig::default() };
    (c.retriever.dim, c.retriever.batch_size, c.retriever.epochs) = (8, 32, 3);
    (c.ranker.batch_size, c.ranker.epochs) = (64, 3);
    let pipeline =
        || Trainer::pipeline(c.clone()).catalog(&s.catalog).item_attributes(&items).feature_config(&features);
    let old_data = rows_of(&s.train, |u| user_number(u) < 30);
    let old = pipeline().fit_served(&old_data).unwrap();
    old.save(dir.join("old")).unwrap();
    let old = Served::load(dir.join("old")).unwrap();
    let cont = pipeline().init_from(&old).fit_served(&rows_of(&s.train, |u| user_number(u) >= 20)).unwrap();
    for (o, n) in
        [(old.retriever().artifact(), cont.retriever().artifact()), (old.ranker().unwrap(), cont.ranker().unwrap())]
    {
        assert_eq!(n.query_vocab.num_keys(), 40);
        assert!(n.query_vocab.iter().zip(o.query_vocab.iter()).all(|(a, b)| a == b));
        assert!(n.optimizer.is_some());
    }
    assert!(!cont.recommend(Query::User("u39"), &Request::default()).unwrap().cold_start);
    let e = Trainer::new(ModelSpec::Retrieval).init_from(&old).fit(&s.train).unwrap_err();
    assert!(e.to_string().contains("is a pipeline"), "{e}");
}

#[test]
fn a_spilled_optimizer_state_is_saved_the_same_and_its_file_removed() {
    let s = synthetic();
    let dir = scratch("lifecycle-spill");
    std::fs::create_dir_all(&dir).unwrap();
    let t = || Trainer::new(ModelSpec::Retrieval).config(config(ModelKind::Retrieval)).catalog(&s.catalog);
    let kept = t().fit(&s.train).unwrap();
    let spilled = t().spill_optimizer(&dir).fit(&s.train).unwrap();
    let temporary = || {
        let names = std::fs::read_dir(&dir).unwrap().map(|e| e.unwrap().file_name().to_string_lossy().to_string());
        names.filter(|n| n.starts_with(".towers-optimizer-")).count()
    };
    assert_eq!(temporary(), 1, "the state waits in a file");
    assert_eq!(kept.optimizer_state().unwrap(), spilled.optimizer_state().unwrap());
    kept.save(dir.join("kept")).unwrap();
    spilled.save(dir.join("spilled")).unwrap();
    let file = |d: &str| std::fs::read(dir.join(d).join("optimizer.safetensors")).unwrap();
    assert_eq!(file("kept"), file("spilled"));
    drop(spilled);
    assert_eq!(temporary(), 0, "and goes with the model");
}
