//! Post-ranking: the rules a pipeline applies to its ranked candidates before answering —
//! diversity by maximal marginal relevance over the candidates' embeddings, caps per attribute
//! value, boosted items, and one item per key (dedupe). Exclusions are applied at retrieval.

use crate::config::PostRanking;
use crate::data::Items;
use crate::data::features::AttributeTable;
use crate::index::Scored;
use crate::kernels::softmax::dot;
use crate::{Error, Result};

use std::collections::HashMap;

/// The item attributes post-ranking reads: for each column, each item row's values (interned;
/// multi-valued columns split at `|`), and `title`.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct ItemAttributes {
    columns: Vec<String>,
    /// Per column, per item row: value ids.
    values: Vec<Vec<Vec<u32>>>,
}

impl ItemAttributes {
    /// The attributes of `items` from `table` (rows without attributes get no value), and
    /// their titles as the column `title` unless the table has one.
    pub fn new(items: &Items, table: Option<&AttributeTable>) -> Self {
        let mut out = ItemAttributes::default();
        let add = |out: &mut ItemAttributes, name: &str, value: &dyn Fn(usize) -> Option<String>| {
            let mut intern: HashMap<String, u32> = HashMap::new();
            let per_row = (0..items.len())
                .map(|r| {
                    let Some(v) = value(r) else { return Vec::new() };
                    let mut ids: Vec<u32> = v
                        .split('|')
                        .map(str::trim)
                        .filter(|p| !p.is_empty())
                        .map(|p| {
                            let n = intern.len() as u32;
                            *intern.entry(p.to_string()).or_insert(n)
                        })
                        .collect();
                    ids.sort_unstable();
                    ids.dedup();
                    ids
                })
                .collect();
            out.columns.push(name.to_string());
            out.values.push(per_row);
        };
        if let Some(t) = table {
            for (c, name) in t.columns.iter().enumerate() {
                let value = |r: usize| (r > 0).then(|| t.rows.get(&items.ids[r]).map(|v| v[c].clone())).flatten();
                add(&mut out, name, &value);
            }
        }
        if !out.columns.iter().any(|c| c == "title") {
            add(&mut out, "title", &|r: usize| (r > 0 && !items.titles[r].is_empty()).then(|| items.titles[r].clone()));
        }
        out
    }

    /// The columns.
    pub fn columns(&self) -> &[String] {
        &self.columns
    }

    fn column(&self, name: &str) -> Result<&[Vec<u32>]> {
        self.columns.iter().position(|c| c == name).map(|i| self.values[i].as_slice()).ok_or_else(|| {
            Error::Config(format!("no item attribute '{name}' (attributes: {})", self.columns.join(", ")))
        })
    }

    /// Checks that every attribute `post` names exists.
    pub fn check(&self, post: &PostRanking) -> Result<()> {
        for (_, a) in post.attributes() {
            self.column(a)?;
        }
        Ok(())
    }
}

/// What post-ranking reads besides the candidates: their embeddings (for diversity), the item
/// attributes (caps, dedupe), the boosted rows (sorted).
#[derive(Debug, Clone, Copy)]
pub struct Scene<'a> {
    /// Every item row's embedding (`rows × dim`).
    pub embeddings: &'a [f32],
    /// Their width.
    pub dim: usize,
    /// Item attributes.
    pub attributes: &'a ItemAttributes,
    /// Boosted item rows, sorted.
    pub boost: &'a [u32],
}

