//! Running a command as one rank of an MPI job (`mpirun -np N towers … --distributed`; a build
//! with `--features mpi`).

use towers::Result;
use towers::dist::Collective;

/// Runs `rank` as this process's rank of the MPI job; every rank ends with the same outcome
/// ([`towers::dist::agree`]). On an error rank 0 says it, and every rank waits for that before
/// it exits with the error's code (a rank that ends first makes `mpirun` stop the others).
#[cfg(feature = "mpi")]
pub fn as_rank(rank: impl FnOnce(&dyn Collective) -> Result<()>) -> Result<()> {
    let mpi = towers::dist::Mpi::init()?;
    let result = towers::dist::agree(&mpi, rank(&mpi));
    if let Err(e) = &result {
        if mpi.rank() == 0 {
            eprintln!("error: {}", crate::common::cli_spelling::<crate::Cli>(&e.to_string()));
        }
        mpi.all_gather(&[]);
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
