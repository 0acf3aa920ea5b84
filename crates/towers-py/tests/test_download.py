"""towers.datasets.movielens_100k: downloaded on first use from a local server, verified, cached."""

import functools
import http.server
import threading
import zipfile

import pytest

import towers


@pytest.fixture(scope="module")
def server(ml100k, tmp_path_factory):
    """A local HTTP server with a good zip (made here from ../shared/data/ml-100k) and a corrupted one."""
    www = tmp_path_factory.mktemp("www")
    for name, bad in (("good.zip", False), ("bad.zip", True), ("partial.zip", False)):
        with zipfile.ZipFile(www / name, "w", zipfile.ZIP_DEFLATED) as z:
            for f in sorted(ml100k.iterdir()):
                data = f.read_bytes()
                if bad and f.name == "u.data":
                    data = data[:-100] + b"1\t1\t5\t881250949\n"
                z.writestr("ml-100k/" + f.name, data)
    (www / "partial.zip").write_bytes((www / "partial.zip").read_bytes()[:100_000])
    handler = functools.partial(http.server.SimpleHTTPRequestHandler, directory=str(www))
    httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    handler.log_message = lambda *a: None
    threading.Thread(target=httpd.serve_forever, daemon=True).start()
    yield f"http://127.0.0.1:{httpd.server_address[1]}"
    httpd.shutdown()


def files(d):
    return sorted(p.relative_to(d) for p in d.rglob("*") if p.is_file())


def test_first_use_downloads_verifies_and_caches(server, tmp_path, capfd):
    d = towers.datasets.movielens_100k(cache_dir=tmp_path, url=f"{server}/good.zip")
    assert d == tmp_path / "ml-100k" and (d / "u.data").is_file() and (d / "u.item").is_file()
    assert "downloading MovieLens 100K" in capfd.readouterr().err
    # README.md of the local copy is not part of GroupLens's release: only the known files are kept
    assert [p.name for p in files(d)] == sorted(["README", "u.data", "u.genre", "u.info", "u.item", "u.occupation", "u.user"])
    # the cache is reused: no server needed, nothing printed
    again = towers.datasets.movielens_100k(cache_dir=tmp_path, url="http://127.0.0.1:9/none.zip")
    assert again == d and capfd.readouterr().err == ""
    m = towers.train(d / "u.data", items=d / "u.item", epochs=1, progress=False)
    assert m.recommend("42", k=3)[0]["title"]


def test_a_corrupt_or_partial_download_is_refused_and_caches_nothing(server, tmp_path):
    with pytest.raises(towers.InputError, match="u.data has sha256") as e:
        towers.datasets.movielens_100k(cache_dir=tmp_path / "bad", url=f"{server}/bad.zip", quiet=True)
    assert "nothing was cached" in str(e.value)
    with pytest.raises(towers.InputError, match="not a zip file"):
        towers.datasets.movielens_100k(cache_dir=tmp_path / "bad", url=f"{server}/partial.zip", quiet=True)
    assert not (tmp_path / "bad").exists() or files(tmp_path / "bad") == []


def test_offline_or_a_missing_file_is_a_clear_file_error(server, tmp_path):
    with pytest.raises(towers.FileError, match="could not download MovieLens 100K.*Offline?"):
        towers.datasets.movielens_100k(cache_dir=tmp_path, url="http://127.0.0.1:9/ml-100k.zip", quiet=True)
    with pytest.raises(towers.FileError, match="HTTP 404"):
        towers.datasets.movielens_100k(cache_dir=tmp_path, url=f"{server}/missing.zip", quiet=True)
    assert files(tmp_path) == []
