//! Id tables of a distributed run: replicated (every rank holds every row) or sharded row-wise
//! (row `r` lives on rank `r mod N`, with its optimizer state, as TorchRec's `ROW_WISE`);
//! lookups and updates by all-to-all, and the whole table gathered on rank 0 at the end.

use crate::dist::Counted;
use crate::kernels::table::Table;
use crate::rng::Rng;
use crate::train::Slots;
pub(crate) use crate::train::optimizer::Update;

/// Where the rows of one id table live.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Placement {
    pub rank: usize,
    pub ranks: usize,
    /// Rows of the whole table.
    pub rows: usize,
    pub sharded: bool,
}

impl Placement {
    fn owner(&self, row: u32) -> usize {
        row as usize % self.ranks
    }

    /// Whether this rank holds (and updates) `row`.
    fn owns(&self, row: u32) -> bool {
        !self.sharded || self.owner(row) == self.rank
    }

    /// The index of `row` in the table this rank holds.
    fn local(&self, row: u32) -> u32 {
        if self.sharded { row / self.ranks as u32 } else { row }
    }

    /// Rows this rank holds.
    pub fn local_rows(&self) -> usize {
        if self.sharded { (self.rows + self.ranks - 1 - self.rank) / self.ranks } else { self.rows }
    }

    /// The rows of the table this rank holds, initialised uniform(−scale, scale) from `rng` as
    /// one process initialises the whole table (every rank draws every value, keeps its own).
    pub fn init(&self, dim: usize, scale: f32, rng: &mut Rng) -> Table {
        if !self.sharded {
            return Table::uniform(self.rows, dim, scale, rng);
        }
        let mut data = Vec::with_capacity(self.local_rows() * dim);
        for r in 0..self.rows as u32 {
            let mine = self.owns(r);
            for _ in 0..dim {
                let v = (rng.next_f32() * 2.0 - 1.0) * scale;
                if mine {
                    data.push(v);
                }
            }
        }
        Table { rows: self.local_rows(), dim, data }
    }

    /// This rank's fresh optimizer slots for the table.
    pub fn slots(&self, opt: &crate::config::OptimizerConfig, dim: usize) -> Slots {
        Slots::new(opt, self.local_rows(), dim)
    }
}

/// Rows `by_owner[o][i]` put back in the order of `rows`, each `dim` wide.
fn in_order(p: &Placement, rows: &[u32], by_owner: &[Vec<f32>], dim: usize) -> Vec<f32> {
    let mut next = vec![0usize; p.ranks];
    let mut out = Vec::with_capacity(rows.len() * dim);
    for &r in rows {
        let o = p.owner(r);
        out.extend_from_slice(&by_owner[o][next[o] * dim..(next[o] + 1) * dim]);
        next[o] += 1;
    }
    out
}

/// The embeddings of this rank's distinct `rows`, asked of their owners.
pub(crate) fn fetch(comm: &Counted, p: &Placement, table: &Table, rows: &[u32]) -> Vec<f32> {
    if !p.sharded {
        return table.gather(rows);
    }
    let mut asks: Vec<Vec<u32>> = vec![Vec::new(); p.ranks];
    rows.iter().for_each(|&r| asks[p.owner(r)].push(p.local(r)));
    let asked = comm.all_to_all(&asks);
    let replies: Vec<Vec<f32>> = asked.iter().map(|a| table.gather(a)).collect();
    in_order(p, rows, &comm.all_to_all(&replies), table.dim)
}

/// The embeddings of `rows`, distinct and the same list on every rank, on every rank: each
/// owner sends its rows to all.
pub(crate) fn share(comm: &Counted, p: &Placement, table: &Table, rows: &[u32]) -> Vec<f32> {
    if !p.sharded {
        return table.gather(rows);
    }
    let mine: Vec<u32> = rows.iter().filter(|&&r| p.owns(r)).map(|&r| p.local(r)).collect();
    in_order(p, rows, &comm.all_gather(&table.gather(&mine)), table.dim)
}

/// Applies an update that every rank computed alike (the candidates of the global batch): each
/// rank updates the rows it holds.
pub(crate) fn apply_owned(p: &Placement, table: &mut Table, slots: &mut Slots, u: Update) {
    let d = table.dim;
    let (mut rows, mut uses, mut grads) = (Vec::new(), Vec::new(), Vec::new());
    for (i, &r) in u.rows.iter().enumerate() {
        if p.owns(r) {
            rows.push(p.local(r));
            uses.push(u.uses[i]);
            grads.extend_from_slice(&u.grads[i * d..(i + 1) * d]);
        }
    }
    u.opt.apply_regularized(table, slots, &rows, &uses, &mut grads, u.l2);
}

