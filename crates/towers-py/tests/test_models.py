"""Model directories: the CLI's load in Python and Python's in the CLI; embeddings' layout."""

import numpy as np
import pytest

import towers
from conftest import FAST, run_cli, synthetic


@pytest.fixture(scope="module")
def model(small):
    return towers.train(small["train_tsv"], items=small["movies"], **FAST)


def test_a_model_saved_by_the_cli_loads_in_python(small, towers_bin, tmp_path):
    run_cli(towers_bin, "train", "--train", small["train_tsv"], "--items", small["movies"], "--epochs", "3",
            "--batch-size", "64", "--dim", "8", "--out", tmp_path / "cli", "--json")
    m = towers.load(tmp_path / "cli")
    cli = run_cli(towers_bin, "recommend", "--model", tmp_path / "cli", "--user", "7", "-k", "5", "--json")
    assert [r["id"] for r in m.recommend("7", k=5, exclude_seen=False)] == [r["id"] for r in cli["items"]]
    ev = run_cli(towers_bin, "evaluate", "--model", tmp_path / "cli", "--test", small["test_tsv"], "--json")
    assert m.evaluate(small["test_tsv"])["top_10"] == ev["top_10"]
    # and the same as training in Python with the same options
    py = towers.train(small["train_tsv"], items=small["movies"], **FAST)
    assert np.array_equal(np.array(py.candidate_embeddings()[1]), np.array(m.candidate_embeddings()[1]))


def test_a_model_saved_by_python_loads_in_the_cli(model, small, towers_bin, tmp_path):
    model.save(tmp_path / "py")
    ev = run_cli(towers_bin, "evaluate", "--model", tmp_path / "py", "--test", small["test_tsv"], "--json")
    mine = model.evaluate(small["test_tsv"])
    assert (ev["top_10"], ev["top_100"], ev["mrr"]) == (mine["top_10"], mine["top_100"], mine["mrr"])
    cli = run_cli(towers_bin, "similar", "--model", tmp_path / "py", "--item", "3", "-k", "4", "--json")
    items = cli["items"] if isinstance(cli, dict) else cli
    assert [r["id"] for r in model.similar("3", k=4)] == [r["id"] for r in items]
    again = towers.load(tmp_path / "py")
    assert again.recommend("7", k=5) == model.recommend("7", k=5)
    assert again.kind == "retrieval" and again.dim == 8 and repr(again).startswith("towers.Model(")


def test_candidate_embeddings_are_a_c_contiguous_float32_view(model):
    ids, emb = model.candidate_embeddings()
    assert isinstance(emb, np.ndarray) and emb.dtype == np.float32
    assert emb.shape == (len(ids), model.dim) == (len(model.items), 8)
    assert emb.flags["C_CONTIGUOUS"] and not emb.flags["WRITEABLE"]
    with pytest.raises(ValueError):
        emb[0, 0] = 1.0
    del model  # the array keeps the model's memory alive
    assert np.isfinite(emb).all()


def test_query_embeddings_score_as_recommend_does(model):
    q = model.query_embeddings(["7", "12"])
    assert q.dtype == np.float32 and q.shape == (2, 8) and q.flags["C_CONTIGUOUS"]
    ids, emb = model.candidate_embeddings()
    scores = emb @ q[0]
    best = [ids[i] for i in np.argsort(-scores, kind="stable")[:5]]
    recs = model.recommend("7", k=5, exclude_seen=False)
    assert [r["id"] for r in recs] == best
    assert [r["score"] for r in recs] == pytest.approx(sorted(scores, reverse=True)[:5], rel=1e-5)


def test_properties(model, small):
    assert model.kind == "retrieval" and model.index == "exact"
    assert set(model.users) == set(small["train"]["user_id"])
    assert len(model.history) == 3 and "loss" in model.history[0]
    assert model.summary["n_train"] == len(small["train"]["user_id"])
    assert model.config["config"]["epochs"] == 3


def test_an_ivf_index_built_in_the_directory_serves_recommendations(small, tmp_path):
    data = synthetic(n_users=300, n_items=2000, per_user=20)
    towers.train(data, **FAST).save(tmp_path / "m")
    figures = towers.build_index(tmp_path / "m", nlist=16, nprobe=16, progress=False)
    assert figures["kind"] == "ivf" and figures["nlist"] == 16 and figures["recall_10"] > 0.9
    m = towers.load(tmp_path / "m")
    assert m.index == "ivf" and len(m.recommend("7", k=10)) == 10
    assert towers.build_index(tmp_path / "m", kind="exact", progress=False) == {"kind": "exact", "removed": True}
    assert towers.load(tmp_path / "m").index == "exact"
    with pytest.raises(towers.ConfigError):
        towers.build_index(tmp_path / "m", kind="hnsw", progress=False)
