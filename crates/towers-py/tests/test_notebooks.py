"""The notebooks in notebooks/ (the TFRS / Keras-RS tutorials with towers): each one executed cell by
cell with nbclient, from its own folder, in a kernel of this interpreter (so that it imports the
towers installed here); and every notebook kept without outputs.

Notebooks that read ../shared/data (or ../shared/peer) skip when it is absent, and fail under CI=true,
as conftest.need() does. $TOWERS_DATA moves the data folder, for the notebooks and for these checks."""

import importlib
import json
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[3]
NOTEBOOKS = ROOT / "notebooks"
CELL_TIMEOUT = 120  # seconds, per cell
ANSI = re.compile(r"\x1b\[[0-9;]*m")  # the colours of IPython's tracebacks

# What each notebook reads beside the checkout: (folder, path in it); "data" is $TOWERS_DATA or
# ../shared/data, "peer" is $TOWERS_PEER or the data folder's sibling peer/ (as the notebooks find them).
NEEDS = {
    "01_basic_retrieval": [("data", "ml-100k-splits/tfrs-80-20")],
    "02_sequential": [("data", "ml-100k-splits/seq-last-out"), ("data", "ml-100k-splits/tfrs-80-20/movies.tsv")],
    "03_ranking_dcn": [("data", "ml-100k-splits/tfrs-80-20"), ("data", "ml-100k")],
    "04_multitask": [("data", "ml-100k-splits/tfrs-80-20")],
    "05_listwise": [("data", "ml-100k-splits/tfrs-80-20")],
    "06_pipeline": [("data", "ml-100k-splits/tfrs-80-20"), ("data", "ml-100k")],
    "07_large_data": [("peer", "synth.py")],
}


def ci():
    return os.environ.get("CI") == "true"


def folder(name):
    data = Path(os.environ.get("TOWERS_DATA", ROOT.parent / "shared" / "data"))
    return data if name == "data" else Path(os.environ.get("TOWERS_PEER", data.parent / "peer"))


def need(where, path):
    """As conftest.need(): a skip when the file is absent, a failure under CI=true."""
    p = folder(where) / path
    if not p.exists():
        if ci():
            pytest.fail(f"{p} is missing (CI=true needs ../shared/{where})")
        pytest.skip(f"{p} is absent")


def need_module(name):
    """The notebook tools (scripts/test.sh installs them): a skip without them, a failure under CI=true."""
    if ci():
        return importlib.import_module(name)
    return pytest.importorskip(name)


def notebooks():
    return sorted(NOTEBOOKS.glob("*.ipynb"))


def tracked_notebooks():
    """The notebooks git has or would add (tracked, or untracked and not ignored); all of them
    without git."""
    try:
        out = subprocess.run(
            ["git", "ls-files", "--cached", "--others", "--exclude-standard", "--", "notebooks/*.ipynb"],
            cwd=ROOT, capture_output=True, text=True, check=True,
        ).stdout
    except (OSError, subprocess.CalledProcessError):
        return notebooks()
    return sorted(ROOT / line for line in out.splitlines() if (ROOT / line).is_file())


@pytest.fixture(scope="session")
def kernel(tmp_path_factory):
    """A kernelspec for this interpreter, found through JUPYTER_PATH (nothing is installed anywhere)."""
    need_module("nbclient")
    need_module("ipykernel")
    need_module("matplotlib")
    d = tmp_path_factory.mktemp("jupyter")
    spec = d / "kernels" / "towers-tests"
    spec.mkdir(parents=True)
    (spec / "kernel.json").write_text(json.dumps({
        "argv": [sys.executable, "-m", "ipykernel_launcher", "-f", "{connection_file}"],
        "display_name": "towers tests",
        "language": "python",
    }))
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("JUPYTER_PATH", str(d) + os.pathsep + os.environ.get("JUPYTER_PATH", ""))
        mp.setenv("MPLBACKEND", "Agg")
        mp.setenv("PYDEVD_DISABLE_FILE_VALIDATION", "1")  # the debugger's note on frozen modules
        yield "towers-tests"


def test_there_are_notebooks_and_each_says_what_it_reads():
    names = {p.stem for p in notebooks()}
    assert len(names) >= 6, names
    assert names == set(NEEDS), f"NEEDS here and notebooks/ differ: {names ^ set(NEEDS)}"


@pytest.mark.parametrize("path", notebooks(), ids=lambda p: p.name)
def test_notebook_runs(path, kernel):
    for where, p in NEEDS.get(path.stem, []):
        need(where, p)
    import nbformat
    from nbclient import NotebookClient
    from nbclient.exceptions import CellControlSignal, CellExecutionError, CellTimeoutError

    nb = nbformat.read(path, as_version=4)
    current = {"index": None}

    def started(cell, cell_index, **_):
        current["index"] = cell_index

    client = NotebookClient(
        nb,
        timeout=CELL_TIMEOUT,
        kernel_name=kernel,
        resources={"metadata": {"path": str(path.parent)}},
        on_cell_execute=started,
    )
    try:
        client.execute()
        return
    except (CellExecutionError, CellTimeoutError, CellControlSignal) as e:
        error = ANSI.sub("", str(e))
    i = current["index"]
    where = "before its first cell" if i is None else f"cell {i} (the {ordinal(code_number(nb, i))} code cell)"
    pytest.fail(f"{path.name}, {where} failed:\n{error}", pytrace=False)


def code_number(nb, index):
    return sum(1 for c in nb.cells[: index + 1] if c.cell_type == "code")


def ordinal(n):
    return f"{n}{'th' if 10 <= n % 100 <= 20 else {1: 'st', 2: 'nd', 3: 'rd'}.get(n % 10, 'th')}"


@pytest.mark.parametrize("path", tracked_notebooks(), ids=lambda p: p.name)
def test_notebook_is_committed_without_outputs(path):
    nbformat = need_module("nbformat")
    nb = nbformat.read(path, as_version=4)
    nbformat.validate(nb)
    assert nb.nbformat == 4
    dirty = [
        i for i, c in enumerate(nb.cells)
        if c.cell_type == "code" and (c.get("outputs") or c.get("execution_count") is not None)
    ]
    assert not dirty, (
        f"{path.name}: cells {dirty} keep outputs or execution counts; clear them "
        f"(Clear All Outputs before saving, or jupyter nbconvert --clear-output --inplace {path.relative_to(ROOT)})"
    )
