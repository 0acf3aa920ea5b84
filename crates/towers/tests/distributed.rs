//! Distributed training on ranks that are threads ([`Threads`]): N ranks, each reading its own
//! share of the file, train the model one process trains (within float rounding), with tables
//! replicated or sharded; ranks given different options are refused.

mod common;

use std::path::Path;
use towers::artifact::DirLock;
use towers::config::OptimizerConfig;
use towers::data::synthetic::Synthetic;
use towers::data::{InputFormat, Interactions, Sessions, Share, TableFormat};
use towers::dist::{Collective, Threads, agree};
use towers::kernels::softmax::Precision;
use towers::model::{Normalization, SequenceConfig};
use towers::train::Sharding;
use towers::{Artifact, ModelSpec, Result, TrainConfig, Trainer};

fn config() -> TrainConfig {
    // towers' defaults (logQ correction, accidental hits removed, L2 per use, Adam) in f32
    let mut c = TrainConfig { batch_size: 1024, epochs: 2, seed: 3, dim: 16, ..TrainConfig::default() };
    c.retrieval.precision = Precision::F32;
    c
}

/// Every rank's result, rank 0 first; `config` gives each rank its configuration.
fn ranks(
    path: &Path,
    n: usize,
    sharding: Option<Sharding>,
    config: impl Fn(usize) -> TrainConfig + Sync,
) -> Vec<Result<Option<Artifact>>> {
    ranks_with(path, n, sharding, config, |t, comm, share| t.fit_distributed(comm, share))
}

/// Every rank's result of `fit`, given its trainer, rank 0 first.
fn ranks_with<T: Send>(
    path: &Path,
    n: usize,
    sharding: Option<Sharding>,
    config: impl Fn(usize) -> TrainConfig + Sync,
    fit: impl Fn(Trainer, &Threads, &Interactions) -> Result<T> + Sync,
) -> Vec<Result<T>> {
    on_threads(n, |comm| {
        let share = Share { rank: comm.rank(), ranks: n };
        let share = agree(comm, Interactions::read_share(path, &TableFormat::default(), share))?;
        let validation = Interactions::read(path, &TableFormat::default())?.select(&(0..500).collect::<Vec<_>>());
        let mut t = Trainer::new(ModelSpec::Retrieval).config(config(comm.rank())).validation(&validation);
        if let Some(s) = sharding {
            t = t.sharding(s);
        }
        fit(t, comm, &share)
    })
}

/// `f` on every rank of a group of `n` threads; the results, rank 0 first.
fn on_threads<T: Send>(n: usize, f: impl Fn(&Threads) -> T + Sync) -> Vec<T> {
    std::thread::scope(|s| {
        let handles: Vec<_> = Threads::group(n)
            .into_iter()
            .map(|comm| {
                let f = &f;
                s.spawn(move || f(&comm))
            })
            .collect();
        handles.into_iter().map(|h| h.join().unwrap()).collect()
    })
}

/// Rank 0's model, trained by `n` ranks (threads) running `fit` (the others return none).
fn trained_on(n: usize, fit: impl Fn(&Threads) -> Option<Artifact> + Sync) -> Artifact {
    let mut models = on_threads(n, fit).into_iter();
    let model = models.next().unwrap().expect("rank 0 has the model");
    assert!(models.all(|m| m.is_none()), "only rank 0 has the model");
    model
}

/// Asserts that `a` trained with the losses of `b`, each within `rel` of it.
fn same_losses(a: &Artifact, b: &Artifact, rel: f64, what: &str) {
    for (a, b) in a.history.epochs.iter().zip(&b.history.epochs) {
        assert!((a.loss - b.loss).abs() <= rel * b.loss.abs(), "{what}: loss {} against {}", a.loss, b.loss);
    }
}

/// This rank's share of the table at `path`.
fn share(path: &Path, comm: &Threads) -> Interactions {
    Interactions::read_share(path, &TableFormat::default(), Share { rank: comm.rank(), ranks: comm.size() }).unwrap()
}

fn max_diff(a: &[f32], b: &[f32]) -> f32 {
    assert_eq!(a.len(), b.len());
    a.iter().zip(b).map(|(x, y)| (x - y).abs()).fold(0.0, f32::max)
}

