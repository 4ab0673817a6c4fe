"""Pools on disk: features in a ``.npy`` file, scored chunk by chunk in bounded memory.

Only one chunk's features and probabilities and the best ``beta * k`` candidates are in memory at a time, so
a 10,000,000 x 64 pool (2.6 GB of float32) is scored in a few hundred MB. With a Dask client the chunks are
scored on its workers (see :mod:`activelabel.scale.cluster`) and only their best candidates travel back.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import numpy as np

from activelabel.errors import (
    BatchTooLargeError,
    EmptyPoolError,
    InvalidParameterError,
    ShapeMismatchError,
    UnreadableFileError,
)
from activelabel.models import check_probabilistic, committee_samples, predict_proba_aligned
from activelabel.strategies import COMMITTEE_STRATEGIES
from activelabel.strategies.checks import check_batch_size
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

__all__ = ["FeatureFile", "create_features", "open_features", "chunk_inputs", "score_chunks", "select_on_disk", "partition_best"]

Progress = Callable[[int, int], None]


class FeatureFile:
    """A float32 matrix in a ``.npy`` file, read and written by row ranges with plain file I/O.

    Written by hand over ``numpy.lib.format`` rather than used as a memory map: the pages of a map stay resident
    (counted in the process's memory) for as long as it is open, so reading a 2.6 GB pool through one grows the
    process to 2.6 GB; reading a chunk into a buffer keeps memory at one chunk.
    """

    def __init__(self, path: str | Path):
        self.path = Path(path)
        try:
            with open(self.path, "rb") as f:
                version = np.lib.format.read_magic(f)
                read_header = {(1, 0): np.lib.format.read_array_header_1_0}.get(
                    version, np.lib.format.read_array_header_2_0)
                shape, fortran, dtype = read_header(f)
                self.offset = f.tell()
        except FileNotFoundError:
            raise UnreadableFileError(f"{self.path}: no such features file") from None
        except (OSError, ValueError) as exc:
            raise UnreadableFileError(f"{self.path}: not a .npy matrix ({exc})") from None
        if len(shape) != 2 or dtype != np.float32 or fortran:
            raise ShapeMismatchError(f"{self.path}: features must be a 2-D float32 matrix in C order, got shape "
                                     f"{shape} of {dtype}")
        size = self.path.stat().st_size
        if size < self.offset + shape[0] * shape[1] * 4:
            raise UnreadableFileError(f"{self.path}: truncated ({size:,} bytes for {shape[0]:,} x {shape[1]} rows)")
        self.shape = (int(shape[0]), int(shape[1]))

    def __len__(self) -> int:
        return self.shape[0]

    @classmethod
    def create(cls, path: str | Path, n_rows: int, n_cols: int) -> FeatureFile:
        """A new file of (n_rows, n_cols) zeros (sparse on disk), to be filled with :meth:`write`."""
        np.lib.format.open_memmap(Path(path), mode="w+", dtype=np.float32, shape=(int(n_rows), int(n_cols)))
        return cls(path)

    def rows(self, start: int, stop: int) -> np.ndarray:
        """Rows ``start:stop`` as a new array."""
        start, stop = max(0, start), min(stop, self.shape[0])
        d = self.shape[1]
        out = np.fromfile(self.path, dtype=np.float32, count=max(0, stop - start) * d,
                          offset=self.offset + start * d * 4)
        return out.reshape(-1, d)

    def take(self, indices: np.ndarray) -> np.ndarray:
        """The rows at ``indices`` (a few thousand candidates), in that order, one read each.

        Not through a memory map: its page faults read ahead and map whole runs of pages, so 9,000 rows taken
        from a 2.6 GB file left 2.4 GB resident.
        """
        indices = np.asarray(indices, dtype=np.int64)
        if len(indices) and (indices.min() < 0 or indices.max() >= self.shape[0]):
            raise IndexError(f"{self.path}: row {int(indices.max())} of {self.shape[0]:,}")
        size = self.shape[1] * 4
        out = np.empty((len(indices), self.shape[1]), dtype=np.float32)
        with open(self.path, "rb") as f:
            for k in np.argsort(indices, kind="stable"):  # in file order
                out[k] = np.frombuffer(os.pread(f.fileno(), size, self.offset + int(indices[k]) * size), np.float32)
        return out

    def write(self, start: int, block: np.ndarray) -> None:
        """Write ``block`` as rows ``start:start + len(block)``."""
        block = np.ascontiguousarray(block, dtype=np.float32)
        if block.ndim != 2 or block.shape[1] != self.shape[1] or start < 0 or start + len(block) > self.shape[0]:
            raise ShapeMismatchError(f"{self.path}: cannot write a block of shape {block.shape} at row {start:,} of "
                                     f"a {self.shape[0]:,} x {self.shape[1]} matrix")
        with open(self.path, "r+b") as f:
            f.seek(self.offset + start * self.shape[1] * 4)
            f.write(block.tobytes())


def create_features(path: str | Path, n_rows: int, n_cols: int) -> FeatureFile:
    """A new float32 features file of shape (n_rows, n_cols), to be written chunk by chunk."""
    return FeatureFile.create(path, n_rows, n_cols)


def open_features(path: str | Path) -> FeatureFile:
    """The pool's features file; one line naming the file when it is missing or not a 2-D float32 matrix."""
    return FeatureFile(path)


def chunk_inputs(model: Any, X: np.ndarray, strategy: str, classes: np.ndarray
                 ) -> tuple[np.ndarray | None, np.ndarray | None]:
    """(proba, samples) of one chunk, as the in-memory loop computes them for ``strategy``."""
    X = np.asarray(X)
    if strategy in COMMITTEE_STRATEGIES or hasattr(model, "sample_proba"):
        samples = committee_samples(model, X, classes)
        proba = samples.mean(axis=0) if hasattr(model, "sample_proba") else predict_proba_aligned(model, X, classes)
        return proba, samples
    return predict_proba_aligned(model, X, classes), None


def score_chunks(model: Any, X: FeatureFile, strategy: str, classes: np.ndarray, chunk_rows: int,
                 progress: Progress | None = None, start: int = 0, stop: int | None = None
                 ) -> Iterator[tuple[int, np.ndarray | None, np.ndarray | None]]:
    """``(row, proba, samples)`` for each run of ``chunk_rows`` rows of ``X[start:stop]``, in order."""
    stop = len(X) if stop is None else stop
    for row in range(start, stop, chunk_rows):
        yield (row, *chunk_inputs(model, X.rows(row, min(row + chunk_rows, stop)), strategy, classes))
        if progress is not None:
            progress(min(row + chunk_rows, stop), stop)


def partition_best(model: Any, path: str, start: int, stop: int, strategy: str, classes: np.ndarray,
                   mask: np.ndarray, m: int, chunk_rows: int) -> Candidates:
    """The best ``m`` candidates of rows ``start:stop`` of the features file at ``path`` (a worker's task)."""
    best = merge_candidates([], m)
    for row, proba, samples in score_chunks(model, open_features(path), strategy, classes, chunk_rows,
                                            start=start, stop=stop):
        s = chunk_scores(strategy, proba, samples)
        part = top_candidates(s, row, mask[row - start:row - start + len(s)], m)
        best = merge_candidates([best, part], m)
    return best


def _check_before_scoring(model: Any, strategy: str, classes: np.ndarray, batch_size: int, mask: np.ndarray) -> None:
    """Refuse in one line what would fail only after the whole file was scored, or deep inside it."""
    batch_size = check_batch_size(batch_size)
    n_candidates = int((~mask).sum())
    if n_candidates == 0:
        raise EmptyPoolError(f"no unlabeled item left in a pool of {len(mask)}")
    if batch_size > n_candidates:
        raise BatchTooLargeError(f"batch_size {batch_size} is larger than the {n_candidates} unlabeled items in the "
                                 "pool")
    if strategy == "random":
        return
    check_probabilistic(model)
    if strategy in COMMITTEE_STRATEGIES and not (hasattr(model, "sample_proba") or hasattr(model, "estimators_")):
        raise InvalidParameterError(f"strategy {strategy!r} needs a committee: a fitted ensemble (estimators_) or a "
                                    f"model with sample_proba; {type(model).__name__} is a single model")
    known = set(np.asarray(classes).tolist())
    unknown = [c for c in np.asarray(getattr(model, "classes_", [])).tolist() if c not in known]
    if unknown:
        raise InvalidParameterError(f"the model predicts class {unknown[0]!r}, which is not in classes "
                                    f"({', '.join(map(str, np.asarray(classes).tolist()))})")


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
    _check_before_scoring(model, strategy, classes, batch_size, mask)  # not after minutes of scoring
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
                                  features=X.take, random_fraction=random_fraction,
                                  random_state=random_state, beta=beta)
