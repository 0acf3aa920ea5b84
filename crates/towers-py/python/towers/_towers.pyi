"""The native module of towers (built from crates/towers-py/src)."""

import os
from typing import Any, Dict, List, Literal, Mapping, Optional, Sequence, Tuple, Union, overload

import numpy as np
import numpy.typing as npt

__version__: str

PathLike = Union[str, "os.PathLike[str]"]

class Model:
    """A trained model: towers.train(…) or towers.load(dir)."""

    def evaluate(
        self,
        test: Any,
        exclude_seen: bool = False,
        *,
        test_format: Optional[str] = None,
        columns: Optional[Sequence[str]] = None,
        delimiter: Optional[str] = None,
        header: Optional[bool] = None,
    ) -> Dict[str, Any]:
        """The CLI's `evaluate --json` object: top_1 … top_100, mrr, ndcg_10, n, baseline, …"""
    def recommend(
        self,
        user: str,
        k: int = 10,
        exclude_seen: bool = True,
        *,
        exclude: Optional[Sequence[str]] = None,
        allow: Optional[Sequence[str]] = None,
    ) -> List[Dict[str, Any]]:
        """The k best items for a user: [{"id", "title", "score"}, …], best first."""
    def recommend_history(
        self,
        history: Sequence[str],
        k: int = 10,
        exclude_seen: bool = True,
        *,
        exclude: Optional[Sequence[str]] = None,
        allow: Optional[Sequence[str]] = None,
    ) -> List[Dict[str, Any]]:
        """The k best next items after a history of items (sequential models)."""
    def similar(
        self,
        item: str,
        k: int = 10,
        *,
        exclude: Optional[Sequence[str]] = None,
        allow: Optional[Sequence[str]] = None,
    ) -> List[Dict[str, Any]]:
        """The k items most similar to an item (cosine of candidate embeddings)."""
    def rank(self, user: str, items: Sequence[str]) -> List[Dict[str, Any]]:
        """Items re-scored by predicted rating (rating and ranking models), best first."""
    def rerank(
        self, retriever: "Model", user: str, candidates: int = 100, k: int = 10, exclude_seen: bool = True
    ) -> List[Dict[str, Any]]:
        """A retrieval model's candidates for the user, re-scored by this rating/ranking model."""
    def candidate_embeddings(self) -> Tuple[List[str], npt.NDArray[np.float32]]:
        """(ids, embeddings): a read-only float32 (len(ids), dim) array viewing the model."""
    def query_embeddings(self, users: Sequence[str]) -> npt.NDArray[np.float32]:
        """float32 (len(users), dim) query embeddings; an unknown user is an InputError."""
    def save(self, path: PathLike) -> None:
        """Writes the model directory (the CLI's format), atomically."""
    @property
    def kind(self) -> str: ...
    @property
    def dim(self) -> int: ...
    @property
    def users(self) -> List[str]: ...
    @property
    def items(self) -> List[str]: ...
    @property
    def config(self) -> Dict[str, Any]: ...
    @property
    def history(self) -> List[Dict[str, Any]]: ...
    @property
    def summary(self) -> Dict[str, Any]: ...
    @property
    def index(self) -> str: ...

class Pipeline:
    """A retriever, a ranker and post-ranking rules: towers.train(…, task="pipeline") or
    towers.load(dir) of a pipeline directory."""

    def evaluate(
        self,
        test: Any,
        exclude_seen: bool = False,
        *,
        diversity: Optional[float] = None,
        caps: Optional[Mapping[str, int]] = None,
        boost: Optional[Sequence[str]] = None,
        exclude: Optional[Sequence[str]] = None,
        dedupe: Optional[str] = None,
        retrieve: Optional[int] = None,
        columns: Optional[Sequence[str]] = None,
        delimiter: Optional[str] = None,
        header: Optional[bool] = None,
    ) -> Dict[str, Any]:
        """The CLI's `evaluate --json` object of a pipeline: top_1 … top_100, mrr, ndcg_10, n,
        retriever (the retriever's own order), ild_10, retriever_ild_10, coverage_10, …
        The keywords override the post-ranking rules for this call (caps: {"genres": 3})."""
    @overload
    def recommend(
        self,
        user: str,
        k: int = 10,
        exclude_seen: bool = False,
        *,
        diversity: Optional[float] = None,
        caps: Optional[Mapping[str, int]] = None,
        boost: Optional[Sequence[str]] = None,
        exclude: Optional[Sequence[str]] = None,
        dedupe: Optional[str] = None,
        retrieve: Optional[int] = None,
        allow: Optional[Sequence[str]] = None,
        debug: Literal[False] = False,
    ) -> List[Dict[str, Any]]: ...
    @overload
    def recommend(
        self,
        user: str,
        k: int = 10,
        exclude_seen: bool = False,
        *,
        diversity: Optional[float] = None,
        caps: Optional[Mapping[str, int]] = None,
        boost: Optional[Sequence[str]] = None,
        exclude: Optional[Sequence[str]] = None,
        dedupe: Optional[str] = None,
        retrieve: Optional[int] = None,
        allow: Optional[Sequence[str]] = None,
        debug: Literal[True],
    ) -> Dict[str, Any]:
        """The k best items for a user: [{"id", "title", "score"}, …], best first; with
        debug=True {"items": […], "cold_start": bool, "timings": {"retrieve_ms", "rank_ms",
        "post_rank_ms", "total_ms"}}."""
    def save(self, path: PathLike) -> None:
        """Writes the pipeline directory (pipeline.toml, retriever/, ranker/), atomically."""
    @property
    def settings(self) -> Dict[str, Any]: ...
    @property
    def retrieve(self) -> int: ...
    @property
    def attributes(self) -> List[str]: ...
    @property
    def users(self) -> List[str]: ...
    @property
    def items(self) -> List[str]: ...

def train(
    ratings: Any,
    items: Any,
    test: Any,
    options: Dict[str, Any],
    read: Dict[str, Any],
    reporter: Any,
) -> Union[Model, Pipeline]: ...
def load(path: PathLike) -> Union[Model, Pipeline]: ...
def movielens_100k_status(cache_dir: Optional[PathLike] = None, url: Optional[str] = None) -> Tuple[str, bool, str]: ...
def movielens_100k(cache_dir: Optional[PathLike] = None, url: Optional[str] = None) -> str: ...
def build_index(path: PathLike, kind: str, params: Dict[str, Any], reporter: Any) -> Dict[str, Any]: ...
