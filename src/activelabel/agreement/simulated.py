"""Simulated annotators for replaying labeling with noise: each has a confusion matrix around an accuracy."""

from __future__ import annotations

import numpy as np
from numpy.typing import ArrayLike

from activelabel.errors import InvalidParameterError

__all__ = ["confusions", "noisy_labels"]


def confusions(accuracies: ArrayLike, n_classes: int,
               random_state: int | np.random.Generator | None = 0) -> np.ndarray:
    """One (n_classes, n_classes) confusion matrix per annotator, rows summing to 1: the diagonal is the
    annotator's accuracy for each true class (jittered by up to 0.03, seeded), the rest spread over the other
    classes at random (a flat Dirichlet), so mistakes favour some wrong labels as people's do."""
    acc = np.asarray(accuracies, dtype=float)
    if acc.ndim != 1 or not len(acc) or ((acc <= 0) | (acc > 1)).any():
        raise InvalidParameterError(f"accuracies must be numbers in (0, 1], got {acc.tolist()}")
    if n_classes < 2:
        raise InvalidParameterError(f"n_classes must be >= 2, got {n_classes}")
    rng = np.random.default_rng(random_state)
    out = np.empty((len(acc), n_classes, n_classes))
    for a, p in enumerate(acc):
        diag = np.clip(p + rng.uniform(-0.03, 0.03, n_classes), 1 / n_classes, 1.0)
        for c in range(n_classes):
            rest = rng.dirichlet(np.ones(n_classes - 1)) * (1 - diag[c])
            out[a, c] = np.insert(rest, c, diag[c])
    return out


def noisy_labels(y: ArrayLike, accuracies: ArrayLike, n_classes: int,
                 random_state: int | np.random.Generator | None = 0) -> np.ndarray:
    """Every simulated annotator's label for every item, shape (n_items, n_annotators), from true class codes."""
    y = np.asarray(y)
    rng = np.random.default_rng(random_state)
    conf = confusions(accuracies, n_classes, rng)
    draws = rng.random((len(y), len(conf)))
    cumulative = np.cumsum(conf[:, y, :], axis=2)  # (annotators, items, classes)
    return (draws.T[:, :, None] > cumulative).sum(axis=2).T.clip(0, n_classes - 1)
