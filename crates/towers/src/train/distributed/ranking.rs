//! A distributed run of the ranking kind (id embeddings and an MLP or DCN scorer, replicated):
//! every rank builds the lists one process builds, keeps those of its users and leaves the
//! others' empty, so that the global batch (list indices) is one process's; each rank scores
//! its own lists, and the scorer's gradients and the id rows' are summed over the ranks before
//! every rank applies them alike.
//!
//! With the squared error a list is one example, and a rank's lists are its share's. With
//! pairwise and listwise losses a list holds several items of one user: the ranks send each
//! example to its user's rank (`user mod N`), and every rank draws the shuffles of every user's
//! items (those of other ranks' users on the counts alone), as one process draws them.

use super::data::Shared;
use super::tables::{self, Placement, Update};
use crate::dist::Counted;
use crate::kernels::table::Table;
use crate::task::RankingLoss;
use crate::train::Slots;
use crate::train::ranking::{Lists, Ranks};

/// The replicated parameters of a distributed ranker: gradients summed over the ranks.
pub(crate) struct Spread<'a> {
    pub comm: &'a Counted<'a>,
}

impl Ranks for Spread<'_> {
    fn items(&self, mine: usize) -> usize {
        let mut n = [mine as f64];
        self.comm.all_reduce_f64(&mut n);
        n[0] as usize
    }

    fn sum(&self, g: &mut [f32]) {
        self.comm.all_reduce_f32(g);
    }

    fn sum_loss(&self, loss: f64) -> f64 {
        let mut l = [loss];
        self.comm.all_reduce_f64(&mut l);
        l[0]
    }

    fn apply(&self, table: &mut Table, slots: &mut Slots, u: Update) {
        let comm = self.comm;
        let p = Placement { rank: comm.rank(), ranks: comm.size(), rows: table.rows, sharded: false };
        tables::apply_exchanged(comm, &p, table, slots, u, None);
    }
}

/// Every user's examples on its rank, and every user's count on every rank.
pub(crate) struct ByUser {
    rank: usize,
    ranks: usize,
    /// For each of this rank's users (`u / ranks`), its (item, rating) in the data's order.
    mine: Vec<Vec<(u32, f32)>>,
    /// Examples of every user.
    counts: Vec<u32>,
    /// For the squared error: this rank's examples as they are, from `offset` of `total`.
    share: Vec<(u32, u32, f32)>,
    offset: usize,
    total: usize,
}

impl ByUser {
    /// Sends every example of `shared` (rated `ratings`) to its user's rank.
    pub fn new(comm: &Counted, shared: &Shared, ratings: &[f32], loss: RankingLoss) -> ByUser {
        let (d, ranks, rank) = (&shared.dataset, comm.size(), comm.rank());
        let users = d.query_vocab.rows();
        let share: Vec<(u32, u32, f32)> =
            d.queries.iter().zip(&d.candidates).zip(ratings).map(|((&q, &c), &r)| (q, c, r)).collect();
        let mut by = ByUser {
            rank,
            ranks,
            mine: Vec::new(),
            counts: Vec::new(),
            share,
            offset: shared.offset,
            total: shared.total,
        };
        if loss == RankingLoss::Mse {
            return by;
        }
        let mut counts = vec![0f64; users];
        d.queries.iter().for_each(|&q| counts[q as usize] += 1.0);
        comm.all_reduce_f64(&mut counts);
        by.counts = counts.into_iter().map(|c| c as u32).collect();
        let mut send: Vec<Vec<u32>> = vec![Vec::new(); ranks];
        for &(q, c, r) in &by.share {
            send[q as usize % ranks].extend([q, c, r.to_bits()]);
        }
        // from every rank in rank order, each in its share's order: the data's order
        let got = comm.all_to_all(&send);
        by.mine = vec![Vec::new(); users.div_ceil(ranks)];
        for e in got.iter().flat_map(|g| g.chunks_exact(3)) {
            by.mine[e[0] as usize / ranks].push((e[1], f32::from_bits(e[2])));
        }
        by.share = Vec::new();
        by
    }

    /// The lists of epoch `e`: every list one process makes, as [`Lists::of_ratings`] with
    /// `seed + e` makes them, those of other ranks' users empty.
    pub fn lists(&self, loss: RankingLoss, size: usize, seed: u64) -> Lists {
        let mut lists = Lists::default();
        if loss == RankingLoss::Mse {
            let (from, to) = (self.offset, self.offset + self.share.len());
            for i in 0..self.total {
                match (i >= from && i < to).then(|| self.share[i - from]) {
                    Some((q, c, r)) => lists.push(q, &[c], &[r]),
                    None => lists.push(0, &[], &[]),
                }
            }
            return lists;
        }
        let mut rng = Lists::shuffler(seed);
        for (u, &n) in self.counts.iter().enumerate() {
            let n = n as usize;
            if u % self.ranks != self.rank {
                // the draws of this user's shuffle, and its lists, empty
                for _ in 1..n {
                    rng.next_u64();
                }
                for _ in (0..n).step_by(size.max(1)).filter(|&s| size.min(n - s) > 1) {
                    lists.push(u as u32, &[], &[]);
                }
                continue;
            }
            lists.push_user(&mut rng, u as u32, &mut self.mine[u / self.ranks].clone(), size);
        }
        lists
    }
}
