//! Model directories: round trip, atomic writes, corruption and version checks, determinism,
//! and every model kind trained, saved, loaded and served through the library's one entry.

mod common;

use common::scratch;
use towers::EvalOptions;
use towers::data::{Catalog, Interactions, Row, Sessions};
use towers::index::IvfParams;
use towers::model::{AttentionConfig, Encoder, Normalization, RankingSpec, SequenceConfig};
use towers::progress::quiet;
use towers::recommend::build_index;
use towers::tensors::TensorWriter;
use towers::{Artifact, Error, ModelKind, ModelSpec, Query, Recommender, Request, TrainConfig, Trainer, evaluate};

/// A small synthetic data set: 60 users, 40 items, users like items near their own id.
fn data() -> (Interactions, Catalog) {
    let mut rng = towers::rng::Rng::new(9);
    let (mut q, mut c) = (Vec::new(), Vec::new());
    for u in 0..60 {
        for _ in 0..12 {
            q.push(format!("u{u}"));
            c.push(format!("{}", (u * 2 / 3 + rng.below(6)) % 40));
        }
    }
    let catalog = Catalog::from_pairs((0..40).map(|i| (i.to_string(), format!("Item {i}"))));
    let rows = q.iter().zip(&c).map(|(q, c)| Row { query: q, candidate: c, ..Default::default() });
    (Interactions::from_rows(rows).unwrap(), catalog)
}

fn config(norm: Normalization) -> TrainConfig {
    TrainConfig { dim: 8, batch_size: 64, epochs: 3, normalization: norm, ..TrainConfig::default() }
}

fn retrieval(cfg: TrainConfig, train: &Interactions, catalog: &Catalog) -> Artifact {
    Trainer::new(ModelSpec::Retrieval).config(cfg).catalog(catalog).fit(train).unwrap()
}

/// A model's tensors as saved: equal bytes, equal models.
fn weights(a: &Artifact) -> Vec<u8> {
    let mut w = TensorWriter::default();
    a.model.save(&mut w).unwrap();
    w.to_bytes().unwrap()
}

fn top(k: usize, exclude_seen: bool) -> Request {
    Request::top(k).exclude_seen(exclude_seen)
}

#[test]
fn save_load_round_trip_for_every_normalization() {
    let (train, catalog) = data();
    for norm in [Normalization::None, Normalization::L2, Normalization::BatchNorm] {
        let m = retrieval(config(norm), &train, &catalog);
        let dir = scratch(&format!("rt-{norm:?}"));
        m.save(&dir).unwrap();
        let back = Artifact::load(&dir).unwrap();
        assert_eq!(weights(&back), weights(&m));
        assert_eq!(back.candidates, m.candidates);
        assert_eq!((&back.seen, &back.config), (&m.seen, &m.config));
        let e = evaluate(&m, &train, &EvalOptions::new()).unwrap();
        assert_eq!(
            evaluate(&back, &train, &EvalOptions::new()).unwrap().ranked().unwrap().model,
            e.ranked().unwrap().model
        );
        let (r1, r2) = (Recommender::new(back), Recommender::new(m));
        assert_eq!(r1.similar("3", &Request::top(4)).unwrap(), r2.similar("3", &Request::top(4)).unwrap());
        assert_eq!(
            r1.recommend(Query::User("u3"), &top(5, true)).unwrap(),
            r2.recommend(Query::User("u3"), &top(5, true)).unwrap()
        );
        for f in ["manifest.json", "weights.safetensors", "candidates.safetensors", "history.svg", "history.csv"] {
            assert!(dir.join(f).is_file(), "{f}");
        }
        // saving again replaces the model directory, leaving no temporary directories behind
        // (only the lock file, which stays so that every writer locks the same file)
        r2.artifact().save(&dir).unwrap();
        let name = dir.file_name().unwrap().to_string_lossy().to_string();
        let leftovers: Vec<String> = std::fs::read_dir(dir.parent().unwrap())
            .unwrap()
            .filter_map(|e| Some(e.ok()?.file_name().to_string_lossy().to_string()))
            .filter(|f| f.starts_with(&format!(".{name}.")))
            .collect();
        assert_eq!(leftovers, [format!(".{name}.lock")]);
        std::fs::remove_dir_all(&dir).unwrap();
        std::fs::remove_file(dir.with_file_name(format!(".{name}.lock"))).unwrap();
    }
}

