"""towers: two-tower recommenders (as TensorFlow Recommenders and Keras-RS build them) with a
Rust core — train, evaluate and serve from pandas, pyarrow and numpy.

    import towers
    model = towers.train(ratings, items=movies, task="retrieval", epochs=10, seed=42)
    ev = model.evaluate(test, exclude_seen=True)          # dict: top_1 … top_100, mrr, baseline, …
    recs = model.recommend("42", k=10)                     # [{"id", "title", "score"}, …]
    model.recommend_history(["1", "2", "3"], k=10); model.similar("50", k=5)
    ids, emb = model.candidate_embeddings()               # numpy float32 (n, dim)
    q = model.query_embeddings(["42", "7"])                # numpy float32 (2, dim)
    model.save("dir"); towers.load("dir")                  # the CLI's model directory

Pipelines (retriever → ranker → post-ranking rules, as `towers train --task pipeline`):

    p = towers.train(ratings, items=movies, task="pipeline", features="movielens", seed=42)
    p.evaluate(test, diversity=0.3)                        # dict: top_10 …, retriever, ild_10, coverage_10
    p.recommend("42", k=10, caps={"genres": 3})            # [{"id", "title", "score"}, …]
    p.recommend("42", debug=True)["timings"]               # per-stage milliseconds
    p.save("dir"); towers.load("dir")                      # a towers.Model, as every directory

Tables are found by column name as the CLI finds them (user/user_id/…, item/movie_id/…, rating,
timestamp, weight). Errors are towers exceptions (InputError, ConfigError, ModelError, FileError, BusyError,
all TowersError) with the CLI's messages. `towers.datasets.movielens_100k()` downloads MovieLens
100K on first use.
"""

from . import datasets
from ._errors import (
    ColdStartWarning,
    ConfigError,
    FileError,
    BusyError,
    InputError,
    InternalError,
    ModelError,
    TowersError,
)
from ._progress import Reporter as _Reporter
from ._towers import Live, Model, __version__
from ._towers import build_index as _build_index
from ._towers import load as _load
from ._towers import train as _train

# A pipeline is served as any model directory is: one class answers for both (the name stays
# for code written when pipelines had a class of their own).
Pipeline = Model

__all__ = [
    "train",
    "load",
    "build_index",
    "Model",
    "Pipeline",
    "Live",
    "datasets",
    "TowersError",
    "InputError",
    "ConfigError",
    "ModelError",
    "FileError",
    "BusyError",
    "InternalError",
    "ColdStartWarning",
    "__version__",
]


