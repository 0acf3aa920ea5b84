"""Shared fixtures: the real datasets beside the checkout (../shared/data: skipped when absent,
a failure under CI=true), the towers binary for comparisons with the CLI, and small synthetic
tables made here."""

import json
import os
import shutil
import subprocess
from pathlib import Path

import numpy as np
import pytest

ROOT = Path(__file__).resolve().parents[3]
DATA = ROOT.parent / "shared" / "data"


def need(path):
    """A path under ../shared/data, or a skip (a failure under CI=true) when it is absent."""
    p = DATA / path
    if not p.exists():
        if os.environ.get("CI") == "true":
            pytest.fail(f"{p} is missing (CI=true needs ../shared/data)")
        pytest.skip(f"{p} is absent")
    return p


@pytest.fixture(scope="session")
def tfrs_split():
    return need("ml-100k-splits/tfrs-80-20")


@pytest.fixture(scope="session")
def ml100k():
    return need("ml-100k")


@pytest.fixture(scope="session")
def towers_bin():
    """The CLI: $TOWERS_BIN, else the workspace's debug or release build."""
    candidates = [os.environ.get("TOWERS_BIN"), ROOT / "target/debug/towers", ROOT / "target/release/towers"]
    for c in candidates:
        if c and Path(c).is_file():
            return str(c)
    if shutil.which("cargo"):
        subprocess.run(["cargo", "build", "-q", "-p", "towers-cli"], cwd=ROOT, check=True)
        return str(ROOT / "target/debug/towers")
    pytest.skip("no towers binary (set TOWERS_BIN)")


def run_cli(towers_bin, *args):
    """Runs the CLI and returns its last line of stdout as JSON."""
    out = subprocess.run([towers_bin, *map(str, args)], capture_output=True, text=True)
    assert out.returncode == 0, out.stderr
    return json.loads(out.stdout.strip().splitlines()[-1])


def synthetic(n_users=60, n_items=40, per_user=12, seed=0):
    """Interactions with structure (users prefer items near their own index), as columns."""
    rng = np.random.default_rng(seed)
    users, items, ratings, times = [], [], [], []
    t = 1_000_000
    for u in range(n_users):
        for j in rng.choice(n_items // 2, size=per_user, replace=False):
            users.append(str(u + 1))
            items.append(str((u + j) % n_items + 1))
            ratings.append(float(rng.integers(1, 6)))
            times.append(t)
            t += int(rng.integers(1, 100))
    return {
        "user_id": np.array(users, dtype=object),
        "movie_id": np.array(items, dtype=object),
        "rating": np.array(ratings),
        "timestamp": np.array(times, dtype=np.int64),
    }


def write_tsv(path, cols):
    with open(path, "w") as f:
        for row in zip(*cols.values()):
            f.write("\t".join(str(int(v)) if isinstance(v, float) else str(v) for v in row) + "\n")
    return path


@pytest.fixture(scope="session")
def small(tmp_path_factory):
    """A small synthetic training table and test table, as columns and as TSV files, and a catalogue."""
    d = tmp_path_factory.mktemp("small")
    train, test = synthetic(seed=1), synthetic(n_users=30, per_user=3, seed=2)
    with open(d / "movies.tsv", "w") as f:
        for i in range(1, 41):
            f.write(f"{i}\tMovie {i}\n")
    return {
        "train": train,
        "test": test,
        "train_tsv": write_tsv(d / "train.tsv", train),
        "test_tsv": write_tsv(d / "test.tsv", test),
        "movies": d / "movies.tsv",
        "dir": d,
    }


# small models train in well under a second with these
FAST = {"epochs": 3, "batch_size": 64, "dim": 8, "progress": False}
