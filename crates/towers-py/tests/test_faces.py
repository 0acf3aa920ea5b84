"""One request, three faces: the same question asked through the CLI, over HTTP (a query string
and a JSON body) and from Python gets the same items, for a single model and for a pipeline
with post-ranking overrides — the library reads every spelling with one set of rules."""

import json
import socket
import subprocess
import time
import urllib.error
import urllib.request

import pytest

import towers
from conftest import FAST, run_cli
from test_pipeline import files, pipe  # noqa: F401  (fixtures)


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Server:
    def __init__(self, towers_bin, model):
        self.port = free_port()
        self.proc = subprocess.Popen(
            [towers_bin, "serve", "--model", str(model), "--addr", f"127.0.0.1:{self.port}", "-q"],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
        )
        for _ in range(200):
            try:
                urllib.request.urlopen(self.url("/healthz"), timeout=1).read()
                return
            except (urllib.error.URLError, ConnectionError):
                time.sleep(0.05)
        self.proc.kill()
        raise RuntimeError(self.proc.stderr.read().decode())

    def url(self, path):
        return f"http://127.0.0.1:{self.port}{path}"

    def get(self, path):
        return json.loads(urllib.request.urlopen(self.url(path), timeout=10).read())

    def post(self, path, body):
        req = urllib.request.Request(self.url(path), json.dumps(body).encode(), {"content-type": "application/json"})
        return json.loads(urllib.request.urlopen(req, timeout=10).read())

    def close(self):
        self.proc.terminate()
        self.proc.wait(timeout=10)


def ids(items):
    return [i["id"] for i in items]


def ask_everywhere(towers_bin, model_dir, py, cli_args, query, body, kwargs):
    cli = run_cli(towers_bin, "recommend", "--model", model_dir, "--json", *cli_args)
    server = Server(towers_bin, model_dir)
    try:
        got = server.get("/v1/recommend?" + query)
        posted = server.post("/v1/recommend", body)
    finally:
        server.close()
    python = py.recommend(**kwargs)
    assert ids(cli["items"]) == ids(got["items"]) == ids(posted["items"]) == ids(python), (cli, got, posted, python)
    return ids(python)


def test_a_model_answers_alike_on_every_face(small, towers_bin, tmp_path):
    m = towers.train(small["train"], items=small["movies"], **FAST)
    m.save(tmp_path / "m")
    got = ask_everywhere(
        towers_bin,
        tmp_path / "m",
        towers.load(tmp_path / "m"),
        ["--user", "7", "-k", "6", "--exclude-seen"],
        "user=7&k=6&exclude_seen=true",
        {"user": "7", "k": 6, "exclude_seen": True},
        {"user": "7", "k": 6, "exclude_seen": True},
    )
    assert len(got) == 6


def test_a_pipeline_answers_alike_on_every_face(pipe, towers_bin, tmp_path):  # noqa: F811
    pipe.save(tmp_path / "p")
    got = ask_everywhere(
        towers_bin,
        tmp_path / "p",
        towers.load(tmp_path / "p"),
        ["--user", "7", "-k", "5", "--exclude-seen", "--diversity", "0.5", "--cap", "genres:2", "--retrieve", "15"],
        "user=7&k=5&exclude_seen=true&diversity=0.5&caps=genres:2&retrieve=15",
        {"user": "7", "k": 5, "exclude_seen": True, "diversity": 0.5, "caps": ["genres:2"], "retrieve": 15},
        {"user": "7", "k": 5, "exclude_seen": True, "diversity": 0.5, "caps": {"genres": 2}, "retrieve": 15},
    )
    assert len(got) == 5
    # the defaults are one for every face: k 10, seen items kept
    assert ids(towers.load(tmp_path / "p").recommend("7")) == ids(
        run_cli(towers_bin, "recommend", "--model", tmp_path / "p", "--user", "7", "--json")["items"]
    )


def test_the_largest_k_is_the_libraries_everywhere(small, towers_bin, tmp_path):
    m = towers.train(small["train"], **FAST)
    with pytest.raises(towers.ConfigError, match="k must be in 1..=100000"):
        m.recommend("7", k=100_001)
    m.save(tmp_path / "m")
    out = subprocess.run(
        [towers_bin, "recommend", "--model", tmp_path / "m", "--user", "7", "-k", "100001"], capture_output=True, text=True
    )
    assert out.returncode == 2 and "k must be in 1..=100000" in out.stderr


def test_every_users_list_in_one_table_as_the_cli_writes_it(small, towers_bin, tmp_path):
    import pyarrow.compute as pc
    import pyarrow.parquet as pq

    m = towers.train(small["train"], items=small["movies"], **FAST)
    m.save(tmp_path / "m")
    t = m.recommend_batch(k=4, exclude_seen=True)
    assert t.column_names == ["user", "rank", "item", "score"] and t.num_rows == 4 * len(m.users)
    out = subprocess.run(
        [towers_bin, "recommend", "--model", tmp_path / "m", "--all-users", "-k", "4", "--exclude-seen",
         "--out", tmp_path / "recs.parquet", "-q"],
        capture_output=True, text=True,
    )
    assert out.returncode == 0, out.stderr
    cli = pq.read_table(tmp_path / "recs.parquet")
    assert cli.column("item").to_pylist() == t.column("item").to_pylist()
    assert cli.column("user").to_pylist() == t.column("user").to_pylist()
    one = [r["id"] for r in m.recommend("7", k=4, exclude_seen=True)]
    rows = t.filter(pc.equal(t.column("user"), "7"))
    assert rows.column("item").to_pylist() == one and rows.column("rank").to_pylist() == [1, 2, 3, 4]
    some = m.recommend_batch(users=["7", "nobody"], k=3)
    assert some.column("user").to_pylist() == ["7"] * 3 + ["nobody"] * 3
    # the CLI with a file of users, as TSV
    (tmp_path / "users.txt").write_text("7\nnobody\n")
    out = subprocess.run(
        [towers_bin, "recommend", "--model", tmp_path / "m", "--users", tmp_path / "users.txt", "-k", "3",
         "--out", tmp_path / "recs.tsv", "-q"],
        capture_output=True, text=True,
    )
    assert out.returncode == 0, out.stderr
    lines = (tmp_path / "recs.tsv").read_text().splitlines()
    assert lines[0] == "user\trank\titem\tscore" and [l.split("\t")[2] for l in lines[1:]] == some.column("item").to_pylist()


def test_embeddings_written_for_other_systems_are_the_models(small, towers_bin, tmp_path):
    import numpy as np
    import pyarrow.parquet as pq

    m = towers.train(small["train"], items=small["movies"], **FAST)
    m.save(tmp_path / "m")
    out = run_cli(towers_bin, "embed", "--model", tmp_path / "m", "--out", tmp_path / "e", "--json")
    assert out["items"] == 40 and out["users"] == len(m.users) and out["dim"] == 8
    ids, emb = m.candidate_embeddings()
    items = pq.read_table(tmp_path / "e" / "items.parquet")
    assert items.column_names == ["id"] + [f"e{j}" for j in range(8)]
    assert items.column("id").to_pylist() == ids
    as_table = np.stack([items.column(f"e{j}").to_numpy() for j in range(8)], axis=1)
    assert np.array_equal(as_table, emb) and np.array_equal(np.load(tmp_path / "e" / "items.npy"), emb)
    users = pq.read_table(tmp_path / "e" / "users.parquet").column("id").to_pylist()
    assert users == m.users
    assert np.array_equal(np.load(tmp_path / "e" / "users.npy"), m.query_embeddings(users))
