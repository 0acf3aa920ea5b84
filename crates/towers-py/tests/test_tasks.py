"""The other tasks through train(task=…): sequential, rating, ranking, features."""

import numpy as np
import pandas as pd
import pytest

import towers
from conftest import FAST


def sessions(n=300):
    """Sessions stepping through 20 items (the next item follows the last one)."""
    out = []
    for s in range(n):
        start = s * 7 % 20
        out.append([str((start + j) % 20 + 1) for j in range(5)])
    return out


def test_sequential_from_lists_and_from_a_file(tmp_path):
    train, test = sessions(), sessions(40)
    m = towers.train(train, task="sequential", test=test, **FAST)
    assert m.kind == "sequential" and len(m.history) == 3 and m.history[-1]["validation"] is not None
    ev = m.evaluate(test)
    assert "repeat_last" in ev and ev["n"] == 40
    recs = m.recommend_history(["1", "2", "3"], k=5, exclude_seen=True)
    assert len(recs) == 5 and "3" not in [r["id"] for r in recs]
    f = tmp_path / "train_sessions.txt"
    f.write_text("".join(" ".join(s) + "\n" for s in train))
    from_file = towers.train(f, task="sequential", train_format="sessions", **FAST)
    assert np.array_equal(np.array(from_file.candidate_embeddings()[1]), np.array(m.candidate_embeddings()[1]))
    with pytest.raises(towers.ConfigError, match="recommend from a history"):
        m.recommend("1")


def test_rating_and_ranking_models_rank_items(small):
    df = pd.DataFrame(small["train"])
    rating = towers.train(df, task="rating", **FAST)
    ev = rating.evaluate(small["test_tsv"])
    assert "rmse" in ev and "top_10" in ev
    ranking = towers.train(df, task="ranking", layers=[16, 8], **FAST)
    ranked = ranking.rank("1", ["1", "2", "3"])
    assert sorted(r["id"] for r in ranked) == ["1", "2", "3"]
    assert ranked[0]["score"] >= ranked[-1]["score"]
    retriever = towers.train(df, **FAST)
    two_stage = ranking.rerank(retriever, "1", candidates=20, k=5)
    assert len(two_stage) == 5
    assert [r["score"] for r in two_stage] == sorted((r["score"] for r in two_stage), reverse=True)
    with pytest.raises(towers.InputError, match="needs ratings"):
        towers.train({"user": small["train"]["user_id"], "item": small["train"]["movie_id"]}, task="rating", **FAST)


def test_features_from_movielens(ml100k, tfrs_split):
    cols = ["user_id", "movie_id", "rating", "timestamp"]
    train = pd.read_csv(tfrs_split / "train.tsv", sep="\t", names=cols, dtype={"user_id": str, "movie_id": str})
    m = towers.train(train.head(20000), features="movielens", movielens_dir=ml100k, epochs=1, progress=False)
    assert m.kind == "features" and len(m.recommend("42", k=3)) == 3
