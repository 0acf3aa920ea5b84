//! Synthetic interactions at any scale, with the structure of `../shared/peer/synth.py`: items
//! have a Zipf popularity and belong to one of `clusters` tastes; users have a Zipf activity and
//! two tastes; an interaction picks the first taste with p = 0.6, the second with p = 0.25, any
//! item by popularity otherwise, and within a taste an item by its popularity. A two-tower model
//! can learn the tastes; popularity alone cannot. Deterministic for a seed (not the same draws as
//! the Python script: the same kind of data).

use crate::rng::Rng;
use crate::{Error, Result};
use std::io::Write;
use std::path::Path;

/// The size and shape of a synthetic data set.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Synthetic {
    /// Users.
    pub users: usize,
    /// Items.
    pub items: usize,
    /// Interactions (rows).
    pub rows: usize,
    /// Taste clusters.
    pub clusters: usize,
    /// Seed.
    pub seed: u64,
}

impl Default for Synthetic {
    fn default() -> Self {
        Synthetic { users: 1_000_000, items: 200_000, rows: 1_000_000, clusters: 256, seed: 1 }
    }
}

/// Draws indices by inverse CDF of cumulative weights.
struct Draw(Vec<f64>);

impl Draw {
    fn zipf(n: usize, exponent: f64) -> Self {
        Draw::of((1..=n).map(|k| 1.0 / (k as f64).powf(exponent)))
    }

    fn of(weights: impl Iterator<Item = f64>) -> Self {
        let mut total = 0.0;
        Draw(
            weights
                .map(|w| {
                    total += w;
                    total
                })
                .collect(),
        )
    }

    fn draw(&self, rng: &mut Rng) -> usize {
        let u = (rng.next_u64() >> 11) as f64 / (1u64 << 53) as f64 * self.0.last().copied().unwrap_or(0.0);
        self.0.partition_point(|&c| c <= u).min(self.0.len().saturating_sub(1))
    }
}

impl Synthetic {
    /// Writes the data set as `user<TAB>item<TAB>rating<TAB>timestamp` lines (MovieLens' `u.data`
    /// layout, ids from 1, in time order), as `synth.py` does.
    pub fn write(&self, path: &Path) -> Result<()> {
        if self.users == 0 || self.items == 0 || self.clusters == 0 || self.rows == 0 {
            return Err(Error::Config(format!("a synthetic data set needs users, items, clusters and rows: {self:?}")));
        }
        let mut rng = Rng::new(self.seed);
        // item k (0-based) has popularity rank k; ids are a permutation, so that they do not encode it
        let mut item_ids: Vec<u32> = (1..=self.items as u32).collect();
        rng.shuffle(&mut item_ids);
        let cluster_of: Vec<usize> = (0..self.items).map(|_| rng.below(self.clusters)).collect();
        let mut members: Vec<Vec<usize>> = vec![Vec::new(); self.clusters];
        (0..self.items).for_each(|k| members[cluster_of[k]].push(k));
        let pop = |k: usize| 1.0 / ((k + 1) as f64).powf(0.9);
        let within: Vec<Draw> = members.iter().map(|m| Draw::of(m.iter().map(|&k| pop(k)))).collect();
        let global = Draw::zipf(self.items, 0.9);
        let users = Draw::zipf(self.users, 0.6);
        let tastes: Vec<[usize; 2]> =
            (0..self.users).map(|_| [rng.below(self.clusters), rng.below(self.clusters)]).collect();
        let file = std::fs::File::create(path).map_err(|e| Error::io(path, e))?;
        let mut out = std::io::BufWriter::with_capacity(1 << 20, file);
        for row in 0..self.rows {
            let u = users.draw(&mut rng);
            let r = rng.next_f32();
            let taste = if r < 0.6 {
                Some(tastes[u][0])
            } else if r < 0.85 {
                Some(tastes[u][1])
            } else {
                None
            };
            let k = match taste.filter(|&c| !members[c].is_empty()) {
                Some(c) => members[c][within[c].draw(&mut rng)],
                None => global.draw(&mut rng),
            };
            let rating = 1 + rng.below(5);
            writeln!(out, "{}\t{}\t{rating}\t{}", u + 1, item_ids[k], 1_000_000_000 + 3 * row as u64)
                .map_err(|e| Error::io(path, e))?;
        }
        out.flush().map_err(|e| Error::io(path, e))
    }
}
