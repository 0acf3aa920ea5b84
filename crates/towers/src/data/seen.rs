//! What each query (user) interacted with in training, for "exclude what the user has seen".

/// Items each query has already interacted with, in compressed rows (sorted, distinct; in their
/// own order when made by [`Seen::from_lists`]).
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Seen {
    /// `offsets[q]..offsets[q + 1]` indexes `items` for query row `q`.
    pub offsets: Vec<u32>,
    /// Candidate rows.
    pub items: Vec<u32>,
}

impl Seen {
    /// Builds the sets from (query row, candidate row) pairs.
    pub fn from_pairs(query_rows: usize, pairs: impl IntoIterator<Item = (u32, u32)>) -> Self {
        let mut all: Vec<(u32, u32)> = pairs.into_iter().collect();
        all.sort_unstable();
        all.dedup();
        let mut offsets = vec![0u32; query_rows + 1];
        for &(q, _) in &all {
            offsets[q as usize + 1] += 1;
        }
        for i in 0..query_rows {
            offsets[i + 1] += offsets[i];
        }
        Seen { offsets, items: all.into_iter().map(|(_, c)| c).collect() }
    }

    /// Lists in their own order, one per query row (`lists[q]`): a sequential model's users'
    /// recent items, oldest first (its [`histories`](crate::Artifact::histories)).
    pub fn from_lists(lists: &[Vec<u32>]) -> Self {
        let mut offsets = Vec::with_capacity(lists.len() + 1);
        offsets.push(0u32);
        for l in lists {
            offsets.push(offsets[offsets.len() - 1] + l.len() as u32);
        }
        Seen { offsets, items: lists.concat() }
    }

    /// The items of a query row (empty for an unknown row).
    pub fn of(&self, query: u32) -> &[u32] {
        let q = query as usize;
        if q + 1 >= self.offsets.len() {
            return &[];
        }
        &self.items[self.offsets[q] as usize..self.offsets[q + 1] as usize]
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn seen_sets() {
        let s = Seen::from_pairs(3, [(2, 5), (0, 1), (2, 3), (2, 5)]);
        assert_eq!((s.of(0), s.of(1), s.of(2), s.of(9)), (&[1u32][..], &[][..], &[3u32, 5][..], &[][..]));
    }
}
