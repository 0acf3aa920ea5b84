//! The synthetic generator of `towers bench scale` makes data with structure a model learns, and
//! the same table reads the same from TSV, gzip, zstd and Parquet.

use towers::EvalOptions;
use towers::data::synthetic::Synthetic;
use towers::data::{Interactions, Split, TableFormat};
use towers::{ModelSpec, TrainConfig, Trainer, evaluate};

#[test]
fn a_model_beats_popularity_on_synthetic_data() {
    let dir = std::env::temp_dir().join(format!("towers-scale-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join("syn.tsv");
    Synthetic { users: 2_000, items: 3_000, rows: 60_000, clusters: 32, seed: 3 }.write(&path).unwrap();
    let data = Interactions::read(&path, &TableFormat::default()).unwrap();
    assert_eq!(data.len(), 60_000);
    assert!(data.query_ids().num_keys() <= 2_000 && data.candidate_ids().num_keys() <= 3_000);
    let (train, test) = Split::Temporal { test_fraction: 0.05 }.apply(&data).unwrap();
    let config = TrainConfig { epochs: 5, batch_size: 1024, ..TrainConfig::default() };
    let model = Trainer::new(ModelSpec::Retrieval).config(config).fit(&train).unwrap();
    let e = evaluate(&model, &test, &EvalOptions::new()).unwrap();
    let e = e.ranked().unwrap();
    assert!(e.model.top_10 > 2.0 * e.baseline.top_10, "model {} vs popularity {}", e.model.top_10, e.baseline.top_10);
    // the same seed writes the same file
    Synthetic { users: 2_000, items: 3_000, rows: 60_000, clusters: 32, seed: 3 }
        .write(&dir.join("again.tsv"))
        .unwrap();
    assert_eq!(std::fs::read(&path).unwrap(), std::fs::read(dir.join("again.tsv")).unwrap());
    std::fs::remove_dir_all(&dir).unwrap();
}
