"""One entry point that picks a batch by strategy name.

Every strategy returns exactly ``batch_size`` distinct indices into the pool,
deterministic for a given ``random_state``, plus a score per pool item
(larger = more informative; ``-inf`` for labeled and excluded items, which
are never candidates). A share ``random_fraction`` of every batch is drawn
uniformly at random from the candidates the strategy did not pick, so the
labeled set stays representative of the pool.

Two masks say what is not a candidate: ``labeled_mask`` (labeled training
items: diversity strategies spread the batch away from them) and
``exclude_mask`` (items that take no part at all, such as a held-out test
set: never picked, never a centre, never a density reference).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from numpy.typing import ArrayLike

from activelabel.errors import (
    BatchTooLargeError,
    EmptyPoolError,
    InvalidParameterError,
    ShapeMismatchError,
    UnknownStrategyError,
)
from activelabel.strategies import committee, diversity, uncertainty
from activelabel.strategies.checks import (
    check_batch_size,
    check_features,
    check_fraction,
    check_mask,
    check_proba,
    check_samples,
)

__all__ = ["Batch", "select_batch", "STRATEGIES", "COMMITTEE_STRATEGIES", "random_share"]


@dataclass(frozen=True, kw_only=True)
class Batch:
    """A selected batch.

    Attributes
    ----------
    indices : ndarray of shape (batch_size,)
        Pool indices: the strategy's picks first (most informative first for
        score-based strategies), then the random share.
    scores : ndarray of shape (n_samples,)
        Score of every pool item under the strategy; ``-inf`` where labeled
        or excluded.
    strategy : str
    n_random : int
        How many of the last ``indices`` are the uniform random share.
    """

    indices: np.ndarray
    scores: np.ndarray
    strategy: str
    n_random: int

    @property
    def is_random(self) -> np.ndarray:
        """Boolean mask over ``indices``: True for the random share."""
        flags = np.zeros(len(self.indices), dtype=bool)
        if self.n_random:
            flags[-self.n_random :] = True
        return flags


_UNCERTAINTY = {
    "least_confident": uncertainty._least_confident,
    "margin": uncertainty._margin,
    "entropy": uncertainty._entropy,
}
_COMMITTEE = {
    "vote_entropy": committee.vote_entropy,
    "consensus_entropy": committee.consensus_entropy,
    "kl_disagreement": committee.kl_disagreement,
    "bald": committee.bald,
}
_DIVERSITY = ("kcenter", "kmeans")
STRATEGIES = (*_UNCERTAINTY, *_COMMITTEE, *_DIVERSITY, "density", "default", "random")
COMMITTEE_STRATEGIES = tuple(_COMMITTEE)  # the strategies that need a committee's samples


def random_share(batch_size: int, random_fraction: float) -> int:
    """Number of random items in a batch: ``round(batch_size * random_fraction)``, halves up."""
    return int(np.floor(batch_size * random_fraction + 0.5))


def select_batch(
    strategy: str,
    *,
    batch_size: int,
    proba: ArrayLike | None = None,
    samples: ArrayLike | None = None,
    X: ArrayLike | None = None,
    labeled_mask: ArrayLike | None = None,
    exclude_mask: ArrayLike | None = None,
    random_fraction: float = 0.1,
    random_state: int | np.random.Generator | None = None,
    beta: int = 10,
    n_reference: int = 1000,
) -> Batch:
    """Select the next batch to label.

    Parameters
    ----------
    strategy : str
        One of ``STRATEGIES``: ``least_confident``, ``margin``, ``entropy``
        (need ``proba``, or ``samples`` whose mean is used);
        ``vote_entropy``, ``consensus_entropy``, ``kl_disagreement``,
        ``bald`` (need ``samples``); ``kcenter``, ``kmeans`` (need ``X``);
        ``density`` (entropy times estimated density; needs ``proba`` and
        ``X``); ``default`` (the ``beta * k`` smallest-margin items, then one
        per k-means cluster of their standardized features; needs ``proba``
        and ``X``); ``random``.
    batch_size : int
        Exactly this many distinct indices are returned.
    proba : array-like of shape (n_samples, n_classes), optional
    samples : array-like of shape (n_members, n_samples, n_classes), optional
    X : array-like of shape (n_samples, n_features), optional
    labeled_mask : array-like of bool, shape (n_samples,), optional
        Labeled training items (and items about to be: issued, pending).
        Never selected; ``kcenter`` spreads the batch away from them.
    exclude_mask : array-like of bool, shape (n_samples,), optional
        Items that take no part in the selection, such as the held-out test
        set: never selected, never a ``kcenter`` centre, never a
        ``density`` reference row, never in the random share. An item in
        both masks counts as excluded. For ``random`` either mask alone is
        enough: it gives the pool size.
    random_fraction : float, default 0.1
        Share of the batch drawn uniformly from the candidates (neither
        labeled nor excluded) the strategy did not pick.
    random_state : int, numpy Generator or None
    beta : int, default 10
        For ``default``: how many uncertain candidates per slot go into the
        clustering.
    n_reference : int, default 1000
        For ``density``: reference items the density is estimated against.

    Returns
    -------
    Batch
    """
    if strategy not in STRATEGIES:
        raise UnknownStrategyError(
            f"unknown strategy {strategy!r}; choose one of: {', '.join(STRATEGIES)}"
        )
    rng = np.random.default_rng(random_state)
    random_fraction = check_fraction("random_fraction", random_fraction)
    batch_size = check_batch_size(batch_size)
    if beta < 1:
        raise InvalidParameterError(f"beta must be >= 1, got {beta!r}")

    masks_only = labeled_mask is not None or exclude_mask is not None
    if strategy == "random" and proba is None and samples is None and X is None and masks_only:
        p = s = feats = None  # random needs only to know which items are candidates
        name, given = ("labeled_mask", labeled_mask) if labeled_mask is not None else ("exclude_mask", exclude_mask)
        shape = np.shape(given)
        if len(shape) != 1:
            raise ShapeMismatchError(f"{name} must have shape (n_samples,), got shape {shape}")
        n = shape[0]
    else:
        p, s, feats = _inputs(strategy, proba, samples, X)
        n = next(a.shape[-2] for a in (p, s, feats) if a is not None)
    excluded = check_mask(exclude_mask, n, "exclude_mask")
    labeled = check_mask(labeled_mask, n, "labeled_mask") & ~excluded
    mask = labeled | excluded  # not a candidate
    n_candidates = n - int(mask.sum())
    held = f" ({int(excluded.sum())} excluded)" if excluded.any() else ""
    if n_candidates == 0:
        raise EmptyPoolError(f"no unlabeled item left in a pool of {n}{held}")
    if batch_size > n_candidates:
        raise BatchTooLargeError(
            f"batch_size {batch_size} is larger than the {n_candidates} unlabeled items in the pool{held}"
        )

    n_random = batch_size if strategy == "random" else random_share(batch_size, random_fraction)
    k = batch_size - n_random
    if strategy == "random":
        picks, scores = np.empty(0, dtype=np.intp), rng.random(n)
    elif strategy in _DIVERSITY:
        picks, scores = _diversity(strategy, feats, k, mask, labeled, rng)
    else:
        scores = _score(strategy, p, s, feats, rng, n_reference, excluded)
        if strategy == "default":
            picks = _default(scores, feats, k, mask, beta, rng)
        else:
            picks = _top(scores, k, mask)
    scores = np.asarray(scores, dtype=np.float64)
    if mask.any():
        scores[mask] = -np.inf
    indices = np.concatenate([picks, _random_rest(n, mask, picks, n_random, rng)]).astype(np.intp)
    return Batch(indices=indices, scores=scores, strategy=strategy, n_random=n_random)


def _inputs(strategy, proba, samples, X):
    """Validate what the strategy needs and check that row counts agree."""
    needs_proba = strategy in _UNCERTAINTY or strategy in ("density", "default")
    p = s = feats = None
    if samples is not None:
        s = check_samples(samples)
    if proba is not None:
        p = check_proba(proba)
    elif needs_proba and s is not None:
        p = s.mean(axis=0)  # the committee's consensus
    if needs_proba and p is None:
        raise InvalidParameterError(f"strategy {strategy!r} needs proba (or samples)")
    if strategy in _COMMITTEE and s is None:
        raise InvalidParameterError(
            f"strategy {strategy!r} needs samples of shape (n_members, n_samples, n_classes)"
        )
    uses_x = strategy in _DIVERSITY or strategy in ("density", "default")
    if X is not None:
        rows = None if p is None else p.shape[0]
        feats = check_features(X, rows, values=uses_x or (p is None and s is None))
    if uses_x and feats is None:
        raise InvalidParameterError(f"strategy {strategy!r} needs features X")
    if p is not None and s is not None and s.shape[1:] != p.shape:
        raise ShapeMismatchError(f"samples have shape {s.shape} but proba has shape {p.shape}")
    if p is None and s is None and feats is None:
        raise InvalidParameterError("select_batch needs at least one of proba, samples or X")
    return p, s, feats


def _score(strategy, p, s, feats, rng, n_reference, excluded):
    if strategy in _UNCERTAINTY:
        return _UNCERTAINTY[strategy](p)
    if strategy in _COMMITTEE:
        return _COMMITTEE[strategy](s)
    if strategy == "density":
        return uncertainty._entropy(p) * diversity.density(feats, rng, n_reference, excluded)
    return uncertainty._margin(p)  # default: margin drives the pre-filter


def _top(scores: np.ndarray, k: int, mask: np.ndarray) -> np.ndarray:
    """Indices of the k highest scores among the candidates (``~mask``), best first.

    Ties go to the lower index, also at the cut (``argpartition`` alone
    breaks them by memory layout), so deleting items that are not picked
    never changes the picks.
    """
    if k == 0:
        return np.empty(0, dtype=np.intp)
    if mask.any():
        scores = np.where(mask, -np.inf, scores)
    cut = scores[np.argpartition(-scores, k - 1)[k - 1]]  # the k-th highest score
    above = np.flatnonzero(scores > cut)
    tied = np.flatnonzero((scores == cut) & ~mask)[: k - len(above)]
    top = np.concatenate([above, tied])
    return top[np.argsort(-scores[top], kind="stable")]


def _default(scores, feats, k, mask, beta, rng):
    """Uncertainty pre-filter, then one item per k-means cluster of the candidates."""
    if k == 0:
        return np.empty(0, dtype=np.intp)
    candidates = _top(scores, min(beta * k, int((~mask).sum())), mask)
    if len(candidates) == k:
        return candidates
    Z = feats[candidates].astype(np.float64)
    Z -= Z.mean(axis=0)
    std = Z.std(axis=0)
    Z /= np.where(std > 0, std, 1.0)
    picks = diversity.kmeans_select(Z, k, rng, scores=scores[candidates])
    chosen = candidates[picks]
    return chosen[np.argsort(-scores[chosen], kind="stable")]


def _diversity(strategy, feats, k, mask, labeled, rng):
    """k-center away from the labeled items, or k-means over the candidates (``~mask``)."""
    candidates = np.flatnonzero(~mask)
    if strategy == "kcenter":
        if k == 0:
            return np.empty(0, dtype=np.intp), np.zeros(feats.shape[0])
        return diversity.kcenter_greedy(feats, k, labeled, rng, candidates=candidates)
    if k == 0:
        return np.empty(0, dtype=np.intp), np.zeros(feats.shape[0])
    # fit the centres on a sample on big pools, then assign every candidate
    picks = diversity.kmeans_select(feats[candidates], k, rng, n_fit=max(20 * k, 10_000))
    chosen = candidates[picks]
    # score: closeness to the nearest centre among the chosen (representativeness)
    _, sq = diversity.nearest_centers(feats, feats[chosen])
    return chosen, -np.sqrt(sq)


def _random_rest(n, mask, picks, n_random, rng) -> np.ndarray:
    """``n_random`` items drawn uniformly from the candidates (``~mask``) not in ``picks``."""
    if n_random == 0:
        return np.empty(0, dtype=np.intp)
    taken = mask.copy()
    taken[picks] = True
    rest = np.flatnonzero(~taken)
    return rest[rng.choice(len(rest), n_random, replace=False)]
