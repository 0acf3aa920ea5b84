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

/// Packed sequences for an encoder trained on every position (SASRec): each sequence's item
/// rows, oldest first, and at each position the next item, its target.
#[derive(Debug, Clone, Default)]
pub struct Sequences {
    /// Item rows of all sequences, one after another.
    pub items: Vec<u32>,
    /// `n + 1` offsets into `items`.
    pub offsets: Vec<usize>,
    /// The target of each position of `items`.
    pub targets: Vec<u32>,
}

impl Sequences {
    /// Every item of a session but its first is a target: a session of more than `steps + 1`
    /// items becomes several sequences of at most `steps` positions, counted from its end, each
    /// reading the items just before its targets.
    pub fn build(sessions: &Sessions, row: impl Fn(&str) -> u32, steps: usize) -> Self {
        let mut s = Sequences { offsets: vec![0], ..Default::default() };
        for session in &sessions.items {
            let rows: Vec<u32> = session.iter().map(|i| row(i)).collect();
            let mut end = rows.len();
            let mut chunks = Vec::new();
            while end > 1 {
                let start = end.saturating_sub(steps).max(1);
                chunks.push((start, end));
                end = start;
            }
            for &(start, end) in chunks.iter().rev() {
                s.push(&rows[start - 1..end - 1], &rows[start..end]);
            }
        }
        s
    }

    fn push(&mut self, inputs: &[u32], targets: &[u32]) {
        self.items.extend_from_slice(inputs);
        self.targets.extend_from_slice(targets);
        self.offsets.push(self.items.len());
    }

    /// Number of sequences.
    pub fn len(&self) -> usize {
        self.offsets.len() - 1
    }

    /// Whether there are none.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Splits off every `n`-th sequence (the `n`-th, the `2n`-th, …): (the others, those).
    pub fn split_every(&self, n: usize) -> (Sequences, Sequences) {
        let mut parts = [
            Sequences { offsets: vec![0], ..Default::default() },
            Sequences { offsets: vec![0], ..Default::default() },
        ];
        for s in 0..self.len() {
            let (a, b) = (self.offsets[s], self.offsets[s + 1]);
            parts[usize::from((s + 1).is_multiple_of(n))].push(&self.items[a..b], &self.targets[a..b]);
        }
        let [rest, every] = parts;
        (rest, every)
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

    #[test]
    fn packed_sequences_cover_every_target_once() {
        let ids = |n: usize| (0..n).map(|i| format!("{}", i + 1)).collect::<Vec<_>>();
        let s = Sessions { items: vec![ids(6), ids(1), ids(3)], ids: None };
        let row = |i: &str| i.parse::<u32>().unwrap();
        let all = Sequences::build(&s, row, 2);
        // 6 items: targets 2..6 in chunks [2], [3 4], [5 6] counted from the end; then [2 3]
        assert_eq!(all.offsets, [0, 1, 3, 5, 7]);
        assert_eq!(all.items, [1, 2, 3, 4, 5, 1, 2]);
        assert_eq!(all.targets, [2, 3, 4, 5, 6, 2, 3]);
        let (rest, every) = all.split_every(2);
        assert_eq!((rest.offsets, rest.items, rest.targets), (vec![0, 1, 3], vec![1, 4, 5], vec![2, 5, 6]));
        assert_eq!((every.offsets, every.items, every.targets), (vec![0, 2, 4], vec![2, 3, 1, 2], vec![3, 4, 2, 3]));
    }
}
