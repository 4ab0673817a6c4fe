"""Diversity: spread a batch over the feature space without an n x n matrix.

Every distance computation here is chunked so that no block larger than
``_BLOCK`` floats is built, whatever the pool size: a 1,000,000-item pool
against 1,000 centres uses about 8 MB at a time.

k-means is written here rather than taken from a library: scikit-learn is
kept out of this layer on purpose (strategies depend on NumPy and SciPy
only), and SciPy's ``kmeans2`` with ``minit='++'`` took 85 s for 9,000 x 64
points into 900 clusters on this machine where the BLAS version below takes
under a second.
"""

from __future__ import annotations

import numpy as np
from scipy import sparse

from activelabel.errors import EmptyPoolError
from activelabel.strategies.checks import check_mask

__all__ = ["kcenter_greedy", "kmeans", "kmeans_select", "density"]

# Largest distance block built at once, in floats (1M floats = 8 MB). Blocks
# this size stay near the cache: at 100,000 items the default strategy took
# about 0.4 s with them against 0.8 s with 64 MB blocks (query_speed.py).
_BLOCK = 1_000_000
# Reference rows the density bandwidth is estimated from: at most this many
# squared, so the estimate is one block of at most _BLOCK floats.
_BANDWIDTH_SAMPLE = 1000


