//! Next-item examples from item sequences: every position gives (the items before it, it).

use super::Sessions;

/// Which positions of a sequence give examples.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Positions {
    /// Every position from the second on (training on sessions).
    All,
    /// The last position only (test sets; training files of one example per line).
    Last,
}

/// Encoded next-item examples: `contexts` holds `steps` item rows per example, oldest first,
/// real items first and padding (row 0, `mask` false) after them; the model masks padding.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct SequenceExamples {
    /// Context length.
    pub steps: usize,
    /// `len × steps` item rows.
    pub contexts: Vec<u32>,
    /// `len × steps`: true for real items.
    pub mask: Vec<bool>,
    /// Target item row of each example (0 = unknown item).
    pub targets: Vec<u32>,
}

/// The one definition of a history window, in training, evaluation and serving: the last
/// `steps` items of `history` (oldest first), padded with row 0 at the end, and the mask of
/// the real steps, appended to `contexts` and `mask`.
pub fn window(history: &[u32], steps: usize, contexts: &mut Vec<u32>, mask: &mut Vec<bool>) {
    let ctx = &history[history.len().saturating_sub(steps)..];
    contexts.extend(ctx.iter().copied().chain(std::iter::repeat_n(0, steps - ctx.len())));
    mask.extend((0..steps).map(|j| j < ctx.len()));
}

impl SequenceExamples {
    /// Builds examples with contexts of the last `steps` items before each position; `row`
    /// maps an item id to its row, unknown items to row 0 (OOV), which stay real (unmasked) steps.
    pub fn build(sessions: &Sessions, row: impl Fn(&str) -> u32, steps: usize, positions: Positions) -> Self {
        let mut ex = SequenceExamples { steps, ..Default::default() };
        for s in &sessions.items {
            let rows: Vec<u32> = s.iter().map(|i| row(i)).collect();
            let range = match positions {
                Positions::All => 1..rows.len(),
                Positions::Last => rows.len().max(2) - 1..rows.len(),
            };
            for t in range {
                window(&rows[..t], steps, &mut ex.contexts, &mut ex.mask);
                ex.targets.push(rows[t]);
            }
        }
        ex
    }

    /// The distinct items of example `i`'s context, sorted.
    pub fn history(&self, i: usize) -> Vec<u32> {
        let s = self.steps;
        let mut h: Vec<u32> = (i * s..(i + 1) * s).filter(|&p| self.mask[p]).map(|p| self.contexts[p]).collect();
        h.sort_unstable();
        h.dedup();
        h
    }

    /// Number of examples.
    pub fn len(&self) -> usize {
        self.targets.len()
    }

    /// Whether there are none.
    pub fn is_empty(&self) -> bool {
        self.targets.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::data::Vocabulary;

    #[test]
    fn windows_padding_and_masks() {
        let s = Sessions { items: vec![vec!["a".into(), "b".into(), "c".into(), "d".into()]], ids: None };
        let v = Vocabulary::from_keys(["a", "b", "c", "d"]);
        let all = SequenceExamples::build(&s, |i| v.lookup(i), 2, Positions::All);
        assert_eq!(all.targets, [2, 3, 4]);
        assert_eq!(all.contexts, [1, 0, 1, 2, 2, 3]); // the last 2 items before each position, padded after
        assert_eq!(all.mask, [true, false, true, true, true, true]);
        assert_eq!((all.history(0), all.history(2)), (vec![1], vec![2, 3]));
        let last = SequenceExamples::build(&s, |i| v.lookup(i), 3, Positions::Last);
        assert_eq!((last.targets, last.contexts, last.mask), (vec![4], vec![1, 2, 3], vec![true; 3]));
        let one = Sessions { items: vec![vec!["a".into()]], ids: None };
        assert!(SequenceExamples::build(&one, |i| v.lookup(i), 2, Positions::All).is_empty());
    }
}
