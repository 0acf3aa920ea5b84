#!/usr/bin/env python3
"""The day-by-day protocol of "models that live": a model trained on the first 70% of an
interaction table (by time), then each of 10 "days" (the rest, cut by time into equal parts)
continued from the day before (`towers train --init-from`) and, beside it, a model retrained
from scratch on everything so far; each day's models tested on the next day (seen items
excluded). Prints, per day, top-10/top-100 of both and the seconds each took, then the means.

    python3 scripts/day_by_day.py DATA.tsv [--days 10] [--first 0.7] [--items u.item] [-- TRAIN OPTIONS]

DATA: `user<TAB>item<TAB>rating<TAB>timestamp` (MovieLens' u.data, ../shared/peer/synth.py's
output), sorted here by timestamp. TRAIN OPTIONS go to every `towers train` (both models).
Uses target/release/towers (or $TOWERS_BIN). Standard library only.
"""
import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
p.add_argument("data")
p.add_argument("--days", type=int, default=10)
p.add_argument("--first", type=float, default=0.7)
p.add_argument("--items")
p.add_argument("--json", action="store_true", help="print one JSON object instead of the table")
argv = sys.argv[1:]
extra = argv[argv.index("--") + 1:] if "--" in argv else []
a = p.parse_args(argv[: argv.index("--")] if "--" in argv else argv)
towers = os.environ.get("TOWERS_BIN", "target/release/towers")

rows = [l for l in open(a.data) if l.strip()]
rows.sort(key=lambda l: int(l.split("\t")[3]))
first = int(len(rows) * a.first)
rest = len(rows) - first
cuts = [first + rest * d // a.days for d in range(a.days + 1)]
tmp = Path(tempfile.mkdtemp(prefix="towers-days-"))


def write(name, lines):
    path = tmp / name
    path.write_text("".join(lines))
    return str(path)


def train(data, out, init_from=None):
    cmd = [towers, "train", "--train", data, "--out", str(out), "--json", "-q", *extra]
    if a.items:
        cmd += ["--items", a.items]
    if init_from:
        cmd += ["--init-from", str(init_from)]
    start = time.monotonic()
    o = subprocess.run(cmd, capture_output=True, text=True)
    if o.returncode != 0:
        sys.exit(f"{' '.join(cmd)}\n{o.stderr}")
    return time.monotonic() - start, json.loads(o.stdout.strip().splitlines()[-1])["train_s"]


def evaluate(model, test):
    o = subprocess.run([towers, "evaluate", "--model", str(model), "--test", test, "--exclude-seen", "--json"],
                       capture_output=True, text=True, check=True)
    j = json.loads(o.stdout.strip().splitlines()[-1])
    return j["top_10"], j["top_100"], j["unknown_users"] / j["n"]


train(write("day0.tsv", rows[:first]), tmp / "cont")
days = []
for d in range(1, a.days):
    new = write(f"day{d}.tsv", rows[cuts[d - 1]:cuts[d]])
    test = write(f"test{d}.tsv", rows[cuts[d]:cuts[d + 1]])
    cont_s, cont_train_s = train(new, tmp / f"cont{d}", init_from=tmp / ("cont" if d == 1 else f"cont{d - 1}"))
    scratch_s, scratch_train_s = train(write(f"all{d}.tsv", rows[:cuts[d]]), tmp / f"scratch{d}")
    c10, c100, unknown = evaluate(tmp / f"cont{d}", test)
    s10, s100, _ = evaluate(tmp / f"scratch{d}", test)
    days.append({"day": d, "new_rows": cuts[d] - cuts[d - 1], "test_rows": cuts[d + 1] - cuts[d],
                 "test_unknown_users": round(unknown, 3), "continued_top_10": c10, "continued_top_100": c100,
                 "retrained_top_10": s10, "retrained_top_100": s100, "continued_s": round(cont_s, 2),
                 "retrained_s": round(scratch_s, 2), "continued_train_s": round(cont_train_s, 2),
                 "retrained_train_s": round(scratch_train_s, 2)})
    if not a.json:
        print(f"day {d}: +{days[-1]['new_rows']} rows, test {days[-1]['test_rows']} "
              f"({unknown:.0%} of unknown users)  continued top-10 {c10:.4f} top-100 {c100:.4f} in {cont_s:.1f} s"
              f"  |  retrained top-10 {s10:.4f} top-100 {s100:.4f} in {scratch_s:.1f} s", flush=True)
mean = {k: sum(d[k] for d in days) / len(days) for k in days[0] if k != "day"}
mean["time_ratio"] = mean["continued_s"] / mean["retrained_s"]
if a.json:
    print(json.dumps({"days": days, "mean": mean}))
else:
    print(f"mean: continued top-10 {mean['continued_top_10']:.4f} top-100 {mean['continued_top_100']:.4f}"
          f"  retrained top-10 {mean['retrained_top_10']:.4f} top-100 {mean['retrained_top_100']:.4f}"
          f"  (difference {mean['continued_top_10'] - mean['retrained_top_10']:+.4f});"
          f"  time {mean['continued_s']:.2f} s vs {mean['retrained_s']:.2f} s ({mean['time_ratio']:.2f}×; training"
          f" loops {mean['continued_train_s']:.2f} s vs {mean['retrained_train_s']:.2f} s)")
