//! Approximate top-k by inner product: an inverted file (IVF) with 4-bit product-quantised
//! lists. A k-means coarse quantiser (trained on a sample) splits the vectors into `nlist`
//! lists; each vector's residual from its list's centroid is stored as 4-bit codes
//! ([`kernels::fastscan`](crate::kernels::fastscan)). A query scores the centroids, scans the
//! codes of its `nprobe` best lists with byte shuffles (an approximate score per vector), keeps
//! the `reorder` best approximate scores and re-scores them exactly from the f32 vectors
//! (`panel::exact_dot`, the same FMA chain as the exact index); the top k of those, ties by lower
//! id, is the answer.
//!
//! The codes are score-aware (see [`Pq4::encode`]); the codewords start from k-means on a sample
//! of residuals and are refined for the same loss ([`Pq4::refine`]). One query scans its lists in
//! memory order, fetching ahead; a batch is searched 64 queries at a time, list by list, so that
//! a list's codes are read once for all the queries of the block that probe it. Either way a
//! query's answer does not depend on the batch. Filters apply before re-ranking; a query left
//! with fewer than `k` results is searched again over every list. Saved as safetensors
//! (`write` / `read`): the centroids, list offsets, ids in list order, the codewords and
//! the codes; the f32 vectors come from the caller (the model's candidate embeddings).

mod format;
mod kmeans;
mod search;

pub use format::IVF_FORMAT_VERSION;

use crate::kernels::fastscan::{BLOCK, Pq4};
use crate::kernels::topk::Scored;
use crate::kernels::with_huge_pages;
use crate::progress::{Event, Observer};
use crate::rng::Rng;
use crate::{Error, Result};
use rayon::prelude::*;

/// Padding slot of a list's last block.
const NO_ID: u32 = u32::MAX;
/// Product-quantiser training: residuals sampled, k-means iterations.
const PQ_SAMPLE: usize = 65_536;
const PQ_ITERATIONS: usize = 20;
/// Passes of score-aware codebook training after k-means.
const PQ_REFINE: usize = 2;

/// Build and search settings of an [`IvfIndex`]; 0 means "choose from the data size".
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct IvfParams {
    /// Lists (k-means centroids). 0: `min(4·√n, n / 32)`.
    pub nlist: usize,
    /// Lists scanned per query. 0: 22% of `nlist`.
    pub nprobe: usize,
    /// Candidates re-scored exactly per query (at least `k`). 0: 300.
    pub reorder: usize,
    /// k-means iterations.
    pub iterations: usize,
    /// k-means training sample per list.
    pub sample_per_list: usize,
    /// Seed of the samples and the initial centroids.
    pub seed: u64,
}

impl Default for IvfParams {
    fn default() -> Self {
        IvfParams { nlist: 0, nprobe: 0, reorder: 0, iterations: 10, sample_per_list: 100, seed: 42 }
    }
}

impl IvfParams {
    /// `nlist` for `n` vectors.
    pub fn nlist_for(&self, n: usize) -> usize {
        let auto = ((4.0 * (n as f64).sqrt()).round() as usize).min(n / 32);
        (if self.nlist == 0 { auto } else { self.nlist }).clamp(1, n.max(1))
    }

    /// `nprobe` for `nlist` lists.
    pub fn nprobe_for(&self, nlist: usize) -> usize {
        (if self.nprobe == 0 { (nlist * 22).div_ceil(100) } else { self.nprobe }).clamp(1, nlist.max(1))
    }

    /// Candidates re-scored exactly.
    pub fn reorder(&self) -> usize {
        if self.reorder == 0 { 300 } else { self.reorder }
    }
}

