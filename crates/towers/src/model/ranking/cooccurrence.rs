//! Item-to-item co-occurrence: for each item, the items most often interacted with by the same
//! users, weighted by cosine similarity of their user sets (item-kNN). The
//! [`ContextFeature::CoOccurrence`](super::ContextFeature::CoOccurrence) of a candidate sums its
//! similarities to the user's training items: a neighbourhood signal the retriever's dot
//! product does not carry.

use crate::data::features::Bags;

/// Neighbours kept per item.
pub const NEIGHBOURS: usize = 200;

/// Each item row's `keep` most similar items (cosine of binary user vectors, descending, ties
/// by row) from the (user row, item row) pairs; row 0 (OOV) has none.
pub fn neighbours(users: usize, items: usize, pairs: &[(u32, u32)], keep: usize) -> Bags {
    let mut by_user: Vec<Vec<u32>> = vec![Vec::new(); users];
    let mut by_item: Vec<Vec<u32>> = vec![Vec::new(); items];
    for &(u, i) in pairs {
        if u > 0 && i > 0 && (u as usize) < users && (i as usize) < items {
            by_user[u as usize].push(i);
            by_item[i as usize].push(u);
        }
    }
    for v in by_user.iter_mut().chain(by_item.iter_mut()) {
        v.sort_unstable();
        v.dedup();
    }
    let mut acc = vec![0f32; items];
    let mut touched: Vec<u32> = Vec::new();
    let mut out = Bags { offsets: vec![0; 2], rows: Vec::new(), weights: Vec::new() };
    for i in 1..items {
        for &u in &by_item[i] {
            for &j in &by_user[u as usize] {
                if j as usize != i {
                    if acc[j as usize] == 0.0 {
                        touched.push(j);
                    }
                    acc[j as usize] += 1.0;
                }
            }
        }
        let ni = by_item[i].len() as f32;
        let mut sims: Vec<(u32, f32)> =
            touched.iter().map(|&j| (j, acc[j as usize] / (ni * by_item[j as usize].len() as f32).sqrt())).collect();
        for &j in &touched {
            acc[j as usize] = 0.0;
        }
        touched.clear();
        sims.sort_by(|a, b| b.1.total_cmp(&a.1).then(a.0.cmp(&b.0)));
        sims.truncate(keep);
        for (j, s) in sims {
            out.rows.push(j);
            out.weights.push(s);
        }
        out.offsets.push(out.rows.len() as u32);
    }
    out.offsets.truncate(items.max(1) + 1);
    out
}

/// `ln(1 + Σ similarity)` of each candidate to the history's items, from each history item's
/// neighbours.
pub fn scores(neighbours: &Bags, history: &[u32], items: &[u32]) -> Vec<f32> {
    let mut order: Vec<(u32, usize)> = items.iter().enumerate().map(|(k, &i)| (i, k)).collect();
    order.sort_unstable();
    let table = Positions::new(&order);
    let mut sum = vec![0f32; items.len()];
    for &h in history {
        if h as usize + 1 >= neighbours.offsets.len() {
            continue;
        }
        let (rows, ws) = neighbours.of(h as usize);
        for (&j, &w) in rows.iter().zip(ws) {
            let (word, bit) = Positions::bit(j);
            if table.filter[word] & bit == 0 {
                continue;
            }
            let Some(start) = table.find(j) else { continue };
            // the same item may be a candidate more than once
            for p in order[start..].iter().take_while(|p| p.0 == j) {
                sum[p.1] += w;
            }
        }
    }
    sum.into_iter().map(f32::ln_1p).collect()
}

/// Where each candidate item starts in the sorted candidates: an open-addressing hash table
/// (linear probing, at most half full) behind a 4,096-bit filter of the candidates, so that the
/// neighbours of a long history (mostly not candidates) are looked up in constant time.
struct Positions {
    filter: [u64; 64],
    keys: Vec<u32>,
    starts: Vec<u32>,
    shift: u32,
}

impl Positions {
    fn new(order: &[(u32, usize)]) -> Self {
        let slots = (2 * order.len()).next_power_of_two().max(8);
        let mut t = Positions {
            filter: [0; 64],
            keys: vec![u32::MAX; slots],
            starts: vec![0; slots],
            shift: 32 - slots.trailing_zeros(),
        };
        for (k, &(item, _)) in order.iter().enumerate() {
            let (word, bit) = Positions::bit(item);
            t.filter[word] |= bit;
            if k > 0 && order[k - 1].0 == item {
                continue;
            }
            let mut s = t.slot(item);
            while t.keys[s] != u32::MAX {
                s = (s + 1) & (slots - 1);
            }
            (t.keys[s], t.starts[s]) = (item, k as u32);
        }
        t
    }

    fn bit(item: u32) -> (usize, u64) {
        ((item as usize >> 6) & 63, 1 << (item & 63))
    }

    fn slot(&self, item: u32) -> usize {
        (item.wrapping_mul(0x9E37_79B1) >> self.shift) as usize
    }

    fn find(&self, item: u32) -> Option<usize> {
        let mask = self.keys.len() - 1;
        let mut s = self.slot(item);
        loop {
            match self.keys[s] {
                k if k == item => return Some(self.starts[s] as usize),
                u32::MAX => return None,
                _ => s = (s + 1) & mask,
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn neighbours_and_scores_by_hand() {
        // users 1: {1, 2}, 2: {1, 2, 3}, 3: {3}
        let pairs = [(1, 1), (1, 2), (2, 1), (2, 2), (2, 3), (3, 3)];
        let b = neighbours(4, 4, &pairs, 10);
        assert_eq!(b.offsets, [0, 0, 2, 4, 6]);
        // item 1: users {1, 2}; 2: {1, 2}; 3: {2, 3}. sim(1,2) = 2/2 = 1, sim(1,3) = 1/2
        assert_eq!(b.of(1).0, [2, 3]);
        assert!((b.of(1).1[0] - 1.0).abs() < 1e-6 && (b.of(1).1[1] - 0.5).abs() < 1e-6);
        let s = scores(&b, &[1], &[3, 2, 1]);
        assert!((s[0] - 0.5f32.ln_1p()).abs() < 1e-6 && (s[1] - 1f32.ln_1p()).abs() < 1e-6 && s[2] == 0.0);
        assert_eq!(neighbours(4, 4, &pairs, 1).of(1).0, [2]);
        // a candidate given twice gets its score twice; item u32::MAX − 1 and absent items
        let s = scores(&b, &[1], &[3, u32::MAX - 1, 3, 7]);
        assert!((s[0] - 0.5f32.ln_1p()).abs() < 1e-6 && s[2] == s[0] && s[1] == 0.0 && s[3] == 0.0);
    }
}
