//! Model directories: round trip, atomic writes, corruption and version checks, determinism.

use std::path::PathBuf;
use towers::data::{Catalog, Interactions};
use towers::model::Normalization;
use towers::{Artifact, Error, TrainConfig};

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
    (Interactions { queries: q, candidates: c, ..Default::default() }, catalog)
}

fn config(norm: Normalization) -> TrainConfig {
    TrainConfig { dim: 8, batch_size: 64, epochs: 3, normalization: norm, ..TrainConfig::default() }
}

fn tmp(name: &str) -> PathBuf {
    let d = std::env::temp_dir().join(format!("towers-test-{}-{name}", std::process::id()));
    let _ = std::fs::remove_dir_all(&d);
    d
}

#[test]
fn save_load_round_trip_for_every_normalization() {
    let (train, catalog) = data();
    for norm in [Normalization::None, Normalization::L2, Normalization::BatchNorm] {
        let m = Artifact::train(config(norm), &train, Some(&catalog), None, false).unwrap();
        let dir = tmp(&format!("rt-{norm:?}"));
        m.save(&dir).unwrap();
        let back = Artifact::load(&dir).unwrap();
        assert_eq!(back.model, m.model);
        assert_eq!(back.candidates, m.candidates);
        assert_eq!(back.similar("3", 4).unwrap(), m.similar("3", 4).unwrap());
        assert_eq!(back.seen, m.seen);
        assert_eq!(back.config, m.config);
        assert_eq!(back.recommend("u3", 5, true).unwrap(), m.recommend("u3", 5, true).unwrap());
        assert_eq!(back.evaluate(&train, false).unwrap().model, m.evaluate(&train, false).unwrap().model);
        for f in ["manifest.json", "weights.safetensors", "candidates.safetensors", "history.svg", "history.csv"] {
            assert!(dir.join(f).is_file(), "{f}");
        }
        // saving again replaces the model directory, leaving no temporary directories behind
        m.save(&dir).unwrap();
        let parent = dir.parent().unwrap();
        let leftovers = std::fs::read_dir(parent)
            .unwrap()
            .filter_map(|e| e.ok())
            .filter(|e| {
                e.file_name().to_string_lossy().starts_with(&format!(".{}", dir.file_name().unwrap().to_string_lossy()))
            })
            .count();
        assert_eq!(leftovers, 0);
        std::fs::remove_dir_all(&dir).unwrap();
    }
}

