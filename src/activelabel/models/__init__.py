"""Model adapters: class probabilities in a fixed class order, and committees."""

from activelabel.models.adapters import (
    build_committee,
    check_probabilistic,
    committee_samples,
    out_of_fold_proba,
    predict_proba_aligned,
)

__all__ = ["build_committee", "check_probabilistic", "committee_samples", "out_of_fold_proba",
           "predict_proba_aligned"]
