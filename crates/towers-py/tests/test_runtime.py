"""Progress, Ctrl-C and the GIL while training."""

import os
import signal
import subprocess
import sys
import textwrap
import threading
import time

import towers
from conftest import FAST, synthetic

BIG = textwrap.dedent(
    """
    import sys, numpy as np, towers
    n = 400_000
    rng = np.random.default_rng(0)
    data = {"user": rng.integers(0, 20_000, n), "item": rng.integers(0, 5_000, n)}
    print("training", flush=True)
    try:
        towers.train(data, epochs=1000, batch_size=256, progress=False)
        print("finished")
    except KeyboardInterrupt:
        print("interrupted", flush=True)
        sys.exit(3)
    """
)


def test_ctrl_c_stops_training_with_keyboard_interrupt():
    p = subprocess.Popen([sys.executable, "-c", BIG], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    assert p.stdout.readline().strip() == "training"
    time.sleep(2.0)
    p.send_signal(signal.SIGINT)
    start = time.monotonic()
    out, err = p.communicate(timeout=60)
    assert p.returncode == 3, (out, err)
    assert "interrupted" in out
    assert time.monotonic() - start < 10, "training stops within a few batches"


def test_training_releases_the_gil(small):
    ticks = []
    stop = threading.Event()

    def tick():
        while not stop.is_set():
            ticks.append(time.monotonic())
            time.sleep(0.005)

    t = threading.Thread(target=tick)
    data = synthetic(n_users=2000, n_items=500, per_user=40)
    t.start()
    start = time.monotonic()
    towers.train(data, epochs=5, batch_size=512, dim=32, progress=False)
    elapsed = time.monotonic() - start
    stop.set()
    t.join()
    during = [x for x in ticks if start <= x <= start + elapsed]
    # the other thread kept running while the model trained
    assert elapsed < 0.2 or len(during) > elapsed / 0.05, (elapsed, len(during))


def test_progress_without_tqdm_prints_epochs_to_a_non_terminal(small, capfd):
    towers.train(small["train_tsv"], epochs=2, batch_size=64, dim=8)
    err = capfd.readouterr().err
    assert "training: epoch 1 loss" in err and "training: epoch 2 loss" in err
    towers.train(small["train_tsv"], **FAST)
    assert capfd.readouterr().err == ""


def test_a_failing_reporter_stops_training(small, monkeypatch):
    import towers._progress as progress

    def boom(self, n):
        raise RuntimeError("reporter failed")

    monkeypatch.setattr(progress.Reporter, "step", boom)
    data = synthetic(n_users=2000, n_items=500, per_user=40)
    try:
        towers.train(data, epochs=50, batch_size=64, dim=8)
    except RuntimeError as e:
        assert "reporter failed" in str(e)
    else:
        raise AssertionError("the reporter's exception was not raised")
