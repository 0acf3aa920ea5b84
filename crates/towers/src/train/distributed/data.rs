//! The training set of a distributed run: vocabularies, candidate rows and counts built
//! collectively (every rank gets the rows one process would give, whatever the number of
//! ranks), each rank's own examples encoded against them.

use crate::data::{CandidateKey, Catalog, Dataset, Earlier, Interactions, Items, Vocabulary, counts};
use crate::dist::Counted;
use crate::{Error, Result};

/// This rank's examples, encoded against the job's vocabularies.
pub(crate) struct Shared {
    /// Vocabularies, candidates and counts of the whole job; queries, candidates and weights of
    /// this rank's examples.
    pub dataset: Dataset,
    /// The job's index of this rank's first example (the shares, one after the other, are the
    /// data set).
    pub offset: usize,
    /// Examples of the whole job.
    pub total: usize,
}

/// Keys as bytes: each one's length (u32) then its bytes.
pub(super) fn encode(keys: impl Iterator<Item = impl AsRef<str>>) -> Vec<u8> {
    let mut out = Vec::new();
    for k in keys {
        let k = k.as_ref().as_bytes();
        out.extend_from_slice(&(k.len() as u32).to_le_bytes());
        out.extend_from_slice(k);
    }
    out
}

pub(super) fn decode(mut bytes: &[u8]) -> impl Iterator<Item = &str> {
    std::iter::from_fn(move || {
        let n = u32::from_le_bytes(bytes.get(..4)?.try_into().ok()?) as usize;
        let (k, rest) = bytes[4..].split_at(n);
        bytes = rest;
        // what `encode` wrote from `&str`
        Some(std::str::from_utf8(k).unwrap_or_default())
    })
}

/// Every rank's `keys` (in first-appearance order) merged in rank order after those of `start`:
/// the vocabulary of the whole data set, and the index there of each of this rank's keys (entry
/// `i` for the key of index `i`, entry 0 the OOV).
pub(super) fn merge(comm: &Counted, keys: &Vocabulary, start: Option<&Vocabulary>) -> (Vocabulary, Vec<u32>) {
    let all = comm.all_gather_bytes(&encode(keys.iter()));
    let mut vocab = start.cloned().unwrap_or_default();
    let mut mine = vec![Vocabulary::OOV];
    for (rank, bytes) in all.iter().enumerate() {
        for k in decode(bytes) {
            let i = vocab.insert(k);
            if rank == comm.rank() {
                mine.push(i);
            }
        }
    }
    (vocab, mine)
}

/// Builds the job's training set from this rank's `share` (see [`Shared`]), continuing the
/// vocabularies and counts of `earlier`, as `Dataset::build_on` does.
pub(crate) fn build(
    comm: &Counted,
    share: &Interactions,
    catalog: Option<&Catalog>,
    key: CandidateKey,
    earlier: Option<Earlier>,
) -> Result<Shared> {
    let (query_vocab, query_row) = merge(comm, share.query_ids(), earlier.map(|e| e.query_vocab));
    let (candidate_ids, candidate_index) = merge(comm, share.candidate_ids(), None);
    let (items, rows) = Items::build_on(earlier.map(|e| e.items), catalog, key, candidate_ids.iter())?;
    let queries: Vec<u32> = share.query_indices().iter().map(|&q| query_row[q as usize]).collect();
    let candidates: Vec<u32> =
        share.candidate_indices().iter().map(|&c| rows[candidate_index[c as usize] as usize - 1]).collect();
    let mut all_counts: Vec<f64> = counts(&candidates, items.len()).into_iter().map(f64::from).collect();
    comm.all_reduce_f64(&mut all_counts);
    let mut all_counts: Vec<f32> = all_counts.into_iter().map(|c| c as f32).collect();
    if let Some(e) = earlier {
        e.add_counts(&mut all_counts);
    }
    let lens = comm.all_gather(&[share.len() as u64]);
    let lens: Vec<usize> = lens.iter().map(|l| l[0] as usize).collect();
    let (offset, total) = (lens[..comm.rank()].iter().sum(), lens.iter().sum());
    if total == 0 {
        return Err(Error::Data("the training set is empty".into()));
    }
    let dataset =
        Dataset { query_vocab, items, queries, candidates, weights: share.weights.clone(), counts: all_counts };
    Ok(Shared { dataset, offset, total })
}

/// Every rank's (query, candidate) pairs, on rank 0.
pub(crate) fn pairs_on_root(comm: &Counted, d: &Dataset) -> Option<Vec<(u32, u32)>> {
    let flat: Vec<u32> = d.queries.iter().zip(&d.candidates).flat_map(|(&q, &c)| [q, c]).collect();
    let all = comm.gather(&flat)?;
    Some(all.iter().flat_map(|v| v.chunks_exact(2).map(|p| (p[0], p[1]))).collect())
}
