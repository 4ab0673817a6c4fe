"""Query strategies: pure NumPy/SciPy scores and batch selection.

Score functions take arrays and return one score per item, larger meaning
more informative. :func:`select_batch` picks a batch by strategy name. No
model, database or web code is imported here.
"""

from activelabel.strategies.committee import (
    bald,
    consensus_entropy,
    kl_disagreement,
    vote_entropy,
)
from activelabel.strategies.diversity import (
    density,
    kcenter_greedy,
    kmeans,
    kmeans_select,
)
from activelabel.strategies.select import COMMITTEE_STRATEGIES, STRATEGIES, Batch, random_share, select_batch
from activelabel.strategies.uncertainty import entropy, least_confident, margin

__all__ = [
    "COMMITTEE_STRATEGIES",
    "STRATEGIES",
    "Batch",
    "bald",
    "consensus_entropy",
    "density",
    "entropy",
    "kcenter_greedy",
    "kl_disagreement",
    "kmeans",
    "kmeans_select",
    "least_confident",
    "margin",
    "random_share",
    "select_batch",
    "vote_entropy",
]