def nearest_centers(X: np.ndarray, C: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Index of, and squared Euclidean distance to, the nearest row of ``C``.

    Computed in row chunks with ``|x|^2 - 2 x.c + |c|^2`` so memory stays
    bounded by ``_BLOCK`` floats plus the outputs.

    Parameters
    ----------
    X : ndarray of shape (n_samples, n_features)
    C : ndarray of shape (n_centers, n_features)

    Returns
    -------
    index : ndarray of shape (n_samples,)
    sq_dist : ndarray of shape (n_samples,)
    """
    n = X.shape[0]
    index = np.empty(n, dtype=np.intp)
    sq_dist = np.empty(n, dtype=np.float64)
    cc = np.einsum("ij,ij->i", C, C)
    step = max(1, _BLOCK // max(1, C.shape[0]))
    for start in range(0, n, step):
        xb = X[start : start + step]
        d = xb @ C.T
        d *= -2.0
        d += cc[None, :]
        j = d.argmin(axis=1)
        best = d[np.arange(len(j)), j] + np.einsum("ij,ij->i", xb, xb)
        index[start : start + step] = j
        sq_dist[start : start + step] = np.maximum(best, 0.0)
    return index, sq_dist


def _sq_dist_to_point(X: np.ndarray, x: np.ndarray, xx: np.ndarray) -> np.ndarray:
    """Squared distances from every row of ``X`` to one point ``x``."""
    d = X @ x
    d *= -2.0
    d += xx
    d += x @ x
    return np.maximum(d, 0.0, out=d)


def kcenter_greedy(X: np.ndarray, k: int, labeled_mask: np.ndarray, rng: np.random.Generator,
                   candidates: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray]:
    """Greedy k-center (core-set) selection (Sener and Savarese 2018).

    Repeatedly picks the candidate farthest from everything labeled or
    already picked, so the batch covers the pool. When nothing is labeled
    the first pick is random. Rows that are neither labeled nor candidates
    (held-out test items, say) play no part: they are not centres and are
    never picked.

    Parameters
    ----------
    X : ndarray of shape (n_samples, n_features)
    k : int
        Number of items to pick.
    labeled_mask : ndarray of bool, shape (n_samples,)
        The centres the batch is spread away from.
    rng : numpy Generator
    candidates : ndarray of int, optional
        Rows allowed to be picked (none of them labeled); default every
        unlabeled row.

    Returns
    -------
    picks : ndarray of shape (k,)
        Indices into ``X`` in pick order.
    scores : ndarray of shape (n_samples,)
        Distance of each candidate to the nearest labeled row before
        selection, or to the mean of the candidates when nothing is
        labeled; 0 for every other row.
    """
    if candidates is None:
        candidates = np.flatnonzero(~labeled_mask)
    Xc = X[candidates]
    xx = np.einsum("ij,ij->i", Xc, Xc)
    picks = np.empty(k, dtype=np.intp)
    done = 0
    scores = np.zeros(X.shape[0])
    if labeled_mask.any():
        _, min_d = nearest_centers(Xc, X[labeled_mask])
        scores[candidates] = np.sqrt(min_d)
    else:
        scores[candidates] = np.sqrt(nearest_centers(Xc, Xc.mean(axis=0, keepdims=True))[1])
        picks[0] = int(rng.integers(len(candidates)))  # nothing to be far from yet
        min_d = _sq_dist_to_point(Xc, Xc[picks[0]], xx)
        min_d[picks[0]] = -1.0
        done = 1
    for i in range(done, k):
        j = int(min_d.argmax())
        picks[i] = j
        np.minimum(min_d, _sq_dist_to_point(Xc, Xc[j], xx), out=min_d)
        min_d[j] = -1.0  # never picked twice, even among duplicates
    return candidates[picks], scores


def kmeans(X: np.ndarray, k: int, rng: np.random.Generator, n_iter: int = 10) -> tuple[np.ndarray, np.ndarray]:
    """Lloyd's k-means with k-means++ seeding (Arthur and Vassilvitskii 2007).

    Returns
    -------
    centers : ndarray of shape (k, n_features)
    labels : ndarray of shape (n_samples,)
        Cluster of each row; some clusters may end up empty.
    """
    n = X.shape[0]
    k = min(k, n)
    xx = np.einsum("ij,ij->i", X, X)
    centers = np.empty((k, X.shape[1]))
    first = int(rng.integers(n))
    centers[0] = X[first]
    min_d = _sq_dist_to_point(X, X[first], xx)
    for i in range(1, k):
        total = min_d.sum()
        if total <= 0:  # every point already sits on a centre (duplicates)
            j = int(rng.integers(n))
        else:
            j = int(np.searchsorted(np.cumsum(min_d), rng.random() * total))
            j = min(j, n - 1)
        centers[i] = X[j]
        np.minimum(min_d, _sq_dist_to_point(X, X[j], xx), out=min_d)
    labels = None
    for _ in range(n_iter):
        new_labels, _ = nearest_centers(X, centers)
        if labels is not None and np.array_equal(new_labels, labels):
            break
        labels = new_labels
        # sums per cluster through a sparse indicator product (C code, no Python loop)
        ind = sparse.csr_matrix((np.ones(n), (labels, np.arange(n))), shape=(k, n))
        counts = np.bincount(labels, minlength=k)
        sums = ind @ X
        filled = counts > 0
        centers[filled] = sums[filled] / counts[filled, None]
    return centers, labels


def kmeans_select(X: np.ndarray, k: int, rng: np.random.Generator, scores: np.ndarray | None = None,
                  n_fit: int | None = None) -> np.ndarray:
    """Pick one row per k-means cluster.

    Within each cluster the row with the highest ``scores`` wins, or the row
    nearest to the centre when ``scores`` is None. Clusters left empty are
    filled with the best remaining rows (by score, or at random), so
    exactly ``k`` distinct rows come back.

    Parameters
    ----------
    X : ndarray of shape (n_rows, n_features)
    k : int
    rng : numpy Generator
    scores : ndarray of shape (n_rows,), optional
    n_fit : int, optional
        Fit the centres on at most this many random rows, then assign every
        row; bounds the cost on very large pools.

    Returns
    -------
    picks : ndarray of shape (k,), indices into ``X``.
    """
    n = X.shape[0]
    if k >= n:
        return np.arange(n)
    fit_rows = np.arange(n) if n_fit is None or n <= n_fit else np.sort(rng.choice(n, n_fit, replace=False))
    centers, labels = kmeans(X[fit_rows], k, rng)
    if len(fit_rows) < n:
        labels, sq_dist = nearest_centers(X, centers)
    else:
        diff = X - centers[labels]
        sq_dist = np.einsum("ij,ij->i", diff, diff)
    key = -sq_dist if scores is None else scores
    # best row per cluster: sort by (cluster, -key) and keep the first of each cluster
    order = np.lexsort((-key, labels))
    first = np.ones(n, dtype=bool)
    first[1:] = labels[order][1:] != labels[order][:-1]
    picks = order[first]
    if len(picks) < k:
        left = np.setdiff1d(np.arange(n), picks, assume_unique=True)
        if scores is None:
            extra = rng.choice(left, k - len(picks), replace=False)
        else:
            extra = left[np.argsort(-scores[left], kind="stable")[: k - len(picks)]]
        picks = np.concatenate([picks, extra])
    return picks


def density(X: np.ndarray, rng: np.random.Generator, n_reference: int = 1000,
            exclude_mask: np.ndarray | None = None) -> np.ndarray:
    """Estimated density of each row: mean RBF similarity to a reference sample.

    Information density (Settles and Craven 2008) averages a similarity to
    every other item, which is n x n. We average over ``n_reference`` random
    rows instead (all rows when the pool is smaller). The bandwidth is the
    median squared distance between two distinct reference rows (among at
    most ``_BANDWIDTH_SAMPLE`` of them), so it depends on the seed and the
    pool only, never on the block size the distances are computed in.

    Parameters
    ----------
    X : ndarray of shape (n_samples, n_features)
    rng : numpy Generator
    n_reference : int, default 1000
    exclude_mask : ndarray of bool, shape (n_samples,), optional
        Rows never drawn as reference rows (held-out test items): the
        density describes the pool without them. Their own density is
        still computed.

    Returns
    -------
    density : ndarray of shape (n_samples,), in ``(0, 1]``.
    """
    n = X.shape[0]
    rows = np.arange(n) if exclude_mask is None else np.flatnonzero(~check_mask(exclude_mask, n, "exclude_mask"))
    if len(rows) == 0:
        raise EmptyPoolError(f"exclude_mask leaves no reference row among the {n} rows of X")
    ref = X[rows] if len(rows) <= n_reference else X[rng.choice(rows, n_reference, replace=False)]
    rr = np.einsum("ij,ij->i", ref, ref)
    bandwidth = _bandwidth(ref, rr, rng)
    step = max(1, _BLOCK // len(ref))
    out = np.empty(n)
    for start in range(0, n, step):
        xb = X[start : start + step]
        d = xb @ ref.T
        d *= -2.0
        d += rr[None, :]
        d += np.einsum("ij,ij->i", xb, xb)[:, None]
        np.maximum(d, 0.0, out=d)
        d /= -bandwidth
        out[start : start + step] = np.exp(d, out=d).mean(axis=1)
    return out


def _bandwidth(ref: np.ndarray, rr: np.ndarray, rng: np.random.Generator) -> float:
    """Median squared distance between distinct rows of a sample of ``ref`` (1.0 when it is 0)."""
    if len(ref) > _BANDWIDTH_SAMPLE:
        pick = rng.choice(len(ref), _BANDWIDTH_SAMPLE, replace=False)
        ref, rr = ref[pick], rr[pick]
    m = len(ref)
    if m < 2:
        return 1.0
    d = ref @ ref.T
    d *= -2.0
    d += rr[None, :]
    d += rr[:, None]
    off_diagonal = d[~np.eye(m, dtype=bool)]
    return float(max(np.median(off_diagonal), 0.0)) or 1.0
