"""Datasets downloaded on first use."""

import os
import sys
from pathlib import Path
from typing import Optional, Union

from ._towers import movielens_100k as _fetch
from ._towers import movielens_100k_status as _status

__all__ = ["movielens_100k"]


def movielens_100k(
    cache_dir: Optional[Union[str, "os.PathLike[str]"]] = None, url: Optional[str] = None, quiet: bool = False
) -> Path:
    """The directory of MovieLens 100K (u.data, u.item, u.user, …), a pathlib.Path.

    On first use it is downloaded from GroupLens (https://files.grouplens.org/datasets/movielens/
    ml-100k.zip; `url` or $TOWERS_MOVIELENS_URL overrides the address) into the cache directory
    (`cache_dir`, else $TOWERS_CACHE_DIR, else the platform's cache directory, e.g. ~/.cache/towers),
    every file checked against its known sha256; later calls reuse the cache. A corrupt or partial
    download raises towers.InputError and caches nothing; no connection raises towers.FileError.

        d = towers.datasets.movielens_100k()
        model = towers.train(d / "u.data", items=d / "u.item")
    """
    where, cached, source = _status(cache_dir, url)
    if not cached and not quiet:
        print(f"downloading MovieLens 100K from {source} into {where} …", file=sys.stderr, flush=True)
    return Path(_fetch(cache_dir, url))
