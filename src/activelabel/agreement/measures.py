"""How much annotators agree: pairwise Cohen's kappa, Fleiss' kappa, Krippendorff's alpha, and per annotator.

Every function takes a label matrix of shape (n_items, n_annotators) of
integer class codes 0..k-1, with -1 where an annotator gave no label.
"""

from __future__ import annotations

import numpy as np
from numpy.typing import ArrayLike

from activelabel.errors import InvalidParameterError, ShapeMismatchError

__all__ = ["MISSING", "check_matrix", "pairwise_kappa", "fleiss_kappa", "krippendorff_alpha", "annotator_stats"]

MISSING = -1


def check_matrix(labels: ArrayLike, n_classes: int | None = None) -> np.ndarray:
    """Validate a label matrix (n_items, n_annotators) of class codes, -1 for missing; an int64 copy."""
    m = np.asarray(labels)
    if m.ndim != 2:
        raise ShapeMismatchError(f"labels must have shape (n_items, n_annotators), got shape {m.shape}")
    if m.size and not np.issubdtype(m.dtype, np.integer):
        raise InvalidParameterError(f"labels must be integer class codes (-1 for missing), got dtype {m.dtype}")
    m = m.astype(np.int64)
    if (m < MISSING).any():
        raise InvalidParameterError(f"labels below -1 (the missing code): {int(m.min())}")
    if n_classes is not None and (m >= n_classes).any():
        raise InvalidParameterError(f"a label code {int(m.max())} is not below n_classes={n_classes}")
    return m


def _kappa(a: np.ndarray, b: np.ndarray, n_classes: int) -> float:
    """Cohen's kappa of two label vectors (no missing entries); NaN when chance agreement is total."""
    table = np.zeros((n_classes, n_classes))
    np.add.at(table, (a, b), 1)
    n = table.sum()
    observed = np.trace(table) / n
    expected = (table.sum(0) @ table.sum(1)) / n**2
    return float("nan") if expected == 1 else float((observed - expected) / (1 - expected))


def pairwise_kappa(labels: ArrayLike, n_classes: int | None = None, min_overlap: int = 2) -> np.ndarray:
    """Cohen's kappa for every pair of annotators over the items both labeled, shape (n_annotators,) * 2.

    NaN where a pair shares fewer than ``min_overlap`` items (or chance agreement is total); 1 on the diagonal.
    Written here rather than calling scikit-learn's ``cohen_kappa_score`` pair by pair: one contingency table
    per pair over the shared items is all it takes, and it keeps this layer free of scikit-learn.
    """
    m = check_matrix(labels, n_classes)
    k = int(m.max()) + 1 if n_classes is None else n_classes
    n_ann = m.shape[1]
    out = np.full((n_ann, n_ann), np.nan)
    for i in range(n_ann):
        out[i, i] = 1.0
        for j in range(i + 1, n_ann):
            both = (m[:, i] != MISSING) & (m[:, j] != MISSING)
            if both.sum() >= min_overlap:
                out[i, j] = out[j, i] = _kappa(m[both, i], m[both, j], max(k, 1))
    return out


def fleiss_kappa(labels: ArrayLike, n_classes: int | None = None) -> float:
    """Fleiss' kappa over the items with at least two labels, allowing a different number of raters per item.

    Hand-written (eight lines of the textbook formula): statsmodels has it, but only for a fixed number of
    raters per item, and is not otherwise a dependency. NaN when no item has two labels.
    """
    m = check_matrix(labels, n_classes)
    k = int(m.max()) + 1 if n_classes is None else n_classes
    counts = np.stack([(m == c).sum(axis=1) for c in range(max(k, 1))], axis=1).astype(float)  # (items, classes)
    raters = counts.sum(axis=1)
    counts, raters = counts[raters >= 2], raters[raters >= 2]
    if not len(raters):
        return float("nan")
    per_item = ((counts**2).sum(axis=1) - raters) / (raters * (raters - 1))
    shares = counts.sum(axis=0) / counts.sum()
    expected = float((shares**2).sum())
    return float("nan") if expected == 1 else float((per_item.mean() - expected) / (1 - expected))


def krippendorff_alpha(labels: ArrayLike) -> float:
    """Krippendorff's alpha for nominal labels (the ``krippendorff`` library); NaN without pairable values."""
    import krippendorff

    m = check_matrix(labels).astype(float)
    m[m == MISSING] = np.nan
    pairable = (~np.isnan(m)).sum(axis=1) >= 2
    values = np.unique(m[pairable][~np.isnan(m[pairable])])
    if not pairable.any() or len(values) < 2:
        return float("nan") if not pairable.any() else 1.0
    return float(krippendorff.alpha(reliability_data=m[pairable].T, level_of_measurement="nominal"))


def annotator_stats(labels: ArrayLike, consensus: ArrayLike, gold: ArrayLike | None = None) -> dict[str, np.ndarray]:
    """Per annotator: ``answered`` items, ``agreement`` with the consensus on the items others labeled too (NaN
    without such items), and ``gold_accuracy`` on items with a gold label (-1: none; NaN without any)."""
    m = check_matrix(labels)
    consensus = np.asarray(consensus)
    if consensus.shape != (m.shape[0],):
        raise ShapeMismatchError(f"consensus must have shape ({m.shape[0]},), got shape {consensus.shape}")
    given = m != MISSING
    shared = given & (given.sum(axis=1, keepdims=True) >= 2)
    agree = (m == consensus[:, None]) & shared
    with np.errstate(invalid="ignore", divide="ignore"):
        agreement = agree.sum(axis=0) / shared.sum(axis=0)
        if gold is None:
            accuracy = np.full(m.shape[1], np.nan)
        else:
            gold = np.asarray(gold)
            known = given & (gold[:, None] != MISSING)
            accuracy = ((m == gold[:, None]) & known).sum(axis=0) / known.sum(axis=0)
    return {"answered": given.sum(axis=0), "agreement": agreement, "gold_accuracy": accuracy}