#[test]
fn corrupt_or_future_artifacts_are_refused() {
    let (train, catalog) = data();
    let m = retrieval(config(Normalization::None), &train, &catalog);
    let dir = scratch("corrupt");
    m.save(&dir).unwrap();
    let w = dir.join("weights.safetensors");
    let mut bytes = std::fs::read(&w).unwrap();
    let n = bytes.len();
    bytes[n - 3] ^= 0x40;
    std::fs::write(&w, &bytes).unwrap();
    let e = Artifact::load(&dir).unwrap_err();
    assert!(matches!(e, Error::Artifact { .. }) && e.to_string().contains("weights.safetensors is corrupt"), "{e}");

    m.save(&dir).unwrap();
    let mp = dir.join("manifest.json");
    let manifest = std::fs::read_to_string(&mp).unwrap().replace("\"format_version\": 2", "\"format_version\": 99");
    std::fs::write(&mp, manifest).unwrap();
    let e = Artifact::load(&dir).unwrap_err().to_string();
    assert!(e.contains("format version 99") && e.contains("newer"), "{e}");

    std::fs::remove_file(&mp).unwrap();
    assert!(Artifact::load(&dir).unwrap_err().to_string().contains("manifest.json"));
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn refuses_to_replace_a_directory_that_is_not_a_model() {
    let (train, catalog) = data();
    let m = retrieval(config(Normalization::None), &train, &catalog);
    let dir = scratch("not-a-model");
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::write(dir.join("precious.txt"), "keep me").unwrap();
    assert!(m.save(&dir).is_err());
    assert_eq!(std::fs::read_to_string(dir.join("precious.txt")).unwrap(), "keep me");
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn a_writer_that_loaded_an_older_version_does_not_overwrite_a_newer_one() {
    let (train, catalog) = data();
    let dir = scratch("lost-update");
    retrieval(config(Normalization::None), &train, &catalog).save(&dir).unwrap();
    // an index build loads the model, and meanwhile a training run replaces it
    let mut loaded = Artifact::load(&dir).unwrap();
    let newer = retrieval(TrainConfig { seed: 5, ..config(Normalization::None) }, &train, &catalog);
    newer.save(&dir).unwrap();
    build_index(&mut loaded, &IvfParams::default(), &mut quiet()).unwrap();
    let e = loaded.save(&dir).unwrap_err();
    assert!(matches!(e, Error::Busy { .. }) && e.to_string().contains("changed"), "{e}");
    assert_eq!(weights(&Artifact::load(&dir).unwrap()), weights(&newer), "the newer model stays");
    // a model saved elsewhere, or reloaded, may be written again
    let mut reloaded = Artifact::load(&dir).unwrap();
    build_index(&mut reloaded, &IvfParams::default(), &mut quiet()).unwrap();
    reloaded.save(&dir).unwrap();
    reloaded.save(&dir).unwrap();
    assert!(Artifact::load(&dir).unwrap().approximate.is_some());
    std::fs::remove_dir_all(&dir).unwrap();
}

/// What `fit` returns when it runs on a pool of `threads` threads.
fn on_threads<T: Send>(threads: usize, fit: impl FnOnce() -> T + Send) -> T {
    rayon::ThreadPoolBuilder::new().num_threads(threads).build().unwrap().install(fit)
}

#[test]
fn same_seed_same_model_whatever_the_thread_count() {
    use towers::model::{FeatureConfig, MultitaskSpec, RankerKind, TowerFeatures};
    use towers::task::RankingLoss;
    let (train, catalog) = data();
    let cfg = TrainConfig {
        retrieval: towers::task::RetrievalConfig {
            logq_correction: true,
            remove_accidental_hits: true,
            ..Default::default()
        },
        ..config(Normalization::BatchNorm)
    };
    let run = |threads: usize| on_threads(threads, || retrieval(cfg.clone(), &train, &catalog));
    let (a, b, c) = (run(1), run(2), run(2));
    assert_eq!(weights(&a), weights(&b));
    assert_eq!(weights(&b), weights(&c));
    assert_eq!(
        a.history.epochs.iter().map(|e| e.loss).collect::<Vec<_>>(),
        c.history.epochs.iter().map(|e| e.loss).collect::<Vec<_>>()
    );
    let other = retrieval(TrainConfig { seed: 7, ..cfg.clone() }, &train, &catalog);
    assert_ne!(weights(&other), weights(&a));
    // every other kind
    let rated = rated().0;
    let features = FeatureConfig {
        layers: vec![8],
        query: TowerFeatures { id_dim: 8, ..Default::default() },
        candidate: TowerFeatures { id_dim: 8, id_dropout: 0.2, ..Default::default() },
    };
    let dcn = RankingSpec { ranker: RankerKind::Dcn, loss: RankingLoss::ApproxNdcg, ..RankingSpec::mlp(vec![16]) };
    let cfg =
        |kind| TrainConfig { dim: 8, batch_size: 64, epochs: 2, ..TrainConfig::defaults(kind, Default::default()) };
    let sequential = ModelSpec::Sequential(SequenceConfig { sampled_negatives: 16, ..Default::default() });
    let sasrec = ModelSpec::Sequential(SequenceConfig { encoder: Encoder::Sasrec, ..Default::default() });
    for spec in [
        sasrec,
        ModelSpec::Features(features),
        ModelSpec::Multitask(MultitaskSpec::default()),
        ModelSpec::Rating,
        ModelSpec::Ranking(RankingSpec::mlp(vec![16])),
        ModelSpec::Ranking(dcn),
        sequential,
    ] {
        let fit = || {
            let t = Trainer::new(spec.clone()).config(cfg(spec.kind()));
            let m = match spec.kind() {
                ModelKind::Sequential => t.fit(&sessions()),
                ModelKind::Features => t.catalog(&catalog).fit(&train),
                _ => t.catalog(&catalog).fit(&rated),
            };
            weights(&m.unwrap())
        };
        assert!(on_threads(1, fit) == on_threads(3, fit), "{:?}: the weights depend on the thread count", spec.kind());
    }
}

#[test]
fn unknown_user_gets_popular_items_flagged_cold_start() {
    let (train, catalog) = data();
    let m = Recommender::new(retrieval(config(Normalization::None), &train, &catalog));
    let r = m.recommend(Query::User("nobody"), &top(3, true)).unwrap();
    assert!(r.cold_start);
    let mut counts = std::collections::HashMap::<&str, usize>::new();
    (0..train.len()).for_each(|i| *counts.entry(train.candidate(i)).or_default() += 1);
    let top = counts.values().max().unwrap();
    assert_eq!(r.items[0].score as usize, *top);
}

#[test]
fn requests_exclude_and_allow_items() {
    let (train, catalog) = data();
    let m = Recommender::new(retrieval(config(Normalization::None), &train, &catalog));
    let all = m.recommend(Query::User("u3"), &Request::top(5)).unwrap();
    let first = all.items[0].id.clone();
    let without = m.recommend(Query::User("u3"), &Request::top(5).exclude([first.clone(), "zz".into()])).unwrap();
    assert!(without.items.iter().all(|i| i.id != first) && without.items.len() == 5);
    assert_eq!(without.items[0], all.items[1]);
    let allowed = m.recommend(Query::User("u3"), &Request::top(5).allow(["7".to_string(), "9".into()])).unwrap();
    let mut ids: Vec<&str> = allowed.items.iter().map(|i| i.id.as_str()).collect();
    ids.sort();
    assert_eq!(ids, ["7", "9"]);
    // popular items obey the same request
    let cold = m.recommend(Query::User("nobody"), &Request::top(3).allow(["7".to_string()])).unwrap();
    assert!(cold.cold_start && cold.items.len() == 1 && cold.items[0].id == "7");
}

#[test]
fn training_learns_the_synthetic_structure() {
    let (train, catalog) = data();
    let cfg = TrainConfig { epochs: 30, ..config(Normalization::None) };
    let m = retrieval(cfg, &train, &catalog);
    let e = evaluate(&m, &train, &EvalOptions::new()).unwrap();
    let e = e.ranked().unwrap();
    assert!(e.model.top_10 > e.baseline.top_10 + 0.1, "model {} vs popularity {}", e.model.top_10, e.baseline.top_10);
}

#[test]
fn progress_is_reported_and_an_observer_can_stop_training() {
    use std::ops::ControlFlow;
    use towers::progress::Event;
    let (train, catalog) = data();
    let (mut steps, mut started) = (0, 0);
    let mut count = |e: Event| {
        match e {
            Event::Started { total, .. } => started = total,
            Event::Step => steps += 1,
            _ => {}
        }
        ControlFlow::Continue(())
    };
    Trainer::new(ModelSpec::Retrieval).config(config(Normalization::None)).observer(&mut count).fit(&train).unwrap();
    assert_eq!((steps, started), (3 * 720usize.div_ceil(64), 3 * 720u64.div_ceil(64)));
    let mut stop = |e: Event| if matches!(e, Event::Step) { ControlFlow::Break(()) } else { ControlFlow::Continue(()) };
    let e = Trainer::new(ModelSpec::Retrieval).catalog(&catalog).observer(&mut stop).fit(&train).unwrap_err();
    assert!(matches!(e, Error::Interrupted), "{e}");
}

/// Sessions that walk through 30 items in steps of 1 or 2: the next item follows the last.
fn sessions() -> Sessions {
    walks(300, 5)
}

/// `n` sessions of 6 items walking through 30 items in steps of 1 or 2 (never back to one).
fn walks(n: usize, seed: u64) -> Sessions {
    let mut rng = towers::rng::Rng::new(seed);
    let items = (0..n)
        .map(|_| {
            let mut i = rng.below(30);
            (0..6)
                .map(|_| {
                    i = (i + 1 + rng.below(2)) % 30;
                    i.to_string()
                })
                .collect()
        })
        .collect();
    Sessions { items, ids: None }
}

#[test]
fn sequential_models_train_save_load_and_recommend_from_histories() {
    let s = sessions();
    let cfg = TrainConfig { dim: 8, batch_size: 128, epochs: 8, ..TrainConfig::default() };
    let gru = |share_embeddings, add_last_item, projection| SequenceConfig {
        share_embeddings,
        add_last_item,
        projection,
        sampled_negatives: if projection { 32 } else { 0 },
        ..Default::default()
    };
    let sasrec = SequenceConfig { encoder: Encoder::Sasrec, ..Default::default() };
    let gbce = SequenceConfig { attention: AttentionConfig { gbce_negatives: 8, ..Default::default() }, ..sasrec };
    for seq in [gru(false, false, false), gru(true, true, false), gru(true, true, true), sasrec, gbce] {
        let (share, projection) = (seq.share_embeddings, seq.projection);
        // gBCE's few sampled negatives learn more slowly than the in-batch softmax
        let epochs = if seq.attention.gbce_negatives > 0 { 40 } else { cfg.epochs };
        let cfg = TrainConfig { epochs, ..cfg.clone() };
        let fit = || Trainer::new(ModelSpec::Sequential(seq)).config(cfg.clone()).fit(&s).unwrap();
        let m = fit();
        let e = evaluate(&m, &s, &EvalOptions::new()).unwrap();
        let e = e.ranked().unwrap();
        assert!(e.model.top_5 > e.baseline.top_5 + 0.2, "model {} vs popularity {}", e.model.top_5, e.baseline.top_5);
        assert!(e.repeat_last.is_some());
        if projection || seq.encoder == Encoder::Sasrec {
            // sampled negatives and dropout are seeded: the same model again
            assert_eq!(weights(&fit()), weights(&m));
        }
        let dir = scratch(&format!("seq-{share}-{projection}-{}-{}", seq.encoder, seq.attention.gbce_negatives));
        m.save(&dir).unwrap();
        let back = Artifact::load(&dir).unwrap();
        assert_eq!(weights(&back), weights(&m));
        assert_eq!(back.model.spec(), ModelSpec::Sequential(seq));
        assert!(
            evaluate(&back, &data().0, &EvalOptions::new()).is_err(),
            "a sequential model is evaluated on sequences"
        );
        let (back, m) = (Recommender::new(back), Recommender::new(m));
        let h: Vec<String> = ["3", "4", "6"].map(String::from).to_vec();
        let r = back.recommend(Query::History(&h), &Request::top(3)).unwrap();
        assert_eq!(r, m.recommend(Query::History(&h), &Request::top(3)).unwrap());
        assert!(!r.cold_start && r.items.iter().any(|i| i.id == "7" || i.id == "8"), "{r:?}");
        // exclude_seen leaves the history's items out
        let x = back.recommend(Query::History(&h), &Request::top(10).exclude_seen(true)).unwrap();
        assert!(x.items.iter().all(|i| !h.contains(&i.id)), "{x:?}");
        assert!(back.recommend(Query::History(&["nope".to_string()]), &Request::top(3)).unwrap().cold_start);
        let e = back.recommend(Query::User("u1"), &Request::top(3)).unwrap_err();
        assert!(matches!(e, Error::Unsupported(_)), "a sequential model has no users: {e}");
        std::fs::remove_dir_all(&dir).unwrap();
    }
    let user_model = Recommender::new(retrieval(config(Normalization::None), &data().0, &data().1));
    assert!(user_model.recommend(Query::History(&["1".to_string()]), &Request::top(3)).is_err());
    // a sequential model trains on sequences, a user → item model on a table
    let e = Trainer::new(ModelSpec::Retrieval).fit(&s).unwrap_err();
    assert!(matches!(e, Error::Config(_)), "{e}");
    let e = Trainer::new(ModelSpec::Sequential(SequenceConfig::default())).fit(&data().0).unwrap_err();
    assert!(matches!(e, Error::Config(_)), "{e}");
}

/// SASRec learns repeat scores from sessions held out of training: in sessions that never come
/// back to an item, the history's items sink out of the answers and of the evaluation's top
/// 10, as if they were excluded.
#[test]
fn sasrec_repeat_scores_sink_items_that_never_come_again() {
    let s = walks(2500, 3);
    let cfg = TrainConfig { dim: 8, batch_size: 512, epochs: 2, ..TrainConfig::default() };
    let seq = SequenceConfig { encoder: Encoder::Sasrec, ..Default::default() };
    let m = Recommender::new(Trainer::new(ModelSpec::Sequential(seq)).config(cfg).fit(&s).unwrap());
    let h: Vec<String> = ["3", "4", "6"].map(String::from).to_vec();
    // the last item "6" scores high by its skip connection; its repeat score sinks it
    let top = m.recommend(Query::History(&h), &Request::top(10)).unwrap().items;
    assert!(top.iter().all(|i| !h.contains(&i.id)), "no history item: {top:?}");
    let kept = evaluate(m.artifact(), &s, &EvalOptions::new()).unwrap();
    let excluded = evaluate(m.artifact(), &s, &EvalOptions::new().exclude_seen(true)).unwrap();
    assert_eq!(kept.ranked().unwrap().model.top_10, excluded.ranked().unwrap().model.top_10);
}

/// The synthetic data with ratings: users rate items near their own id higher.
fn rated() -> (Interactions, Catalog) {
    let (mut train, catalog) = data();
    let ratings = (0..train.len())
        .map(|i| (train.query(i), train.candidate(i)))
        .map(|(u, c)| {
            let (u, c): (i64, i64) = (u[1..].parse().unwrap(), c.parse().unwrap());
            if (c - (u * 2 / 3) % 40).rem_euclid(40) < 3 { 5.0 } else { 2.0 }
        })
        .collect();
    train.ratings = Some(ratings);
    (train, catalog)
}

#[test]
fn rating_and_ranking_models_learn_ratings_and_round_trip() {
    let (train, catalog) = rated();
    let defaults = |k| TrainConfig::defaults(k, Default::default());
    for (spec, config) in [
        (ModelSpec::Rating, TrainConfig { epochs: 30, batch_size: 64, l2: 0.0, ..defaults(ModelKind::Rating) }),
        (
            ModelSpec::Ranking(RankingSpec::mlp(vec![16])),
            // the last epoch's weights: averaging (tested on its own) smooths this toy's memorisation
            TrainConfig { epochs: 20, batch_size: 64, average_last: None, ..defaults(ModelKind::Ranking) },
        ),
    ] {
        let m = Trainer::new(spec.clone()).config(config).catalog(&catalog).fit(&train).unwrap();
        let r = evaluate(&m, &train, &EvalOptions::new()).unwrap().rating.unwrap();
        assert!(r.rmse < 0.8 * r.rmse_mean_baseline, "{spec:?}: {r:?}");
        let dir = scratch(&format!("rating-{:?}", spec.kind()));
        m.save(&dir).unwrap();
        let back = Artifact::load(&dir).unwrap();
        assert_eq!(weights(&back), weights(&m));
        assert_eq!(back.model.spec(), spec);
        assert_eq!(evaluate(&back, &train, &EvalOptions::new()).unwrap().rating.unwrap(), r);
        let back = Recommender::new(back);
        let ranked = back.rank("u3", &["2".into(), "30".into()]).unwrap();
        assert_eq!(ranked[0].id, "2", "{ranked:?}");
        assert!(matches!(back.rank("u3", &["nope".into()]).unwrap_err(), Error::NotFound(_)));
        std::fs::remove_dir_all(&dir).unwrap();
    }
    let e = Trainer::new(ModelSpec::Rating).fit(&data().0).unwrap_err();
    assert!(matches!(e, Error::Data(_)) && e.to_string().contains("rating column"), "{e}");
    let e = Recommender::new(retrieval(config(Normalization::None), &train, &catalog)).rank("u3", &["2".into()]);
    assert!(matches!(e.unwrap_err(), Error::Unsupported(_)), "a retrieval model predicts no ratings");
}

#[test]
fn feature_model_round_trips_and_embeds_cold_items_from_features() {
    use towers::data::features::{AttributeTable, Encoder, FeatureSpec};
    use towers::model::{FeatureConfig, TimeSpec, TowerFeatures};
    let (mut train, catalog) = data();
    train.timestamps = Some((0..train.len() as i64).collect());
    // item "39" never occurs in training: only its features describe it
    let keep: Vec<usize> = (0..train.len()).filter(|&i| train.candidate(i) != "39").collect();
    let train = train.select(&keep);
    let items = AttributeTable {
        columns: vec!["group".into()],
        rows: (0..40).map(|i| (i.to_string(), vec![format!("g{}", i / 5)])).collect(),
        source: "items".into(),
    };
    let features = FeatureConfig {
        layers: vec![8],
        query: TowerFeatures { id_dim: 8, time: Some(TimeSpec { buckets: 4, dim: 2 }), ..Default::default() },
        candidate: TowerFeatures {
            id_dim: 8,
            features: vec![FeatureSpec::new("group", Encoder::Category, 4)],
            id_dropout: 0.2,
            ..Default::default()
        },
    };
    let cfg = TrainConfig { epochs: 5, batch_size: 64, ..TrainConfig::default() };
    let spec = ModelSpec::Features(features);
    let m = Trainer::new(spec.clone()).config(cfg).catalog(&catalog).item_attributes(&items).fit(&train).unwrap();
    assert_eq!(m.dim(), 8);
    let cold = m.items.rows["39"] as usize;
    let warm = m.items.rows["38"] as usize;
    let v = |r: usize| &m.candidates[r * 8..(r + 1) * 8];
    assert!(v(cold).iter().any(|&x| x != 0.0) && v(cold) != v(warm));
    let e = evaluate(&m, &train, &EvalOptions::new()).unwrap();
    let e = e.ranked().unwrap();
    assert!(e.model.top_10 > e.baseline.top_10, "{:?} vs {:?}", e.model, e.baseline);
    let dir = scratch("features");
    m.save(&dir).unwrap();
    let back = Artifact::load(&dir).unwrap();
    assert_eq!(weights(&back), weights(&m));
    assert_eq!(back.model.spec(), spec);
    assert_eq!(evaluate(&back, &train, &EvalOptions::new()).unwrap().ranked().unwrap().model, e.model);
    let (back, m) = (Recommender::new(back), Recommender::new(m));
    assert_eq!(
        back.recommend(Query::User("u5"), &top(5, true)).unwrap(),
        m.recommend(Query::User("u5"), &top(5, true)).unwrap()
    );
    std::fs::remove_dir_all(&dir).unwrap();
    // a feature without its attribute table is a clear error
    let e = Trainer::new(spec).catalog(&catalog).fit(&train).unwrap_err();
    assert!(e.to_string().contains("attribute table"), "{e}");
}

#[test]
fn feature_and_multitask_models_reduce_to_the_id_model() {
    use towers::model::{FeatureConfig, TowerFeatures};
    // a feature model of id embeddings alone: the same loss, optimizer and L2 per use of a row
    // (an item occurring twice in a batch is regularised twice) on the same initial tables, so
    // the same embeddings up to summation order
    let (train, catalog) = data();
    let cfg = config(Normalization::None);
    let ids = TowerFeatures { id_dim: cfg.dim, ..Default::default() };
    let features = FeatureConfig { layers: vec![], query: ids.clone(), candidate: ids };
    let f = Trainer::new(ModelSpec::Features(features)).config(cfg.clone()).catalog(&catalog).fit(&train).unwrap();
    let m = retrieval(cfg, &train, &catalog);
    let gap = f.candidates.iter().zip(m.candidates.iter()).map(|(a, b)| (a - b).abs()).fold(0f32, f32::max);
    assert!(f.candidates.len() == m.candidates.len() && gap < 1e-3, "largest difference {gap}");
    // a multi-task model with the rating task weighted 0 is the retrieval model, bit for bit
    let mut rated = train.clone();
    rated.ratings = Some((0..train.len()).map(|i| (i % 5 + 1) as f32).collect());
    let spec = towers::model::MultitaskSpec { rating_weight: 0.0, ..Default::default() };
    let t = Trainer::new(ModelSpec::Multitask(spec)).config(config(Normalization::None)).catalog(&catalog);
    assert_eq!(t.fit(&rated).unwrap().candidates, m.candidates);
}

#[test]
fn approximate_index_is_saved_loaded_used_and_checked() {
    let (train, catalog) = data();
    let mut m = retrieval(config(Normalization::None), &train, &catalog);
    let params = IvfParams { nlist: 6, nprobe: 6, ..Default::default() };
    let built = build_index(&mut m, &params, &mut quiet()).unwrap();
    // every list probed: the approximate index is exact
    assert_eq!(built.recall_10, 1.0);
    let dir = scratch("ivf");
    m.save(&dir).unwrap();
    let back = Recommender::new(Artifact::load(&dir).unwrap());
    let a = back.artifact().approximate.as_ref().expect("the index is loaded");
    assert_eq!((a.index.nlist(), a.index.nprobe()), (6, 6));
    assert_eq!(back.index_kind(), "ivf");
    let m = Recommender::new(m);
    assert_eq!(
        back.recommend(Query::User("u3"), &top(5, true)).unwrap(),
        m.recommend(Query::User("u3"), &top(5, true)).unwrap()
    );
    let exact = Recommender::new(Artifact::load(&dir).unwrap()).exact();
    assert_eq!(exact.index_kind(), "exact");
    assert_eq!(
        exact.recommend(Query::User("u3"), &top(5, true)).unwrap(),
        back.recommend(Query::User("u3"), &top(5, true)).unwrap()
    );
    // a changed index file: refused by its checksum
    let file = dir.join("index.ivf.safetensors");
    let mut bytes = std::fs::read(&file).unwrap();
    let last = bytes.len() - 1;
    bytes[last] ^= 1;
    std::fs::write(&file, &bytes).unwrap();
    let err = Artifact::load(&dir).unwrap_err();
    assert!(matches!(err, Error::Artifact { .. }) && err.to_string().contains("index.ivf.safetensors"), "{err}");
    // an index of another model, with a matching checksum: refused by its content
    let mut other = retrieval(TrainConfig { dim: 4, ..config(Normalization::None) }, &train, &catalog);
    build_index(&mut other, &params, &mut quiet()).unwrap();
    let dir2 = scratch("ivf-other");
    other.save(&dir2).unwrap();
    m.artifact().save(&dir).unwrap();
    let manifest = std::fs::read_to_string(dir.join("manifest.json")).unwrap();
    let theirs = std::fs::read(dir2.join("index.ivf.safetensors")).unwrap();
    let (old, new) = (sha(&std::fs::read(&file).unwrap()), sha(&theirs));
    std::fs::write(&file, &theirs).unwrap();
    std::fs::write(dir.join("manifest.json"), manifest.replace(&old, &new)).unwrap();
    let err = Artifact::load(&dir).unwrap_err();
    assert!(matches!(err, Error::Artifact { .. }) && err.to_string().contains("centroids"), "{err}");
    let _ = std::fs::remove_dir_all(&dir);
    let _ = std::fs::remove_dir_all(&dir2);
}

fn sha(b: &[u8]) -> String {
    use sha2::Digest;
    sha2::Sha256::digest(b).iter().map(|x| format!("{x:02x}")).collect()
}
