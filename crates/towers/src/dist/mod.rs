//! Collective communication between the ranks of a distributed job: what distributed training
//! ([`Trainer::fit_distributed`](crate::Trainer::fit_distributed)) needs of an engine.
//!
//! [`Collective`] is the interface; [`Mpi`] (cargo feature `mpi`) runs it on MPI (Open MPI under
//! `mpirun`, Slurm or the Kubernetes MPI Operator), [`Threads`] on threads of one process (a
//! job's ranks side by side, for tests and for trying a configuration). Every operation is
//! *collective*: every rank calls it, in the same order.

#[cfg(feature = "mpi")]
mod mpi;
use crate::{Error, ErrorKind, Result};
mod threads;

#[cfg(feature = "mpi")]
pub use self::mpi::Mpi;
pub use threads::Threads;

/// The operations of a group of `size` ranks that distributed training uses.
pub trait Collective {
    /// This rank, in `0..size`.
    fn rank(&self) -> usize;
    /// Ranks in the group.
    fn size(&self) -> usize;
    /// Every rank's `data`, in rank order (`MPI_Allgatherv`).
    fn all_gather(&self, data: &[u8]) -> Vec<Vec<u8>>;
    /// Sends `data[r]` to rank `r`; returns what each rank sent to this one (`MPI_Alltoallv`).
    fn all_to_all(&self, data: Vec<Vec<u8>>) -> Vec<Vec<u8>>;
    /// Replaces `data` by its element-wise sum over the ranks, the same on every rank
    /// (`MPI_Allreduce`).
    fn all_reduce_f32(&self, data: &mut [f32]);
    /// As [`Collective::all_reduce_f32`], in f64.
    fn all_reduce_f64(&self, data: &mut [f64]);
}

/// `result` on every rank when every rank's is `Ok`; otherwise, on every rank, an error: its
/// own for the first rank that failed, "rank R: …" of the same kind for the others. Call it
/// where ranks may fail apart (reading their shares, writing the model), so that none waits for
/// a rank that stopped.
pub fn agree<T>(comm: &dyn Collective, result: Result<T>) -> Result<T> {
    let mine = match &result {
        Ok(_) => Vec::new(),
        Err(e) => {
            let kind = [ErrorKind::Input, ErrorKind::Usage].iter().position(|k| *k == e.kind()).unwrap_or(2) as u8;
            std::iter::once(kind).chain(e.to_string().into_bytes()).collect()
        }
    };
    let all = comm.all_gather(&mine);
    match all.iter().enumerate().find(|(_, m)| !m.is_empty()) {
        Some((r, _)) if r == comm.rank() => result,
        Some((r, m)) => {
            let text = format!("rank {r}: {}", String::from_utf8_lossy(&m[1..]));
            Err(match m[0] {
                0 => Error::Data(text),
                1 => Error::Config(text),
                _ => Error::Internal(text),
            })
        }
        None => result,
    }
}

/// Plain numbers sent as little-endian bytes.
pub(crate) trait Plain: Copy {
    const SIZE: usize;
    fn put(self, out: &mut Vec<u8>);
    fn take(bytes: &[u8]) -> Self;
}

macro_rules! plain {
    ($($t:ty),*) => {$(
        impl Plain for $t {
            const SIZE: usize = std::mem::size_of::<$t>();
            fn put(self, out: &mut Vec<u8>) {
                out.extend_from_slice(&self.to_le_bytes());
            }
            fn take(bytes: &[u8]) -> Self {
                <$t>::from_le_bytes(bytes.try_into().expect("a whole number of values"))
            }
        }
    )*};
}
plain!(u8, u32, u64, f32, f64);

/// `values` as bytes.
pub(crate) fn bytes<T: Plain>(values: &[T]) -> Vec<u8> {
    let mut out = Vec::with_capacity(values.len() * T::SIZE);
    values.iter().for_each(|v| v.put(&mut out));
    out
}

/// The values `bytes` holds.
pub(crate) fn values<T: Plain>(bytes: &[u8]) -> Vec<T> {
    bytes.chunks_exact(T::SIZE).map(T::take).collect()
}

/// A group's operations with the bytes this rank sent counted.
pub(crate) struct Counted<'a> {
    pub inner: &'a dyn Collective,
    sent: std::cell::Cell<u64>,
}

impl<'a> Counted<'a> {
    pub fn new(inner: &'a dyn Collective) -> Self {
        Counted { inner, sent: Default::default() }
    }

    /// Bytes this rank has sent (to other ranks) so far.
    pub fn sent(&self) -> u64 {
        self.sent.get()
    }

    fn count(&self, n: usize) {
        self.sent.set(self.sent.get() + n as u64);
    }

    pub fn rank(&self) -> usize {
        self.inner.rank()
    }

    pub fn size(&self) -> usize {
        self.inner.size()
    }

    /// Every rank's values, in rank order.
    pub fn all_gather<T: Plain>(&self, v: &[T]) -> Vec<Vec<T>> {
        self.count(v.len() * T::SIZE * (self.size() - 1));
        self.inner.all_gather(&bytes(v)).iter().map(|b| values(b)).collect()
    }

    /// Every rank's bytes, in rank order.
    pub fn all_gather_bytes(&self, v: &[u8]) -> Vec<Vec<u8>> {
        self.count(v.len() * (self.size() - 1));
        self.inner.all_gather(v)
    }

    /// `v[r]` to rank `r`; what each rank sent here.
    pub fn all_to_all<T: Plain>(&self, v: &[Vec<T>]) -> Vec<Vec<T>> {
        let me = self.rank();
        self.count(v.iter().enumerate().filter(|(r, _)| *r != me).map(|(_, x)| x.len() * T::SIZE).sum());
        self.inner.all_to_all(v.iter().map(|x| bytes(x)).collect()).iter().map(|b| values(b)).collect()
    }

    /// Sums over the ranks.
    pub fn all_reduce_f32(&self, v: &mut [f32]) {
        // a ring all-reduce sends about twice the buffer
        self.count(2 * v.len() * 4 * (self.size() - 1) / self.size());
        self.inner.all_reduce_f32(v)
    }

    /// Sums over the ranks.
    pub fn all_reduce_f64(&self, v: &mut [f64]) {
        self.count(2 * v.len() * 8 * (self.size() - 1) / self.size());
        self.inner.all_reduce_f64(v)
    }

    /// Every rank's `v` to rank 0 (`Some` there, `None` elsewhere).
    pub fn gather<T: Plain>(&self, v: &[T]) -> Option<Vec<Vec<T>>> {
        let mut send = vec![Vec::new(); self.size()];
        send[0] = bytes(v);
        if self.rank() != 0 {
            self.count(send[0].len());
        }
        let got = self.inner.all_to_all(send);
        (self.rank() == 0).then(|| got.iter().map(|b| values(b)).collect())
    }
}