/// An approximate inner-product index: k-means lists of 4-bit codes, re-ranked exactly. See the
/// module docs.
#[derive(Debug, Clone)]
pub struct IvfIndex {
    dim: usize,
    /// The vectors in slot order (zeros for padding), `slots × dim`: the exact re-ranking
    /// reads them, near each other when they share a list.
    rows: Vec<f32>,
    /// `nlist × dim`.
    centroids: Vec<f32>,
    /// List `l` holds `offsets[l + 1] − offsets[l]` vectors.
    offsets: Vec<u32>,
    /// The residual quantiser.
    pq: Pq4,
    /// List `l` is blocks `block_offsets[l]..block_offsets[l + 1]` of `codes`.
    block_offsets: Vec<u32>,
    /// Every list's residual codes, in blocks of 32.
    codes: Vec<u8>,
    /// The id of each block slot (`NO_ID` for padding).
    slot_ids: Vec<u32>,
    /// Lists scanned per query.
    nprobe: usize,
    /// Candidates re-scored exactly per query.
    reorder: usize,
}

impl PartialEq for IvfIndex {
    fn eq(&self, o: &Self) -> bool {
        (self.dim, &self.centroids, &self.offsets, &self.slot_ids, &self.pq, &self.codes, self.nprobe, self.reorder)
            == (o.dim, &o.centroids, &o.offsets, &o.slot_ids, &o.pq, &o.codes, o.nprobe, o.reorder)
    }
}

/// The lists of an index: `nlist × dim` centroids, and list `l`'s vector ids
/// `ids[offsets[l]..offsets[l + 1]]`.
struct Lists {
    centroids: Vec<f32>,
    offsets: Vec<u32>,
    ids: Vec<u32>,
}

/// Groups `(list, value)` pairs by list, in their order within a list (a counting sort): list `l`
/// holds `values[start[l]..start[l + 1]]`; returns `(start, values)`.
pub(super) fn group_by_list<T: Copy + Default>(
    nlist: usize,
    items: impl Iterator<Item = (u32, T)> + Clone,
) -> (Vec<usize>, Vec<T>) {
    let mut start = vec![0usize; nlist + 1];
    items.clone().for_each(|(l, _)| start[l as usize + 1] += 1);
    for l in 0..nlist {
        start[l + 1] += start[l];
    }
    let mut next = start.clone();
    let mut values = vec![T::default(); start[nlist]];
    for (l, v) in items {
        values[next[l as usize]] = v;
        next[l as usize] += 1;
    }
    (start, values)
}

impl IvfIndex {
    /// Builds an index over `vectors` (`n × dim`, row-major): k-means on a sample, every vector
    /// into its nearest list, then the residual quantiser. Deterministic for a given seed
    /// (whatever the thread count).
    pub fn build(vectors: &[f32], dim: usize, params: &IvfParams, observer: &mut dyn Observer) -> Result<IvfIndex> {
        if dim == 0 || !vectors.len().is_multiple_of(dim) {
            return Err(Error::Data("vectors must be a whole number of rows of width dim".into()));
        }
        let n = vectors.len() / dim;
        if n == 0 {
            return Err(Error::Data("cannot build an index over no vectors".into()));
        }
        if n > NO_ID as usize {
            return Err(Error::Data(format!("{n} vectors: an IVF index holds at most {}", NO_ID - 1)));
        }
        let nlist = params.nlist_for(n);
        let nprobe = params.nprobe_for(nlist);
        // an index build cannot be stopped half-way: progress only
        let mut progress = |e: Event| {
            let _ = observer.observe(e);
        };
        progress(Event::Started { what: "IVF index", total: params.iterations as u64 + 2 });
        let mut rng = Rng::new(params.seed);
        let rows = kmeans::sample_rows(n, (nlist * params.sample_per_list.max(1)).clamp(nlist, n), &mut rng);
        let sample = kmeans::gather(vectors, dim, &rows);
        let centroids = kmeans::kmeans(&sample, dim, nlist, params.iterations, &mut rng, &mut progress);
        progress(Event::Message("assigning every vector"));
        let a = kmeans::assign(vectors, &centroids, dim);
        progress(Event::Step);
        progress(Event::Message("training the residual quantiser"));
        let pq = kmeans::train_pq(vectors, dim, &centroids, &a, &mut rng);
        progress(Event::Step);
        let (start, ids) = group_by_list(nlist, a.iter().enumerate().map(|(i, &l)| (l, i as u32)));
        let offsets = start.into_iter().map(|o| o as u32).collect();
        progress(Event::Message("encoding"));
        let lists = Lists { centroids, offsets, ids };
        let ivf = IvfIndex::from_lists(vectors, dim, lists, pq, None, (nprobe, params.reorder()))?;
        progress(Event::Finished);
        tracing::info!(n, dim, nlist, nprobe, reorder = ivf.reorder, "IVF index built");
        Ok(ivf)
    }

