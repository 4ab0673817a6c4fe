"""Test-set metrics with bootstrap confidence intervals."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from numpy.typing import ArrayLike
from scipy.stats import bootstrap

__all__ = ["Metrics", "evaluate", "macro_f1", "expected_calibration_error"]


@dataclass(frozen=True, kw_only=True)
class Metrics:
    """Accuracy and macro-F1 on the held-out test items, with 95% intervals.

    ``n_test`` is how many labeled test items the figures rest on; with no
    labeled test item every figure is NaN.
    """

    accuracy: float
    accuracy_ci: tuple[float, float]
    macro_f1: float
    macro_f1_ci: tuple[float, float]
    n_test: int


def macro_f1(y_true: np.ndarray, y_pred: np.ndarray, n_classes: int, axis: int = -1) -> np.ndarray:
    """Macro-averaged F1 over integer labels ``0..n_classes-1``, vectorised over leading axes.

    Classes absent from both ``y_true`` and ``y_pred`` are left out of the
    average, as scikit-learn does with ``labels=None``. Written for arrays
    of shape (..., n) so the bootstrap can score all resamples at once.
    """
    y_true = np.moveaxis(np.asarray(y_true), axis, -1)
    y_pred = np.moveaxis(np.asarray(y_pred), axis, -1)
    onehot_true = y_true[..., None] == np.arange(n_classes)
    onehot_pred = y_pred[..., None] == np.arange(n_classes)
    tp = (onehot_true & onehot_pred).sum(axis=-2)
    support = onehot_true.sum(axis=-2)
    predicted = onehot_pred.sum(axis=-2)
    denom = support + predicted
    present = denom > 0
    f1 = np.where(present, 2 * tp / np.where(present, denom, 1), 0.0)
    return f1.sum(axis=-1) / np.maximum(present.sum(axis=-1), 1)


def expected_calibration_error(y_true: ArrayLike, proba: ArrayLike, n_bins: int = 15) -> float:
    """Expected calibration error (Guo et al. 2017): the gap between confidence and accuracy, averaged over
    ``n_bins`` equal-width confidence bins weighted by their items; NaN with no item.

    Written here: it is a few lines, and scikit-learn's ``calibration_curve`` gives the bins, not the error.
    """
    y_true = np.asarray(y_true)
    proba = np.asarray(proba, dtype=float)
    if len(y_true) == 0:
        return float("nan")
    confidence = proba.max(axis=1)
    correct = proba.argmax(axis=1) == y_true
    bins = np.minimum((confidence * n_bins).astype(int), n_bins - 1)
    total = 0.0
    for b in np.unique(bins):
        inside = bins == b
        total += inside.sum() * abs(correct[inside].mean() - confidence[inside].mean())
    return float(total / len(y_true))


def _accuracy(y_true, y_pred, axis=-1):
    return (np.asarray(y_true) == np.asarray(y_pred)).mean(axis=axis)


def evaluate(y_true: ArrayLike, y_pred: ArrayLike, n_classes: int, *, n_resamples: int = 1000,
             confidence: float = 0.95, random_state: int | np.random.Generator | None = None) -> Metrics:
    """Accuracy and macro-F1 of ``y_pred`` against ``y_true`` with percentile bootstrap intervals.

    Parameters
    ----------
    y_true, y_pred : array-like of int, shape (n_test,)
        Class indices ``0..n_classes-1``.
    n_classes : int
    n_resamples : int, default 1000
    confidence : float, default 0.95
    random_state : int, Generator or None

    Returns
    -------
    Metrics
    """
    y_true = np.asarray(y_true)
    y_pred = np.asarray(y_pred)
    n = len(y_true)
    if n == 0:
        nan = float("nan")
        return Metrics(accuracy=nan, accuracy_ci=(nan, nan), macro_f1=nan, macro_f1_ci=(nan, nan), n_test=0)
    rng = np.random.default_rng(random_state)

    def both(t, p, axis=-1):
        return np.stack([_accuracy(t, p, axis=axis), macro_f1(t, p, n_classes, axis=axis)])

    point = both(y_true, y_pred)
    if n < 2:
        low = high = point
    else:
        # One resample set for both metrics; percentile intervals because
        # BCa breaks down on degenerate resamples (a perfect model).
        res = bootstrap((y_true, y_pred), both, paired=True, vectorized=True, n_resamples=n_resamples,
                        confidence_level=confidence, method="percentile", rng=rng, batch=100)
        low, high = res.confidence_interval
    return Metrics(
        accuracy=float(point[0]),
        accuracy_ci=(float(low[0]), float(high[0])),
        macro_f1=float(point[1]),
        macro_f1_ci=(float(low[1]), float(high[1])),
        n_test=n,
    )
