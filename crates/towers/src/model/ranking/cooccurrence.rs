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
/// neighbours (summed in history order, then neighbour order).
pub fn scores(neighbours: &Bags, history: &[u32], items: &[u32]) -> Vec<f32> {
    let rows = neighbours.offsets.len().saturating_sub(1);
    let n = items.len();
    // the candidates' sums, then SINKS slots that take the neighbours that are no candidate (in
    // turn, so that no chain of additions waits on one slot): no branch to mispredict
    let mut sum = vec![0f32; n + SINKS];
    POSITIONS.with(|cell| {
        let mut cell = cell.borrow_mut();
        let mut at = Positions::mark(&mut cell, rows, items);
        for &h in history.iter().filter(|&&h| (h as usize) < rows) {
            let (js, ws) = neighbours.of(h as usize);
            if !at.repeated.is_empty() {
                js.iter().zip(ws).for_each(|(&j, &w)| at.add(j, w, &mut sum));
                continue;
            }
            accumulate(at.table, js, ws, &mut sum);
        }
    });
    sum.truncate(n);
    sum.into_iter().map(f32::ln_1p).collect()
}

/// Slots that absorb the neighbours that are no candidate (a power of two).
const SINKS: usize = 8;

/// Adds each neighbour's weight `ws[x]` to its candidate's sum (`table[js[x]]`, 1-based; 0: no
/// candidate, into a sink slot past the candidates). Slices, so that the compiler knows the sums
/// do not alias the table.
fn accumulate(table: &[u32], js: &[u32], ws: &[f32], sum: &mut [f32]) {
    let n = sum.len() - SINKS;
    for (x, (&j, &w)) in js.iter().zip(ws).enumerate() {
        let p = table.get(j as usize).copied().unwrap_or(0) as usize;
        let slot = if p == 0 { n + (x & (SINKS - 1)) } else { p - 1 };
        sum[slot] += w;
    }
}

thread_local! {
    /// Per thread, each item row's place among the current candidates (0: not one), so that the
    /// neighbours of a long history (mostly not candidates) are looked up with one load each.
    static POSITIONS: std::cell::RefCell<Vec<u32>> = const { std::cell::RefCell::new(Vec::new()) };
}

/// The candidates marked in a thread's position table; unmarked again when dropped, so that the
/// table is all zeros between calls whatever happens.
struct Positions<'a> {
    table: &'a mut Vec<u32>,
    items: &'a [u32],
    /// Candidates given more than once: each item's every place, sorted by item.
    repeated: Vec<(u32, usize)>,
}

impl<'a> Positions<'a> {
    fn mark(table: &'a mut Vec<u32>, rows: usize, items: &'a [u32]) -> Self {
        if table.len() < rows {
            table.resize(rows, 0);
        }
        let mut repeated = Vec::new();
        for (k, &i) in items.iter().enumerate() {
            match table.get_mut(i as usize).filter(|_| (i as usize) < rows) {
                Some(p) if *p == 0 => *p = k as u32 + 1,
                Some(p) => {
                    if repeated.is_empty() || repeated.iter().all(|&(r, _)| r != i) {
                        repeated.push((i, *p as usize - 1));
                    }
                    repeated.push((i, k));
                }
                None => {}
            }
        }
        repeated.sort_unstable();
        Positions { table, items, repeated }
    }

    /// Adds `w` to the candidate `j`'s sum (each of its places when it is given more than once).
    #[inline]
    fn add(&mut self, j: u32, w: f32, sum: &mut [f32]) {
        let p = self.table.get(j as usize).copied().unwrap_or(0);
        if p == 0 {
            return;
        }
        if self.repeated.is_empty() {
            sum[p as usize - 1] += w;
            return;
        }
        let start = self.repeated.partition_point(|&(r, _)| r < j);
        match self.repeated.get(start) {
            Some(&(r, _)) if r == j => {
                self.repeated[start..].iter().take_while(|x| x.0 == j).for_each(|&(_, k)| sum[k] += w)
            }
            _ => sum[p as usize - 1] += w,
        }
    }
}

impl Drop for Positions<'_> {
    fn drop(&mut self) {
        for &i in self.items {
            if let Some(p) = self.table.get_mut(i as usize) {
                *p = 0;
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

    #[test]
    fn scores_match_the_plain_sums_bit_for_bit() {
        // the plain definition: for each candidate, its weight in each history item's list, summed
        // in history order
        let mut rng = crate::rng::Rng::new(5);
        let pairs: Vec<(u32, u32)> =
            (0..3000).map(|_| (1 + rng.below(200) as u32, 1 + (rng.below(60) * rng.below(60) / 59) as u32)).collect();
        let b = neighbours(201, 61, &pairs, 20);
        for round in 0..20 {
            let history: Vec<u32> = (0..(round * 3)).map(|_| rng.below(64) as u32).collect();
            let mut items: Vec<u32> = (0..30).map(|_| rng.below(61) as u32).collect();
            if round % 2 == 0 {
                items.sort_unstable();
                items.dedup();
            }
            let plain: Vec<f32> = items
                .iter()
                .map(|&c| {
                    let mut s = 0f32;
                    for &h in history.iter().filter(|&&h| (h as usize) < 61) {
                        let (js, ws) = b.of(h as usize);
                        js.iter().zip(ws).filter(|(j, _)| **j == c).for_each(|(_, w)| s += w);
                    }
                    s.ln_1p()
                })
                .collect();
            let got = scores(&b, &history, &items);
            assert_eq!(
                got.iter().map(|x| x.to_bits()).collect::<Vec<_>>(),
                plain.iter().map(|x| x.to_bits()).collect::<Vec<_>>()
            );
        }
    }
}
