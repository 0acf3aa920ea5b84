//! Sequential retrieval (GRU query tower) on MovieLens 100K's `seq-last-out` split.

mod common;

use towers::TrainConfig;
use towers::data::{Positions, SequenceExamples, Sessions, Vocabulary};
use towers::train::{SequenceConfig, evaluate_sequential, fit_sequential};

#[test]
fn seq_last_out_matches_tfrs_and_defaults_beat_it() {
    let Some(dir) = common::shared_data("ml-100k-splits/seq-last-out") else { return };
    let train = Sessions::read_examples(dir.join("train.tsv")).unwrap();
    let test = Sessions::read_examples(dir.join("test.tsv")).unwrap();
    let vocab = Vocabulary::from_keys(train.items.iter().flatten());
    let steps = SequenceConfig::default().steps;
    let train_ex = SequenceExamples::build(&train, |i| vocab.lookup(i), steps, Positions::Last);
    let test_ex = SequenceExamples::build(&test, |i| vocab.lookup(i), steps, Positions::Last);
    assert_eq!((train_ex.len(), test_ex.len()), (98_114, 943));

    // TFRS's sequential tutorial: GRU(32), Adagrad 0.1, batch 4096, 10 epochs -> top-100 0.3913
    let tfrs = TrainConfig { batch_size: 4096, epochs: 10, ..TrainConfig::tfrs() };
    let (model, _) = fit_sequential(&tfrs, &SequenceConfig::tfrs(), vocab.rows(), &train_ex, None, false).unwrap();
    let m = evaluate_sequential(&model, &test_ex, false);
    assert!((m.top_100 - 0.3913).abs() <= 0.03, "TFRS settings: top-100 {}", m.top_100);

    let (model, _) =
        fit_sequential(&TrainConfig::sequential(), &SequenceConfig::default(), vocab.rows(), &train_ex, None, false)
            .unwrap();
    let m = evaluate_sequential(&model, &test_ex, false);
    assert!(m.top_10 >= 0.08 && m.top_100 >= 0.45, "defaults: top-10 {} top-100 {}", m.top_10, m.top_100);
}

#[test]
fn retailrocket_sessions_with_defaults() {
    let Some(dir) = common::shared_data("retailrocket-cotrec") else { return };
    let train = Sessions::read_lines(dir.join("train_sessions.txt")).unwrap();
    let test = Sessions::read_lines(dir.join("test_sessions.txt")).unwrap();
    let model = towers::Artifact::train_sequential(
        TrainConfig::sequential(),
        SequenceConfig::default(),
        &train,
        Positions::All,
        None,
        None,
        false,
    )
    .unwrap();
    let e = model.evaluate_sequences(&test, false).unwrap();
    // session-based models in the literature: ~0.50 / ~0.25 on this preprocessing
    assert!(e.model.top_20 >= 0.50 && e.model.mrr_20 >= 0.25, "recall@20 {} MRR@20 {}", e.model.top_20, e.model.mrr_20);
    assert!(e.baseline.top_20 < 0.05);
}
