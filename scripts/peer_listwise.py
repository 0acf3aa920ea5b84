"""TF-Ranking's losses in the TFRS listwise tutorial's recipe, scored like `towers evaluate`.

The peer of `towers train --task ranking --loss …` (README, "The whole stack"): user and item
embeddings of 32, dense layers 256 and 64, Adagrad 0.1, batch 8192, 30 epochs (`--recipe towers`:
towers' ranking defaults instead, Adam 0.001, batch 1024, 8 epochs), 50 lists per user
of `--list-size` of the user's training ratings (shorter users padded with label -1, which
TF-Ranking ignores), trained with TF-Ranking's own loss; then each user's test items are ordered
by the model and `ndcg_10_rated` computed as towers does (NDCG@10, gain 2^rating - 1, mean over
users).

Run with the peer's TensorFlow venv (`../shared/peer/setup.sh`) and the TF-Ranking wheel unpacked
beside it (its package `__init__` needs `tf.estimator`, gone from TF >= 2.16, so only the
loss modules are imported):

    ~/.cache/towers-peer/tf/bin/pip download tensorflow-ranking==0.5.5 --no-deps -d /tmp/tfr
    ~/.cache/towers-peer/tf/bin/pip install --no-deps --target /tmp/tfrpkg /tmp/tfr/*.whl
    TFR=/tmp/tfrpkg ~/.cache/towers-peer/tf/bin/python scripts/peer_listwise.py approx_ndcg
"""

import argparse
import os
import random
import sys
import types

import numpy as np

os.environ.setdefault("TF_USE_LEGACY_KERAS", "1")
TFR = os.environ.get("TFR", "/tmp/tfrpkg")
sys.path.insert(0, TFR)
for name, sub in [("tensorflow_ranking", ""), ("tensorflow_ranking.python", "/python"),
                  ("tensorflow_ranking.python.keras", "/python/keras")]:
    package = types.ModuleType(name)
    package.__path__ = [f"{TFR}/tensorflow_ranking{sub}"]
    sys.modules[name] = package
import tensorflow as tf  # noqa: E402
from tensorflow_ranking.python.keras import losses  # noqa: E402


def lists(train, size, rng):
    """50 lists per user of `size` of the user's (item, rating) pairs, padded with label -1."""
    by_user = {}
    for u, i, r in train:
        by_user.setdefault(u, []).append((i, r))
    users, items, labels = [], [], []
    for u, rated in by_user.items():
        for _ in range(50):
            pick = rng.sample(rated, min(size, len(rated)))
            pad = size - len(pick)
            users.append([u] * size)
            items.append([i for i, _ in pick] + [0] * pad)
            labels.append([float(r) for _, r in pick] + [-1.0] * pad)
    return np.array(users), np.array(items), np.array(labels, np.float32)


def ndcg_10(ratings):
    dcg = lambda rs: sum((2.0 ** r - 1) / np.log2(k + 2) for k, r in enumerate(rs[:10]))
    best = dcg(sorted(ratings, reverse=True))
    return dcg(ratings) / best if best > 0 else 0.0


def main():
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("loss", choices=["mse", "hinge", "listmle", "approx_ndcg"])
    p.add_argument("--list-size", type=int, default=5)
    p.add_argument("--recipe", choices=["tfrs", "towers"], default="tfrs")
    p.add_argument("--seed", type=int, default=42)
    p.add_argument("--split", default="../shared/data/ml-100k-splits/tfrs-80-20")
    a = p.parse_args()
    train = np.loadtxt(f"{a.split}/train.tsv", dtype=np.int64)[:, :3]
    test = np.loadtxt(f"{a.split}/test.tsv", dtype=np.int64)[:, :3]
    tf.random.set_seed(a.seed)
    users, items, labels = lists(train, a.list_size, random.Random(a.seed))
    n_users, n_items = int(max(train[:, 0].max(), test[:, 0].max())) + 1, int(max(train[:, 1].max(), test[:, 1].max())) + 1

    class Ranker(tf.keras.Model):
        def __init__(self):
            super().__init__()
            self.user = tf.keras.layers.Embedding(n_users, 32)
            self.item = tf.keras.layers.Embedding(n_items, 32)
            self.score = tf.keras.Sequential([tf.keras.layers.Dense(256, activation="relu"),
                                              tf.keras.layers.Dense(64, activation="relu"),
                                              tf.keras.layers.Dense(1)])

        def call(self, x):
            return tf.squeeze(self.score(tf.concat([self.user(x[0]), self.item(x[1])], -1)), -1)

    loss = {"mse": losses.MeanSquaredLoss(), "hinge": losses.PairwiseHingeLoss(),
            "listmle": losses.ListMLELoss(), "approx_ndcg": losses.ApproxNDCGLoss()}[a.loss]
    model = Ranker()
    if a.recipe == "tfrs":
        optimizer, batch, epochs = tf.keras.optimizers.Adagrad(0.1), 8192, 30
    else:
        optimizer, batch, epochs = tf.keras.optimizers.Adam(0.001), 1024, 8
    model.compile(optimizer=optimizer, loss=loss)
    model.fit((users, items), labels, batch_size=batch, epochs=epochs, verbose=0, shuffle=True)
    scores = model.predict((test[:, 0:1], test[:, 1:2]), batch_size=4096, verbose=0).reshape(-1)
    per_user = []
    for u in np.unique(test[:, 0]):
        rows = np.where(test[:, 0] == u)[0]
        ordered = rows[np.lexsort((test[rows, 1], -scores[rows]))]
        per_user.append(ndcg_10(list(test[ordered, 2])))
    print(f"{a.loss} list {a.list_size} recipe {a.recipe} seed {a.seed}: ndcg_10_rated {np.mean(per_user):.4f}")


if __name__ == "__main__":
    main()
