//! Sequential retrieval (next item from the last 10) with the library alone: TFRS's settings
//! and towers' defaults, beside popularity and "repeat the last item". On MovieLens 100K's
//! `seq-last-out` split (one example per line), or on session files (`train_sessions.txt`:
//! every position is an example; `test_sessions.txt`: the last item is the target), e.g.
//! RetailRocket. With `variants`, also the defaults with a dense projection after the GRU and
//! with 4,096 popularity-sampled shared negatives per batch.
//!
//! ```sh
//! cargo run --release --example sequential [-- ../shared/data/ml-100k-splits/seq-last-out]
//! cargo run --release --example sequential -- ../shared/data/retailrocket-cotrec [EPOCHS] [variants]
//! ```

use towers::EvalOptions;
use towers::data::{InputFormat, Sessions};
use towers::metrics::TopKMetrics;
use towers::model::{ModelKind, SequenceConfig};
use towers::{ModelSpec, Recipe, TrainConfig, Trainer, evaluate};

fn show(name: &str, m: &TopKMetrics, epoch_s: Option<f64>) {
    println!(
        "{name:<24} R@1 {:.4}  R@10 {:.4}  R@20 {:.4}  R@100 {:.4}  MRR@10 {:.4}  MRR@20 {:.4}{}",
        m.top_1,
        m.top_10,
        m.top_20,
        m.top_100,
        m.mrr_10,
        m.mrr_20,
        epoch_s.map(|s| format!("  {s:.2} s/epoch")).unwrap_or_default()
    );
}

fn main() -> towers::Result<()> {
    let dir = std::env::args().nth(1).unwrap_or_else(|| "../shared/data/ml-100k-splits/seq-last-out".into());
    let sessions = std::path::Path::new(&format!("{dir}/train_sessions.txt")).is_file();
    let (train, test, format) = if sessions {
        (
            Sessions::read_lines(format!("{dir}/train_sessions.txt"))?,
            Sessions::read_lines(format!("{dir}/test_sessions.txt"))?,
            InputFormat::Sessions,
        )
    } else {
        (
            Sessions::read_examples(format!("{dir}/train.tsv"))?,
            Sessions::read_examples(format!("{dir}/test.tsv"))?,
            InputFormat::Examples,
        )
    };
    let epochs: usize = std::env::args().nth(2).and_then(|e| e.parse().ok()).unwrap_or(10);
    let tfrs = TrainConfig { batch_size: 4096, epochs, ..TrainConfig::tfrs() };
    let towers = TrainConfig { epochs: epochs.min(5), ..TrainConfig::defaults(ModelKind::Sequential, Recipe::Towers) };
    let spec = |s: SequenceConfig| ModelSpec::Sequential(SequenceConfig { format, ..s });
    let mut runs = vec![
        ("TFRS settings", tfrs, spec(SequenceConfig::tfrs())),
        ("towers defaults", towers.clone(), spec(SequenceConfig::default())),
    ];
    if std::env::args().nth(3).as_deref() == Some("variants") {
        runs.push(("+ projection", towers.clone(), spec(SequenceConfig { projection: true, ..Default::default() })));
        let sampled = SequenceConfig { sampled_negatives: 4096, ..Default::default() };
        runs.push(("+ 4096 sampled negatives", towers, spec(sampled)));
    }
    for (i, (name, config, spec)) in runs.into_iter().enumerate() {
        let model = Trainer::new(spec).config(config).fit(&train)?;
        let e = evaluate(&model, &test, &EvalOptions::new())?;
        let e = e.ranked()?;
        if i == 0 {
            println!("{} test examples", e.model.n);
            show("popularity", &e.baseline, None);
            show("repeat last item", e.repeat_last.as_ref().expect("sequential"), None);
        }
        let mut s: Vec<f64> = model.summary.epoch_s.iter().skip(1).copied().collect();
        s.sort_by(f64::total_cmp);
        show(name, &e.model, s.get(s.len() / 2).copied());
    }
    Ok(())
}
