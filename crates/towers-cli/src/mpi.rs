//! Running a command as one rank of an MPI job (`mpirun -np N towers … --distributed`; a build
//! with `--features mpi`).

use towers::Result;
use towers::dist::Collective;

/// Runs `rank` as this process's rank of the MPI job; every rank ends with the same outcome
/// ([`towers::dist::agree`]). Ranks other than 0 print nothing: an error ends them with its
/// exit code, and rank 0 says it.
#[cfg(feature = "mpi")]
pub fn as_rank(rank: impl FnOnce(&dyn Collective) -> Result<()>) -> Result<()> {
    let mpi = towers::dist::Mpi::init()?;
    let result = towers::dist::agree(&mpi, rank(&mpi));
    if let (Err(e), true) = (&result, mpi.rank() != 0) {
        let code = crate::common::exit_code(e);
        drop(mpi);
        std::process::exit(i32::from(code));
    }
    result
}

/// Without MPI: says how to build with it.
#[cfg(not(feature = "mpi"))]
pub fn as_rank(_: impl FnOnce(&dyn Collective) -> Result<()>) -> Result<()> {
    Err(towers::Error::Config(
        "this towers was built without MPI: build it with `cargo build --release -p towers-cli --features mpi` \
         (needs Open MPI: apt-get install libopenmpi-dev openmpi-bin libclang-dev)"
            .into(),
    ))
}
