#!/usr/bin/env bash
# SASRec beside its PyTorch peer (scripts/peer_sasrec.py), in one run on the same data and
# machine: the same model (dim 64, blocks, heads, dropout, window, skip connection), batch,
# learning rate and in-batch softmax with logQ; towers' defaults unless given. Prints each side's
# epoch seconds, recall@20 and MRR@20 on the test sessions, and the epoch-time ratio.
#
#   python3 -m venv target/torch-venv && target/torch-venv/bin/pip install torch numpy
#   cargo build --release -p towers-cli
#   scripts/sasrec_bench.sh [EPOCHS] [DATA-DIR]     # default: 2 epochs, RetailRocket
set -euo pipefail
cd "$(dirname "$0")/.."
EPOCHS=${1:-2}
DATA=${2:-../shared/data/retailrocket-cotrec}
T=${TOWERS_BIN:-$PWD/target/release/towers}
PY=${TORCH_PYTHON:-$PWD/target/torch-venv/bin/python}
W=$(mktemp -d /tmp/towers-sasrec-bench.XXXXXX)
trap 'rm -rf "$W"' EXIT
# towers' defaults for --encoder sasrec: Adam 0.03, 30 steps, batches of 32,768 targets, which on
# RetailRocket (4.42 targets per sequence) are 7,414 sequences: the peer's batch counts sequences
LR=0.03 STEPS=30 BATCH=${PEER_BATCH:-7414}

"$T" train --task sequential --encoder sasrec --train-format sessions --train "$DATA/train_sessions.txt" \
  --epochs "$EPOCHS" --out "$W/m" --json >"$W/towers.json" 2>/dev/null
"$T" evaluate --model "$W/m" --test "$DATA/test_sessions.txt" --json >"$W/eval.json"
"$PY" scripts/peer_sasrec.py --data "$DATA" --epochs "$EPOCHS" --batch-size $BATCH --lr $LR --max-len $STEPS \
  --json >"$W/peer.json"

python3 - "$W" <<'EOF'
import json, sys
w = sys.argv[1]
t, e = json.load(open(f"{w}/towers.json")), json.load(open(f"{w}/eval.json"))
p = json.loads([l for l in open(f"{w}/peer.json") if l.startswith("{")][-1])
print("| | epoch s (each) | recall@20 | MRR@20 |")
print("|---|---|---|---|")
print(f"| towers | {' / '.join(f'{s:.1f}' for s in t['epoch_s'])} | {e['top_20']:.4f} | {e['mrr_20']:.4f} |")
print(f"| PyTorch {p['config']['torch']} | {' / '.join(f'{s:.1f}' for s in p['epoch_s'])} | {p['recall_20']:.4f} | {p['mrr_20']:.4f} |")
ratio = (sum(p["epoch_s"]) / len(p["epoch_s"])) / (sum(t["epoch_s"]) / len(t["epoch_s"]))
print(f"\nPyTorch's mean epoch / towers': {ratio:.1f}x")
EOF
