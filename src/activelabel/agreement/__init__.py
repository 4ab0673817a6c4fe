"""Annotator agreement and aggregation: pure functions over an (n_items, n_annotators) label matrix.

Class codes 0..k-1, -1 where an annotator gave no label. Measures: pairwise
Cohen's kappa, Fleiss' kappa, Krippendorff's alpha, per-annotator agreement
with the consensus and accuracy on gold items. Aggregation: majority vote,
Dawid-Skene, CROWDLAB. Routing: which labeled items
deserve another opinion.
"""

from activelabel.agreement.aggregation import METHODS, Consensus, aggregate, crowdlab, dawid_skene, majority_vote
from activelabel.agreement.measures import (
    MISSING,
    annotator_stats,
    check_matrix,
    fleiss_kappa,
    krippendorff_alpha,
    pairwise_kappa,
)
from activelabel.agreement.routing import relabel_scores, route
from activelabel.agreement.simulated import confusions, noisy_labels

__all__ = ["MISSING", "METHODS", "Consensus", "aggregate", "annotator_stats", "check_matrix", "crowdlab",
           "dawid_skene", "fleiss_kappa", "krippendorff_alpha", "majority_vote", "pairwise_kappa", "confusions",
           "noisy_labels", "relabel_scores", "route"]
