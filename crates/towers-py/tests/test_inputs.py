"""DataFrame, Arrow table, dict of arrays and path inputs give the same model."""

import numpy as np
import pandas as pd
import pyarrow as pa
import pytest

import towers
from conftest import FAST


def embeddings(model):
    ids, emb = model.candidate_embeddings()
    return ids, np.array(emb)


@pytest.fixture(scope="module")
def reference(small):
    return towers.train(small["train_tsv"], items=small["movies"], **FAST)


def same(a, b, test):
    ids_a, ea = embeddings(a)
    ids_b, eb = embeddings(b)
    assert ids_a == ids_b
    assert np.array_equal(ea, eb)
    ev_a, ev_b = a.evaluate(test), b.evaluate(test)
    for k in ("top_1", "top_10", "top_100", "mrr", "n"):
        assert ev_a[k] == ev_b[k], k


def test_dataframe(small, reference):
    df = pd.DataFrame(small["train"])
    same(towers.train(df, items=small["movies"], **FAST), reference, small["test_tsv"])


def test_dataframe_with_integer_ids_and_string_dtype(small, reference):
    df = pd.DataFrame(small["train"])
    df["user_id"] = df["user_id"].astype(int)
    df["movie_id"] = df["movie_id"].astype("string")
    same(towers.train(df, items=small["movies"], **FAST), reference, small["test_tsv"])


def test_arrow_table_plain_chunked_and_dictionary(small, reference):
    t = pa.table(small["train"])
    same(towers.train(t, items=small["movies"], **FAST), reference, small["test_tsv"])
    n = t.num_rows
    chunked = pa.concat_tables([t.slice(0, n // 3), t.slice(n // 3)])
    assert chunked.column("user_id").num_chunks == 2
    same(towers.train(chunked, items=small["movies"], **FAST), reference, small["test_tsv"])
    dictionary = t.set_column(0, "user_id", t.column("user_id").dictionary_encode())
    same(towers.train(dictionary, items=small["movies"], **FAST), reference, small["test_tsv"])


def test_dict_of_numpy_arrays_and_lists(small, reference):
    same(towers.train(dict(small["train"]), items=small["movies"], **FAST), reference, small["test_tsv"])
    as_lists = {k: list(v) for k, v in small["train"].items()}
    same(towers.train(as_lists, items=small["movies"], **FAST), reference, small["test_tsv"])


def test_test_data_in_every_form_gives_the_same_evaluation(small, reference):
    expected = reference.evaluate(small["test_tsv"])
    for test in (pd.DataFrame(small["test"]), pa.table(small["test"]), dict(small["test"]), str(small["test_tsv"])):
        ev = reference.evaluate(test)
        assert (ev["top_10"], ev["mrr"], ev["n"]) == (expected["top_10"], expected["mrr"], expected["n"])


def test_catalogue_as_a_table(small, reference):
    movies = pd.read_csv(small["movies"], sep="\t", names=["movie_id", "title"], dtype=str)
    same(towers.train(small["train_tsv"], items=movies, **FAST), reference, small["test_tsv"])
    assert reference.recommend("1", k=1)[0]["title"].startswith("Movie ")


def test_file_options_as_the_clis(small, tmp_path):
    csv = tmp_path / "t.csv"
    pd.DataFrame(small["train"]).to_csv(csv, sep=";", header=False, index=False)
    a = towers.train(csv, delimiter=";", columns=["user", "item", "rating", "timestamp"], header=False, **FAST)
    b = towers.train(small["train_tsv"], **FAST)
    assert np.array_equal(embeddings(a)[1], embeddings(b)[1])


def test_datetime_timestamps_are_seconds(small):
    df = pd.DataFrame(small["train"])
    df["timestamp"] = pd.to_datetime(df["timestamp"], unit="s")
    a = towers.train(df, task="sequential", **FAST)
    b = towers.train(pd.DataFrame(small["train"]), task="sequential", **FAST)
    assert a.kind == "sequential"
    assert np.array_equal(embeddings(a)[1], embeddings(b)[1])
