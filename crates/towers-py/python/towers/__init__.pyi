import os
from typing import Any, Mapping, Optional, Sequence, Union

from . import datasets as datasets
from ._errors import (
    ColdStartWarning as ColdStartWarning,
    ConfigError as ConfigError,
    FileError as FileError,
    BusyError as BusyError,
    InputError as InputError,
    InternalError as InternalError,
    ModelError as ModelError,
    TowersError as TowersError,
)
from ._towers import Live as Live, Model as Model, Pipeline as Pipeline, __version__ as __version__

PathLike = Union[str, "os.PathLike[str]"]
# a path, a pandas.DataFrame, a pyarrow.Table (anything with __arrow_c_stream__), a dict of arrays,
# or (sequential models) a list of item lists
Data = Union[PathLike, Mapping[str, Any], Sequence[Sequence[Any]], Any]

def train(
    ratings: Data,
    items: Optional[Data] = None,
    task: str = "retrieval",
    epochs: Optional[int] = None,
    seed: Optional[int] = None,
    *,
    test: Optional[Data] = None,
    progress: bool = True,
    columns: Optional[Sequence[str]] = None,
    delimiter: Optional[str] = None,
    header: Optional[bool] = None,
    init_from: Union[Model, PathLike, None] = None,
    count_decay: Optional[float] = None,
    checkpoint: Optional[PathLike] = None,
    checkpoint_every: Optional[int] = None,
    resume: bool = False,
    **options: Any,
) -> Model: ...
def load(
    path: PathLike,
    *,
    postgres: Optional[str] = None,
    replicas: Optional[Sequence[str]] = None,
    table: str = "towers_items",
    ef_search: Optional[int] = None,
) -> Model: ...
def build_index(
    path: PathLike,
    kind: str = "ivf",
    *,
    nlist: Optional[int] = None,
    nprobe: Optional[int] = None,
    reorder: Optional[int] = None,
    iterations: int = 10,
    seed: int = 42,
    progress: bool = True,
) -> dict: ...
