"""Which labeled items deserve another opinion more than a new item does (ActiveLab-style, Goh and Mueller 2023).

An item's relabel score is 1 minus the trust in its current label: the
consensus's quality and the model's probability of that label, weighted by
how many opinions the consensus rests on (n of n + 1 for the people, 1 of
n + 1 for the model). A new item's score is 1 minus the model's top
probability, the least-confidence score, so both live on one scale.
The project (for the app) and the simulator route with these two functions.
"""

from __future__ import annotations

import numpy as np
from numpy.typing import ArrayLike

from activelabel.errors import ShapeMismatchError

__all__ = ["relabel_scores", "route"]


def relabel_scores(quality: ArrayLike, n_opinions: ArrayLike, label_proba: ArrayLike) -> np.ndarray:
    """1 - trust in each labeled item's current label (higher: another opinion is worth more).

    Parameters
    ----------
    quality : array-like of shape (n,)
        The consensus's quality of the current label (its posterior's top probability).
    n_opinions : array-like of shape (n,)
        Opinions the consensus rests on (>= 1).
    label_proba : array-like of shape (n,)
        The model's probability of the current label.
    """
    q, n, p = (np.asarray(v, dtype=float) for v in (quality, n_opinions, label_proba))
    if not q.shape == n.shape == p.shape:
        raise ShapeMismatchError(f"quality, n_opinions and label_proba differ in shape: {q.shape}, {n.shape}, "
                                 f"{p.shape}")
    return 1.0 - (n / (n + 1) * q + p / (n + 1))


def route(scores: ArrayLike, new_item_scores: ArrayLike, cap: int) -> np.ndarray:
    """Positions in ``scores`` to send for another opinion, most worth first, at most ``cap``.

    An exchange, one for one: the best relabel candidate takes the place of the batch's least informative new
    item if its score is higher, the second best that of the second least informative, and so on, so a
    routed opinion always displaces a new item worth less (``new_item_scores`` on the same scale: 1 - the
    model's top probability). With no new item to compare against, nothing is routed.
    """
    scores = np.asarray(scores, dtype=float)
    new = np.sort(np.asarray(new_item_scores, dtype=float))
    if cap < 1 or not len(scores) or not len(new):
        return np.empty(0, dtype=np.intp)
    best = np.argsort(-scores, kind="stable")[:min(cap, len(new))]
    wins = scores[best] > new[:len(best)]
    return best[:int(np.argmin(wins)) if not wins.all() else len(best)]