def train(
    ratings,
    items=None,
    task="retrieval",
    epochs=None,
    seed=None,
    *,
    test=None,
    progress=True,
    columns=None,
    delimiter=None,
    header=None,
    init_from=None,
    count_decay=None,
    checkpoint=None,
    checkpoint_every=None,
    resume=False,
    **options,
):
    """Trains a model and returns it (a towers.Model, a pipeline too).

    ratings: the training data — a path (CSV/TSV, read as `towers train --train` reads it), a
        pandas.DataFrame, a pyarrow.Table (or anything with __arrow_c_stream__, e.g. polars), or
        a dict of numpy arrays. Columns are found by name: user/user_id/userid/query/…,
        item/item_id/movie_id/…, and optionally rating, timestamp/time, weight/sample_weight.
        Ids may be strings or integers. For task="sequential": a file in `train_format`, a list
        of item lists (oldest first), or a table of timestamped interactions (one history per user).
    items: the item catalogue (titles, and items never seen in training): a path (movies.tsv,
        u.item, movies.csv) or a table with an id and a title column.
    task: "retrieval" (default), "rating", "ranking", "features", "sequential", or "pipeline":
        a retriever, a ranker trained on its hard negatives and post-ranking rules, returned as
        a towers.Model like any other. A pipeline takes its models' settings from `config` (a TOML file with
        [retriever] and [ranker] tables; dim, lr, epochs, batch_size, optimizer, layers and
        recipe are ConfigErrors), and also `seed`, `retrieve` (candidates for the ranker,
        default 100), `diversity` (the MMR λ served by default), `features` (item attributes,
        e.g. "movielens" with movielens_dir) and `items`; it takes no `test` (use
        Pipeline.evaluate).
    epochs, seed: as the CLI's --epochs and --seed (default: the task's recipe).
    test: test data, measured after every epoch (kept in model.history); same forms as ratings.
    progress: show a progress bar (tqdm when installed, in terminals and notebooks).
    columns, delimiter, header: how files are read (the CLI's --columns, --delimiter, --header).
    init_from: a towers.Model (or a model directory) trained before on earlier data, continued
        with the same options (`towers train --init-from`): known ids start from its embeddings
        and optimizer state, new ids get new rows, seen items and item counts carry over, the
        old counts weighing `count_decay` (0 to 1, default 1). Another spec is a ConfigError.
    checkpoint, checkpoint_every, resume: write a checkpoint file at `checkpoint` every
        `checkpoint_every` steps; with resume=True, continue from the one there (a killed run
        then ends with the model an uninterrupted run gives; the file stays: delete it once the
        model is saved). Not for pipelines.
    **options: every other option of `towers train`, named as the CLI names it with "_" for "-":
        dim, optimizer ("adam", "adagrad"), lr, batch_size, recipe ("towers", "tfrs"),
        key ("id", "title"), temperature, logq, remove_accidental_hits, hard_negatives, l2,
        normalize ("none", "l2", "batch-norm"), reduction ("sum", "mean"), precision ("bf16", "f32"),
        layers ([256, 64]),
        features ("movielens" or a TOML file), movielens_dir, train_format ("sessions",
        "examples", "gru4rec", "interactions", "retailrocket-events"), steps,
        share_embeddings, add_last_item, projection, sampled_negatives, encoder ("gru",
        "sasrec"), blocks, heads, dropout, gbce_negatives, config (a TOML file).

    Training releases the GIL; Ctrl-C stops it with KeyboardInterrupt. Bad data raises
    towers.InputError (naming file, line and field, or column and row), bad options
    towers.ConfigError.
    """
    options.update(task=task, epochs=epochs, seed=seed)
    read = {"columns": columns, "delimiter": delimiter, "header": header}
    if init_from is not None and not isinstance(init_from, Model):
        init_from = load(init_from)
    reporter = _Reporter() if progress else None
    run = {
        "reporter": reporter,
        "init_from": init_from,
        "count_decay": count_decay,
        "checkpoint": checkpoint,
        "checkpoint_every": checkpoint_every,
        "resume": resume,
    }
    try:
        return _train(ratings, items, test, options, read, run)
    finally:
        if reporter is not None:
            reporter.close()


def load(path, *, postgres=None, replicas=None, table="towers_items", ef_search=None):
    """Loads a model directory written by Model.save or `towers train --out`, or a pipeline
    directory (`towers train --task pipeline --out`) or its pipeline.toml, as a towers.Model
    (checksums and format version are verified; a bad directory raises towers.ModelError).

    postgres: a PostgreSQL URL where `towers export` wrote this model's catalogue (`table`):
    recommend() then takes the top k from pgvector's index there (as `towers serve --postgres`),
    the query tower running here; `replicas` are read first, `ef_search` sets the HNSW search
    breadth. A database that cannot be reached raises towers.FileError (an I/O error, as the CLI's exit
    code 1) when asked, and the pools reconnect by themselves; a pipeline refuses a store
    (towers.ConfigError)."""
    return _load(path, postgres, replicas, table, ef_search)


def build_index(path, kind="ivf", *, nlist=None, nprobe=None, reorder=None, iterations=10, seed=42, progress=True):
    """Builds an approximate index in a model directory, as `towers index build`: kind="ivf"
    (k-means lists of 4-bit codes, `nprobe` lists scanned per query, the best `reorder`
    re-scored exactly; None = chosen from the number of candidates) or kind="exact" (removes
    it). Returns the figures of `towers index build --json` (recall_10 against the exact index,
    build_s, …); towers.load(path) then recommends from the index (Model.index == "ivf")."""
    params = {"nlist": nlist, "nprobe": nprobe, "reorder": reorder, "iterations": iterations, "seed": seed}
    reporter = _Reporter() if progress else None
    try:
        return _build_index(path, kind, params, reporter)
    finally:
        if reporter is not None:
            reporter.close()
