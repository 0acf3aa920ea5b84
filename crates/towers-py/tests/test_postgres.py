"""towers.load(dir, postgres=URL): a model answered from the catalogue `towers export` wrote to a
real PostgreSQL + pgvector (started by scripts/postgres.sh; skipped where it cannot start, a
failure under CI=true), the same items as the model's own exact index."""

import os
import subprocess
import uuid
from pathlib import Path

import pytest

import towers
from conftest import FAST, ROOT, run_cli


@pytest.fixture(scope="module")
def pg_url(tmp_path_factory):
    # a short directory: the unix socket's path must fit in ~107 bytes
    d = Path("/tmp") / f"tpg-{uuid.uuid4().hex[:8]}"
    out = subprocess.run([str(ROOT / "scripts/postgres.sh"), "start", str(d)], capture_output=True, text=True)
    if out.returncode != 0:
        if os.environ.get("CI") == "true":
            pytest.fail(f"PostgreSQL did not start: {out.stderr[-2000:]}")
        pytest.skip(f"PostgreSQL did not start: {out.stderr[-300:]}")
    yield out.stdout.strip().splitlines()[-1]
    subprocess.run([str(ROOT / "scripts/postgres.sh"), "stop", str(d)], capture_output=True)
    subprocess.run(["rm", "-rf", str(d)])


def test_a_model_answers_from_postgres_as_from_its_own_index(small, towers_bin, pg_url, tmp_path):
    m = towers.train(small["train"], items=small["movies"], **FAST)
    m.save(tmp_path / "m")
    report = run_cli(towers_bin, "export", "--model", tmp_path / "m", "--postgres", pg_url, "--json")
    assert report["items"] == 40
    here = towers.load(tmp_path / "m")
    there = towers.load(tmp_path / "m", postgres=pg_url)
    assert there.index == "postgres" and there.describe()["index"] == "postgres"
    for user in ["1", "7", "23"]:
        for exclude_seen in [False, True]:
            a = [r["id"] for r in here.recommend(user, k=5, exclude_seen=exclude_seen)]
            b = [r["id"] for r in there.recommend(user, k=5, exclude_seen=exclude_seen)]
            assert a == b, (user, exclude_seen)
    with pytest.warns(towers.ColdStartWarning):
        assert len(there.recommend("nobody", k=3)) == 3
    with pytest.raises(towers.ConfigError, match="allow lists"):
        there.recommend("7", allow=["1", "2"])


def test_a_missing_catalogue_and_a_bad_table_are_errors(small, pg_url, tmp_path):
    m = towers.train(small["train"], **FAST)
    m.save(tmp_path / "m")
    nowhere = towers.load(tmp_path / "m", postgres=pg_url, table="never_exported")
    with pytest.raises(towers.TowersError, match="never_exported|no catalogue|not exported|does not exist"):
        nowhere.recommend("7", k=3)
    with pytest.raises(towers.ConfigError, match="table"):
        towers.load(tmp_path / "m", postgres=pg_url, table="x; DROP TABLE y")
