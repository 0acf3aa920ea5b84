"""Every shell and Python snippet of the README and the book (docs/src) runs, so that none rots.

A snippet runs from the repository root, with the CLI under test first on the PATH as `towers`
and this interpreter's package as `towers`; the snippets of one page run in order (a Python
page's blocks share their variables), the pages in the book's order. Optional flags written in
brackets (`[--json]`) are left out. A snippet that cannot run in a test says why in the line
before it: `<!-- not run: REASON -->` (a server that runs until stopped, a build, a PostgreSQL
cluster, hours of data: each is covered by its own tests). Real data comes from ../shared/data
(absent: skipped; a failure under CI=true).
"""

import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from conftest import DATA, ROOT, need

BOOK = ROOT / "docs" / "src"
NOT_RUN = re.compile(r"<!--\s*not run:\s*(.+?)\s*-->\s*$")


def pages():
    """README.md, then the book's pages in SUMMARY.md's order."""
    order = re.findall(r"\]\(([^)]+\.md)\)", (BOOK / "SUMMARY.md").read_text())
    return [ROOT / "README.md"] + [BOOK / p for p in order]


def snippets(page):
    """The page's sh and python blocks: (line, language, code, why not run or None)."""
    lines = page.read_text().splitlines()
    out, i = [], 0
    while i < len(lines):
        m = re.match(r"```(sh|python)\s*$", lines[i])
        if not m:
            i += 1
            continue
        start = i
        j = i + 1
        while not lines[j].startswith("```"):
            j += 1
        before = lines[start - 1] if start > 0 else ""
        why = NOT_RUN.search(before)
        out.append((start + 1, m.group(1), "\n".join(lines[start + 1:j]), why.group(1) if why else None))
        i = j + 1
    return out


CASES = [(p, s) for p in pages() for s in snippets(p)]


def test_every_page_is_in_the_book_and_snippets_are_found():
    listed = {p.resolve() for p in pages()}
    for md in BOOK.rglob("*.md"):
        assert md.name == "SUMMARY.md" or md.resolve() in listed, f"{md} is not in SUMMARY.md"
    assert sum(1 for _ in CASES) >= 30


def optional_left_out(code):
    """Shell code without its bracketed optional flags (`[--json]`, `[--table T]`…)."""
    return re.sub(r"\s\[[^\]\n]*\](…)?", "", code)


@pytest.fixture(scope="module")
def env(towers_bin, tmp_path_factory):
    """The snippets' environment: `towers` is the CLI under test, MovieLens 100K is found
    (quickstart's $TOWERS_DATA) and already in the download cache (a copy in a temporary cache)."""
    ml = need("ml-100k")
    need("ml-100k-splits/tfrs-80-20")
    bin_dir = tmp_path_factory.mktemp("bin")
    (bin_dir / "towers").symlink_to(Path(towers_bin).resolve())
    cache = tmp_path_factory.mktemp("cache")
    shutil.copytree(ml, cache / "ml-100k", ignore=shutil.ignore_patterns("README.md"))
    e = dict(os.environ)
    e["PATH"] = f"{bin_dir}:{Path(sys.executable).parent}:{e['PATH']}"
    e["TOWERS_DATA"] = str(ml)
    e["TOWERS_CACHE_DIR"] = str(cache)
    return e


NAMESPACES = {}


@pytest.mark.parametrize(
    "page,snippet", CASES, ids=[f"{p.relative_to(ROOT)}:{s[0]}" for p, s in CASES]
)
def test_snippet_runs(page, snippet, env):
    line, lang, code, why = snippet
    if why:
        pytest.skip(f"not run: {why}")
    where = f"{page.relative_to(ROOT)}, line {line}"
    if lang == "sh":
        o = subprocess.run(
            ["bash", "-euo", "pipefail", "-c", optional_left_out(code)],
            cwd=ROOT, env=env, capture_output=True, text=True, timeout=600,
        )
        assert o.returncode == 0, f"{where}: exit {o.returncode}\n{code}\n--- stderr:\n{o.stderr[-3000:]}"
    else:
        namespace = NAMESPACES.setdefault(page, {"__name__": "__book__"})
        cwd, cache = os.getcwd(), os.environ.get("TOWERS_CACHE_DIR")
        os.chdir(ROOT)
        os.environ["TOWERS_CACHE_DIR"] = env["TOWERS_CACHE_DIR"]
        try:
            exec(compile(code, where, "exec"), namespace)
        finally:
            os.chdir(cwd)
            if cache is None:
                os.environ.pop("TOWERS_CACHE_DIR")
            else:
                os.environ["TOWERS_CACHE_DIR"] = cache