/// Applies every rank's update of its own rows (this rank's queries): each row's holders sum
/// the ranks' gradients and uses of it, in rank order, and `also` (an update every rank
/// computed alike, counted once), and update it once.
pub(crate) fn apply_exchanged(
    comm: &Counted,
    p: &Placement,
    table: &mut Table,
    slots: &mut Slots,
    u: Update,
    also: Option<Update>,
) {
    let d = table.dim;
    // per destination: the rows (local there), and each row's uses then gradient
    let (mut ids, mut vals): (Vec<Vec<u32>>, Vec<Vec<f32>>) = (vec![Vec::new(); p.ranks], vec![Vec::new(); p.ranks]);
    for (i, &r) in u.rows.iter().enumerate() {
        let dests = if p.sharded { p.owner(r)..p.owner(r) + 1 } else { 0..p.ranks };
        for o in dests {
            ids[o].push(p.local(r));
            vals[o].push(u.uses[i]);
            vals[o].extend_from_slice(&u.grads[i * d..(i + 1) * d]);
        }
    }
    let (mut ids, mut vals) = (comm.all_to_all(&ids), comm.all_to_all(&vals));
    if let Some(a) = also {
        let (mut i, mut v) = (Vec::new(), Vec::new());
        for (k, &r) in a.rows.iter().enumerate().filter(|(_, r)| p.owns(**r)) {
            i.push(p.local(r));
            v.push(a.uses[k]);
            v.extend_from_slice(&a.grads[k * d..(k + 1) * d]);
        }
        ids.push(i);
        vals.push(v);
    }
    let mut at: hashbrown::HashMap<u32, usize> = hashbrown::HashMap::new();
    let (mut rows, mut uses, mut grads) = (Vec::new(), Vec::new(), Vec::new());
    for (ids, vals) in ids.iter().zip(&vals) {
        for (&r, v) in ids.iter().zip(vals.chunks_exact(d + 1)) {
            let k = *at.entry(r).or_insert_with(|| {
                rows.push(r);
                uses.push(0.0);
                grads.extend(std::iter::repeat_n(0.0, d));
                rows.len() - 1
            });
            uses[k] += v[0];
            grads[k * d..(k + 1) * d].iter_mut().zip(&v[1..]).for_each(|(g, x)| *g += x);
        }
    }
    u.opt.apply_regularized(table, slots, &rows, &uses, &mut grads, u.l2);
}

/// The whole table on rank 0 (`None` elsewhere), from the rows each rank holds, gathered in
/// blocks (no rank makes a second copy of its part).
pub(crate) fn collect(comm: &Counted, p: &Placement, table: Table) -> Option<Table> {
    if !p.sharded {
        return (p.rank == 0).then_some(table);
    }
    let mut full = Vec::with_capacity(if p.rank == 0 { p.rows * table.dim } else { 0 });
    blocks(comm, p, &table, |rows| full.extend_from_slice(rows));
    (p.rank == 0).then_some(Table { rows: p.rows, dim: table.dim, data: full })
}

/// Every rank's rows of a sharded table in blocks of about 4 MB per rank; on rank 0, `sink`
/// gets each block's rows, consecutive rows of the whole table in order (every rank calls it
/// alike).
pub(crate) fn blocks(comm: &Counted, p: &Placement, local: &Table, mut sink: impl FnMut(&[f32])) {
    let d = local.dim.max(1);
    let block = ((1 << 20) / d).max(1);
    let mut rows = Vec::new();
    // rank 0 holds the most rows
    for start in (0..p.rows.div_ceil(p.ranks)).step_by(block) {
        let (from, to) = (start.min(local.rows), (start + block).min(local.rows));
        let Some(parts) = comm.gather(&local.data[from * d..to * d]) else { continue };
        rows.clear();
        // row `i` of each rank's part in turn: rows (start + i) · ranks + rank
        for i in 0..parts[0].len() / d {
            for part in &parts {
                match part.get(i * d..(i + 1) * d) {
                    Some(row) => rows.extend_from_slice(row),
                    None => break,
                }
            }
        }
        sink(&rows);
    }
}