    /// The index from its lists and their codes (`None`: encode the residuals), searched with
    /// `(nprobe, reorder)`; the lists must be consistent, codes of the wrong size are refused.
    fn from_lists(
        vectors: &[f32],
        dim: usize,
        lists: Lists,
        pq: Pq4,
        codes: Option<Vec<u8>>,
        (nprobe, reorder): (usize, usize),
    ) -> Result<IvfIndex> {
        let Lists { centroids, offsets, ids } = lists;
        let nlist = offsets.len() - 1;
        let mut block_offsets = vec![0u32; nlist + 1];
        for l in 0..nlist {
            block_offsets[l + 1] = block_offsets[l] + (offsets[l + 1] - offsets[l]).div_ceil(BLOCK as u32);
        }
        let mut slot_ids = vec![NO_ID; block_offsets[nlist] as usize * BLOCK];
        for l in 0..nlist {
            let members = &ids[offsets[l] as usize..offsets[l + 1] as usize];
            let s0 = block_offsets[l] as usize * BLOCK;
            slot_ids[s0..s0 + members.len()].copy_from_slice(members);
        }
        let encode = || -> Vec<u8> {
            (0..nlist)
                .into_par_iter()
                .flat_map_iter(|l| {
                    let slots = &slot_ids[block_offsets[l] as usize * BLOCK..block_offsets[l + 1] as usize * BLOCK];
                    let c = &centroids[l * dim..(l + 1) * dim];
                    pq.pack(slots.len(), |i| match slots[i] {
                        NO_ID => None,
                        id => {
                            let x = &vectors[id as usize * dim..(id as usize + 1) * dim];
                            let r: Vec<f32> = x.iter().zip(c).map(|(x, c)| x - c).collect();
                            Some(pq.encode(&r, x))
                        }
                    })
                })
                .collect()
        };
        let codes = codes.unwrap_or_else(encode);
        if codes.len() != block_offsets[nlist] as usize * pq.block_bytes() {
            return Err(Error::Data(format!(
                "{} bytes of codes, expected {}",
                codes.len(),
                block_offsets[nlist] as usize * pq.block_bytes()
            )));
        }
        let zeros = vec![0f32; dim];
        let mut rows = with_huge_pages(slot_ids.len() * dim);
        rows.extend(slot_ids.iter().flat_map(|&id| match id {
            NO_ID => &zeros[..],
            id => &vectors[id as usize * dim..(id as usize + 1) * dim],
        }));
        let reorder = reorder.clamp(1, (*offsets.last().unwrap_or(&0) as usize).max(1));
        Ok(IvfIndex { dim, rows, centroids, offsets, pq, block_offsets, codes, slot_ids, nprobe, reorder })
    }

    /// Number of lists.
    pub fn nlist(&self) -> usize {
        self.offsets.len() - 1
    }

    /// Lists scanned per query.
    pub fn nprobe(&self) -> usize {
        self.nprobe
    }

    /// Sets the lists scanned per query (clamped to `1..=nlist`).
    pub fn set_nprobe(&mut self, nprobe: usize) {
        self.nprobe = nprobe.clamp(1, self.nlist());
    }

    /// Candidates re-scored exactly per query.
    pub fn reorder(&self) -> usize {
        self.reorder
    }

