"""Pipelines (retriever → ranker → post-ranking) through train(task="pipeline"): evaluate and
recommend with post-ranking overrides, save and load, and the options a pipeline refuses."""

import warnings

import pytest

import towers

# small models, so that the pipeline trains in a few seconds
CONFIG = """retrieve = 20
[retriever]
dim = 16
epochs = 3
batch_size = 64
[ranker]
epochs = 3
batch_size = 256
"""

# item attributes (genres) for the ranker's affinity features and post-ranking's caps
FEATURES = """layers = [8]
[query]
id_dim = 8
[candidate]
id_dim = 8
table = "items.tsv"
[[candidate.features]]
column = "genres"
encoder = "multi_hot"
"""


@pytest.fixture(scope="module")
def files(tmp_path_factory):
    d = tmp_path_factory.mktemp("pipeline")
    (d / "config.toml").write_text(CONFIG)
    (d / "items.tsv").write_text("item\tgenres\n" + "".join(f"{i}\tg{i % 4}|h{i % 3}\n" for i in range(1, 41)))
    (d / "features.toml").write_text(FEATURES)
    return d


@pytest.fixture(scope="module")
def pipe(small, files):
    return towers.train(
        small["train"],
        items=small["movies"],
        task="pipeline",
        features=files / "features.toml",
        config=files / "config.toml",
        seed=3,
        diversity=0.1,
        progress=False,
    )


def test_trains_a_pipeline_with_its_settings(pipe):
    assert isinstance(pipe, towers.Pipeline)
    s = pipe.settings
    assert s["retrieve"] == 20 and pipe.retrieve == 20
    assert s["post"]["diversity"] == pytest.approx(0.1)
    assert "genres" in pipe.attributes and "title" in pipe.attributes
    assert len(pipe.items) == 40 and "1" in pipe.users
    assert "towers.Pipeline(" in repr(pipe)


def test_evaluates_with_and_without_diversity(pipe, small):
    plain = pipe.evaluate(small["test_tsv"], exclude_seen=True, diversity=0.0)
    for k in ["top_10", "top_100", "mrr", "ndcg_10", "ild_10", "retriever_ild_10", "coverage_10", "retrieve"]:
        assert k in plain, k
    assert plain["n"] == 90 and plain["retrieve"] == 20 and plain["diversity"] == 0.0
    assert "top_10" in plain["retriever"]
    diverse = pipe.evaluate(small["test"], exclude_seen=True, diversity=0.9)
    assert diverse["diversity"] == pytest.approx(0.9)
    assert diverse["ild_10"] >= plain["ild_10"]
    # the pipeline's own rules (diversity 0.1), more candidates, caps and a dedupe
    own = pipe.evaluate(small["test"], retrieve=30, caps={"genres": 3}, dedupe="title")
    assert own["retrieve"] == 30 and own["diversity"] == pytest.approx(0.1)


def test_recommends_with_overrides_and_debug(pipe):
    recs = pipe.recommend("7", k=5)
    assert len(recs) == 5 and set(recs[0]) == {"id", "title", "score"}
    assert recs[0]["title"].startswith("Movie ")
    capped = pipe.recommend("7", k=8, caps={"genres": 2}, diversity=0.5, retrieve=30, exclude_seen=True)
    assert len(capped) <= 8
    excluded = pipe.recommend("7", k=5, exclude=[recs[0]["id"]], boost=[recs[-1]["id"]])
    assert recs[0]["id"] not in [r["id"] for r in excluded]
    allowed = pipe.recommend("7", k=3, allow=["1", "2", "3", "4"])
    assert {r["id"] for r in allowed} <= {"1", "2", "3", "4"}
    d = pipe.recommend("7", k=5, debug=True)
    assert [r["id"] for r in d["items"]] == [r["id"] for r in recs] and d["cold_start"] is False
    assert set(d["timings"]) == {"retrieve_ms", "rank_ms", "post_rank_ms", "total_ms"}
    assert d["timings"]["total_ms"] >= d["timings"]["rank_ms"] >= 0


