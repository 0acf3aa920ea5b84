//! Top-k accuracy (= recall@k with one positive), MRR and NDCG of each test pair's true
//! candidate ranked against every candidate.
//!
//! Tie rule (TFRS / `tf.math.in_top_k`): the rank of the positive is 1 + the number of
//! candidates scoring *strictly* higher, so candidates scoring equal do not push it down.

use crate::kernels::count::Counter;
use crate::kernels::panel::exact_dot;
use rayon::prelude::*;
use serde::{Deserialize, Serialize};

/// The ranking metrics of an evaluation; keys as in the CLI's JSON. `top_k` is recall@k (one
/// positive per pair), `mrr_k` MRR@k (ranks beyond `k` count 0), for k in [`KS`]. Keys added
/// later than `top_*`/`mrr`/`mrr_20`/`ndcg_10` read as 0 from older files.
#[derive(Debug, Clone, Copy, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct TopKMetrics {
    /// Share of pairs whose candidate ranks first.
    pub top_1: f64,
    /// … in the top 5.
    pub top_5: f64,
    /// … in the top 10.
    pub top_10: f64,
    /// … in the top 20.
    pub top_20: f64,
    /// … in the top 50.
    pub top_50: f64,
    /// … in the top 100.
    pub top_100: f64,
    /// Mean reciprocal rank.
    pub mrr: f64,
    /// MRR@1 (equal to `top_1`).
    pub mrr_1: f64,
    /// Mean reciprocal rank, counting ranks beyond 5 as 0.
    pub mrr_5: f64,
    /// … beyond 10.
    pub mrr_10: f64,
    /// … beyond 20.
    pub mrr_20: f64,
    /// … beyond 50.
    pub mrr_50: f64,
    /// … beyond 100.
    pub mrr_100: f64,
    /// NDCG@10 with one relevant item: `1/log2(rank + 1)` for ranks ≤ 10.
    pub ndcg_10: f64,
    /// Number of test pairs.
    pub n: usize,
}

/// The cut-offs `k` of [`TopKMetrics`].
pub const KS: [usize; 6] = [1, 5, 10, 20, 50, 100];

impl TopKMetrics {
    /// The metrics of the union of disjoint sets of test pairs, from each set's (means
    /// weighted by their pairs).
    pub fn combine(parts: &[TopKMetrics]) -> TopKMetrics {
        let n: usize = parts.iter().map(|p| p.n).sum();
        let mean = |f: fn(&TopKMetrics) -> f64| match n {
            0 => 0.0,
            _ => parts.iter().map(|p| f(p) * p.n as f64).sum::<f64>() / n as f64,
        };
        TopKMetrics {
            top_1: mean(|m| m.top_1),
            top_5: mean(|m| m.top_5),
            top_10: mean(|m| m.top_10),
            top_20: mean(|m| m.top_20),
            top_50: mean(|m| m.top_50),
            top_100: mean(|m| m.top_100),
            mrr: mean(|m| m.mrr),
            mrr_1: mean(|m| m.mrr_1),
            mrr_5: mean(|m| m.mrr_5),
            mrr_10: mean(|m| m.mrr_10),
            mrr_20: mean(|m| m.mrr_20),
            mrr_50: mean(|m| m.mrr_50),
            mrr_100: mean(|m| m.mrr_100),
            ndcg_10: mean(|m| m.ndcg_10),
            n,
        }
    }

    /// Recall@k (`top_k`) for each k of [`KS`].
    pub fn recalls(&self) -> [f64; 6] {
        [self.top_1, self.top_5, self.top_10, self.top_20, self.top_50, self.top_100]
    }

    /// MRR@k (`mrr_k`) for each k of [`KS`].
    pub fn mrrs(&self) -> [f64; 6] {
        [self.mrr_1, self.mrr_5, self.mrr_10, self.mrr_20, self.mrr_50, self.mrr_100]
    }