#[test]
fn n_ranks_train_the_model_one_process_trains() {
    let dir = common::scratch("distributed");
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join("train.tsv");
    Synthetic { users: 3000, items: 800, rows: 12_000, clusters: 16, seed: 5 }.write(&path).unwrap();
    let table = Interactions::read(&path, &TableFormat::default()).unwrap();
    let validation = table.select(&(0..500).collect::<Vec<_>>());
    let one = Trainer::new(ModelSpec::Retrieval).config(config()).validation(&validation).fit(&table).unwrap();
    let q_one = one
        .model
        .queries(&towers::model::Queries::Users { rows: &[1, 2, 3, 500, 2000], at: towers::model::At::Unknown })
        .unwrap();
    for (n, sharding) in
        [(1, None), (2, None), (2, Some(Sharding { min_rows: 1000 })), (3, Some(Sharding { min_rows: 1 }))]
    {
        let mut out = ranks(&path, n, sharding, |_| config());
        let others: Vec<_> = out.drain(1..).map(|r| r.unwrap()).collect();
        assert!(others.iter().all(Option::is_none), "only rank 0 has the model");
        let model = out.remove(0).unwrap().expect("rank 0 has the model");
        assert_eq!(model.query_vocab, one.query_vocab, "{n} ranks: the same user rows");
        assert_eq!(model.items.ids, one.items.ids, "{n} ranks: the same item rows");
        assert_eq!(model.popularity, one.popularity);
        assert_eq!(model.summary.n_train, 12_000);
        let within = if n == 1 { 0.0 } else { 2e-5 };
        let d = max_diff(&model.candidates, &one.candidates);
        assert!(d <= within, "{n} ranks, {sharding:?}: candidates differ by {d}");
        let q = model
            .model
            .queries(&towers::model::Queries::Users { rows: &[1, 2, 3, 500, 2000], at: towers::model::At::Unknown })
            .unwrap();
        assert!(max_diff(&q, &q_one) <= within, "{n} ranks: queries differ by {}", max_diff(&q, &q_one));
        // validated after every epoch, each rank its share of the pairs
        for (a, b) in model.history.epochs.iter().zip(&one.history.epochs) {
            let (a, b) = (a.validation.unwrap(), b.validation.unwrap());
            assert_eq!(a.n, 500);
            assert!((a.top_100 - b.top_100).abs() <= 0.002 && (a.mrr - b.mrr).abs() <= 1e-3, "{a:?} against {b:?}");
        }
        let (l1, l2) = (model.history.epochs[1].loss, one.history.epochs[1].loss);
        assert!((l1 - l2).abs() <= 1e-4 * l2.abs(), "{n} ranks: loss {l1} against {l2}");
        for u in [1u32, 7, 2000] {
            assert_eq!(model.seen.of(u), one.seen.of(u), "what user row {u} saw");
        }
        // each rank's figures; sharded tables split evenly
        let r = &model.summary.ranks;
        assert_eq!(r.len(), n);
        let users: usize = r.iter().map(|r| r.user_rows).sum();
        match sharding {
            Some(_) if n > 1 => {
                assert_eq!(users, one.query_vocab.rows());
                assert!(r.iter().all(|r| r.user_rows <= one.query_vocab.rows().div_ceil(n)));
                assert!(r.iter().all(|r| r.bytes_sent > 0));
            }
            _ => assert_eq!(users, n * one.query_vocab.rows()),
        }
    }
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn sharded_tables_written_streamed_are_the_model_gathered_whole() {
    let dir = common::scratch("distributed-streamed");
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join("train.tsv");
    Synthetic { users: 2000, items: 600, rows: 8_000, clusters: 8, seed: 7 }.write(&path).unwrap();
    for (n, min_rows, normalization) in
        [(2, 1, Normalization::None), (3, 500, Normalization::L2), (3, 700, Normalization::None)]
    {
        let sharding = Some(Sharding { min_rows });
        let config = || TrainConfig { normalization, epochs: 1, ..config() };
        let whole = dir.join(format!("whole{n}"));
        let mut out = ranks(&path, n, sharding, |_| config());
        out.remove(0).unwrap().unwrap().save(&whole).unwrap();
        let streamed = dir.join(format!("streamed{n}"));
        let lock = DirLock::acquire(&streamed).unwrap();
        let out = ranks_with(
            &path,
            n,
            sharding,
            |_| config(),
            |t, comm, share| t.fit_distributed_into(comm, share, (comm.rank() == 0).then_some(&lock)),
        );
        let mut out = out.into_iter().map(|r| r.unwrap());
        let written = out.next().unwrap().expect("rank 0 says what it wrote");
        assert!(out.all(|w| w.is_none()));
        let (a, b) = (Artifact::load(&whole).unwrap(), Artifact::load(&streamed).unwrap());
        assert_eq!(written.manifest.query_rows, a.query_vocab.rows());
        assert_eq!(written.history.epochs.len(), 1);
        for file in [
            "weights.safetensors",
            "candidates.safetensors",
            "optimizer.safetensors",
            "vocab.json",
            "interactions.safetensors",
        ] {
            let (a, b) = (std::fs::read(whole.join(file)).unwrap(), std::fs::read(streamed.join(file)).unwrap());
            assert!(a == b, "{n} ranks, tables of {min_rows}+ rows sharded: {file} differs");
        }
        assert_eq!(a.candidates, b.candidates);
        assert_eq!(a.items.ids, b.items.ids);
        drop(lock);
    }
    // rank 0 without the directory's lock: every rank fails, none waits
    let out = ranks_with(
        &path,
        2,
        Some(Sharding { min_rows: 1 }),
        |_| config(),
        |t, comm, share| t.fit_distributed_into(comm, share, None),
    );
    for r in out {
        assert!(r.unwrap_err().to_string().contains("holds the directory's lock"));
    }
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn ranks_given_different_options_or_bad_data_are_refused_on_every_rank() {
    let dir = common::scratch("distributed-refused");
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join("train.tsv");
    Synthetic { users: 300, items: 80, rows: 2_000, clusters: 4, seed: 5 }.write(&path).unwrap();
    let out = ranks(&path, 2, None, |rank| TrainConfig { seed: rank as u64, ..config() });
    for r in out {
        let e = r.unwrap_err().to_string();
        assert!(e.contains("rank 1's options") && e.contains("differ from rank 0's"), "{e}");
    }
    // a bad line in rank 1's share: rank 1 names the file and line, rank 0 says which rank failed
    let text = std::fs::read_to_string(&path).unwrap();
    let mut lines: Vec<&str> = text.lines().collect();
    lines[1900] = "12\tnot-enough-fields";
    std::fs::write(&path, lines.join("\n")).unwrap();
    let out = ranks(&path, 2, None, |_| config());
    let errors: Vec<String> = out.into_iter().map(|r| r.unwrap_err().to_string()).collect();
    assert!(errors[1].contains("train.tsv:1901"), "{}", errors[1]);
    assert!(errors[0].starts_with("rank 1: ") && errors[0].contains("train.tsv:1901"), "{}", errors[0]);
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn feature_models_and_rankers_with_features_train_the_same_on_n_ranks() {
    let dir = common::scratch("distributed-features");
    let s = common::synthetic::synthetic();
    let (users, items, features) = s.tables(&dir);
    // the training table as a file (user, item, rating, timestamp) each rank reads its share of
    let path = dir.join("train.tsv");
    let t = &s.train;
    let lines: Vec<String> = (0..t.len())
        .map(|i| {
            let (r, ts) = (t.ratings.as_ref().unwrap()[i], t.timestamps.as_ref().unwrap()[i]);
            format!("{}\t{}\t{r}\t{ts}", t.query(i), t.candidate(i))
        })
        .collect();
    std::fs::write(&path, lines.join("\n") + "\n").unwrap();
    let table = Interactions::read(&path, &TableFormat::default()).unwrap();
    // Adagrad: the same embeddings within rounding; Adam (ε = 1e-7) turns the rounding of
    // near-zero gradients into whole steps, so there the same losses
    for (optimizer, within) in [(OptimizerConfig::adagrad(), 1e-4), (OptimizerConfig::default(), f32::INFINITY)] {
        let mut cfg = TrainConfig { batch_size: 64, epochs: 3, seed: 3, optimizer, ..TrainConfig::default() };
        cfg.retrieval.precision = Precision::F32;
        let spec = ModelSpec::Features(features.clone());
        let trainer = || Trainer::new(spec.clone()).config(cfg.clone()).user_attributes(&users).item_attributes(&items);
        let one = trainer().fit(&table).unwrap();
        for n in [1, 2, 3] {
            let model = trained_on(n, |comm| trainer().fit_distributed(comm, &share(&path, comm)).unwrap());
            let d = max_diff(&model.candidates, &one.candidates);
            assert!(d <= within, "{n} ranks: candidate embeddings differ by {d}");
            same_losses(&model, &one, 1e-6, &format!("{n} ranks"));
            assert_eq!(model.summary.ranks.len(), n);
        }
    }
    // a ranker over the same attributes (and ids), listwise
    let ranker = towers::model::RankingSpec {
        features: Some(features.attributes_only()),
        loss: towers::task::RankingLoss::ListMle,
        list_size: Some(4),
        ..towers::model::RankingSpec::mlp(vec![16])
    };
    let cfg =
        TrainConfig { batch_size: 64, epochs: 2, optimizer: OptimizerConfig::adagrad(), ..TrainConfig::default() };
    let trainer = || {
        Trainer::new(ModelSpec::Ranking(ranker.clone()))
            .config(cfg.clone())
            .user_attributes(&users)
            .item_attributes(&items)
    };
    let one = trainer().fit(&table).unwrap();
    let model = trained_on(2, |comm| trainer().fit_distributed(comm, &share(&path, comm)).unwrap());
    let pairs = [(1u32, 1u32), (5, 9), (40, 3)];
    let (a, b) = (model.model.predict(&pairs).unwrap(), one.model.predict(&pairs).unwrap());
    assert!(max_diff(&a, &b) <= 1e-4, "a ranker with features on 2 ranks: scores {a:?} against {b:?}");
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn rating_and_multitask_models_train_the_same_on_n_ranks() {
    let dir = common::scratch("distributed-rated");
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join("train.tsv");
    Synthetic { users: 2000, items: 500, rows: 8_000, clusters: 16, seed: 7 }.write(&path).unwrap();
    let multitask = ModelSpec::Multitask(towers::model::MultitaskSpec { layers: vec![32, 16], ..Default::default() });
    let config = |_| {
        let mut c = TrainConfig { optimizer: OptimizerConfig::adagrad(), ..config() };
        c.retrieval.precision = Precision::F32;
        c
    };
    let table = Interactions::read(&path, &TableFormat::default()).unwrap();
    for spec in [multitask, ModelSpec::Rating] {
        let one = Trainer::new(spec.clone()).config(config(0)).fit(&table).unwrap();
        for (n, sharding) in [(2, None), (3, Some(Sharding { min_rows: 1 }))] {
            let model = trained_on(n, |comm| {
                let mut t = Trainer::new(spec.clone()).config(config(0));
                if let Some(s) = sharding {
                    t = t.sharding(s);
                }
                t.fit_distributed(comm, &share(&path, comm)).unwrap()
            });
            let d = max_diff(&model.candidates, &one.candidates);
            assert!(d <= 1e-4, "{} on {n} ranks: candidate embeddings differ by {d}", spec.kind());
            assert_eq!(model.model.spec(), spec);
            same_losses(&model, &one, 1e-6, &format!("{n} ranks"));
            let pairs = [(1u32, 1u32), (5, 9), (40, 3)];
            let (a, b) = (model.model.predict(&pairs).unwrap(), one.model.predict(&pairs).unwrap());
            assert!(max_diff(&a, &b) <= 1e-3, "{n} ranks: predicted ratings {a:?} against {b:?}");
        }
    }
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn a_gru_model_trains_the_same_on_n_ranks() {
    let dir = common::scratch("distributed-gru");
    std::fs::create_dir_all(&dir).unwrap();
    // walks over 60 items, a line a session; ids in an examples file
    let mut rng = towers::rng::Rng::new(11);
    let mut walk = || {
        let mut i = rng.below(60);
        (0..7)
            .map(|_| {
                i = (i + 1 + rng.below(3)) % 60;
                (i + 1).to_string()
            })
            .collect::<Vec<_>>()
    };
    let sessions: String = (0..1500).map(|_| walk().join(" ") + "\n").collect();
    let examples: String = (0..1500)
        .map(|_| walk())
        .enumerate()
        .map(|(u, w)| format!("u{}\t{}\t{}\n", u % 400, w[..6].join(" "), w[6]))
        .collect();
    let (s_path, e_path) = (dir.join("s.txt"), dir.join("e.tsv"));
    std::fs::write(&s_path, sessions).unwrap();
    std::fs::write(&e_path, examples).unwrap();
    let config = TrainConfig { dim: 16, batch_size: 256, epochs: 2, seed: 4, ..config() };
    let gru = |format, share_embeddings, projection, sampled_negatives| SequenceConfig {
        format,
        share_embeddings,
        projection,
        sampled_negatives,
        ..Default::default()
    };
    let cases = [
        (&s_path, gru(InputFormat::Sessions, true, false, 0), 2),
        (&s_path, gru(InputFormat::Sessions, false, true, 40), 3),
        (&e_path, gru(InputFormat::Examples, true, false, 0), 3),
    ];
    for (path, seq, n) in cases {
        let read = |share| Sessions::read_share(path, seq.format, share).unwrap();
        let whole = read(Share { rank: 0, ranks: 1 });
        let spec = ModelSpec::Sequential(seq);
        let validation = Sessions { items: whole.items[..300].to_vec(), ids: None };
        let one = Trainer::new(spec.clone()).config(config.clone()).validation(&validation).fit(&whole).unwrap();
        let model = trained_on(n, |comm| {
            let share = read(Share { rank: comm.rank(), ranks: n });
            let t = Trainer::new(spec.clone()).config(config.clone()).validation(&validation);
            t.fit_distributed(comm, &share).unwrap()
        });
        let what = format!("{:?}, {n} ranks", seq.format);
        assert_eq!(model.items.ids, one.items.ids, "{what}: the same item rows");
        assert_eq!(model.popularity, one.popularity);
        assert_eq!(model.query_vocab, one.query_vocab, "{what}: the same users");
        assert_eq!(model.summary.n_train, one.summary.n_train);
        let d = max_diff(&model.candidates, &one.candidates);
        assert!(d <= 1e-4, "{what}: candidate embeddings differ by {d}");
        for (a, b) in model.history.epochs.iter().zip(&one.history.epochs) {
            assert!((a.loss - b.loss).abs() <= 1e-5 * b.loss.abs(), "{what}: loss {} against {}", a.loss, b.loss);
            let (a, b) = (a.validation.unwrap(), b.validation.unwrap());
            assert!((a.top_10 - b.top_10).abs() <= 0.01 && a.n == b.n, "{what}: {a:?} against {b:?}");
        }
        if seq.format == InputFormat::Examples {
            assert_eq!(model.histories, one.histories, "{what}: the users' last items");
        }
    }
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn a_ranker_trains_the_same_on_n_ranks() {
    let dir = common::scratch("distributed-ranker");
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join("train.tsv");
    Synthetic { users: 300, items: 200, rows: 6_000, clusters: 8, seed: 2 }.write(&path).unwrap();
    let table = Interactions::read(&path, &TableFormat::default()).unwrap();
    let config = TrainConfig {
        optimizer: OptimizerConfig::adagrad(),
        batch_size: 500,
        epochs: 3,
        average_last: Some(2),
        ..config()
    };
    use towers::model::{RankerKind, RankingSpec};
    use towers::task::RankingLoss;
    let specs = [
        RankingSpec::mlp(vec![16, 8]),
        RankingSpec { loss: RankingLoss::ListMle, list_size: Some(5), ..RankingSpec::mlp(vec![16]) },
        RankingSpec { loss: RankingLoss::Hinge, ranker: RankerKind::Dcn, ..RankingSpec::mlp(vec![8]) },
    ];
    let pairs = [(1u32, 1u32), (5, 9), (40, 3), (200, 150)];
    for spec in specs {
        let spec = ModelSpec::Ranking(spec);
        let one = Trainer::new(spec.clone()).config(config.clone()).fit(&table).unwrap();
        for n in [2, 3] {
            let model = trained_on(n, |comm| {
                Trainer::new(spec.clone()).config(config.clone()).fit_distributed(comm, &share(&path, comm)).unwrap()
            });
            let ModelSpec::Ranking(r) = &spec else { unreachable!() };
            let what = format!("{:?} {:?} on {n} ranks", r.loss, r.ranker);
            same_losses(&model, &one, 1e-5, &what);
            let (a, b) = (model.model.predict(&pairs).unwrap(), one.model.predict(&pairs).unwrap());
            assert!(max_diff(&a, &b) <= 1e-4, "{what}: scores {a:?} against {b:?}");
        }
    }
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn ranks_continue_a_model_as_one_process_does() {
    let dir = common::scratch("distributed-continue");
    std::fs::create_dir_all(&dir).unwrap();
    let (old, new) = (dir.join("old.tsv"), dir.join("new.tsv"));
    Synthetic { users: 1500, items: 400, rows: 6_000, clusters: 8, seed: 1 }.write(&old).unwrap();
    // the next day: some of the same users and items, some new
    Synthetic { users: 2500, items: 600, rows: 6_000, clusters: 8, seed: 2 }.write(&new).unwrap();
    let read = |p: &Path| Interactions::read(p, &TableFormat::default()).unwrap();
    let prior = towers::Served::from(Trainer::new(ModelSpec::Retrieval).config(config()).fit(&read(&old)).unwrap());
    let trainer = || Trainer::new(ModelSpec::Retrieval).config(config()).init_from(&prior).count_decay(0.5);
    let table = read(&new);
    let one = trainer().fit(&table).unwrap();
    let model = trained_on(2, |comm| trainer().fit_distributed(comm, &share(&new, comm)).unwrap());
    let old_rows = prior.retriever().artifact().query_vocab.rows();
    assert!(one.query_vocab.rows() > old_rows, "new users come after the old ones");
    assert_eq!(model.query_vocab, one.query_vocab, "the old users keep their rows, new ones after");
    assert_eq!(model.items.ids, one.items.ids);
    assert_eq!(model.popularity, one.popularity, "the old counts carry over, halved");
    for u in [1u32, 7, (old_rows + 3) as u32] {
        assert_eq!(model.seen.of(u), one.seen.of(u), "what user row {u} saw, before and now");
    }
    let d = max_diff(&model.candidates, &one.candidates);
    assert!(d <= 2e-5, "continued on 2 ranks: candidates differ by {d}");
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn ranks_resume_from_rank_0s_checkpoint_to_the_uninterrupted_model() {
    let dir = common::scratch("distributed-resume");
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join("train.tsv");
    Synthetic { users: 800, items: 300, rows: 6_000, clusters: 8, seed: 4 }.write(&path).unwrap();
    // 2 epochs of 6 steps; a checkpoint every 5 steps: the last one after step 10
    let cfg = TrainConfig { batch_size: 1000, ..config() };
    let run = |checkpoints: Option<&towers::train::Checkpoints>| -> (Artifact, usize) {
        let steps = std::sync::atomic::AtomicUsize::new(0);
        let models = on_threads(2, |comm| {
            // rank 0's steps
            let mut count = |e: towers::progress::Event| {
                if comm.rank() == 0 && matches!(e, towers::progress::Event::Step) {
                    steps.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                }
                std::ops::ControlFlow::Continue(())
            };
            let mut t = Trainer::new(ModelSpec::Retrieval).config(cfg.clone()).observer(&mut count);
            if let Some(c) = checkpoints {
                t = t.checkpoints(c);
            }
            t.fit_distributed(comm, &share(&path, comm)).unwrap()
        });
        (models.into_iter().next().unwrap().unwrap(), steps.into_inner())
    };
    let (whole, steps) = run(None);
    assert_eq!(steps, 12);
    let c = towers::train::Checkpoints::beside(dir.join("m"), 5);
    let (written, _) = run(Some(&c));
    assert!(c.path.exists(), "rank 0 wrote its checkpoint");
    let (resumed, steps) = run(Some(&c.clone().resume(true)));
    assert_eq!(steps, 2, "every rank resumed after step 10");
    for m in [&written, &resumed] {
        assert_eq!(&m.candidates[..], &whole.candidates[..], "the uninterrupted run's embeddings, bit for bit");
    }
    assert_eq!(resumed.history.epochs.len(), 2);
    std::fs::remove_dir_all(&dir).unwrap();
}
