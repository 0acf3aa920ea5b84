#!/usr/bin/env bash
# Builds the book (docs/, mdBook) into a temporary folder, failing on any warning or error, and
# checks its links and the README's (scripts/check_links.py). Needs `mdbook` on the PATH
# (`cargo install mdbook --locked --no-default-features --features search`; .ci/run installs it).
set -euo pipefail
cd "$(dirname "$0")/.."
out=$(mktemp -d)
trap 'rm -rf "$out"' EXIT
log=$(mdbook build docs -d "$out" 2>&1) || { echo "$log"; echo "mdbook build failed" >&2; exit 1; }
if grep -qiE 'warn|error' <<<"$log"; then echo "$log"; echo "mdbook build warned" >&2; exit 1; fi
python3 scripts/check_links.py