    /// Metrics from 1-based ranks; `None` (an unknown candidate) is a miss.
    pub fn from_ranks(ranks: &[Option<usize>]) -> Self {
        let n = ranks.len();
        let share = |f: &dyn Fn(usize) -> f64| ranks.iter().map(|r| r.map_or(0.0, f)).sum::<f64>() / n.max(1) as f64;
        let within = |k: usize| share(&|r| if r <= k { 1.0 } else { 0.0 });
        let mrr_at = |k: usize| share(&|r| if r <= k { 1.0 / r as f64 } else { 0.0 });
        TopKMetrics {
            top_1: within(1),
            top_5: within(5),
            top_10: within(10),
            top_20: within(20),
            top_50: within(50),
            top_100: within(100),
            mrr: share(&|r| 1.0 / r as f64),
            mrr_1: mrr_at(1),
            mrr_5: mrr_at(5),
            mrr_10: mrr_at(10),
            mrr_20: mrr_at(20),
            mrr_50: mrr_at(50),
            mrr_100: mrr_at(100),
            ndcg_10: share(&|r| if r <= 10 { 1.0 / (r as f64 + 1.0).log2() } else { 0.0 }),
            n,
        }
    }
}

/// The distinct query rows of `pairs`, sorted, and the pairs with their query replaced by its
/// position in that list (the form [`ranks`] takes).
pub fn distinct_queries(pairs: &[(u32, u32)]) -> (Vec<u32>, Vec<(u32, u32)>) {
    let mut queries: Vec<u32> = pairs.iter().map(|p| p.0).collect();
    queries.sort_unstable();
    queries.dedup();
    let local = pairs.iter().map(|&(q, c)| (queries.binary_search(&q).unwrap_or(0) as u32, c)).collect();
    (queries, local)
}

/// The 1-based rank of each pair's candidate. `queries` holds the embeddings of the distinct
/// queries (`nq × dim`); `pairs` are (index into `queries`, candidate row); `candidates` holds
/// every candidate row, row 0 being the OOV row, which is never ranked. `excluded[q]` lists
/// candidates removed from query `q`'s ranking (except the pair's own candidate).
///
/// Scores are [`exact_dot`]'s (the FMA chain in dimension order); the candidates scoring higher
/// are counted by [`Counter`] without a score matrix, exactly. See [`Ranker`] to rank several
/// batches against the same candidates.
pub fn ranks(
    queries: &[f32],
    candidates: &[f32],
    dim: usize,
    pairs: &[(u32, u32)],
    excluded: &[&[u32]],
) -> Vec<Option<usize>> {
    Ranker::new(candidates, dim).ranks(queries, pairs, excluded)
}

/// Candidates prepared for [`ranks`] (sorted and quantised once).
pub struct Ranker<'a> {
    candidates: &'a [f32],
    dim: usize,
    counter: Counter<'a>,
}

impl<'a> Ranker<'a> {
    /// Every candidate row of `candidates` (`n × dim`, row 0 the OOV row).
    pub fn new(candidates: &'a [f32], dim: usize) -> Self {
        Ranker { candidates, dim, counter: Counter::new(candidates, dim) }
    }

    /// The rank of each pair's candidate: see [`ranks`].
    pub fn ranks(&self, queries: &[f32], pairs: &[(u32, u32)], excluded: &[&[u32]]) -> Vec<Option<usize>> {
        self.ranks_added(queries, pairs, excluded, &[])
    }

