"""SASRec (Kang & McAuley 2018) in PyTorch, the peer of towers' SASRec query tower, scored like towers.

Pre-LayerNorm transformer over a session (LayerNorm eps 1e-6, as on the Rust side): x = E[item] + P[pos]
(position 0 = oldest item of the window, no sqrt(d) scaling), dropout; `--blocks` blocks of
a = LN1(x), one d x 3d linear for q,k,v, causal `--heads`-head attention (scale 1/sqrt(d/heads), dropout
on the probabilities), o = concat W_o + b_o, dropout, h = x + o, then x = h + dropout(FFN(LN2(h))) with
FFN = Linear(d,d), ReLU, Linear(d,d); a final LayerNorm. Item j scores output . E[j] (the input table).
Glorot-uniform linears with zero biases, embeddings uniform +-0.05, Adam (betas 0.9/0.999, eps 1e-7).

Training: every position of every training session predicts the next item (sessions longer than
max_len+1 are cut into chunks of max_len targets counted from the end); with `--format examples`
(ml-100k-splits/seq-*: user, 10 context ids padded with 0, target) only the last position is trained.
Batches are padded to their longest sequence. `--loss inbatch` (default): softmax over the batch's distinct
target items with logQ correction (log of the item's share of all training targets); `--loss ce`:
full softmax over all items. Evaluation: the output at the last position of each test history (last
max_len items) scores all items (nothing excluded); rank = 1 + items with a strictly greater score;
recall@20, MRR@20 (and top_10 = recall@10). Targets not seen in training are misses.

Setup: PyPI's Linux torch wheel imports only with its CUDA libraries beside it (about 5 GB in all),
even to run on the CPU; `--threads` (default 2) sets torch's threads, and OMP_WAIT_POLICY defaults
to PASSIVE (below). Tested with torch 2.15.0 and Python 3.11.7.

    python3 -m venv target/torch-venv && target/torch-venv/bin/pip install torch numpy
    target/torch-venv/bin/python scripts/peer_sasrec.py --epochs 3
    target/torch-venv/bin/python scripts/peer_sasrec.py --format examples \\
        --data ../shared/data/ml-100k-splits/seq-last-out --epochs 10 --json
"""

import argparse
import json
import math
import os
import platform
import sys
import time

# Idle OpenMP threads sleep instead of spinning: on a busy 2-core machine, spinning made 2 threads
# ~10x slower than 1 (set OMP_WAIT_POLICY=ACTIVE in the environment to override).
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")

import numpy as np  # noqa: E402
import torch  # noqa: E402
import torch.nn.functional as F  # noqa: E402
from torch import nn  # noqa: E402


def read_sessions(path):
    with open(path) as f:
        return [[int(t) for t in line.split()] for line in f if line.strip()]


def read_examples(path):
    """(context without 0 padding, target) per row of user<TAB>context<TAB>target."""
    rows = []
    with open(path) as f:
        for line in f:
            if line.strip():
                _, ctx, target = line.rstrip("\n").split("\t")
                rows.append(([int(t) for t in ctx.split() if t != "0"], int(target)))
    return rows


def load(a):
    """Training sequences (+ index of the first trained target) and test (history, target) pairs."""
    if a.format == "sessions":
        train = read_sessions(f"{a.data}/train_sessions.txt")
        test = [(s[:-1], s[-1]) for s in read_sessions(f"{a.data}/test_sessions.txt")]
        seqs = []
        for s in train:
            end = len(s)  # chunks of max_len targets from the end, each with its inputs before them
            while end > 1:
                start = max(0, end - a.max_len - 1)
                seqs.append((s[start:end], 0))
                end = start + 1
    else:
        seqs = [(c + [t], len(c) - 1) for c, t in read_examples(f"{a.data}/train.tsv") if c]
        test = read_examples(f"{a.data}/test.tsv")
    vocab = {item: i + 1 for i, item in enumerate(sorted({i for s, _ in seqs for i in s}))}
    return seqs, test, vocab


def pack(seqs, vocab, max_len):
    """Right-padded inputs, targets (0 = no loss) and lengths of the training sequences."""
    n = len(seqs)
    inputs = np.zeros((n, max_len), np.int64)
    targets = np.zeros((n, max_len), np.int64)
    lengths = np.zeros(n, np.int64)
    for r, (s, first) in enumerate(seqs):
        ids = [vocab[i] for i in s]
        inputs[r, :len(ids) - 1] = ids[:-1]
        targets[r, first:len(ids) - 1] = ids[first + 1:]
        lengths[r] = len(ids) - 1
    return inputs, targets, lengths


