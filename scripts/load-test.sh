#!/usr/bin/env bash
# Load benchmark of `towers serve`: trains (or takes) a MovieLens model, serves it on loopback,
# drives GET /v1/recommend with wrk for a bounded time, and prints requests/s, p50/p99 latency
# and the error count. Usage: scripts/load-test.sh [DURATION] (default 30s).
# Env: MODEL=dir (skip training), CONNECTIONS (default 16), WRK_THREADS (default 1), SERVER_THREADS (default 2).
set -euo pipefail
cd "$(dirname "$0")/.."
DURATION=${1:-30s}
command -v wrk >/dev/null || { apt-get update -qq && apt-get install -y -qq wrk >/dev/null; }
cargo build --release -q
TOWERS=target/release/towers
WORK=$(mktemp -d)
trap 'kill "$SERVER" 2>/dev/null || true; wait "$SERVER" 2>/dev/null || true; rm -rf "$WORK"' EXIT
MODEL=${MODEL:-}
if [ -z "$MODEL" ]; then
  S=../shared/data/ml-100k-splits/tfrs-80-20
  MODEL=$WORK/movielens
  $TOWERS train --train $S/train.tsv --items $S/movies.tsv --out "$MODEL" >/dev/null
fi
$TOWERS serve --model "$MODEL" --addr 127.0.0.1:0 --threads "${SERVER_THREADS:-2}" --quiet >"$WORK/serve.out" &
SERVER=$!
for _ in $(seq 50); do grep -q http:// "$WORK/serve.out" 2>/dev/null && break; sleep 0.1; done
URL=$(grep -o 'http://[0-9.:]*' "$WORK/serve.out")
echo "serving $MODEL at $URL; wrk for $DURATION, ${CONNECTIONS:-16} connections"
wrk -t"${WRK_THREADS:-1}" -c"${CONNECTIONS:-16}" -d"$DURATION" --latency -s scripts/recommend.lua "$URL"
