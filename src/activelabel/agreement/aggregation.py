"""One label per item from several annotators: majority vote, Dawid-Skene, and CROWDLAB (model-aware).

Each method takes a label matrix (n_items, n_annotators) of class codes with
-1 for missing (see :mod:`activelabel.agreement.measures`) and returns a
:class:`Consensus`: a hard label, a per-class posterior and a per-item
consensus quality (the posterior's top probability, or CROWDLAB's score).
Items nobody labeled get label -1, the class prior as posterior and quality 0.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from numpy.typing import ArrayLike

from activelabel.agreement.measures import MISSING, check_matrix
from activelabel.errors import InvalidParameterError, ShapeMismatchError

__all__ = ["Consensus", "METHODS", "majority_vote", "dawid_skene", "crowdlab", "aggregate"]

METHODS = ("majority", "dawid_skene", "crowdlab")


@dataclass(frozen=True)
class Consensus:
    """The aggregated labels: ``labels`` (n_items,), ``posterior`` (n_items, n_classes), ``quality`` (n_items,),
    ``method``, and for Dawid-Skene each annotator's estimated ``annotator_accuracy``."""

    labels: np.ndarray
    posterior: np.ndarray
    quality: np.ndarray
    method: str
    annotator_accuracy: np.ndarray | None = None


def _votes(m: np.ndarray, k: int) -> np.ndarray:
    return np.stack([(m == c).sum(axis=1) for c in range(k)], axis=1).astype(float)


def _finish(posterior: np.ndarray, labeled: np.ndarray, method: str, rng: np.random.Generator,
            accuracy: np.ndarray | None = None) -> Consensus:
    """Hard labels from the posterior, ties broken at random (seeded) among the top classes."""
    top = posterior.max(axis=1, keepdims=True)
    tied = np.isclose(posterior, top, rtol=0, atol=1e-12)
    noise = rng.random(posterior.shape)
    labels = np.where(labeled, np.argmax(np.where(tied, noise, -1.0), axis=1), MISSING)
    quality = np.where(labeled, top[:, 0], 0.0)
    return Consensus(labels=labels.astype(np.int64), posterior=posterior, quality=quality, method=method,
                     annotator_accuracy=accuracy)


def majority_vote(labels: ArrayLike, n_classes: int, random_state: int | np.random.Generator | None = 0) -> Consensus:
    """The most frequent label per item, ties broken at random (seeded); the posterior is the vote shares."""
    m = check_matrix(labels, n_classes)
    votes = _votes(m, n_classes)
    total = votes.sum(axis=1, keepdims=True)
    labeled = total[:, 0] > 0
    prior = votes.sum(axis=0) / max(votes.sum(), 1)
    posterior = np.where(labeled[:, None], votes / np.maximum(total, 1), prior)
    return _finish(posterior, labeled, "majority", np.random.default_rng(random_state))


def dawid_skene(labels: ArrayLike, n_classes: int, *, max_iter: int = 100, tol: float = 1e-6,
                smoothing: float = 0.01, diagonal: float = 2.0,
                random_state: int | np.random.Generator | None = 0) -> Consensus:
    """Dawid and Skene's (1979) EM: each annotator's confusion matrix and the classes' prior, in log space.

    Written here rather than taken from crowd-kit: crowd-kit's package pulls in transformers and nltk for its
    text aggregators, far too much for a base install; the tests check this EM against crowd-kit's on the same
    data. Starts from the vote shares; ``smoothing`` keeps unseen (true, given) pairs possible, and
    ``diagonal`` pseudo-counts (a Dirichlet prior that annotators are more often right than wrong) keep the EM
    from drifting to a flat solution where few annotators overlap (one annotator alone: their labels).
    """
    m = check_matrix(labels, n_classes)
    k, n_ann = n_classes, m.shape[1]
    votes = _votes(m, k)
    labeled = votes.sum(axis=1) > 0
    post = np.where(labeled[:, None], votes / np.maximum(votes.sum(axis=1, keepdims=True), 1), 1.0 / k)
    observed = [np.flatnonzero(m[:, a] != MISSING) for a in range(n_ann)]
    for _ in range(max_iter):
        prior = (post[labeled].sum(axis=0) + smoothing) / (labeled.sum() + k * smoothing)
        log_post = np.tile(np.log(prior), (len(m), 1))
        confusion = np.empty((n_ann, k, k))
        for a, rows in enumerate(observed):
            given = np.zeros((len(rows), k))
            given[np.arange(len(rows)), m[rows, a]] = 1
            counts = post[rows].T @ given + smoothing + diagonal * np.eye(k)  # (true class, given label)
            confusion[a] = counts / counts.sum(axis=1, keepdims=True)
            log_post[rows] += np.log(confusion[a][:, m[rows, a]]).T
        log_post -= log_post.max(axis=1, keepdims=True)
        new = np.exp(log_post)
        new /= new.sum(axis=1, keepdims=True)
        new[~labeled] = prior
        change = float(np.abs(new - post).max())
        post = new
        if change < tol:
            break
    accuracy = np.einsum("c,acc->a", prior, confusion)
    return _finish(post, labeled, "dawid_skene", np.random.default_rng(random_state), accuracy)


