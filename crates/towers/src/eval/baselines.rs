//! Reference scores printed beside every evaluation.

use super::{TopKMetrics, evaluate};

/// The popularity baseline: every query gets the candidates ranked by how often they occur
/// in the training data (`counts[row]`), with the same tie rule and exclusions as the model.
pub fn popularity(counts: &[f32], pairs: &[(u32, u32)], excluded: &[&[u32]]) -> TopKMetrics {
    let nq = pairs.iter().map(|p| p.0 as usize + 1).max().unwrap_or(0);
    evaluate(&vec![1.0; nq], counts, 1, pairs, excluded)
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
}