/// The best `k` of `candidates` (item rows with the ranker's scores) under `post`'s rules, in
/// the order chosen; each keeps its ranker score. Greedy, so the first `k` of a longer answer
/// are the answer for `k`.
pub fn post_rank(candidates: &[Scored], k: usize, post: &PostRanking, scene: &Scene) -> Result<Vec<Scored>> {
    let mut c: Vec<Scored> = candidates.to_vec();
    c.sort_by(|a, b| b.score.total_cmp(&a.score).then(a.id.cmp(&b.id)));
    if post.is_noop() || c.is_empty() {
        c.truncate(k);
        return Ok(c);
    }
    let n = c.len();
    let (best, spread) = (c[0].score, c[0].score - c[n - 1].score);
    let rel: Vec<f32> = c
        .iter()
        .map(|s| {
            // a finite spread means finite scores (NaN and infinities sort to the ends)
            let r = if spread > 0.0 && spread.is_finite() { 1.0 - (best - s.score) / spread } else { 1.0 };
            r + if scene.boost.binary_search(&s.id).is_ok() { post.boost_weight } else { 0.0 }
        })
        .collect();
    let caps: Vec<(&[Vec<u32>], usize)> =
        post.caps.iter().map(|cap| Ok((scene.attributes.column(&cap.attribute)?, cap.max))).collect::<Result<_>>()?;
    let mut cap_counts: Vec<HashMap<u32, usize>> = vec![HashMap::new(); caps.len()];
    let dedupe = post.dedupe.as_deref().map(|d| scene.attributes.column(d)).transpose()?;
    let mut keys_taken: std::collections::HashSet<&[u32]> = Default::default();
    // the candidates' embeddings and norms, for the cosine similarities
    let d = scene.dim;
    let lambda = post.diversity;
    let rows: Vec<&[f32]> = if lambda > 0.0 {
        c.iter()
            .map(|s| {
                let r = s.id as usize * d..(s.id as usize + 1) * d;
                scene.embeddings.get(r).ok_or_else(|| Error::Data(format!("item row {} has no embedding", s.id)))
            })
            .collect::<Result<_>>()?
    } else {
        Vec::new()
    };
    let norms: Vec<f64> = rows.iter().map(|r| dot(r, r).sqrt()).collect();
    let cosine = |i: usize, j: usize| {
        let nn = norms[i] * norms[j];
        if nn > 0.0 { (dot(rows[i], rows[j]) / nn) as f32 } else { 0.0 }
    };
    // the candidates by relevance (boosts included): the scan stops at the first that cannot
    // beat the best so far, its penalty being at least 0
    let mut order: Vec<usize> = (0..n).collect();
    order.sort_by(|&a, &b| rel[b].total_cmp(&rel[a]).then(a.cmp(&b)));
    // per candidate: its summed cosine similarity to the first `counted` items chosen
    let mut sim_sum = vec![0.0f32; n];
    let mut counted = vec![0usize; n];
    let mut reference: Vec<f32> = Vec::new();
    let mut taken = vec![false; n];
    let mut chosen: Vec<usize> = Vec::with_capacity(k.min(n));
    while chosen.len() < k {
        let mut best: Option<(usize, f32)> = None;
        for &i in &order {
            if taken[i] {
                continue;
            }
            if best.is_some_and(|(_, b)| (1.0 - lambda) * rel[i] <= b) {
                break;
            }
            let row = c[i].id as usize;
            if dedupe
                .is_some_and(|col| col.get(row).is_some_and(|v| !v.is_empty() && keys_taken.contains(v.as_slice())))
            {
                continue;
            }
            let over = caps.iter().zip(&cap_counts).any(|((col, max), counts)| {
                col.get(row).is_some_and(|vs| vs.iter().any(|v| counts.get(v).copied().unwrap_or(0) >= *max))
            });
            if over {
                continue;
            }
            let penalty = if chosen.is_empty() || lambda == 0.0 {
                0.0
            } else {
                for &j in &chosen[counted[i]..] {
                    sim_sum[i] += cosine(i, j);
                }
                counted[i] = chosen.len();
                // the share of the first item's similarities to the other candidates below this
                // one's mean similarity to the items chosen
                let mean = sim_sum[i] / chosen.len() as f32;
                reference.partition_point(|&x| x < mean) as f32 / reference.len().max(1) as f32
            };
            let value = (1.0 - lambda) * rel[i] - lambda * penalty;
            if best.is_none_or(|(_, b)| value > b) {
                best = Some((i, value));
            }
        }
        let Some((i, _)) = best else { break };
        taken[i] = true;
        let row = c[i].id as usize;
        if let Some(col) = dedupe
            && let Some(v) = col.get(row).filter(|v| !v.is_empty())
        {
            keys_taken.insert(v.as_slice());
        }
        for ((col, _), counts) in caps.iter().zip(cap_counts.iter_mut()) {
            for &v in col.get(row).map_or(&[][..], |v| v.as_slice()) {
                *counts.entry(v).or_default() += 1;
            }
        }
        if lambda > 0.0 && chosen.is_empty() {
            reference = (0..n).filter(|&j| j != i).map(|j| cosine(i, j)).collect();
            reference.sort_by(f32::total_cmp);
        }
        chosen.push(i);
    }
    Ok(chosen.into_iter().map(|i| c[i]).collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn items() -> Items {
        let ids = ["", "a", "b", "c", "d"].map(String::from).to_vec();
        let titles = ["", "A", "B", "A", "D"].map(String::from).to_vec();
        let rows = ids.iter().enumerate().skip(1).map(|(r, id)| (id.clone(), r as u32)).collect();
        Items { key: Default::default(), ids, titles, rows }
    }

    fn table() -> AttributeTable {
        AttributeTable {
            columns: vec!["genres".into()],
            rows: [("a", "x|y"), ("b", "x"), ("c", "z"), ("d", "x")]
                .iter()
                .map(|(k, v)| (k.to_string(), vec![v.to_string()]))
                .collect(),
            source: "t".into(),
        }
    }

    #[test]
    fn rules_by_hand() {
        let attrs = ItemAttributes::new(&items(), Some(&table()));
        assert_eq!(attrs.columns(), ["genres", "title"]);
        // rows 1..4; a and b point the same way, c and d elsewhere
        let emb = [0.0f32, 0.0, 1.0, 0.0, 1.0, 0.1, 0.0, 1.0, 0.2, 1.0];
        let cands = [
            Scored { id: 1, score: 4.0 },
            Scored { id: 2, score: 3.0 },
            Scored { id: 3, score: 2.0 },
            Scored { id: 4, score: 1.0 },
        ];
        let scene = Scene { embeddings: &emb, dim: 2, attributes: &attrs, boost: &[] };
        let ids = |v: Vec<Scored>| v.iter().map(|s| s.id).collect::<Vec<_>>();
        assert_eq!(ids(post_rank(&cands, 4, &PostRanking::default(), &scene).unwrap()), [1, 2, 3, 4]);
        // diversity: after a, b (nearly the same direction) falls behind c
        let div = PostRanking { diversity: 0.5, ..Default::default() };
        assert_eq!(ids(post_rank(&cands, 3, &div, &scene).unwrap()), [1, 3, 2]);
        // the relevance keeps the ranker's gaps: b, nearly tied with a, stays second
        let close = [4.0, 3.9, 1.1, 1.0].map(|x| x as f32);
        let tied: Vec<Scored> = cands.iter().zip(close).map(|(c, score)| Scored { score, ..*c }).collect();
        assert_eq!(ids(post_rank(&tied, 3, &div, &scene).unwrap()), [1, 2, 3]);
        assert!(post_rank(&[], 3, &div, &scene).unwrap().is_empty());
        let odd: Vec<Scored> =
            cands.iter().zip([f32::NAN, 1.0, f32::INFINITY, 0.0]).map(|(c, score)| Scored { score, ..*c }).collect();
        assert_eq!(post_rank(&odd, 4, &div, &scene).unwrap().len(), 4);
        // at most one item per genre value: a (x, y), then c (z); b and d share x with a
        let cap = PostRanking { caps: vec!["genres:1".parse().unwrap()], ..Default::default() };
        assert_eq!(ids(post_rank(&cands, 4, &cap, &scene).unwrap()), [1, 3]);
        // one item per title: c repeats a's title
        let dedupe = PostRanking { dedupe: Some("title".into()), ..Default::default() };
        assert_eq!(ids(post_rank(&cands, 4, &dedupe, &scene).unwrap()), [1, 2, 4]);
        // a boost lifts d (relevance 0, the last) above b and c, and with more than the whole
        // range of scores above a
        let boost = |w| PostRanking { boost: vec!["d".into()], boost_weight: w, ..Default::default() };
        let scene_b = Scene { boost: &[4], ..scene };
        assert_eq!(ids(post_rank(&cands, 2, &boost(0.9), &scene_b).unwrap()), [1, 4]);
        assert_eq!(ids(post_rank(&cands, 2, &boost(1.1), &scene_b).unwrap()), [4, 1]);
        // unknown attributes are errors, not panics
        let bad = PostRanking { dedupe: Some("nope".into()), ..Default::default() };
        assert!(post_rank(&cands, 2, &bad, &scene).is_err() && attrs.check(&bad).is_err());
        assert!("genres".parse::<crate::config::Cap>().is_err() && "genres:x".parse::<crate::config::Cap>().is_err());
        assert!(PostRanking { diversity: 1.5, ..Default::default() }.validate().is_err());
    }

    #[test]
    fn diversity_matches_the_plain_greedy() {
        // the greedy scored over every candidate at every step, as the definition reads
        fn plain(c: &[Scored], k: usize, lambda: f32, boost: &[u32], emb: &[f32], d: usize) -> Vec<u32> {
            let mut c = c.to_vec();
            c.sort_by(|a, b| b.score.total_cmp(&a.score).then(a.id.cmp(&b.id)));
            let (hi, lo) = (c[0].score, c[c.len() - 1].score);
            let rel = |s: &Scored| 1.0 - (hi - s.score) / (hi - lo) + if boost.contains(&s.id) { 0.1 } else { 0.0 };
            let row = |s: &Scored| &emb[s.id as usize * d..(s.id as usize + 1) * d];
            let cos = |a: &Scored, b: &Scored| {
                (dot(row(a), row(b)) / (dot(row(a), row(a)) * dot(row(b), row(b))).sqrt()) as f32
            };
            let mut out: Vec<Scored> = Vec::new();
            let mut reference: Vec<f32> = Vec::new();
            while out.len() < k {
                let value = |s: &Scored| {
                    let mean = out.iter().map(|o| cos(s, o)).sum::<f32>() / out.len().max(1) as f32;
                    let share = reference.partition_point(|&x| x < mean) as f32 / reference.len().max(1) as f32;
                    (1.0 - lambda) * rel(s) - if out.is_empty() { 0.0 } else { lambda * share }
                };
                let rest = c.iter().filter(|s| !out.iter().any(|o| o.id == s.id));
                let best = *rest
                    .fold(None, |b: Option<&Scored>, s| match b {
                        Some(b) if value(s) <= value(b) => Some(b),
                        _ => Some(s),
                    })
                    .unwrap();
                if out.is_empty() {
                    reference = c.iter().filter(|s| s.id != best.id).map(|s| cos(&best, s)).collect();
                    reference.sort_by(f32::total_cmp);
                }
                out.push(best);
            }
            out.iter().map(|s| s.id).collect()
        }
        let (n, d) = (60, 8);
        let emb: Vec<f32> = (0..(n + 1) * d).map(|i| (i as f32 * 1.618).sin()).collect();
        let cands: Vec<Scored> =
            (1..=n as u32).map(|id| Scored { id, score: (id as f32 * 2.71).cos() * 3.0 }).collect();
        let attrs = ItemAttributes::default();
        let boost = [3, 17, 40];
        let scene = Scene { embeddings: &emb, dim: d, attributes: &attrs, boost: &boost };
        for lambda in [0.1, 0.3, 0.5, 0.9] {
            let post = PostRanking { diversity: lambda, boost: vec!["x".into()], ..Default::default() };
            let got: Vec<u32> = post_rank(&cands, 10, &post, &scene).unwrap().iter().map(|s| s.id).collect();
            assert_eq!(got, plain(&cands, 10, lambda, &boost, &emb, d), "λ = {lambda}");
        }
    }
}
