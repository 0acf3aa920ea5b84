//! Evaluating a pipeline as it answers: for each test user, the retriever's candidates ranked
//! and post-ranked down to 100, and each test item's position in that answer; beside it the
//! retriever's own order, the intra-list diversity of the top 10 and the catalogue coverage.

use super::pipeline::Pipeline;
use super::request::check_retrieve;
use crate::data::{Dataset, Interactions};
use crate::eval::EvalOptions;
use crate::index::{Filter, Scored};
use crate::metrics::TopKMetrics;
use crate::{Error, Result};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::time::Instant;

/// The length of the answers evaluated (the largest k of the metrics).
const ANSWER: usize = 100;

/// A pipeline's evaluation; keys as in the CLI's JSON.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PipelineEvaluation {
    /// The answers' metrics: top_k is the share of test pairs whose item is in the user's
    /// first k answers (items beyond the retrieved candidates are misses).
    #[serde(flatten)]
    pub model: TopKMetrics,
    /// The same for the retriever's candidates in its own order (retrieval alone).
    pub retriever: TopKMetrics,
    /// Intra-list diversity of the top 10: the mean over users of the mean pairwise
    /// `1 − cosine` of the answers' retriever embeddings.
    pub ild_10: f64,
    /// The retriever's order's ILD@10, for comparison.
    pub retriever_ild_10: f64,
    /// Share of the catalogue that appears in some user's top 10.
    pub coverage_10: f64,
    /// Whether each user's training items were excluded.
    pub exclude_seen: bool,
    /// Candidates retrieved per user.
    pub retrieve: usize,
    /// The diversity (MMR λ) applied.
    pub diversity: f32,
    /// Test pairs whose user was not in the training data (answered by popularity).
    pub unknown_users: usize,
    /// Test pairs whose item is unknown (always a miss).
    pub unknown_items: usize,
    /// Seconds to answer every test user.
    pub eval_s: f64,
}

impl Pipeline {
    /// Evaluates the pipeline on `test`: each test user's answer (its post-ranking rules with
    /// `options`' changes; its number of candidates, or `options.retrieve`), with each user's
    /// training items excluded when `options.exclude_seen`.
    pub fn evaluate(&self, test: &Interactions, options: &EvalOptions) -> Result<PipelineEvaluation> {
        evaluate(self, test, options)
    }
}

fn evaluate(pipeline: &Pipeline, test: &Interactions, options: &EvalOptions) -> Result<PipelineEvaluation> {
    let post = &options.post.merged(&pipeline.settings().post, &options.exclude)?;
    pipeline.check_post(post)?;
    let exclude_seen = options.exclude_seen;
    let a = pipeline.retriever().artifact();
    let pairs = Dataset::encode(&a.query_vocab, &a.items, test);
    if pairs.is_empty() {
        return Err(Error::Data("the test table is empty".into()));
    }
    let mut by_user: BTreeMap<u32, Vec<u32>> = BTreeMap::new();
    for &(u, i) in &pairs {
        by_user.entry(u).or_default().push(i);
    }
    let retrieve = check_retrieve(options.retrieve.unwrap_or(pipeline.settings().retrieve))?;
    let mut excluded: Vec<u32> = post.exclude.iter().filter_map(|id| a.items.rows.get(id).copied()).collect();
    excluded.push(0);
    let start = Instant::now();
    let (mut ranks, mut retriever_ranks) = (Vec::with_capacity(pairs.len()), Vec::with_capacity(pairs.len()));
    let (mut ild, mut retriever_ild, mut lists) = (0.0, 0.0, 0usize);
    let mut covered = vec![false; a.items.len()];
    let d = a.dim();
    for (&user, items) in &by_user {
        let mut exclude = excluded.clone();
        if exclude_seen && user > 0 {
            exclude.extend_from_slice(a.seen.of(user));
        }
        exclude.sort_unstable();
        exclude.dedup();
        let filter = Filter { exclude: &exclude, allow: None };
        let staged = pipeline.stages((user > 0).then_some(user), &filter, retrieve.max(ANSWER), ANSWER, post)?;
        let rank_in = |list: &[Scored], item: u32| list.iter().position(|s| s.id == item).map(|p| p + 1);
        for &item in items {
            ranks.push(rank_in(&staged.answer, item).filter(|_| item > 0));
            retriever_ranks.push(rank_in(&staged.retrieved, item).filter(|_| item > 0));
        }
        for s in staged.answer.iter().take(10) {
            covered[s.id as usize] = true;
        }
        ild += diversity(&staged.answer, &a.candidates, d);
        retriever_ild += diversity(&staged.retrieved, &a.candidates, d);
        lists += 1;
    }
    let eval_s = start.elapsed().as_secs_f64();
    Ok(PipelineEvaluation {
        model: TopKMetrics::from_ranks(&ranks),
        retriever: TopKMetrics::from_ranks(&retriever_ranks),
        ild_10: ild / lists.max(1) as f64,
        retriever_ild_10: retriever_ild / lists.max(1) as f64,
        coverage_10: covered.iter().skip(1).filter(|&&c| c).count() as f64 / (a.items.len() - 1).max(1) as f64,
        exclude_seen,
        retrieve,
        diversity: post.diversity,
        unknown_users: pairs.iter().filter(|p| p.0 == 0).count(),
        unknown_items: pairs.iter().filter(|p| p.1 == 0).count(),
        eval_s,
    })
}

/// Intra-list diversity of the first 10 of `list`: mean pairwise `1 − cosine` of their
/// embeddings (0 for fewer than two items).
pub fn diversity(list: &[Scored], embeddings: &[f32], dim: usize) -> f64 {
    let top: Vec<&[f32]> =
        list.iter().take(10).map(|s| &embeddings[s.id as usize * dim..(s.id as usize + 1) * dim]).collect();
    let norm = |v: &[f32]| v.iter().map(|x| (x * x) as f64).sum::<f64>().sqrt();
    let (mut sum, mut n) = (0.0, 0usize);
    for i in 0..top.len() {
        for j in i + 1..top.len() {
            let dot: f64 = top[i].iter().zip(top[j]).map(|(a, b)| (a * b) as f64).sum();
            let den = norm(top[i]) * norm(top[j]);
            sum += 1.0 - if den > 0.0 { dot / den } else { 0.0 };
            n += 1;
        }
    }
    if n > 0 { sum / n as f64 } else { 0.0 }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn diversity_by_hand() {
        // rows 1 and 2 orthogonal, 3 the same direction as 1
        let emb = [0.0, 0.0, 1.0, 0.0, 0.0, 2.0, 3.0, 0.0];
        let s = |id| Scored { id, score: 0.0 };
        assert!((diversity(&[s(1), s(2)], &emb, 2) - 1.0).abs() < 1e-9);
        assert!(diversity(&[s(1), s(3)], &emb, 2).abs() < 1e-9);
        assert!((diversity(&[s(1), s(2), s(3)], &emb, 2) - 2.0 / 3.0).abs() < 1e-9);
        assert_eq!(diversity(&[s(1)], &emb, 2), 0.0);
    }
}
