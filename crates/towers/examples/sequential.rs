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

use towers::TrainConfig;
use towers::data::{Positions, SequenceExamples, Sessions, Vocabulary};
use towers::eval::{TopKMetrics, popularity, repeat_last};
use towers::model::last_position;
use towers::train::{SequenceConfig, evaluate_sequential, fit_sequential};

fn show(name: &str, m: &TopKMetrics, epoch_s: Option<f64>) {
    println!(
        "{name:<22} R@1 {:.4}  R@10 {:.4}  R@20 {:.4}  R@100 {:.4}  MRR@10 {:.4}  MRR@20 {:.4}{}",
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
    let (train, test, positions) = if sessions {
        (
            Sessions::read_lines(format!("{dir}/train_sessions.txt"))?,
            Sessions::read_lines(format!("{dir}/test_sessions.txt"))?,
            Positions::All,
        )
    } else {
        (
            Sessions::read_examples(format!("{dir}/train.tsv"))?,
            Sessions::read_examples(format!("{dir}/test.tsv"))?,
            Positions::Last,
        )
    };
    let epochs: usize = std::env::args().nth(2).and_then(|e| e.parse().ok()).unwrap_or(10);
    let vocab = Vocabulary::from_keys(train.items.iter().flatten());
    let steps = SequenceConfig::default().steps;
    let train_ex = SequenceExamples::build(&train, |i| vocab.lookup(i), steps, positions);
    let test_ex = SequenceExamples::build(&test, |i| vocab.lookup(i), steps, Positions::Last);
    println!("{} training / {} test examples, {} items", train_ex.len(), test_ex.len(), vocab.num_keys());

    let counts = towers::data::counts(&train_ex.targets, vocab.rows());
    let pairs: Vec<(u32, u32)> = test_ex.targets.iter().map(|&t| (0, t)).collect();
    show("popularity", &popularity(&counts, &pairs, &[]), None);
    let steps_of = |i: usize| &test_ex.mask[i * steps..(i + 1) * steps];
    let last: Vec<u32> =
        (0..test_ex.len()).map(|i| last_position(steps_of(i)).map_or(0, |p| test_ex.contexts[i * steps + p])).collect();
    show("repeat last item", &repeat_last(&counts, &last, &test_ex.targets, &[]), None);

    let tfrs = TrainConfig { batch_size: 4096, epochs, ..TrainConfig::tfrs() };
    let towers = TrainConfig { epochs: epochs.min(5), ..TrainConfig::sequential() };
    let mut runs = vec![
        ("TFRS settings", tfrs, SequenceConfig::tfrs()),
        ("towers defaults", towers.clone(), SequenceConfig::default()),
    ];
    if std::env::args().nth(3).as_deref() == Some("variants") {
        runs.push(("+ projection", towers.clone(), SequenceConfig { projection: true, ..Default::default() }));
        runs.push((
            "+ 4096 sampled negatives",
            towers,
            SequenceConfig { sampled_negatives: 4096, ..Default::default() },
        ));
    }
    for (name, cfg, seq) in runs {
        let (model, history) = fit_sequential(&cfg, &seq, vocab.rows(), &train_ex, None, false)?;
        let mut s: Vec<f64> = history.epochs.iter().skip(1).map(|e| e.seconds).collect();
        s.sort_by(f64::total_cmp);
        show(name, &evaluate_sequential(&model, &test_ex, false), s.get(s.len() / 2).copied());
    }
    Ok(())
}