#[test]
fn corrupt_or_future_artifacts_are_refused() {
    let (train, catalog) = data();
    let m = Artifact::train(config(Normalization::None), &train, Some(&catalog), None, false).unwrap();
    let dir = tmp("corrupt");
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
    let manifest = std::fs::read_to_string(&mp).unwrap().replace("\"format_version\": 1", "\"format_version\": 99");
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
    let m = Artifact::train(config(Normalization::None), &train, Some(&catalog), None, false).unwrap();
    let dir = tmp("not-a-model");
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::write(dir.join("precious.txt"), "keep me").unwrap();
    assert!(m.save(&dir).is_err());
    assert_eq!(std::fs::read_to_string(dir.join("precious.txt")).unwrap(), "keep me");
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn same_seed_same_model_whatever_the_thread_count() {
    let (train, catalog) = data();
    let cfg = TrainConfig {
        retrieval: towers::task::RetrievalConfig {
            logq_correction: true,
            remove_accidental_hits: true,
            ..Default::default()
        },
        ..config(Normalization::BatchNorm)
    };
    let run = |threads: usize| {
        let pool = rayon::ThreadPoolBuilder::new().num_threads(threads).build().unwrap();
        pool.install(|| Artifact::train(cfg.clone(), &train, Some(&catalog), None, false).unwrap())
    };
    let (a, b, c) = (run(1), run(2), run(2));
    assert_eq!(a.model, b.model);
    assert_eq!(b.model, c.model);
    assert_eq!(
        a.history.epochs.iter().map(|e| e.loss).collect::<Vec<_>>(),
        c.history.epochs.iter().map(|e| e.loss).collect::<Vec<_>>()
    );
    let other = Artifact::train(TrainConfig { seed: 7, ..cfg.clone() }, &train, Some(&catalog), None, false).unwrap();
    assert_ne!(other.model, a.model);
}

#[test]
fn unknown_user_gets_popular_items_flagged_cold_start() {
    let (train, catalog) = data();
    let m = Artifact::train(config(Normalization::None), &train, Some(&catalog), None, false).unwrap();
    let r = m.recommend("nobody", 3, true).unwrap();
    assert!(r.cold_start);
    let mut counts = std::collections::HashMap::<&str, usize>::new();
    train.candidates.iter().for_each(|c| *counts.entry(c).or_default() += 1);
    let top = counts.values().max().unwrap();
    assert_eq!(r.items[0].score as usize, *top);
}

#[test]
fn training_learns_the_synthetic_structure() {
    let (train, catalog) = data();
    let cfg = TrainConfig { epochs: 30, ..config(Normalization::None) };
    let m = Artifact::train(cfg, &train, Some(&catalog), None, false).unwrap();
    let e = m.evaluate(&train, false).unwrap();
    assert!(e.model.top_10 > e.baseline.top_10 + 0.1, "model {} vs popularity {}", e.model.top_10, e.baseline.top_10);
}

/// Sessions that walk through 30 items in steps of 1 or 2: the next item follows the last.
fn sessions() -> towers::data::Sessions {
    let mut rng = towers::rng::Rng::new(5);
    let items = (0..300)
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
    towers::data::Sessions { items, ids: None }
}

#[test]
fn sequential_models_train_save_load_and_recommend_from_histories() {
    use towers::data::Positions;
    use towers::train::SequenceConfig;
    let s = sessions();
    let cfg = TrainConfig { dim: 8, batch_size: 128, epochs: 8, ..TrainConfig::default() };
    for (share, add_last_item, projection) in [(false, false, false), (true, true, false), (true, true, true)] {
        let sampled_negatives = if projection { 32 } else { 0 };
        let seq = SequenceConfig {
            share_embeddings: share,
            add_last_item,
            projection,
            sampled_negatives,
            ..Default::default()
        };
        let m = Artifact::train_sequential(cfg.clone(), seq, &s, Positions::All, None, None, false).unwrap();
        let e = m.evaluate_sequences(&s, false).unwrap();
        assert!(e.model.top_5 > e.baseline.top_5 + 0.2, "model {} vs popularity {}", e.model.top_5, e.baseline.top_5);
        assert!(e.repeat_last.is_some());
        if projection {
            // sampled negatives are seeded: the same model again
            let again = Artifact::train_sequential(cfg.clone(), seq, &s, Positions::All, None, None, false).unwrap();
            assert_eq!(again.model, m.model);
        }
        let dir = tmp(&format!("seq-{share}-{projection}"));
        m.save(&dir).unwrap();
        let back = Artifact::load(&dir).unwrap();
        assert_eq!(back.model, m.model);
        assert_eq!(back.sequence, Some(seq));
        if !projection {
            // a manifest written before `projection` and `sampled_negatives` existed still loads
            let path = dir.join("manifest.json");
            let mut manifest: serde_json::Value = serde_json::from_slice(&std::fs::read(&path).unwrap()).unwrap();
            let s = manifest["sequence"].as_object_mut().unwrap();
            assert!(s.remove("projection").is_some() && s.remove("sampled_negatives").is_some());
            std::fs::write(&path, serde_json::to_vec(&manifest).unwrap()).unwrap();
            let old = Artifact::load(&dir).unwrap();
            assert_eq!((old.model, old.sequence), (m.model.clone(), Some(seq)));
        }
        let h: Vec<String> = ["3", "4", "6"].map(String::from).to_vec();
        let r = back.recommend_history(&h, 3).unwrap();
        assert_eq!(r, m.recommend_history(&h, 3).unwrap());
        assert!(!r.cold_start && r.items.iter().any(|i| i.id == "7" || i.id == "8"), "{r:?}");
        assert!(back.recommend_history(&["nope".to_string()], 3).unwrap().cold_start);
        assert!(back.recommend("u1", 3, false).is_err(), "a sequential model has no users");
        assert!(back.evaluate(&data().0, false).is_err());
        std::fs::remove_dir_all(&dir).unwrap();
    }
    let user_model = Artifact::train(config(Normalization::None), &data().0, Some(&data().1), None, false).unwrap();
    assert!(user_model.recommend_history(&["1".to_string()], 3).is_err());
}

/// The synthetic data with ratings: users rate items near their own id higher.
fn rated() -> (Interactions, Catalog) {
    let (mut train, catalog) = data();
    let ratings = train
        .queries
        .iter()
        .zip(&train.candidates)
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
    for config in [
        TrainConfig { epochs: 30, batch_size: 64, l2: 0.0, ..TrainConfig::rating() },
        TrainConfig { epochs: 20, batch_size: 64, layers: vec![16], ..TrainConfig::ranking() },
    ] {
        let m = Artifact::train(config.clone(), &train, Some(&catalog), None, false).unwrap();
        let r = m.evaluate_ratings(&train).unwrap();
        assert!(r.rmse < 0.8 * r.rmse_mean_baseline, "{:?}: {r:?}", config.task);
        let dir = tmp(&format!("rating-{:?}", config.task));
        m.save(&dir).unwrap();
        let back = Artifact::load(&dir).unwrap();
        assert_eq!(back.model, m.model);
        assert_eq!(back.evaluate_ratings(&train).unwrap(), r);
        let ranked = back.rank("u3", &["2".into(), "30".into()]).unwrap();
        assert_eq!(ranked[0].id, "2", "{ranked:?}");
        assert!(back.rank("u3", &["nope".into()]).is_err());
        std::fs::remove_dir_all(&dir).unwrap();
    }
    let no_ratings = data().0;
    let e = Artifact::train(TrainConfig::rating(), &no_ratings, None, None, false).unwrap_err();
    assert!(e.to_string().contains("rating column"), "{e}");
}

#[test]
fn feature_model_round_trips_and_embeds_cold_items_from_features() {
    use towers::data::features::{AttributeTable, Encoder, FeatureConfig, FeatureSpec, TimeSpec, TowerFeatures};
    let (mut train, catalog) = data();
    train.timestamps = Some((0..train.len() as i64).collect());
    // item "39" never occurs in training: only its features describe it
    let keep: Vec<usize> = (0..train.len()).filter(|&i| train.candidates[i] != "39").collect();
    let train = train.select(&keep);
    let items = AttributeTable {
        columns: vec!["group".into()],
        rows: (0..40).map(|i| (i.to_string(), vec![format!("g{}", i / 5)])).collect(),
        source: "items".into(),
    };
    let group = FeatureSpec {
        column: "group".into(),
        encoder: Encoder::Category,
        dim: 4,
        boundaries: vec![],
        len: None,
        separator: None,
        min_count: None,
    };
    let features = FeatureConfig {
        layers: vec![8],
        query: TowerFeatures { id_dim: 8, time: Some(TimeSpec { buckets: 4, dim: 2 }), ..Default::default() },
        candidate: TowerFeatures { id_dim: 8, features: vec![group], id_dropout: 0.2, ..Default::default() },
    };
    let cfg = TrainConfig { epochs: 5, batch_size: 64, ..TrainConfig::default() };
    let m = Artifact::train_features(cfg, &features, &train, Some(&catalog), None, Some(&items), false).unwrap();
    assert_eq!(m.dim(), 8);
    let cold = m.items.rows["39"] as usize;
    let warm = m.items.rows["38"] as usize;
    let v = |r: usize| &m.candidates.vectors()[r * 8..(r + 1) * 8];
    assert!(v(cold).iter().any(|&x| x != 0.0) && v(cold) != v(warm));
    let e = m.evaluate(&train, false).unwrap();
    assert!(e.model.top_10 > e.baseline.top_10, "{:?} vs {:?}", e.model, e.baseline);
    let dir = tmp("features");
    m.save(&dir).unwrap();
    let back = Artifact::load(&dir).unwrap();
    assert_eq!(back.model, m.model);
    assert_eq!(back.recommend("u5", 5, true).unwrap(), m.recommend("u5", 5, true).unwrap());
    assert_eq!(back.evaluate(&train, false).unwrap().model, e.model);
    std::fs::remove_dir_all(&dir).unwrap();
    // a feature without its attribute table is a clear error
    let e = Artifact::train_features(TrainConfig::default(), &features, &train, Some(&catalog), None, None, false)
        .unwrap_err();
    assert!(e.to_string().contains("attribute table"), "{e}");
}

#[test]
fn approximate_index_is_saved_loaded_used_and_checked() {
    let (train, catalog) = data();
    let mut m = Artifact::train(config(Normalization::None), &train, Some(&catalog), None, false).unwrap();
    let params = towers::index::IvfParams { nlist: 6, nprobe: 6, ..Default::default() };
    let built = m.build_index(&params, false).unwrap();
    // every list probed: the approximate index is exact
    assert_eq!(built.recall_10, 1.0);
    let dir = tmp("ivf");
    m.save(&dir).unwrap();
    let back = Artifact::load(&dir).unwrap();
    let a = back.approximate.as_ref().expect("the index is loaded");
    assert_eq!((a.index.nlist(), a.index.nprobe()), (6, 6));
    assert_eq!(back.recommend("u3", 5, true).unwrap(), m.recommend("u3", 5, true).unwrap());
    let mut exact = back.clone();
    exact.approximate = None;
    assert_eq!(exact.recommend("u3", 5, true).unwrap(), back.recommend("u3", 5, true).unwrap());
    // a changed index file: refused by its checksum
    let file = dir.join("index.ivf.safetensors");
    let mut bytes = std::fs::read(&file).unwrap();
    let last = bytes.len() - 1;
    bytes[last] ^= 1;
    std::fs::write(&file, &bytes).unwrap();
    let err = Artifact::load(&dir).unwrap_err();
    assert!(matches!(err, Error::Artifact { .. }) && err.to_string().contains("index.ivf.safetensors"), "{err}");
    // an index of another model, with a matching checksum: refused by its content
    let other =
        Artifact::train(TrainConfig { dim: 4, ..config(Normalization::None) }, &train, Some(&catalog), None, false)
            .unwrap();
    let mut other = other;
    other.build_index(&params, false).unwrap();
    let dir2 = tmp("ivf-other");
    other.save(&dir2).unwrap();
    m.save(&dir).unwrap();
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
