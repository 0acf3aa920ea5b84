//! Reference scores printed beside every evaluation.

use super::TopKMetrics;

/// The popularity baseline: every query gets the candidates ranked by how often they occur
/// in the training data (`counts[row]`), with the same tie rule and exclusions as the model.
pub fn popularity(counts: &[f32], pairs: &[(u32, u32)], excluded: &[&[u32]]) -> TopKMetrics {
    TopKMetrics::from_ranks(&popularity_ranks(counts, pairs, excluded))
}

/// The rank of each pair's candidate under [`popularity`].
pub fn popularity_ranks(counts: &[f32], pairs: &[(u32, u32)], excluded: &[&[u32]]) -> Vec<Option<usize>> {
    // every query scores the candidates alike: count higher ones in the sorted counts
    let mut sorted: Vec<f32> = counts.iter().skip(1).copied().collect();
    sorted.sort_unstable_by(f32::total_cmp);
    pairs
        .iter()
        .map(|&(q, c)| {
            let s = *counts.get(c as usize).filter(|s| c != 0 && !s.is_nan())?;
            let higher = sorted.len() - sorted.partition_point(|&x| x <= s);
            let ex = excluded.get(q as usize).copied().unwrap_or(&[]);
            let higher_excluded = ex.iter().filter(|&&e| e != c && e != 0 && counts[e as usize] > s).count();
            Some(1 + higher - higher_excluded)
        })
        .collect()
}

/// The "repeat the last item" baseline of session-based recommendation: each test example's
/// last history item (`last[i]`, row 0 = unknown or none) ranks first, then every other item
/// by training popularity (`counts[row]`), with the tie rule and exclusions of [`super::rank_metrics`]
/// (`excluded[i]` removes items from example `i`'s ranking, except its target). A target of
/// row 0 (unknown) is a miss.
pub fn repeat_last(counts: &[f32], last: &[u32], targets: &[u32], excluded: &[&[u32]]) -> TopKMetrics {
    // popularity counts of the ranked rows (row 0 never ranks), sorted, for "how many score higher"
    let mut sorted: Vec<f32> = counts.iter().skip(1).copied().collect();
    sorted.sort_unstable_by(f32::total_cmp);
    let ranks: Vec<Option<usize>> = targets
        .iter()
        .zip(last)
        .enumerate()
        .map(|(i, (&t, &l))| {
            if t == 0 || t as usize >= counts.len() {
                return None;
            }
            let ex = excluded.get(i).copied().unwrap_or(&[]);
            let removed = |c: u32| c != t && ex.contains(&c);
            let boosted = l != 0 && (l as usize) < counts.len() && !removed(l);
            if boosted && l == t {
                return Some(1);
            }
            let s = counts[t as usize];
            let higher = sorted.len() - sorted.partition_point(|&x| x <= s);
            let higher_excluded = ex.iter().filter(|&&e| e != t && e != 0 && counts[e as usize] > s).count();
            // the boosted last item is above the target whatever its count
            let last_extra = usize::from(boosted && counts[l as usize] <= s);
            Some(1 + higher - higher_excluded + last_extra)
        })
        .collect();
    TopKMetrics::from_ranks(&ranks)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn popularity_ranks_by_count() {
        let counts = [0.0, 10.0, 5.0, 1.0];
        let m = popularity(&counts, &[(0, 1), (1, 3)], &[]);
        assert_eq!((m.top_1, m.top_5), (0.5, 1.0));
        let ex: [&[u32]; 2] = [&[], &[1, 2]];
        assert_eq!(popularity(&counts, &[(0, 1), (1, 3)], &ex).top_1, 1.0);
    }

    #[test]
    fn repeat_last_ranks_the_last_item_first_then_by_count() {
        // rows: OOV, then counts 10, 5, 1, 5
        let counts = [0.0, 10.0, 5.0, 1.0, 5.0];
        // (last, target) -> rank by hand:
        // (3, 3): the repeat ranks 1; (3, 1): 3 first, then 1 -> 2; (1, 2): 1 first, 2 and 4 tie -> 2;
        // (2, 3): 2 first, then 1, 4 -> 4; (0, 4): no last item, popularity -> 2; unknown target: a miss
        let last = [3, 3, 1, 2, 0, 1];
        let targets = [3, 1, 2, 3, 4, 0];
        let ranks = [Some(1), Some(2), Some(2), Some(4), Some(2), None];
        assert_eq!(repeat_last(&counts, &last, &targets, &[]), TopKMetrics::from_ranks(&ranks));
        // excluding the history (here the last item and item 1) lifts the target, never removes it
        let ex: [&[u32]; 6] = [&[3], &[3], &[1], &[2, 1], &[], &[]];
        let ranks = [Some(1), Some(1), Some(1), Some(2), Some(2), None];
        assert_eq!(repeat_last(&counts, &last, &targets, &ex), TopKMetrics::from_ranks(&ranks));
    }
}