def crowdlab(labels: ArrayLike, pred_probs: ArrayLike, random_state: int | np.random.Generator | None = 0) -> Consensus:
    """cleanlab's CROWDLAB: annotators' labels and the classifier's probabilities, each weighted by how well it
    agrees with the consensus. The posterior follows CROWDLAB's own combination: the model's probabilities and
    each annotator's label (its weight spread as agreement on the label, the rest over other classes)."""
    from cleanlab.multiannotator import get_label_quality_multiannotator
    import pandas as pd

    probs = np.asarray(pred_probs, dtype=float)
    m = check_matrix(labels, probs.shape[1] if probs.ndim == 2 else None)
    if probs.shape != (m.shape[0], probs.shape[1] if probs.ndim == 2 else -1):
        raise ShapeMismatchError(f"pred_probs must have shape ({m.shape[0]}, n_classes), got shape {probs.shape}")
    k = probs.shape[1]
    labeled = (m != MISSING).any(axis=1)
    if labeled.sum() < 2 or len(np.unique(m[m != MISSING])) < 2:
        raise InvalidParameterError("CROWDLAB needs at least two labeled items and two classes among the labels")
    rows = np.flatnonzero(labeled)
    frame = pd.DataFrame(np.where(m[rows] == MISSING, np.nan, m[rows]).astype(float))
    out = get_label_quality_multiannotator(frame, probs[rows], return_weights=True, verbose=False,
                                           return_detailed_quality=False, return_annotator_stats=False)
    quality = out["label_quality"]
    agreement = float(np.nanmean(quality["annotator_agreement"].to_numpy(float)))
    likelihood = min(max(agreement, 1.0 / k), 1.0)
    weights = np.asarray(out["annotator_weight"], dtype=float)
    post = out["model_weight"] * probs[rows]
    total = np.full(len(rows), float(out["model_weight"]))
    for a in range(m.shape[1]):
        given = m[rows, a]
        has = given != MISSING
        spread = np.full((has.sum(), k), (1 - likelihood) / max(k - 1, 1))
        spread[np.arange(has.sum()), given[has]] = likelihood
        post[has] += weights[a] * spread
        total[has] += weights[a]
    posterior = np.tile(probs.mean(axis=0), (len(m), 1))
    posterior[rows] = post / total[:, None]
    result = _finish(posterior, labeled, "crowdlab", np.random.default_rng(random_state))
    labels_out = result.labels.copy()
    labels_out[rows] = quality["consensus_label"].to_numpy(np.int64)
    scores = np.zeros(len(m))
    scores[rows] = quality["consensus_quality_score"].to_numpy(float)
    return Consensus(labels=labels_out, posterior=posterior, quality=scores, method="crowdlab")


def aggregate(labels: ArrayLike, n_classes: int, method: str = "majority", *, pred_probs: ArrayLike | None = None,
              random_state: int | np.random.Generator | None = 0) -> Consensus:
    """Aggregate by name: ``majority``, ``dawid_skene`` or ``crowdlab`` (which needs ``pred_probs``)."""
    if method == "majority":
        return majority_vote(labels, n_classes, random_state)
    if method == "dawid_skene":
        return dawid_skene(labels, n_classes, random_state=random_state)
    if method == "crowdlab":
        if pred_probs is None:
            raise InvalidParameterError("crowdlab needs pred_probs, the classifier's probabilities per item")
        return crowdlab(labels, pred_probs, random_state)
    raise InvalidParameterError(f"unknown aggregation method {method!r}; known: {', '.join(METHODS)}")
