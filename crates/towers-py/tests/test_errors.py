"""Bad inputs raise towers exceptions with the CLI's messages, never a crash."""

import numpy as np
import pandas as pd
import pytest

import towers
from conftest import FAST


def test_a_frame_without_id_columns_is_an_input_error():
    with pytest.raises(towers.InputError) as e:
        towers.train(pd.DataFrame({"nothing": [1, 2]}), progress=False)
    assert "no query (user) id column among [nothing]" in str(e.value)
    assert isinstance(e.value, ValueError) and isinstance(e.value, towers.TowersError)
    assert type(e.value).__module__ == "towers"


def test_a_malformed_file_names_file_line_and_field(tmp_path):
    bad = tmp_path / "bad.tsv"
    bad.write_text("1\t2\t4\t5\n1\t3\tfive\t6\n")
    with pytest.raises(towers.InputError, match=r"bad\.tsv:2: field 'rating': expected a number, found 'five'"):
        towers.train(bad, progress=False)
    with pytest.raises(towers.FileError):
        towers.train(tmp_path / "missing.tsv", progress=False)


def test_missing_and_bad_values_name_column_and_row():
    with pytest.raises(towers.InputError, match="column 'user' row 2: missing id"):
        towers.train({"user": ["a", None], "item": ["x", "y"]}, progress=False)
    with pytest.raises(towers.InputError, match="row 2: a rating missing"):
        towers.train({"user": ["a", "b"], "item": ["x", "y"], "rating": [4.0, np.nan]}, progress=False)
    with pytest.raises(towers.InputError, match="columns of different lengths"):
        towers.train({"user": ["a", "b"], "item": ["x"]}, progress=False)
    with pytest.raises(towers.InputError, match="column 'item' row 1: expected a string or a number"):
        towers.train({"user": ["a"], "item": [object()]}, progress=False)
    with pytest.raises(towers.InputError, match="expected a path, a pandas.DataFrame"):
        towers.train(42, progress=False)
    with pytest.raises(towers.InputError, match="no interactions"):
        towers.train({"user": np.array([], dtype=object), "item": np.array([], dtype=object)}, progress=False)


def test_bad_options_are_config_errors(small):
    with pytest.raises(towers.ConfigError, match="unknown option `epoch`"):
        towers.train(small["train_tsv"], epoch=3, progress=False)
    with pytest.raises(towers.ConfigError, match="dim must be in 1..=4096"):
        towers.train(small["train_tsv"], dim=0, progress=False)
    with pytest.raises(towers.ConfigError, match="unknown variant"):
        towers.train(small["train_tsv"], optimizer="sgd", progress=False)
    with pytest.raises(towers.ConfigError, match="option 'lr'"):
        towers.train(small["train_tsv"], lr={"a": 1}, progress=False)
    with pytest.raises(towers.ConfigError, match="needs `features`"):
        towers.train(small["train_tsv"], task="features", progress=False)
    with pytest.raises(towers.ConfigError):
        towers.train(small["train_tsv"], delimiter="tabs", progress=False)


def test_bad_requests_and_model_directories(small, tmp_path):
    m = towers.train(small["train_tsv"], **FAST)
    with pytest.raises(towers.ConfigError, match="k must be"):
        m.recommend("1", k=0)
    with pytest.raises(towers.InputError, match="item 'nope' is not in the model"):
        m.similar("nope")
    with pytest.raises(towers.InputError, match="user 'nope' is not in the model"):
        m.query_embeddings(["nope"])
    with pytest.raises(towers.ConfigError, match="user → item model"):
        m.recommend_history(["1", "2"])
    with pytest.warns(towers.ColdStartWarning):
        assert len(m.recommend("somebody new", k=3)) == 3
    with pytest.raises(towers.ModelError, match="no such model directory"):
        towers.load(tmp_path / "nothing")
    (tmp_path / "junk").mkdir()
    (tmp_path / "junk" / "manifest.json").write_text("{")
    with pytest.raises(towers.ModelError, match="not valid JSON"):
        towers.load(tmp_path / "junk")
    with pytest.raises(towers.ConfigError, match="unknown option `nonsense`"):
        m.evaluate(small["test_tsv"], nonsense=1)
