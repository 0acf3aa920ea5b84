//! `towers-bench` (and `towers bench`, which runs it): training, evaluation and index speed, beside TFRS and the ANN libraries when
//! their peers are set up (`peer.rs` drives the Python scripts of `../shared/peer`).

mod gru;
mod index;
mod peer;
mod scale;
mod train;
mod tune;

use clap::Subcommand;

/// What to measure.
#[derive(Subcommand, Debug)]
pub enum Args {
    /// Training and evaluation speed on MovieLens, beside TFRS when its peer is set up.
    Train(train::TrainArgs),
    /// Exact and approximate (IVF) top-k search over vectors from .npy files (e.g.
    /// ../shared/peer/ann_peers.py --save-dir): speed, and the IVF index's recall.
    Index(index::IndexArgs),
    /// GRU forward + backward over a batch of sequences (the sequential query tower's cost).
    Gru(gru::GruArgs),
    /// Training (s/epoch, rows/s, peak memory) and evaluation at millions of users and items, on
    /// a synthetic set, beside TFRS on the same file when its peer is set up.
    Scale(scale::ScaleArgs),
    /// Retrieval configurations compared on a validation share of MovieLens' training split
    /// (how the defaults were chosen).
    Tune(tune::TuneArgs),
}

pub fn run(a: Args) -> towers::Result<()> {
    match a {
        Args::Train(a) => train::run(a),
        Args::Index(a) => index::run(a),
        Args::Gru(a) => gru::run(a),
        Args::Scale(a) => scale::run(a),
        Args::Tune(a) => tune::run(a),
    }
}

pub(crate) fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(|a, b| a.total_cmp(b));
    if v.is_empty() { f64::NAN } else { v[v.len() / 2] }
}

/// Median epoch seconds after the first (warm-up) epoch.
pub(crate) fn warm_epoch(epoch_s: &[f64]) -> f64 {
    median(epoch_s.iter().skip(usize::from(epoch_s.len() > 1)).copied().collect())
}