    /// [`Ranker::ranks`] with scores added to some candidates of each query: `added[q]` holds
    /// (candidate row, added score), distinct rows (a sequential model's repeat scores).
    pub fn ranks_added(
        &self,
        queries: &[f32],
        pairs: &[(u32, u32)],
        excluded: &[&[u32]],
        added: &[&[(u32, f32)]],
    ) -> Vec<Option<usize>> {
        let (dim, candidates) = (self.dim, self.candidates);
        let (nq, n) = (queries.len() / dim, candidates.len() / dim);
        let query = |q: usize| &queries[q * dim..(q + 1) * dim];
        let cand = |c: usize| &candidates[c * dim..(c + 1) * dim];
        // the pairs grouped by query, and the score of each pair's candidate (NaN: not ranked)
        let mut order: Vec<usize> = (0..pairs.len()).collect();
        order.sort_by_key(|&i| pairs[i].0);
        let mut starts = vec![0usize; nq + 1];
        pairs.iter().for_each(|p| starts[p.0 as usize + 1] += 1);
        (0..nq).for_each(|q| starts[q + 1] += starts[q]);
        let scores: Vec<f32> = order
            .par_iter()
            .map(|&i| {
                let (q, c) = (pairs[i].0 as usize, pairs[i].1 as usize);
                if c == 0 || c >= n {
                    return f32::NAN;
                }
                let plus = added.get(q).and_then(|a| a.iter().find(|e| e.0 as usize == c)).map_or(0.0, |e| e.1);
                exact_dot(query(q), cand(c)) + plus
            })
            .collect();
        let counts = self.counter.count(queries, &starts, &scores);
        let ranked: Vec<(usize, Option<usize>)> = order
            .par_iter()
            .zip(&scores)
            .zip(&counts)
            .map(|((&i, &s), &higher)| {
                if s.is_nan() {
                    return (i, None);
                }
                let (q, c) = (pairs[i].0 as usize, pairs[i].1);
                // row 0 is never ranked; excluded rows (other than the pair's own) are removed
                let above = |e: u32| (e as usize) < n && exact_dot(query(q), cand(e as usize)) > s;
                let ex = excluded.get(q).copied().unwrap_or(&[]);
                let removed = usize::from(above(0)) + ex.iter().filter(|&&e| e != c && e != 0 && above(e)).count();
                // a candidate with an added score: counted by its dot product, ranked by the sum
                // (the pair's own candidate, counted when its added score is negative, is not)
                let mut moved = 0isize;
                for &(e, plus) in added.get(q).copied().unwrap_or(&[]) {
                    if e == c {
                        moved -= isize::from(exact_dot(query(q), cand(c as usize)) > s);
                    } else if e != 0 && (e as usize) < n && !ex.contains(&e) {
                        let dot = exact_dot(query(q), cand(e as usize));
                        moved += isize::from(dot + plus > s) - isize::from(dot > s);
                    }
                }
                (i, Some((1 + higher as isize - removed as isize + moved) as usize))
            })
            .collect();
        let mut out = vec![None; pairs.len()];
        for (i, r) in ranked {
            out[i] = r;
        }
        out
    }
}

