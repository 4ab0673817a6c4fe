"""Model adapters: class probabilities in a fixed class order, and committees."""

from activelabel.models.adapters import (
    check_probabilistic,
    committee_samples,
    predict_proba_aligned,
)

__all__ = ["check_probabilistic", "committee_samples", "predict_proba_aligned"]
