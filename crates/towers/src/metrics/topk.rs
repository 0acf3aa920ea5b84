//! Top-k accuracy (= recall@k with one positive), MRR and NDCG of each test pair's true
//! candidate ranked against every candidate.
//!
//! Tie rule (TFRS / `tf.math.in_top_k`): the rank of the positive is 1 + the number of
//! candidates scoring *strictly* higher, so candidates scoring equal do not push it down.

use crate::kernels::topk::map_score_rows;
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
pub fn ranks(
    queries: &[f32],
    candidates: &[f32],
    dim: usize,
    pairs: &[(u32, u32)],
    excluded: &[&[u32]],
) -> Vec<Option<usize>> {
    let nq = queries.len() / dim;
    let mut by_query: Vec<Vec<usize>> = vec![Vec::new(); nq];
    for (i, &(q, _)) in pairs.iter().enumerate() {
        by_query[q as usize].push(i);
    }
    let per_query = map_score_rows(queries, candidates, dim, |q, row| {
        let ex = excluded.get(q).copied().unwrap_or(&[]);
        by_query[q]
            .iter()
            .map(|&i| {
                let c = pairs[i].1 as usize;
                let s = row[c];
                if c == 0 || c >= row.len() || s.is_nan() {
                    return (i, None);
                }
                let higher = row[1..].iter().filter(|&&x| x > s).count();
                let higher_excluded = ex.iter().filter(|&&e| e as usize != c && e != 0 && row[e as usize] > s).count();
                (i, Some(1 + higher - higher_excluded))
            })
            .collect::<Vec<_>>()
    });
    let mut out = vec![None; pairs.len()];
    for (i, r) in per_query.into_iter().flatten() {
        out[i] = r;
    }
    out
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