    /// Sets the candidates re-scored exactly per query (clamped to `1..=n`); with
    /// `nprobe = nlist` and `reorder = n` the search is exact.
    pub fn set_reorder(&mut self, reorder: usize) {
        self.reorder = reorder.clamp(1, crate::index::Index::len(self).max(1));
    }

    /// The size of each list.
    pub fn list_sizes(&self) -> Vec<usize> {
        self.offsets.windows(2).map(|w| (w[1] - w[0]) as usize).collect()
    }
}

/// Mean over queries of |approximate top-k ∩ exact top-k| / (size of the exact top-k).
pub fn recall_at_k(approx: &[Vec<Scored>], exact: &[Vec<Scored>]) -> f64 {
    let per: Vec<f64> = approx
        .iter()
        .zip(exact)
        .filter(|(_, e)| !e.is_empty())
        .map(|(a, e)| a.iter().filter(|x| e.iter().any(|y| y.id == x.id)).count() as f64 / e.len() as f64)
        .collect();
    if per.is_empty() { 1.0 } else { per.iter().sum::<f64>() / per.len() as f64 }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::index::{BruteForceIndex, Filter, Index, Metric};
    use crate::kernels::panel::exact_dot;
    use crate::progress::quiet;
    use crate::tensors::{TensorReader, TensorWriter};
    use std::path::Path;

    fn to_bytes(ivf: &IvfIndex) -> Vec<u8> {
        let mut w = TensorWriter::default();
        ivf.write(&mut w).unwrap();
        w.to_bytes().unwrap()
    }

    fn from_bytes(bytes: &[u8], v: &[f32], d: usize) -> Result<IvfIndex> {
        IvfIndex::read(&TensorReader::parse(Path::new("index"), bytes)?, v, d)
    }

    /// Points around 50 random centres, as embeddings cluster.
    fn clustered(n: usize, d: usize, seed: u64) -> Vec<f32> {
        let mut rng = Rng::new(seed);
        let centres: Vec<f32> = (0..50 * d).map(|_| 2.0 * rng.next_f32() - 1.0).collect();
        (0..n)
            .flat_map(|_| {
                let c = rng.below(50);
                (0..d).map(|j| centres[c * d + j] + 0.3 * (rng.next_f32() - 0.5)).collect::<Vec<_>>()
            })
            .collect()
    }

    #[test]
    fn recall_is_high_and_every_list_makes_it_exact() {
        let (n, d, nq) = (20_000, 16, 200);
        let v = clustered(n, d, 1);
        let q = clustered(nq, d, 2);
        let exact = BruteForceIndex::new(v.clone(), d, Metric::Dot);
        let want = exact.search_batch(&q, 10, &[]);
        let mut ivf = IvfIndex::build(&v, d, &IvfParams::default(), &mut quiet()).unwrap();
        assert_eq!(ivf.nlist(), 566);
        assert_eq!(ivf.list_sizes().iter().sum::<usize>(), n);
        let got = ivf.search_batch(&q, 10, &[]);
        let r = recall_at_k(&got, &want);
        assert!(r >= 0.9, "recall@10 {r}");
        // one query at a time gives the same as the batch
        assert_eq!(ivf.search(&q[..d], 10, &Filter::default()), got[0]);
        // every list, every candidate re-scored: exact
        ivf.set_nprobe(ivf.nlist());
        ivf.set_reorder(n);
        let all = ivf.search_batch(&q, 10, &[]);
        for (a, w) in all.iter().zip(&want) {
            assert_eq!(a.iter().map(|s| s.id).collect::<Vec<_>>(), w.iter().map(|s| s.id).collect::<Vec<_>>());
            for (x, y) in a.iter().zip(w) {
                assert!((x.score - y.score).abs() < 1e-5);
            }
        }
    }

    #[test]
    fn a_query_gets_the_same_answer_alone_as_in_a_batch_whatever_the_threads() {
        let (n, d) = (3000, 8);
        let v = clustered(n, d, 5);
        let ivf = IvfIndex::build(
            &v,
            d,
            &IvfParams { nlist: 20, nprobe: 5, reorder: 30, ..Default::default() },
            &mut quiet(),
        )
        .unwrap();
        let q = clustered(50, d, 6);
        let exclude: Vec<u32> = (0..n as u32).step_by(3).collect();
        let f = [Filter { exclude: &exclude, allow: None }];
        let batch = ivf.search_batch(&q, 10, &f);
        let one = rayon::ThreadPoolBuilder::new().num_threads(1).build().unwrap();
        assert_eq!(one.install(|| ivf.search_batch(&q, 10, &f)), batch);
        for (i, r) in batch.iter().enumerate() {
            assert_eq!(&ivf.search(&q[i * d..(i + 1) * d], 10, &f[0]), r);
            assert_eq!(r.len(), 10);
            assert!(r.iter().all(|s| s.id % 3 != 0));
            // exact scores, best first
            assert!(r.windows(2).all(|w| w[0].score >= w[1].score));
            for s in r {
                assert_eq!(s.score, exact_dot(&q[i * d..(i + 1) * d], &v[s.id as usize * d..(s.id as usize + 1) * d]));
            }
        }
    }

    #[test]
    fn filters_apply_and_short_results_fall_back_to_every_list() {
        let (n, d) = (3000, 8);
        let v = clustered(n, d, 3);
        let ivf = IvfIndex::build(&v, d, &IvfParams { nprobe: 2, ..Default::default() }, &mut quiet()).unwrap();
        let exact = BruteForceIndex::new(v.clone(), d, Metric::Dot);
        let q = &v[..d];
        let exclude: Vec<u32> = (0..n as u32).filter(|i| i % 2 == 0).collect();
        let f = Filter { exclude: &exclude, allow: None };
        assert!(ivf.search(q, 10, &f).iter().all(|s| s.id % 2 == 1));
        // an allow list far from the query's lists: only the fallback finds them
        let allow: Vec<u32> = vec![5, 17, 2999];
        let f = Filter { exclude: &[], allow: Some(&allow) };
        let got: Vec<u32> = ivf.search(q, 10, &f).iter().map(|s| s.id).collect();
        let want: Vec<u32> = exact.search(q, 10, &f).iter().map(|s| s.id).collect();
        assert_eq!(got, want);
    }

    #[test]
    fn saved_index_round_trips_and_bad_bytes_are_refused() {
        let (n, d) = (2000, 8);
        let v = clustered(n, d, 4);
        let params = IvfParams { nlist: 30, nprobe: 7, ..Default::default() };
        let ivf = IvfIndex::build(&v, d, &params, &mut quiet()).unwrap();
        // deterministic: the same seed builds the same index, whatever the thread count
        let one = rayon::ThreadPoolBuilder::new().num_threads(1).build().unwrap();
        assert_eq!(ivf, one.install(|| IvfIndex::build(&v, d, &params, &mut quiet())).unwrap());
        let bytes = to_bytes(&ivf);
        let back = from_bytes(&bytes, &v, d).unwrap();
        assert_eq!(back, ivf);
        assert_eq!(back.search(&v[..d], 5, &Filter::default()), ivf.search(&v[..d], 5, &Filter::default()));
        assert!(from_bytes(&bytes[..bytes.len() / 2], &v, d).is_err());
        assert!(from_bytes(b"not an index", &v, d).is_err());
        // codes of another index
        let mut other = ivf.clone();
        other.codes.pop();
        let err = from_bytes(&to_bytes(&other), &v, d).unwrap_err().to_string();
        assert!(err.contains("codes"), "{err}");
        // vectors of another model
        assert!(from_bytes(&bytes, &v[..(n - 1) * d], d).is_err());
        let err = from_bytes(&bytes, &v[..n * 4], 4).unwrap_err().to_string();
        assert!(err.contains("centroids"), "{err}");
    }
}
