"""Models that live, from Python: continuing a model on new data (init_from), checkpoints and
resume, as `towers train --init-from / --checkpoint-every / --resume`."""

import warnings

import numpy as np
import pytest

import towers
from conftest import FAST, synthetic


def part(cols, keep):
    rows = [i for i, u in enumerate(cols["user_id"]) if keep(int(u))]
    return {k: v[rows] for k, v in cols.items()}


def test_a_model_continued_on_new_data_knows_its_new_users(small, tmp_path):
    data = synthetic(n_users=60, seed=3)
    old = towers.train(part(data, lambda u: u <= 40), items=small["movies"], **FAST)
    new = part(data, lambda u: u > 30)
    cont = towers.train(new, items=small["movies"], init_from=old, count_decay=0.5, **FAST)
    assert old.describe()["users"] == 40 and cont.describe()["users"] == 60
    # a user of the new data only gets the model's own list (a cold start would warn)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert len(cont.recommend("55", k=5)) == 5
    # the same from the saved directory (its optimizer state read from there)
    old.save(tmp_path / "old")
    again = towers.train(new, items=small["movies"], init_from=tmp_path / "old", count_decay=0.5, **FAST)
    assert np.array_equal(np.array(cont.candidate_embeddings()[1]), np.array(again.candidate_embeddings()[1]))
    with pytest.raises(towers.ConfigError, match="dim"):
        towers.train(new, init_from=old, **{**FAST, "dim": 16})


def test_a_run_resumed_from_its_checkpoint_gives_the_same_model(small, tmp_path):
    ckpt = tmp_path / "run.checkpoint"
    first = towers.train(small["train"], items=small["movies"], checkpoint=ckpt, checkpoint_every=4, **FAST)
    assert ckpt.is_file()
    # the checkpoint of the last step: the resumed run has nothing left to do
    resumed = towers.train(small["train"], items=small["movies"], checkpoint=ckpt, resume=True, **FAST)
    assert np.array_equal(np.array(first.candidate_embeddings()[1]), np.array(resumed.candidate_embeddings()[1]))
    with pytest.raises(towers.ConfigError, match="another run"):
        towers.train(small["train"], items=small["movies"], checkpoint=ckpt, resume=True, **{**FAST, "seed": 9})
    with pytest.raises(towers.ConfigError, match="checkpoint path"):
        towers.train(small["train"], resume=True, **FAST)
