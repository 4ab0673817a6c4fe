"""Test-set metrics with confidence intervals that cost O(test set) per cycle.

Accuracy takes Wilson's score interval (a closed form, near its stated coverage even at small n and at
accuracies near 1, where a percentile bootstrap collapses to a point). Macro-F1 takes a percentile bootstrap
drawn on the confusion counts: resampling n items with replacement is a multinomial draw over the confusion
matrix's cells, so each resample costs O(cells), not O(n), and a 40,000-item test set costs what a 400-item one
does.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from numpy.typing import ArrayLike
from scipy.stats import binomtest

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


def _macro_f1_interval(y_true: np.ndarray, y_pred: np.ndarray, n_classes: int, n_resamples: int,
                       confidence: float, rng: np.random.Generator) -> tuple[float, float]:
    """Percentile bootstrap of macro-F1 drawn as multinomial resamples of the occupied confusion cells.

    Written here: scipy's ``bootstrap`` resamples items, O(n) per resample; the confusion counts are a sufficient
    statistic for macro-F1, so drawing them directly gives the same distribution at O(cells) per resample.
    """
    n = len(y_true)
    cells, counts = np.unique(y_true.astype(np.int64) * n_classes + y_pred, return_counts=True)
    true_of, pred_of = np.divmod(cells, n_classes)
    to_true = (true_of[:, None] == np.arange(n_classes)).astype(np.int64)  # (cells, classes)
    to_pred = (pred_of[:, None] == np.arange(n_classes)).astype(np.int64)
    diagonal = true_of == pred_of
    values = []
    for start in range(0, n_resamples, 200):  # in chunks: memory stays (200, cells) however many resamples
        draws = rng.multinomial(n, counts / n, size=min(200, n_resamples - start))
        tp = (draws * diagonal) @ to_true
        denom = draws @ to_true + draws @ to_pred
        present = denom > 0
        f1 = np.where(present, 2 * tp / np.where(present, denom, 1), 0.0)
        values.append(f1.sum(axis=1) / np.maximum(present.sum(axis=1), 1))
    tail = (1 - confidence) / 2
    low, high = np.quantile(np.concatenate(values), [tail, 1 - tail])
    return float(low), float(high)


def evaluate(y_true: ArrayLike, y_pred: ArrayLike, n_classes: int, *, n_resamples: int = 1000,
             confidence: float = 0.95, random_state: int | np.random.Generator | None = None) -> Metrics:
    """Accuracy with Wilson's interval and macro-F1 with a bootstrap interval on the confusion counts.

    Parameters
    ----------
    y_true, y_pred : array-like of int, shape (n_test,)
        Class indices ``0..n_classes-1``.
    n_classes : int
    n_resamples : int, default 1000
        Bootstrap resamples for macro-F1.
    confidence : float, default 0.95
    random_state : int, Generator or None

    Returns
    -------
    Metrics
    """
    y_true = np.asarray(y_true, dtype=np.int64)
    y_pred = np.asarray(y_pred, dtype=np.int64)
    n = len(y_true)
    if n == 0:
        nan = float("nan")
        return Metrics(accuracy=nan, accuracy_ci=(nan, nan), macro_f1=nan, macro_f1_ci=(nan, nan), n_test=0)
    correct = int((y_true == y_pred).sum())
    accuracy_ci = binomtest(correct, n).proportion_ci(confidence_level=confidence, method="wilson")
    f1 = float(macro_f1(y_true, y_pred, n_classes))
    f1_ci = ((f1, f1) if n < 2 else
             _macro_f1_interval(y_true, y_pred, n_classes, n_resamples, confidence, np.random.default_rng(random_state)))
    return Metrics(
        accuracy=correct / n,
        accuracy_ci=(float(accuracy_ci.low), float(accuracy_ci.high)),
        macro_f1=f1,
        macro_f1_ci=f1_ci,
        n_test=n,
    )