def dropout(x, p, training):
    """Inverted dropout with a mask from torch.rand: 2-3x faster on the CPU than bernoulli_."""
    if not training or p == 0:
        return x
    return x * ((torch.rand_like(x) >= p).to(x.dtype) * (1.0 / (1.0 - p)))


class Block(nn.Module):
    def __init__(self, d, heads, dropout, attn):
        super().__init__()
        self.ln1, self.ln2 = nn.LayerNorm(d, eps=1e-6), nn.LayerNorm(d, eps=1e-6)
        self.qkv, self.o = nn.Linear(d, 3 * d), nn.Linear(d, d)
        self.ff1, self.ff2 = nn.Linear(d, d), nn.Linear(d, d)
        self.heads, self.p, self.attn = heads, dropout, attn

    def forward(self, x):
        b, n, d = x.shape
        q, k, v = self.qkv(self.ln1(x)).view(b, n, 3, self.heads, d // self.heads).permute(2, 0, 3, 1, 4)
        if self.attn == "sdpa":
            z = F.scaled_dot_product_attention(q, k, v, dropout_p=self.p if self.training else 0.0,
                                               is_causal=True)
        else:
            w = (q @ k.transpose(-1, -2)) * (1.0 / math.sqrt(d // self.heads))
            mask = torch.ones(n, n, dtype=torch.bool, device=x.device).triu(1)
            w = dropout(w.masked_fill(mask, float("-inf")).softmax(-1), self.p, self.training)
            z = w @ v
        h = x + dropout(self.o(z.transpose(1, 2).reshape(b, n, d)), self.p, self.training)
        return h + dropout(self.ff2(F.relu(self.ff1(self.ln2(h)))), self.p, self.training)


class SASRec(nn.Module):
    def __init__(self, n_items, a):
        super().__init__()
        self.item = nn.Parameter(torch.empty(n_items + 1, a.dim).uniform_(-0.05, 0.05))
        self.pos = nn.Parameter(torch.empty(a.max_len, a.dim).uniform_(-0.05, 0.05))
        self.p = a.dropout
        self.blocks = nn.ModuleList(Block(a.dim, a.heads, a.dropout, a.attn) for _ in range(a.blocks))
        self.ln = nn.LayerNorm(a.dim, eps=1e-6)
        self.skip = a.add_last_item
        for m in self.modules():
            if isinstance(m, nn.Linear):
                nn.init.xavier_uniform_(m.weight)
                nn.init.zeros_(m.bias)

    def forward(self, ids, cands=None):
        """ids (batch, len), right-padded with 0 -> outputs (batch, len, dim), and E[cands] if given
        (one gather, so one dense gradient for the table)."""
        flat = ids.reshape(-1) if cands is None else torch.cat([ids.reshape(-1), cands])
        e = self.item[flat]
        x = dropout(e[:ids.numel()].view(*ids.shape, -1) + self.pos[:ids.shape[1]], self.p, self.training)
        for block in self.blocks:
            x = block(x)
        out = self.ln(x)
        if self.skip:  # towers' skip connection: the item at a position added to its output
            out = out + e[:ids.numel()].view(*ids.shape, -1)
        return out, e[ids.numel():]


def train_epoch(model, opt, data, log_q, a, rng):
    inputs, targets, lengths = data
    model.train()
    order = rng.permutation(len(lengths))
    total, count = 0.0, 0
    start = time.perf_counter()
    for b in range(0, len(order), a.batch_size):
        rows = order[b:b + a.batch_size]
        n = int(lengths[rows].max())
        ids = torch.from_numpy(inputs[rows, :n])
        tgt = torch.from_numpy(targets[rows, :n]).reshape(-1)
        keep = tgt > 0
        tgt = tgt[keep]
        if a.loss == "inbatch":
            cands, label = torch.unique(tgt, return_inverse=True)
            out, cand_emb = model(ids, cands)
            logits = out.reshape(-1, a.dim)[keep] @ cand_emb.T - log_q[cands]
        else:
            out, _ = model(ids)
            logits, label = out.reshape(-1, a.dim)[keep] @ model.item[1:].T, tgt - 1
        loss = F.cross_entropy(logits, label)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        total += loss.item() * len(tgt)
        count += len(tgt)
    return time.perf_counter() - start, total / count


@torch.no_grad()
def evaluate(model, test, vocab, a):
    model.eval()
    ranks = []
    for b in range(0, len(test), 1024):
        chunk = test[b:b + 1024]
        hist = [[vocab.get(i, 0) for i in h[-a.max_len:]] for h, _ in chunk]
        n = max(len(h) for h in hist)
        ids = torch.tensor([h + [0] * (n - len(h)) for h in hist])
        last = torch.tensor([len(h) - 1 for h in hist])
        q = model(ids)[0][torch.arange(len(hist)), last]
        scores = q @ model.item[1:].T
        tgt = torch.tensor([vocab.get(t, 0) for _, t in chunk])
        seen = tgt > 0
        own = scores.gather(1, (tgt - 1).clamp(min=0)[:, None])
        rank = 1 + (scores > own).sum(1)
        ranks.append(torch.where(seen, rank, torch.full_like(rank, 1 << 30)))
    ranks = torch.cat(ranks).double()
    hit = lambda k: (ranks <= k).double().mean().item()
    return {"recall_20": hit(20), "mrr_20": torch.where(ranks <= 20, 1 / ranks, 0.0).mean().item(),
            "top_10": hit(10)}


def main():
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--data", default="../shared/data/retailrocket-cotrec")
    p.add_argument("--format", choices=["sessions", "examples"], default="sessions")
    p.add_argument("--dim", type=int, default=64)
    p.add_argument("--blocks", type=int, default=2)
    p.add_argument("--heads", type=int, default=1)
    p.add_argument("--max-len", type=int, default=50)
    p.add_argument("--dropout", type=float, default=0.2)
    p.add_argument("--loss", choices=["inbatch", "ce"], default="inbatch")
    p.add_argument("--add-last-item", type=int, choices=[0, 1], default=1,
                   help="1: the input item's embedding added to each output (towers' default)")
    p.add_argument("--batch-size", type=int, default=128)
    p.add_argument("--lr", type=float, default=0.001)
    p.add_argument("--epochs", type=int, default=10)
    p.add_argument("--seed", type=int, default=42)
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--attn", choices=["manual", "sdpa"], default="manual",
                   help="attention by plain matmuls (~10%% faster here) or torch's scaled_dot_product_attention")
    p.add_argument("--json", action="store_true", help="print one JSON object at the end")
    a = p.parse_args()
    assert a.dim % a.heads == 0, "--dim must be a multiple of --heads"
    torch.set_num_threads(a.threads)
    torch.manual_seed(a.seed)
    rng = np.random.default_rng(a.seed)
    say = (lambda *x: print(*x, file=sys.stderr)) if a.json else print

    seqs, test, vocab = load(a)
    data = pack(seqs, vocab, a.max_len)
    counts = np.bincount(data[1].ravel(), minlength=len(vocab) + 1).astype(np.float64)
    counts[0] = 0
    log_q = torch.from_numpy(np.log(np.maximum(counts, 1) / counts.sum())).float()
    say(f"{len(vocab)} items, {len(seqs)} training sequences, {int(counts.sum())} targets, "
        f"{len(test)} test cases; torch {torch.__version__}, python {platform.python_version()}")

    model = SASRec(len(vocab), a)
    opt = torch.optim.Adam(model.parameters(), lr=a.lr, betas=(0.9, 0.999), eps=1e-7, fused=True)
    epoch_s, losses = [], []
    for epoch in range(a.epochs):
        secs, loss = train_epoch(model, opt, data, log_q, a, rng)
        epoch_s.append(secs)
        losses.append(loss)
        say(f"epoch {epoch + 1}: {secs:.1f} s, loss {loss:.4f}")
    t = time.perf_counter()
    metrics = evaluate(model, test, vocab, a)
    say(f"recall@20 {metrics['recall_20']:.4f}  mrr@20 {metrics['mrr_20']:.4f}  "
        f"top_10 {metrics['top_10']:.4f}  (evaluation {time.perf_counter() - t:.1f} s)")
    if a.json:
        config = dict(vars(a), items=len(vocab), sequences=len(seqs), torch=torch.__version__,
                      python=platform.python_version())
        print(json.dumps({"epoch_s": epoch_s, "mean_epoch_s": float(np.mean(epoch_s)), "loss": losses,
                          **metrics, "config": config}))


if __name__ == "__main__":
    main()
