"""Batch selection over a pool scored chunk by chunk, holding only the best candidates.

A pool too large for memory is scored in chunks (on one machine or on many); each chunk keeps its own best
``m`` items (``m = beta * k`` for ``default``, ``k`` for the other score strategies), and merging those gives the
pool's best ``m``: an item in the pool's top ``m`` is in its own chunk's top ``m``. The diversity step and the
random share then run exactly as :func:`~activelabel.strategies.select_batch` runs them, with the same random
draws, so the batch is the same as the in-memory one for the same seed. Order is by score, ties to the lower
index, as in ``select_batch``.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass

import numpy as np
from numpy.typing import ArrayLike

from activelabel.errors import BatchTooLargeError, EmptyPoolError, InvalidParameterError, UnknownStrategyError
from activelabel.strategies import select
from activelabel.strategies.checks import check_batch_size, check_fraction, check_mask, check_proba, check_samples

__all__ = ["Candidates", "Selection", "CHUNKED_STRATEGIES", "chunk_scores", "top_candidates", "merge_candidates",
           "candidates_wanted", "select_from_candidates", "select_chunked", "check_strategy"]

# Strategies whose picks depend only on each item's own score (and, for default, the top items' features).
CHUNKED_STRATEGIES = ("default", "least_confident", "margin", "entropy", "vote_entropy", "consensus_entropy",
                      "kl_disagreement", "bald", "random")


@dataclass(frozen=True, kw_only=True)
class Candidates:
    """The best candidates seen so far, best first (by score, ties to the lower index)."""

    indices: np.ndarray
    scores: np.ndarray


@dataclass(frozen=True, kw_only=True)
class Selection:
    """A batch picked from chunks: ``indices`` (the strategy's picks, best first, then the random share), the
    top ``candidates`` with their ``scores``, and ``n_random``; no score for the rest of the pool is kept."""

    indices: np.ndarray
    candidates: np.ndarray
    scores: np.ndarray
    strategy: str
    n_random: int

    is_random = select.Batch.is_random  # the same mask: True for the last ``n_random`` indices


def candidates_wanted(strategy: str, batch_size: int, random_fraction: float, beta: int = 10) -> int:
    """How many of the best candidates a chunk must hand on: ``beta * k`` for default, ``k`` otherwise."""
    k = batch_size - (batch_size if strategy == "random" else select.random_share(batch_size, random_fraction))
    return beta * k if strategy == "default" else k


def chunk_scores(strategy: str, proba: ArrayLike | None = None, samples: ArrayLike | None = None) -> np.ndarray:
    """One chunk's scores under a score strategy (``default`` scores by margin, as ``select_batch`` does)."""
    check_strategy(strategy)
    s = None if samples is None else check_samples(samples)
    if proba is not None:
        p = check_proba(proba)
    else:
        p = None if s is None or strategy in select.COMMITTEE_STRATEGIES else s.mean(axis=0)
    if strategy in select.COMMITTEE_STRATEGIES and s is None:
        raise InvalidParameterError(f"strategy {strategy!r} needs samples of shape (n_members, n_samples, n_classes)")
    if strategy not in select.COMMITTEE_STRATEGIES and p is None:
        raise InvalidParameterError(f"strategy {strategy!r} needs proba (or samples)")
    return np.asarray(select._score(strategy, p, s, None, None, 0, None), dtype=np.float64)


def top_candidates(scores: np.ndarray, start: int, mask: np.ndarray, m: int) -> Candidates:
    """The best ``m`` candidates (``~mask``) of one chunk whose first row is pool index ``start``."""
    keep = np.flatnonzero(~np.asarray(mask, dtype=bool))
    return _best(keep + start, np.asarray(scores, dtype=np.float64)[keep], m)


def merge_candidates(parts: Iterable[Candidates], m: int) -> Candidates:
    """The best ``m`` of several chunks' candidates."""
    parts = list(parts)
    if not parts:
        return Candidates(indices=np.empty(0, dtype=np.intp), scores=np.empty(0))
    return _best(np.concatenate([p.indices for p in parts]), np.concatenate([p.scores for p in parts]), m)


def _best(indices: np.ndarray, scores: np.ndarray, m: int) -> Candidates:
    order = np.lexsort((indices, -scores))[:m]  # by score, ties to the lower index
    return Candidates(indices=indices[order].astype(np.intp), scores=scores[order])


def select_from_candidates(strategy: str, best: Candidates, *, batch_size: int, n: int, mask: np.ndarray,
                           features: Callable[[np.ndarray], np.ndarray] | None = None,
                           random_fraction: float = 0.1, random_state: int | np.random.Generator | None = None,
                           beta: int = 10) -> Selection:
    """The batch from the pool's best candidates, as ``select_batch`` would pick it from the whole pool.

    Parameters
    ----------
    best : Candidates
        The pool's best ``candidates_wanted(...)`` candidates (merged from its chunks).
    n : int
        Pool size.
    mask : ndarray of bool, shape (n,)
        Not a candidate: labeled or excluded (the random share is drawn from the rest).
    features : callable, optional
        For ``default``: rows of the features for given pool indices (an on-disk matrix's fancy indexing).
    """
    check_strategy(strategy)
    random_fraction = check_fraction("random_fraction", random_fraction)
    batch_size = check_batch_size(batch_size)
    if beta < 1:
        raise InvalidParameterError(f"beta must be >= 1, got {beta!r}")
    mask = check_mask(mask, n, "mask")
    n_candidates = n - int(mask.sum())
    if n_candidates == 0:
        raise EmptyPoolError(f"no unlabeled item left in a pool of {n}")
    if batch_size > n_candidates:
        raise BatchTooLargeError(f"batch_size {batch_size} is larger than the {n_candidates} unlabeled items in the pool")
    rng = np.random.default_rng(random_state)
    n_random = batch_size if strategy == "random" else select.random_share(batch_size, random_fraction)
    k = batch_size - n_random
    if strategy == "random":
        rng.random(n)  # select_batch draws the scores of random first: the same draws give the same batch
        picks = np.empty(0, dtype=np.intp)
    elif strategy == "default":
        picks = _default(best, k, beta, features, rng)
    else:
        picks = best.indices[:k]
    indices = np.concatenate([picks, select._random_rest(n, mask, picks, n_random, rng)]).astype(np.intp)
    return Selection(indices=indices, candidates=best.indices, scores=best.scores, strategy=strategy,
                     n_random=n_random)


def _default(best: Candidates, k: int, beta: int, features, rng) -> np.ndarray:
    """``select_batch``'s default step on the candidates alone: standardized features, one pick per cluster."""
    if k == 0:
        return np.empty(0, dtype=np.intp)
    if features is None:
        raise InvalidParameterError("strategy 'default' needs the candidates' features")
    order = np.argsort(best.indices)  # read the rows in file order
    fetched = np.asarray(features(best.indices[order]), dtype=np.float64)
    rows = np.empty_like(fetched)
    rows[order] = fetched
    local = select._default(best.scores, rows, k, np.zeros(len(rows), dtype=bool), beta, rng)
    return best.indices[local]


def select_chunked(strategy: str, chunks: Iterable[tuple[int, np.ndarray | None, np.ndarray | None]], *,
                   batch_size: int, n: int, mask: np.ndarray,
                   features: Callable[[np.ndarray], np.ndarray] | None = None, random_fraction: float = 0.1,
                   random_state: int | np.random.Generator | None = None, beta: int = 10) -> Selection:
    """Score ``chunks`` of ``(start, proba, samples)`` one at a time, keep the best, and pick the batch."""
    m = candidates_wanted(strategy, check_batch_size(batch_size), random_fraction, beta)
    mask = check_mask(mask, n, "mask")
    best = merge_candidates([], m)
    if strategy != "random":  # random needs no score
        for start, proba, samples in chunks:
            s = chunk_scores(strategy, proba, samples)
            best = merge_candidates([best, top_candidates(s, start, mask[start:start + len(s)], m)], m)
    return select_from_candidates(strategy, best, batch_size=batch_size, n=n, mask=mask, features=features,
                                  random_fraction=random_fraction, random_state=random_state, beta=beta)


def check_strategy(strategy: str) -> None:
    """Refuse, in one line, a strategy that is unknown or cannot run on a pool scored in chunks."""
    if strategy not in select.STRATEGIES:
        raise UnknownStrategyError(f"unknown strategy {strategy!r}; choose one of: {', '.join(select.STRATEGIES)}")
    if strategy not in CHUNKED_STRATEGIES:
        raise InvalidParameterError(f"strategy {strategy!r} needs the whole pool in memory; for a pool scored in "
                                    f"chunks use one of: {', '.join(CHUNKED_STRATEGIES)}")
