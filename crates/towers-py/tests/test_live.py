"""Live histories from Python: towers.Live keeps a user's events (in a durable log with a path),
and a sequential model recommends for the user from their training history followed by them."""

import pandas as pd
import pytest

import towers
from conftest import FAST


@pytest.mark.parametrize("encoder", ["gru", "sasrec"])
def test_a_users_events_change_their_recommendations_and_are_replayed(small, tmp_path, encoder):
    m = towers.train(pd.DataFrame(small["train"]), task="sequential", encoder=encoder, **FAST)
    ids = lambda answer: [r["id"] for r in answer]
    before = ids(m.recommend("7", k=5, exclude_seen=True))
    log = tmp_path / "events.log"
    live = towers.Live(log)
    for item in ["1", "2", "3"]:
        live.append("7", item)
    assert live.recent("7") == ["1", "2", "3"] and live.recent("8") == [] and len(live) == 3
    after = ids(m.recommend("7", k=5, exclude_seen=True, recent=live.recent("7")))
    assert after != before and not set(after) & {"1", "2", "3"}
    # the same answer from the log opened again, and from a model saved and loaded
    del live
    again = towers.Live(log, per_user=2)
    assert again.recent("7") == ["2", "3"]
    m.save(tmp_path / "seq")
    loaded = towers.load(tmp_path / "seq")
    assert ids(loaded.recommend("7", k=5, exclude_seen=True, recent=["1", "2", "3"])) == after
    with pytest.raises(towers.InputError):
        again.append("", "3")
    # in memory only
    mem = towers.Live()
    mem.append("7", "1", timestamp=5)
    assert mem.recent("7") == ["1"]
