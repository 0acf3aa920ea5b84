//! [`Threads`]: the ranks of a job as threads of one process.

use super::{Collective, Plain, bytes, values};
use std::sync::{Arc, Barrier, Mutex};

/// One rank of a group whose ranks are threads of this process: [`Threads::group`] makes the
/// group, each thread takes one. The same results as the ranks of an MPI job (sums in rank
/// order), without MPI: for tests, and for trying a distributed configuration on one machine.
pub struct Threads {
    rank: usize,
    shared: Arc<Shared>,
}

struct Shared {
    size: usize,
    barrier: Barrier,
    /// `slots[from][to]`: what rank `from` sends to rank `to` in the current operation.
    slots: Mutex<Vec<Vec<Vec<u8>>>>,
}

impl Threads {
    /// A group of `size` ranks, one value per rank (give each to its own thread).
    pub fn group(size: usize) -> Vec<Threads> {
        let shared = Arc::new(Shared {
            size,
            barrier: Barrier::new(size),
            slots: Mutex::new(vec![vec![Vec::new(); size]; size]),
        });
        (0..size).map(|rank| Threads { rank, shared: shared.clone() }).collect()
    }

    /// Posts `data` (one message per rank), waits for every rank, and takes what was sent here.
    fn exchange(&self, data: Vec<Vec<u8>>) -> Vec<Vec<u8>> {
        let s = &self.shared;
        s.slots.lock().unwrap_or_else(|e| e.into_inner())[self.rank] = data;
        s.barrier.wait();
        let got = {
            let slots = s.slots.lock().unwrap_or_else(|e| e.into_inner());
            (0..s.size).map(|from| slots[from][self.rank].clone()).collect()
        };
        // nobody posts the next operation before everyone has read this one
        s.barrier.wait();
        got
    }
}

impl Threads {
    /// Every rank's `data` summed in rank order.
    fn sum<T: Plain + Default + std::ops::AddAssign>(&self, data: &mut [T]) {
        let all = self.all_gather(&bytes(data));
        data.fill(T::default());
        for b in &all {
            data.iter_mut().zip(values::<T>(b)).for_each(|(s, x)| *s += x);
        }
    }
}

impl Collective for Threads {
    fn rank(&self) -> usize {
        self.rank
    }

    fn size(&self) -> usize {
        self.shared.size
    }

    fn all_gather(&self, data: &[u8]) -> Vec<Vec<u8>> {
        self.exchange(vec![data.to_vec(); self.shared.size])
    }

    fn all_to_all(&self, data: Vec<Vec<u8>>) -> Vec<Vec<u8>> {
        assert_eq!(data.len(), self.shared.size, "one message per rank");
        self.exchange(data)
    }

    fn all_reduce_f32(&self, data: &mut [f32]) {
        self.sum(data)
    }

    fn all_reduce_f64(&self, data: &mut [f64]) {
        self.sum(data)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_group_gathers_exchanges_and_sums() {
        type Got = (Vec<Vec<u8>>, Vec<Vec<u8>>, Vec<f32>);
        let out: Vec<Got> = std::thread::scope(|s| {
            let handles: Vec<_> = Threads::group(3)
                .into_iter()
                .map(|t| {
                    s.spawn(move || {
                        let r = t.rank() as u8;
                        let gathered = t.all_gather(&[r; 2]);
                        let exchanged = t.all_to_all((0..3).map(|to| vec![r * 10 + to]).collect());
                        let mut sum = vec![f32::from(r), 1.0];
                        t.all_reduce_f32(&mut sum);
                        (gathered, exchanged, sum)
                    })
                })
                .collect();
            handles.into_iter().map(|h| h.join().unwrap()).collect()
        });
        for (rank, (gathered, exchanged, sum)) in out.into_iter().enumerate() {
            assert_eq!(gathered, vec![vec![0, 0], vec![1, 1], vec![2, 2]]);
            assert_eq!(exchanged, (0..3).map(|from| vec![from * 10 + rank as u8]).collect::<Vec<_>>());
            assert_eq!(sum, vec![3.0, 3.0]);
        }
    }
}
