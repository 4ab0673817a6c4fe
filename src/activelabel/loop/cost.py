"""What labels cost: price per label (overall or per class), spend and savings."""

from __future__ import annotations

from collections.abc import Hashable, Iterable, Mapping
from dataclasses import dataclass

import numpy as np

from activelabel.errors import InvalidParameterError, UnknownLabelError

__all__ = ["CostModel", "CostSummary"]


@dataclass(frozen=True, kw_only=True)
class CostSummary:
    """Money spent so far and what it compares with.

    Attributes
    ----------
    spent : float
        Price of every label bought so far (training and test).
    budget : float or None
    budget_left : float or None
    full_pool_cost : float
        What labeling every item at these prices would cost (per-class
        prices weighted by the class shares seen so far).
    saving : float
        ``full_pool_cost - spent``.
    """

    spent: float
    budget: float | None
    budget_left: float | None
    full_pool_cost: float
    saving: float


@dataclass(frozen=True, kw_only=True)
class CostModel:
    """Prices of labels.

    Parameters
    ----------
    price_per_label : float or mapping of label to float
        One price for every label, or a price per class (every class the
        learner knows must have one).
    budget : float, optional
        Money available for labels.
    """

    price_per_label: float | Mapping = 0.0
    budget: float | None = None

    def __post_init__(self):
        prices = self.price_per_label.values() if isinstance(self.price_per_label, Mapping) else [self.price_per_label]
        bad = [p for p in prices if not np.isfinite(p) or p < 0]
        if bad:
            raise InvalidParameterError(f"price_per_label must be finite and >= 0, got {bad[0]!r}")
        if self.budget is not None and not self.budget >= 0:
            raise InvalidParameterError(f"budget must be >= 0, got {self.budget!r}")

    def check_classes(self, classes: Iterable[Hashable]) -> None:
        """Raise when per-class prices miss one of ``classes``."""
        if isinstance(self.price_per_label, Mapping):
            missing = [c for c in classes if c not in self.price_per_label]
            if missing:
                raise UnknownLabelError(f"price_per_label has no price for class {missing[0]!r}")

    def cost_of(self, labels: Iterable[Hashable]) -> float:
        """Total price of the given labels."""
        labels = list(labels)
        if not isinstance(self.price_per_label, Mapping):
            return float(self.price_per_label) * len(labels)
        try:
            return float(sum(self.price_per_label[label] for label in labels))
        except KeyError as err:
            raise UnknownLabelError(f"price_per_label has no price for class {err.args[0]!r}") from None

    def max_price(self) -> float:
        """The highest price of one label: the worst case before it is known."""
        if isinstance(self.price_per_label, Mapping):
            return float(max(self.price_per_label.values(), default=0.0))
        return float(self.price_per_label)

    def summary(self, bought_labels: Iterable[Hashable], n_items: int) -> CostSummary:
        """Spend against the budget and against labeling all ``n_items``."""
        bought_labels = list(bought_labels)
        spent = self.cost_of(bought_labels)
        mean_price = spent / len(bought_labels) if bought_labels else self.max_price()
        full = mean_price * n_items
        left = None if self.budget is None else self.budget - spent
        return CostSummary(spent=spent, budget=self.budget, budget_left=left, full_pool_cost=full, saving=full - spent)
