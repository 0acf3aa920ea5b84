#!/usr/bin/env python3
"""Checks the relative links of the book (docs/src) and the README: every target file exists,
every #anchor is a heading of its page (mdBook's slugs). Exits 1 naming each broken link."""
import glob
import os
import re
import sys

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def slug(heading):
    h = re.sub(r"<[^>]+>", "", heading).strip().lower()
    return "".join(c if c.isalnum() or c in "-_" else "-" if c == " " else "" for c in h)


def anchors(path):
    found, code = set(), False
    for line in open(path, encoding="utf-8"):
        if line.startswith("```"):
            code = not code
        if not code and line.startswith("#"):
            found.add(slug(line.lstrip("#").strip().replace("`", "")))
    return found


broken = []
for f in glob.glob(f"{ROOT}/docs/src/**/*.md", recursive=True) + [f"{ROOT}/README.md"]:
    text = re.sub(r"```.*?```", "", open(f, encoding="utf-8").read(), flags=re.S)
    text = re.sub(r"`[^`\n]*`", "", text)
    for m in re.finditer(r"\]\(([^)\s]+)\)", text):
        target = m.group(1)
        if re.match(r"[a-z]+:", target):
            continue
        path, _, anchor = target.partition("#")
        full = os.path.normpath(os.path.join(os.path.dirname(f), path)) if path else f
        if not os.path.exists(full):
            broken.append(f"{os.path.relpath(f, ROOT)}: {target}: no such file")
        elif anchor and full.endswith(".md") and anchor not in anchors(full):
            broken.append(f"{os.path.relpath(f, ROOT)}: {target}: no such heading")
print("\n".join(broken) or "every link of the book and the README resolves")
sys.exit(1 if broken else 0)
