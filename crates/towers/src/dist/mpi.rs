//! [`Mpi`]: the group of an MPI job (cargo feature `mpi`).

use super::Collective;
use crate::{Error, Result};
use mpi::collective::SystemOperation;
use mpi::datatype::{Partition, PartitionMut};
use mpi::traits::{Communicator, CommunicatorCollectives, Equivalence};
use mpi::{Count, Threading};

/// Largest message, in elements, of one MPI call (counts are 32-bit).
const CHUNK: usize = 1 << 30;

fn displacements(counts: &[Count]) -> Vec<Count> {
    counts.iter().scan(0, |at, &c| Some(std::mem::replace(at, *at + c))).collect()
}

/// The ranks of the MPI job this process belongs to (`MPI_COMM_WORLD`). Made once per process;
/// MPI is finalised when it is dropped.
pub struct Mpi {
    world: mpi::topology::SimpleCommunicator,
    _universe: mpi::environment::Universe,
}

impl Mpi {
    /// Initialises MPI (only the calling thread makes MPI calls). Fails when MPI was
    /// initialised before.
    pub fn init() -> Result<Mpi> {
        let (universe, _) = mpi::initialize_with_threading(Threading::Funneled)
            .ok_or_else(|| Error::Config("MPI is already initialised in this process".into()))?;
        Ok(Mpi { world: universe.world(), _universe: universe })
    }

    fn gather_chunk<T: Equivalence + Copy + Default>(&self, data: &[T]) -> Vec<Vec<T>> {
        let n = self.size();
        let mut counts: Vec<Count> = vec![0; n];
        self.world.all_gather_into(&(data.len() as Count), &mut counts[..]);
        let displs = displacements(&counts);
        let total = counts.iter().map(|&c| c as usize).sum();
        if total == 0 {
            return vec![Vec::new(); n];
        }
        let mut all = vec![T::default(); total];
        let one = [T::default()];
        let send = if data.is_empty() { &one[..0] } else { data };
        {
            let mut part = PartitionMut::new(&mut all[..], &counts[..], &displs[..]);
            self.world.all_gather_varcount_into(send, &mut part);
        }
        displs.iter().zip(&counts).map(|(&d, &c)| all[d as usize..(d + c) as usize].to_vec()).collect()
    }

    fn reduce<T: Equivalence + Copy>(&self, data: &mut [T]) {
        for chunk in data.chunks_mut(CHUNK) {
            let send = chunk.to_vec();
            self.world.all_reduce_into(&send[..], chunk, SystemOperation::sum());
        }
    }
}

impl Collective for Mpi {
    fn rank(&self) -> usize {
        self.world.rank() as usize
    }

    fn size(&self) -> usize {
        self.world.size() as usize
    }

    fn all_gather(&self, data: &[u8]) -> Vec<Vec<u8>> {
        // in rounds of at most CHUNK bytes per rank
        let mut rounds = [data.len().div_ceil(CHUNK) as u64; 1];
        let mut most = [0u64];
        self.world.all_reduce_into(&rounds[..], &mut most[..], SystemOperation::max());
        rounds[0] = most[0].max(1);
        let mut out = vec![Vec::new(); self.size()];
        for round in 0..rounds[0] as usize {
            let piece = &data[(round * CHUNK).min(data.len())..((round + 1) * CHUNK).min(data.len())];
            for (o, got) in out.iter_mut().zip(self.gather_chunk(piece)) {
                o.extend_from_slice(&got);
            }
        }
        out
    }

    fn all_to_all(&self, data: Vec<Vec<u8>>) -> Vec<Vec<u8>> {
        let n = self.size();
        assert_eq!(data.len(), n, "one message per rank");
        assert!(data.iter().map(Vec::len).sum::<usize>() < i32::MAX as usize, "an all-to-all of under 2 GiB");
        let send_counts: Vec<Count> = data.iter().map(|d| d.len() as Count).collect();
        let mut recv_counts: Vec<Count> = vec![0; n];
        self.world.all_to_all_into(&send_counts[..], &mut recv_counts[..]);
        let flat: Vec<u8> = data.concat();
        let (send_displs, recv_displs) = (displacements(&send_counts), displacements(&recv_counts));
        // buffers of at least one byte: MPI does not take the address of an empty one
        let total: usize = recv_counts.iter().map(|&c| c as usize).sum();
        let mut all = vec![0u8; total.max(1)];
        let mut flat = flat;
        if flat.is_empty() {
            flat.push(0);
        }
        {
            let send = Partition::new(&flat[..], &send_counts[..], &send_displs[..]);
            let mut recv = PartitionMut::new(&mut all[..], &recv_counts[..], &recv_displs[..]);
            self.world.all_to_all_varcount_into(&send, &mut recv);
        }
        recv_displs.iter().zip(&recv_counts).map(|(&d, &c)| all[d as usize..(d + c) as usize].to_vec()).collect()
    }

    fn all_reduce_f32(&self, data: &mut [f32]) {
        self.reduce(data)
    }

    fn all_reduce_f64(&self, data: &mut [f64]) {
        self.reduce(data)
    }
}
