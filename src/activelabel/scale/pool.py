"""Pools on disk: features in a memory-mapped ``.npy`` file, scored chunk by chunk in bounded memory.

Only one chunk's features and probabilities and the best ``beta * k`` candidates are in memory at a time, so
a 10,000,000 x 64 pool (2.6 GB of float32) is scored in a few hundred MB. With a Dask client the chunks are
scored on its workers (see :mod:`activelabel.scale.cluster`) and only their best candidates travel back.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import numpy as np

from activelabel.errors import InvalidParameterError, ShapeMismatchError, UnreadableFileError
from activelabel.models import committee_samples, predict_proba_aligned
from activelabel.strategies import COMMITTEE_STRATEGIES
from activelabel.strategies.stream import (
    Candidates,
    Selection,
    candidates_wanted,
    check_strategy,
    chunk_scores,
    merge_candidates,
    select_from_candidates,
    top_candidates,
)

__all__ = ["create_features", "open_features", "chunk_inputs", "score_chunks", "select_on_disk", "partition_best"]

Progress = Callable[[int, int], None]


def create_features(path: str | Path, n_rows: int, n_cols: int) -> np.memmap:
    """A new float32 ``.npy`` file of shape (n_rows, n_cols), memory-mapped for writing chunk by chunk."""
    return np.lib.format.open_memmap(Path(path), mode="w+", dtype=np.float32, shape=(int(n_rows), int(n_cols)))


def open_features(path: str | Path) -> np.memmap:
    """The pool's features, memory-mapped read-only; one line naming the file when it is not a 2-D float matrix."""
    path = Path(path)
    try:
        X = np.load(path, mmap_mode="r", allow_pickle=False)
    except FileNotFoundError:
        raise UnreadableFileError(f"{path}: no such features file") from None
    except (OSError, ValueError) as exc:
        raise UnreadableFileError(f"{path}: not a .npy matrix ({exc})") from None
    if X.ndim != 2 or X.dtype.kind != "f":
        raise ShapeMismatchError(f"{path}: features must be a 2-D float matrix, got shape {X.shape} of {X.dtype}")
    return X


def chunk_inputs(model: Any, X: np.ndarray, strategy: str, classes: np.ndarray
                 ) -> tuple[np.ndarray | None, np.ndarray | None]:
    """(proba, samples) of one chunk, as the in-memory loop computes them for ``strategy``."""
    X = np.asarray(X)
    if strategy in COMMITTEE_STRATEGIES or hasattr(model, "sample_proba"):
        samples = committee_samples(model, X, classes)
        proba = samples.mean(axis=0) if hasattr(model, "sample_proba") else predict_proba_aligned(model, X, classes)
        return proba, samples
    return predict_proba_aligned(model, X, classes), None


def score_chunks(model: Any, X: np.ndarray, strategy: str, classes: np.ndarray, chunk_rows: int,
                 progress: Progress | None = None) -> Iterator[tuple[int, np.ndarray | None, np.ndarray | None]]:
    """``(start, proba, samples)`` for each run of ``chunk_rows`` rows of ``X``, in order."""
    n = len(X)
    for start in range(0, n, chunk_rows):
        yield (start, *chunk_inputs(model, X[start:start + chunk_rows], strategy, classes))
        if progress is not None:
            progress(min(start + chunk_rows, n), n)


def partition_best(model: Any, path: str, start: int, stop: int, strategy: str, classes: np.ndarray,
                   mask: np.ndarray, m: int, chunk_rows: int) -> Candidates:
    """The best ``m`` candidates of rows ``start:stop`` of the features file at ``path`` (a worker's task)."""
    X = open_features(path)
    best = merge_candidates([], m)
    for offset, proba, samples in score_chunks(model, X[start:stop], strategy, classes, chunk_rows):
        s = chunk_scores(strategy, proba, samples)
        part = top_candidates(s, start + offset, mask[offset:offset + len(s)], m)
        best = merge_candidates([best, part], m)
    return best


def select_on_disk(model: Any, path: str | Path, *, classes: np.ndarray, batch_size: int, mask: np.ndarray,
                   strategy: str = "default", random_fraction: float = 0.1,
                   random_state: int | np.random.Generator | None = None, beta: int = 10,
                   chunk_rows: int = 100_000, client: Any = None, progress: Progress | None = None) -> Selection:
    """Pick a batch from a pool whose features are the ``.npy`` file at ``path``, in bounded memory.

    Parameters
    ----------
    model
        A fitted classifier (``predict_proba``; ``sample_proba`` or an ensemble for committee strategies).
    classes : ndarray
        The label order of the probabilities.
    mask : ndarray of bool, shape (n_rows,)
        Rows that are not candidates (labeled, held out for testing, issued).
    chunk_rows : int, default 100,000
        Rows scored at once: memory holds about ``chunk_rows * (n_features + n_classes)`` values.
    client : dask.distributed.Client, optional
        Score partitions of ``chunk_rows * 10`` rows on the cluster's workers; the file must be readable at the
        same path there.

    Returns
    -------
    Selection
        The same batch as ``select_batch`` on the whole pool in memory, for the same ``random_state``.
    """
    if chunk_rows < 1:
        raise InvalidParameterError(f"chunk_rows must be >= 1, got {chunk_rows!r}")
    X = open_features(path)
    mask = np.asarray(mask, dtype=bool)
    if mask.shape != (len(X),):
        raise ShapeMismatchError(f"mask has shape {mask.shape}; the features at {path} have {len(X):,} rows")
    check_strategy(strategy)
    m = candidates_wanted(strategy, batch_size, random_fraction, beta)
    if strategy == "random":
        best = merge_candidates([], m)
    elif client is not None:
        from activelabel.scale.cluster import best_on_cluster

        best = best_on_cluster(client, model, str(path), len(X), strategy, classes, mask, m, chunk_rows, progress)
    else:
        best = merge_candidates([], m)
        for start, proba, samples in score_chunks(model, X, strategy, classes, chunk_rows, progress):
            s = chunk_scores(strategy, proba, samples)
            best = merge_candidates([best, top_candidates(s, start, mask[start:start + len(s)], m)], m)
    return select_from_candidates(strategy, best, batch_size=batch_size, n=len(X), mask=mask,
                                  features=lambda rows: X[rows], random_fraction=random_fraction,
                                  random_state=random_state, beta=beta)
