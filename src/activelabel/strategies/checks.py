"""Input validation at the public edge of the strategies.

Checks run once in the public functions; the private kernels trust their
inputs. Every failure raises a typed error from :mod:`activelabel.errors`
that names the argument, what was expected and what came in.
"""

from __future__ import annotations

import numpy as np
from numpy.typing import ArrayLike

from activelabel.errors import (
    InvalidParameterError,
    InvalidProbabilitiesError,
    NonFiniteValueError,
    ShapeMismatchError,
)

# Rows of probabilities may drift from 1 by float rounding (float32 softmax).
SUM_TOLERANCE = 1e-3


def first_bad_row(bad: np.ndarray) -> int:
    """Index of the first row flagged in a boolean mask of shape (n, ...)."""
    rows = bad.reshape(bad.shape[0], -1).any(axis=1)
    return int(np.flatnonzero(rows)[0])


def check_finite(name: str, a: np.ndarray) -> None:
    """Raise :class:`NonFiniteValueError` naming the first row with NaN or inf."""
    if not np.isfinite(a).all():
        bad = ~np.isfinite(a)
        row = first_bad_row(bad)
        value = a.reshape(a.shape[0], -1)[row][bad.reshape(bad.shape[0], -1)[row]][0]
        raise NonFiniteValueError(f"{name} has a non-finite value ({value}) in row {row}")


def check_proba(proba: ArrayLike, name: str = "proba") -> np.ndarray:
    """Validate class probabilities of shape (n_samples, n_classes).

    Returns a float array; raises when the shape is wrong, a value is
    NaN/inf or negative, or a row does not sum to one.
    """
    p = np.asarray(proba)
    if p.ndim != 2:
        raise ShapeMismatchError(
            f"{name} must have shape (n_samples, n_classes), got shape {p.shape}"
        )
    if p.shape[1] < 1:
        raise ShapeMismatchError(f"{name} has no class column: shape {p.shape}")
    if not np.issubdtype(p.dtype, np.floating):
        p = p.astype(np.float64)
    _check_distribution(name, p)
    return p


def check_samples(samples: ArrayLike, name: str = "samples") -> np.ndarray:
    """Validate sampled probabilities of shape (n_members, n_samples, n_classes)."""
    s = np.asarray(samples)
    if s.ndim != 3:
        raise ShapeMismatchError(
            f"{name} must have shape (n_members, n_samples, n_classes), got shape {s.shape}"
        )
    if s.shape[0] < 1 or s.shape[2] < 1:
        raise ShapeMismatchError(f"{name} needs at least one member and one class: shape {s.shape}")
    if not np.issubdtype(s.dtype, np.floating):
        s = s.astype(np.float64)
    for m in range(s.shape[0]):
        _check_distribution(f"{name}[{m}]", s[m])
    return s


def _check_distribution(name: str, p: np.ndarray) -> None:
    # Row sums through BLAS (several times faster than p.sum(axis=1) for a
    # few columns); a NaN or inf anywhere makes its row sum non-finite.
    sums = p @ np.ones(p.shape[1], dtype=p.dtype)
    if not np.isfinite(sums).all():
        check_finite(name, p)
    if p.size and p.min() < 0:
        row = first_bad_row(p < 0)
        raise InvalidProbabilitiesError(
            f"{name} has a negative probability in row {row}: {p[row].tolist()}"
        )
    off = np.abs(sums - 1.0) > SUM_TOLERANCE
    if off.any():
        row = int(np.flatnonzero(off)[0])
        raise InvalidProbabilitiesError(
            f"{name} row {row} sums to {sums[row]:.6g}, expected 1 (within {SUM_TOLERANCE})"
        )


def check_features(X: ArrayLike, n_samples: int | None = None, name: str = "X", *, values: bool = True) -> np.ndarray:
    """Validate a feature matrix of shape (n_samples, n_features); with ``values=False`` only its shape (for a
    strategy that does not read it: checking every value of a large matrix costs more than the selection)."""
    a = np.asarray(X)
    if a.ndim != 2:
        raise ShapeMismatchError(f"{name} must have shape (n_samples, n_features), got shape {a.shape}")
    if n_samples is not None and a.shape[0] != n_samples:
        raise ShapeMismatchError(
            f"{name} has {a.shape[0]} rows but the probabilities have {n_samples}"
        )
    if not values:
        return a
    if not np.issubdtype(a.dtype, np.floating):
        a = a.astype(np.float64)
    check_finite(name, a)
    return a


def check_mask(mask: ArrayLike | None, n_samples: int, name: str = "labeled_mask") -> np.ndarray:
    """Return a boolean mask of shape (n_samples,), all False when None.

    Raises :class:`ShapeMismatchError` for another shape and
    :class:`InvalidParameterError` for a non-boolean dtype, naming ``name``.
    """
    if mask is None:
        return np.zeros(n_samples, dtype=bool)
    m = np.asarray(mask)
    if m.shape != (n_samples,):
        raise ShapeMismatchError(f"{name} must have shape ({n_samples},), got shape {m.shape}")
    if m.dtype != bool:
        raise InvalidParameterError(f"{name} must be boolean, got dtype {m.dtype}")
    return m


def check_fraction(name: str, value: float) -> float:
    """Raise unless 0 <= value <= 1."""
    if not (0.0 <= float(value) <= 1.0):
        raise InvalidParameterError(f"{name} must be between 0 and 1, got {value!r}")
    return float(value)


def check_batch_size(batch_size: object) -> int:
    """Raise unless ``batch_size`` is a positive integer (bools rejected)."""
    if isinstance(batch_size, bool) or not isinstance(batch_size, (int, np.integer)) or batch_size < 1:
        raise InvalidParameterError(f"batch_size must be a positive integer, got {batch_size!r}")
    return int(batch_size)
