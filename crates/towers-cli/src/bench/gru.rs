//! `towers bench gru`: the sequential query tower (item embeddings → GRU) forward and backward.

use super::median;
use clap::Args as ClapArgs;
use std::time::Instant;
use towers::model::{SequenceConfig, SequentialModel};
use towers::rng::Rng;

/// Options of `towers bench gru` (defaults: TFRS's sequential tutorial, batch 4096, 10 steps, 32 wide).
#[derive(ClapArgs, Debug)]
pub struct GruArgs {
    /// Sequences per batch.
    #[arg(long, default_value_t = 4096)]
    pub batch: usize,
    /// Steps per sequence.
    #[arg(long, default_value_t = 10)]
    pub steps: usize,
    /// Input and hidden width.
    #[arg(long, default_value_t = 32)]
    pub dim: usize,
    /// Timed repetitions (after one warm-up).
    #[arg(long, default_value_t = 10)]
    pub repeat: usize,
}

pub fn run(a: GruArgs) -> towers::Result<()> {
    const ITEMS: usize = 10_000;
    let config = SequenceConfig { steps: a.steps, ..SequenceConfig::tfrs() };
    let model = SequentialModel::new(ITEMS, a.dim, config, 3);
    let mut rng = Rng::new(3);
    let contexts: Vec<u32> = (0..a.batch * a.steps).map(|_| 1 + rng.below(ITEMS - 1) as u32).collect();
    // padding as in short histories: sequence i has 1 + i % steps real items
    let mask: Vec<bool> = (0..a.batch * a.steps).map(|i| i % a.steps <= (i / a.steps) % a.steps).collect();
    let d_out: Vec<f32> = (0..a.batch * a.dim).map(|_| rng.next_f32() - 0.5).collect();
    let mut times = Vec::new();
    for _ in 0..=a.repeat {
        let start = Instant::now();
        let (_, cache) = model.forward(&contexts, &mask, a.steps);
        let g = model.backward(&mask, a.steps, &cache, &d_out);
        times.push(start.elapsed().as_secs_f64());
        std::hint::black_box(g);
    }
    times.remove(0);
    crate::outln!(
        "GRU({}) query tower over {} sequences x {} steps: {:.2} ms forward + backward (median of {})",
        a.dim,
        a.batch,
        a.steps,
        median(times) * 1e3,
        a.repeat
    )?;
    Ok(())
}
