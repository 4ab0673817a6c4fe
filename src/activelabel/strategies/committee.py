"""Disagreement scores over a committee's sampled probabilities.

``samples`` has shape (n_members, n_samples, n_classes): one probability
matrix per committee member, ensemble member or MC-dropout pass. Each
function returns scores of shape (n_samples,), larger meaning more
informative.
"""

from __future__ import annotations

import numpy as np
from numpy.typing import ArrayLike
from scipy.special import entr, rel_entr

from activelabel.strategies.checks import check_samples
from activelabel.strategies.uncertainty import _entropy

__all__ = ["vote_entropy", "consensus_entropy", "kl_disagreement", "bald"]


def vote_entropy(samples: ArrayLike) -> np.ndarray:
    """Entropy of the members' hard votes (Dagan and Engelson 1995).

    Each member votes for its most likely class; the score is the entropy,
    in nats, of the share of votes each class gets.
    """
    return _vote_entropy(check_samples(samples))


def consensus_entropy(samples: ArrayLike) -> np.ndarray:
    """Entropy of the members' mean probabilities (the consensus)."""
    return _entropy(check_samples(samples).mean(axis=0))


def kl_disagreement(samples: ArrayLike) -> np.ndarray:
    """Mean KL divergence of each member from the consensus.

    ``mean_m KL(p_m || p_mean)`` (McCallum and Nigam 1998): zero when all
    members agree, whatever their confidence.
    """
    s = check_samples(samples)
    consensus = s.mean(axis=0)
    # rel_entr handles zeros: 0 * log(0 / q) = 0.
    return rel_entr(s, consensus[None]).sum(axis=2).mean(axis=0)


def bald(samples: ArrayLike) -> np.ndarray:
    """Mutual information between the prediction and the model (Houlsby et al. 2011).

    ``H(mean_m p_m) - mean_m H(p_m)``: high where members are each confident
    but disagree, which is epistemic rather than aleatoric uncertainty.
    Always >= 0 (Jensen); rounding below zero is clipped.
    """
    s = check_samples(samples)
    mutual = _entropy(s.mean(axis=0)) - entr(s).sum(axis=2).mean(axis=0)
    return np.maximum(mutual, 0.0)


def _vote_entropy(s: np.ndarray) -> np.ndarray:
    n_members, n_samples, n_classes = s.shape
    votes = s.argmax(axis=2)  # (m, n)
    flat = (np.arange(n_samples) * n_classes)[None, :] + votes
    counts = np.bincount(flat.ravel(), minlength=n_samples * n_classes)
    return _entropy(counts.reshape(n_samples, n_classes) / n_members)
