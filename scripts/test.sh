#!/usr/bin/env bash
# The test command: the Rust workspace's tests, then the Python package built into a virtualenv
# and its pytest suite (crates/towers-py/tests). Arguments go to `cargo test` (CI: --locked).
#
#   scripts/test.sh                 # everything
#   TOWERS_TEST=python scripts/test.sh   # only the Python part (after a cargo build of the CLI)
#
# Environment: TOWERS_VENV (default target/py-venv), TOWERS_PY_PROFILE (the cargo profile of the
# extension, default dev: the workspace's opt-levels, i.e. the library at opt-level 3, built in
# a fraction of a release build's time), PYTHON (default python3).
set -euo pipefail
cd "$(dirname "$0")/.."

if [ "${TOWERS_TEST:-all}" != python ]; then
  start=$(date +%s)
  # with Open MPI installed (CI installs it), the CLI is built with MPI and its distributed
  # tests run mpirun; without it they are skipped (but under CI=true)
  MPI_FEATURE=()
  if command -v mpirun >/dev/null || [ "${CI:-}" = true ]; then MPI_FEATURE=(--features towers-cli/mpi); fi
  cargo test --workspace "${MPI_FEATURE[@]}" "$@"
  echo "cargo test --workspace: $(( $(date +%s) - start )) s"
  # the CLI the Python tests compare against (built by the tests above)
  export TOWERS_BIN="${TOWERS_BIN:-$PWD/target/debug/towers}"
fi

# the book: built with warnings as errors, its links checked (skipped without mdbook, but in CI)
if command -v mdbook >/dev/null; then
  scripts/book.sh
elif [ "${CI:-}" = true ]; then
  echo "CI=true needs mdbook (cargo install mdbook --locked --no-default-features --features search)" >&2
  exit 1
else
  echo "mdbook not installed: the book is not built (cargo install mdbook --locked)"
fi

PYTHON=${PYTHON:-python3}
VENV=${TOWERS_VENV:-$PWD/target/py-venv}
if [ ! -x "$VENV/bin/python" ]; then
  "$PYTHON" -m venv "$VENV"
fi
# what the build and the tests need (quiet when already there)
"$VENV/bin/python" -m pip install -q --disable-pip-version-check "maturin>=1.9.4,<2" pytest numpy pandas "pyarrow>=14" nbformat nbclient ipykernel matplotlib

start=$(date +%s)
rm -f target/wheels/towers-*.whl
# without debug info: the extension's build shares nothing with `cargo test`'s (pyo3's
# configuration and the dev-dependencies' features differ), and this halves its size and link time
VIRTUAL_ENV="$VENV" PATH="$VENV/bin:$PATH" CARGO_PROFILE_DEV_DEBUG=false maturin build --quiet \
  --profile "${TOWERS_PY_PROFILE:-dev}" -m crates/towers-py/Cargo.toml --interpreter "$VENV/bin/python" \
  --out target/wheels --locked
"$VENV/bin/python" -m pip install -q --disable-pip-version-check --force-reinstall --no-deps target/wheels/towers-*.whl
echo "python package built and installed in $(( $(date +%s) - start )) s"

# from the tests' folder, so that `import towers` is the installed package
start=$(date +%s)
(cd crates/towers-py/tests && "$VENV/bin/python" -m pytest -q -p no:cacheprovider .)
echo "pytest: $(( $(date +%s) - start )) s"
