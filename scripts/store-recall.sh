#!/usr/bin/env bash
# Recall@10 of `serve --postgres` against `serve --exact` on the same model: the mean share of the
# exact top-10 that the PostgreSQL + pgvector path returns, over the first USERS query ids of the
# model (default 1000), with seen items kept. The model must have been exported to URL.
# Usage: scripts/store-recall.sh MODEL_DIR postgresql://… [USERS] [EF_SEARCH]
set -euo pipefail
cd "$(dirname "$0")/.."
MODEL=$1 URL=$2 USERS=${3:-1000} EF=${4:-100}
TOWERS=target/release/towers
[ -x $TOWERS ] || cargo build --release -q
WORK=$(mktemp -d)
trap 'kill $A $B 2>/dev/null || true; rm -rf "$WORK"' EXIT
$TOWERS serve --model "$MODEL" --addr 127.0.0.1:0 --exact --quiet >"$WORK/a" & A=$!
$TOWERS serve --model "$MODEL" --addr 127.0.0.1:0 --postgres "$URL" --ef-search "$EF" --quiet >"$WORK/b" & B=$!
for _ in $(seq 600); do grep -q http:// "$WORK/a" && grep -q http:// "$WORK/b" && break; sleep 0.1; done
python3 - "$(grep -o 'http://[0-9.:]*' "$WORK/a")" "$(grep -o 'http://[0-9.:]*' "$WORK/b")" "$MODEL" "$USERS" <<'PY'
import json, sys, time, urllib.request
a, b, model, n = sys.argv[1], sys.argv[2], sys.argv[3], int(sys.argv[4])
users = json.load(open(f"{model}/vocab.json"))
users = users.get("keys", users) if isinstance(users, dict) else users
users = [u for u in users if u][:n]
tot, tb = 0.0, 0.0
for u in users:
    q = urllib.parse.quote(str(u))
    A = {i["id"] for i in json.load(urllib.request.urlopen(f"{a}/v1/recommend?user={q}&k=10"))["items"]}
    t = time.time()
    B = {i["id"] for i in json.load(urllib.request.urlopen(f"{b}/v1/recommend?user={q}&k=10"))["items"]}
    tb += time.time() - t
    tot += len(A & B) / 10
print(f"RESULT recall_at_10={tot / len(users):.4f} users={len(users)} postgres_mean_ms={1000 * tb / len(users):.2f}")
PY