def test_caps_per_genre(pipe):
    # at most one item per value of genres: items share g0…g3 and h0…h2
    recs = pipe.recommend("7", k=10, caps={"genres": 1}, retrieve=40)
    genres = [f"g{int(r['id']) % 4}" for r in recs]
    assert len(genres) == len(set(genres)) and len(recs) <= 3


def test_unknown_user_is_a_cold_start(pipe):
    with pytest.warns(towers.ColdStartWarning, match="not in the training data"):
        recs = pipe.recommend("nobody", k=3)
    assert len(recs) == 3


def test_save_and_load_round_trip(pipe, tmp_path):
    pipe.save(tmp_path / "p")
    assert (tmp_path / "p" / "pipeline.toml").is_file()
    for path in (tmp_path / "p", tmp_path / "p" / "pipeline.toml", str(tmp_path / "p")):
        loaded = towers.load(path)
        assert isinstance(loaded, towers.Pipeline)
        assert loaded.recommend("7", k=10) == pipe.recommend("7", k=10)
        assert loaded.settings["post"] == pipe.settings["post"] and loaded.retrieve == pipe.retrieve
        assert loaded.attributes == pipe.attributes


def test_load_of_a_model_is_still_a_model(small, tmp_path):
    from conftest import FAST

    m = towers.train(small["train"], **FAST)
    m.save(tmp_path / "m")
    assert isinstance(towers.load(tmp_path / "m"), towers.Model)


def test_bad_overrides_and_options_are_config_errors(pipe, small, files):
    with pytest.raises(towers.ConfigError, match=r"diversity must be in \[0, 1\]"):
        pipe.recommend("7", diversity=2)
    with pytest.raises(towers.ConfigError, match=r"diversity must be in \[0, 1\]"):
        pipe.evaluate(small["test"], diversity=2)
    with pytest.raises(towers.ConfigError, match="ATTRIBUTE:MAX"):
        pipe.recommend("7", caps=["genres"])
    with pytest.raises(towers.ConfigError, match="no item attribute 'colour'"):
        pipe.recommend("7", dedupe="colour")
    with pytest.raises(towers.ConfigError, match="retrieve must be in"):
        pipe.recommend("7", retrieve=0)
    with pytest.raises(towers.ConfigError, match="k must be in"):
        pipe.recommend("7", k=0)
    train = small["train"]
    with pytest.raises(towers.ConfigError, match="`epochs`: `task` pipeline takes its models' settings from `config`"):
        towers.train(train, task="pipeline", epochs=2, progress=False)
    with pytest.raises(towers.ConfigError, match="`dim`"):
        towers.train(train, task="pipeline", dim=8, progress=False)
    with pytest.raises(towers.ConfigError, match=r"diversity must be in \[0, 1\]"):
        towers.train(train, task="pipeline", diversity=2, progress=False)
    with pytest.raises(towers.ConfigError, match="`retrieve` is for `task` pipeline"):
        towers.train(train, task="retrieval", retrieve=20, progress=False)
    (files / "bad.toml").write_text("retreive = 20\n")
    with pytest.raises(towers.ConfigError, match="bad.toml"):
        towers.train(train, task="pipeline", config=files / "bad.toml", progress=False)


def test_a_pipeline_measures_its_retriever_on_test_data(small, files):
    p = towers.train(small["train"], task="pipeline", config=files / "config.toml", test=small["test"], progress=False)
    assert p.kind == "pipeline" and len(p.history) == 3
    assert all(e["validation"]["top_10"] >= 0 for e in p.history)


def test_progress_reporter_does_not_break_training(small, files):
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        p = towers.train(small["train"], task="pipeline", config=files / "config.toml", progress=True)
    assert isinstance(p, towers.Pipeline) and len(p.recommend("1", k=3)) == 3