/// Ranks every pair and summarises: see [`ranks`].
pub fn rank_metrics(
    queries: &[f32],
    candidates: &[f32],
    dim: usize,
    pairs: &[(u32, u32)],
    excluded: &[&[u32]],
) -> TopKMetrics {
    TopKMetrics::from_ranks(&ranks(queries, candidates, dim, pairs, excluded))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ties_do_not_count_against_and_exclusion_lifts() {
        // one query (dim 1, q = 1), candidates: OOV, then scores 3, 2, 2, 1
        let q = [1.0f32];
        let c = [9.0f32, 3.0, 2.0, 2.0, 1.0];
        let pairs = [(0, 2), (0, 3), (0, 4), (0, 1), (0, 0)];
        let r = ranks(&q, &c, 1, &pairs, &[]);
        assert_eq!(r, vec![Some(2), Some(2), Some(4), Some(1), None]); // OOV row 0 never counts
        let ex: [&[u32]; 1] = [&[1, 4]]; // exclude item 1 (and 4, which is the positive of pair 3)
        let r = ranks(&q, &c, 1, &pairs, &ex);
        assert_eq!(r, vec![Some(1), Some(1), Some(3), Some(1), None]);
    }

    #[test]
    fn added_scores_move_their_candidates() {
        // candidates OOV, then scores 3, 2, 2, 1; candidate 4 gets +2.5 (3.5), candidate 1 gets -2 (1)
        let (q, c) = ([1.0f32], [9.0f32, 3.0, 2.0, 2.0, 1.0]);
        let pairs = [(0, 4), (0, 1), (0, 2), (0, 3)];
        let added: [&[(u32, f32)]; 1] = [&[(1, -2.0), (4, 2.5)]];
        let ranker = Ranker::new(&c, 1);
        assert_eq!(ranker.ranks_added(&q, &pairs, &[], &added), vec![Some(1), Some(4), Some(2), Some(2)]);
        // an excluded candidate is gone, its added score with it
        let ex: [&[u32]; 1] = [&[4]];
        assert_eq!(ranker.ranks_added(&q, &pairs, &ex, &added), vec![Some(1), Some(3), Some(1), Some(1)]);
    }

    /// The counting kernel against the definition, with exclusions, unknown items and a
    /// [`Ranker`] reused across batches.
    #[test]
    fn ranks_match_the_definition() {
        // a local xorshift: metrics sit below `rng` (see ARCHITECTURE.md)
        let mut state = 0x9E37_79B9_7F4A_7C15u64;
        let mut below = |k: usize| {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            (state % k as u64) as usize
        };
        let (nq, n, dim) = (50, 700, 8);
        let q: Vec<f32> = (0..nq * dim).map(|_| (below(7) as f32 - 3.0) * 0.5).collect();
        let c: Vec<f32> = (0..n * dim).map(|_| (below(7) as f32 - 3.0) * 0.5).collect();
        let pairs: Vec<(u32, u32)> = (0..120).map(|i| ((i % nq) as u32, below(n + 5) as u32)).collect();
        // each query's excluded rows: sorted, distinct
        let lists: Vec<Vec<u32>> = (0..nq)
            .map(|_| {
                let mut l: Vec<u32> = (0..below(20)).map(|_| below(n) as u32).collect();
                l.sort_unstable();
                l.dedup();
                l
            })
            .collect();
        let ex: Vec<&[u32]> = lists.iter().map(Vec::as_slice).collect();
        let score = |i: usize, j: usize| exact_dot(&q[i * dim..(i + 1) * dim], &c[j * dim..(j + 1) * dim]);
        let want: Vec<Option<usize>> = pairs
            .iter()
            .map(|&(i, j)| {
                let (i, j) = (i as usize, j as usize);
                let s = (j != 0 && j < n).then(|| score(i, j))?;
                let kept = |x: usize| x != 0 && (x == j || ex[i].binary_search(&(x as u32)).is_err());
                Some(1 + (0..n).filter(|&x| kept(x) && score(i, x) > s).count())
            })
            .collect();
        assert_eq!(ranks(&q, &c, dim, &pairs, &ex), want);
        let ranker = Ranker::new(&c, dim);
        assert_eq!(ranker.ranks(&q, &pairs[..60], &ex), want[..60]);
        assert_eq!(ranker.ranks(&q, &pairs[60..], &ex), want[60..]);
    }

    #[test]
    fn metrics_from_ranks() {
        let m = TopKMetrics::from_ranks(&[Some(1), Some(3), Some(30), None]);
        assert_eq!((m.top_1, m.top_5, m.top_50, m.n), (0.25, 0.5, 0.75, 4));
        assert!((m.mrr - (1.0 + 1.0 / 3.0 + 1.0 / 30.0) / 4.0).abs() < 1e-12);
        assert!((m.mrr_20 - (1.0 + 1.0 / 3.0) / 4.0).abs() < 1e-12);
        // ranks 1, 3, 30, miss: MRR@k by hand for every k
        let want = [1.0 / 4.0, (1.0 + 1.0 / 3.0) / 4.0, (1.0 + 1.0 / 3.0) / 4.0, (1.0 + 1.0 / 3.0) / 4.0];
        let want = [want[0], want[1], want[2], want[3], (1.0 + 1.0 / 3.0 + 1.0 / 30.0) / 4.0, m.mrr];
        for (k, (got, want)) in KS.iter().zip(m.mrrs().iter().zip(want)) {
            assert!((got - want).abs() < 1e-12, "MRR@{k}: {got} vs {want}");
        }
        assert_eq!(m.mrr_1, m.top_1);
        assert_eq!(m.recalls(), [m.top_1, m.top_5, m.top_10, m.top_20, m.top_50, m.top_100]);
        // older JSON without the MRR@k keys still reads
        let old: TopKMetrics = serde_json::from_str(r#"{"top_1":0.5,"mrr_20":0.25,"n":2}"#).unwrap();
        assert_eq!((old.top_1, old.mrr_20, old.mrr_5, old.n), (0.5, 0.25, 0.0, 2));
        assert!((m.ndcg_10 - (1.0 + 0.5) / 4.0).abs() < 1e-12);
    }
}
