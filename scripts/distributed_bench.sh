#!/usr/bin/env bash
# Distributed training figures: one process against `mpirun -np 1, 2, 3` at one thread per rank
# (TFRS recipe, global batch 4096, 2 epochs), with and without --shard-tables, and two ranks in
# two network namespaces joined by a veth pair (TCP instead of shared memory; needs root and
# `ip netns`). Prints a Markdown table: the last epoch's seconds, rows/s, bytes each rank sent
# per step and per epoch, and each rank's peak memory and user-table rows.
#
#   cargo build --release -p towers-cli --features mpi
#   python3 ../shared/peer/synth.py --users 1000000 --items 200000 --interactions 1000000 --seed 1 --out /tmp/m.tsv
#   scripts/distributed_bench.sh /tmp/m.tsv
set -euo pipefail
cd "$(dirname "$0")/.."
DATA=${1:?usage: scripts/distributed_bench.sh DATA.tsv}
T=${TOWERS_BIN:-$PWD/target/release/towers}
W=$(mktemp -d /tmp/towers-dist-bench.XXXXXX)
trap 'rm -rf "$W"' EXIT
export OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1 RAYON_NUM_THREADS=1
ARGS=(train --train "$DATA" --recipe tfrs --batch-size 4096 --epochs 2 --seed 1 --json)
MPI=(mpirun --oversubscribe -x RAYON_NUM_THREADS)

row() { # NAME JSON-FILE
  python3 - "$1" "$2" <<'EOF'
import json, sys
name, path = sys.argv[1], sys.argv[2]
j = json.loads([l for l in open(path) if l.startswith("{")][-1])
e = j["epoch_s"][-1]
ranks = j.get("ranks") or [{"bytes_sent": 0, "steps": 1, "peak_rss_mb": j["max_rss_mb"], "user_rows": None}]
steps = ranks[0]["steps"]
per_step = sum(r["bytes_sent"] for r in ranks) / len(ranks) / steps
per_epoch = per_step * steps / len(j["epoch_s"])
rss = " / ".join(f"{r['peak_rss_mb']:.0f}" for r in ranks)
users = " / ".join(str(r["user_rows"]) for r in ranks) if ranks[0]["user_rows"] is not None else "all"
print(f"| {name} | {e:.2f} | {j['n_train'] / e:,.0f} | {per_step / 1e6:.2f} MB | {per_epoch / 1e6:,.0f} MB | {rss} | {users} |")
EOF
}

echo "| run | last epoch (s) | rows/s | sent per step (per rank) | sent per epoch (per rank) | peak MB per rank | user rows per rank |"
echo "|---|---|---|---|---|---|---|"
"$T" "${ARGS[@]}" --out "$W/m" >"$W/one.json" 2>/dev/null
row "one process" "$W/one.json"
for n in 1 2 3; do
  "${MPI[@]}" -np $n "$T" "${ARGS[@]}" --distributed --shard-tables --out "$W/m" >"$W/s$n.json" 2>/dev/null
  row "$n rank(s), sharded" "$W/s$n.json"
done
"${MPI[@]}" -np 2 "$T" "${ARGS[@]}" --distributed --out "$W/m" >"$W/r2.json" 2>/dev/null
row "2 ranks, replicated" "$W/r2.json"

# two ranks in two network namespaces, TCP over a veth pair
if [ "$(id -u)" = 0 ] && command -v ip >/dev/null && ip netns add towers-a 2>/dev/null; then
  ip netns add towers-b
  trap 'ip netns del towers-a 2>/dev/null; ip netns del towers-b 2>/dev/null; rm -rf "$W"' EXIT
  ip link add towers-va type veth peer name towers-vb
  ip link set towers-va netns towers-a && ip link set towers-vb netns towers-b
  ip -n towers-a addr add 10.77.0.1/24 dev towers-va && ip -n towers-b addr add 10.77.0.2/24 dev towers-vb
  for ns in a b; do ip -n towers-$ns link set towers-v$ns up; ip -n towers-$ns link set lo up; done
  NET=(--mca btl tcp,self --mca btl_tcp_if_include 10.77.0.0/24 --mca oob_tcp_if_include 10.77.0.0/24)
  PMIX_MCA_ptl_tcp_if_include=10.77.0.0/24 ip netns exec towers-a "${MPI[@]}" -x PMIX_MCA_ptl_tcp_if_include "${NET[@]}" \
    -np 1 "$T" "${ARGS[@]}" --distributed --shard-tables --out "$W/m" : \
    -np 1 ip netns exec towers-b "$T" "${ARGS[@]}" --distributed --shard-tables --out "$W/m" >"$W/tcp.json" 2>/dev/null
  row "2 ranks, sharded, TCP over veth" "$W/tcp.json"
else
  echo "(no network namespaces here: the TCP run needs root and ip netns)"
fi
