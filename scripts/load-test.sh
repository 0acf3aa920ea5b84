#!/usr/bin/env bash
# Load benchmark of `towers serve`: trains (or takes) a MovieLens model, serves it on loopback,
# drives GET /v1/recommend with wrk for a bounded time, and prints requests/s, p50/p99 latency
# and the error count. Usage: scripts/load-test.sh [DURATION] (default 30s).
# Env: MODEL=dir (skip training; a pipeline directory too), DEBUG=1 (pipelines: ask for per-stage timings and
#      print their means), SKIP_BUILD=1 (use the release binary as built), CONNECTIONS (default 16), WRK_THREADS (default 1), SERVER_THREADS (default 2),
#      STORE=index (default: the model's own index) | exact | postgres (top-k from PostgreSQL + pgvector:
#      a throwaway cluster from scripts/postgres.sh, or PG_URL=postgresql://… of a running one; the model is
#      exported first unless EXPORTED=1), EF_SEARCH (postgres, default 100), PG_POOL (postgres, default 16).
set -euo pipefail
cd "$(dirname "$0")/.."
DURATION=${1:-30s}
STORE=${STORE:-index}
command -v wrk >/dev/null || { apt-get update -qq && apt-get install -y -qq wrk >/dev/null; }
[ "${SKIP_BUILD:-0}" = 1 ] || cargo build --release -q
TOWERS=target/release/towers
WORK=$(mktemp -d)
PGDIR=
cleanup() {
  kill "$SERVER" 2>/dev/null || true; wait "$SERVER" 2>/dev/null || true
  [ -z "$PGDIR" ] || scripts/postgres.sh stop "$PGDIR" >/dev/null 2>&1 || true
  rm -rf "$WORK"
}
SERVER=
trap cleanup EXIT
MODEL=${MODEL:-}
if [ -z "$MODEL" ]; then
  S=../shared/data/ml-100k-splits/tfrs-80-20
  MODEL=$WORK/movielens
  $TOWERS train --train $S/train.tsv --items $S/movies.tsv --out "$MODEL" >/dev/null
fi
case "$STORE" in
  index) STORE_ARGS=() ;;
  exact) STORE_ARGS=(--exact) ;;
  postgres)
    URL=${PG_URL:-}
    if [ -z "$URL" ]; then
      PGDIR=$WORK/pg
      URL=$(scripts/postgres.sh start "$PGDIR" | tail -n 1)
    fi
    [ "${EXPORTED:-0}" = 1 ] || $TOWERS export --model "$MODEL" --postgres "$URL"
    STORE_ARGS=(--postgres "$URL" --ef-search "${EF_SEARCH:-100}" --pg-pool "${PG_POOL:-16}") ;;
  *) echo "STORE must be index, exact or postgres, not '$STORE'" >&2; exit 2 ;;
esac
$TOWERS serve --model "$MODEL" --addr 127.0.0.1:0 --threads "${SERVER_THREADS:-2}" --quiet "${STORE_ARGS[@]}" >"$WORK/serve.out" &
SERVER=$!
for _ in $(seq 600); do grep -q http:// "$WORK/serve.out" 2>/dev/null && break; sleep 0.1; done  # a 1M model takes seconds to load
URL=$(grep -o 'http://[0-9.:]*' "$WORK/serve.out")
echo "serving $MODEL at $URL (store $STORE); wrk for $DURATION, ${CONNECTIONS:-16} connections"
wrk -t"${WRK_THREADS:-1}" -c"${CONNECTIONS:-16}" -d"$DURATION" --latency -s scripts/recommend.lua "$URL"
