"""The TFRS tutorial in Python: the same figures as the CLI with the same seed."""

import pandas as pd
import pytest

import towers
from conftest import run_cli

COLS = ["user_id", "movie_id", "rating", "timestamp"]


def frame(path):
    return pd.read_csv(path, sep="\t", names=COLS, dtype={"user_id": str, "movie_id": str})


@pytest.fixture(scope="module")
def tutorial(tfrs_split, towers_bin, tmp_path_factory):
    d = tmp_path_factory.mktemp("tutorial")
    model = towers.train(frame(tfrs_split / "train.tsv"), items=tfrs_split / "movies.tsv", seed=42, progress=False)
    run_cli(towers_bin, "train", "--train", tfrs_split / "train.tsv", "--items", tfrs_split / "movies.tsv",
            "--seed", "42", "--out", d / "cli", "--json")
    return model, d / "cli"


def test_defaults_give_the_cli_figures(tutorial, tfrs_split, towers_bin):
    model, cli_dir = tutorial
    test = frame(tfrs_split / "test.tsv")
    for exclude in (False, True):
        ev = model.evaluate(test, exclude_seen=exclude)
        args = ["evaluate", "--model", cli_dir, "--test", tfrs_split / "test.tsv", "--json"]
        cli = run_cli(towers_bin, *args, *(["--exclude-seen"] if exclude else []))
        for k in ("top_1", "top_10", "top_50", "top_100", "mrr", "ndcg_10", "n"):
            assert ev[k] == pytest.approx(cli[k], abs=1e-9), k
        assert ev["baseline"]["top_100"] == pytest.approx(cli["baseline"]["top_100"], abs=1e-9)
    assert model.evaluate(test)["top_100"] >= 0.37


def test_recommendations_are_the_clis(tutorial, towers_bin):
    model, cli_dir = tutorial
    recs = model.recommend("42", k=10, exclude_seen=True)
    assert len(recs) == 10 and set(recs[0]) == {"id", "title", "score"}
    cli = run_cli(towers_bin, "recommend", "--model", cli_dir, "--user", "42", "-k", "10", "--exclude-seen", "--json")
    assert [r["id"] for r in recs] == [r["id"] for r in cli["items"]]
    assert [r["title"] for r in recs] == [r["title"] for r in cli["items"]]
    similar = model.similar(recs[0]["id"], k=5)
    assert len(similar) == 5 and recs[0]["id"] not in [s["id"] for s in similar]


def test_tfrs_settings_by_title(tfrs_split, towers_bin, tmp_path):
    opts = dict(key="title", dim=32, optimizer="adagrad", lr=0.1, batch_size=8192, epochs=3, seed=42)
    model = towers.train(tfrs_split / "train.tsv", items=tfrs_split / "movies.tsv", progress=False, **opts)
    flags = [x for k, v in opts.items() for x in (f"--{k.replace('_', '-')}", str(v))]
    run_cli(towers_bin, "train", "--train", tfrs_split / "train.tsv", "--items", tfrs_split / "movies.tsv",
            *flags, "--out", tmp_path / "m", "--json")
    cli = run_cli(towers_bin, "evaluate", "--model", tmp_path / "m", "--test", tfrs_split / "test.tsv", "--json")
    assert model.evaluate(tfrs_split / "test.tsv")["top_100"] == pytest.approx(cli["top_100"], abs=1e-9)
    assert model.config["config"]["optimizer"]["kind"] == "adagrad"
