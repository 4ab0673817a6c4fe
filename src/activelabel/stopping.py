"""Stopping rules: when the next cycle is no longer worth its cost.

Each rule looks at the learner's history (a sequence of cycle records with
``cycle``, ``accuracy``, ``macro_f1``, ``labels_used``, ``money_spent`` and
``stop_predictions``) and returns a :class:`StopDecision` naming itself and
the evidence, or None. Rules combine: :func:`check_stopping` asks each.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
from sklearn.metrics import cohen_kappa_score

from activelabel.errors import InvalidParameterError

__all__ = [
    "StopDecision",
    "Plateau",
    "LabelBudget",
    "MoneyBudget",
    "StabilizingPredictions",
    "MaxCycles",
    "check_stopping",
    "prediction_kappas",
    "DEFAULT_RULES",
]


@dataclass(frozen=True, kw_only=True)
class StopDecision:
    """A rule that fired: its name, the cycle it fired at, and why, in words."""

    rule: str
    cycle: int
    reason: str


@dataclass(frozen=True)
class Plateau:
    """Stop when the test metric gained less than ``min_gain`` points for ``patience`` cycles in a row.

    Points are percentage points: accuracy 0.912 -> 0.915 is a gain of 0.3.
    """

    min_gain: float = 0.5
    patience: int = 2
    metric: str = "accuracy"
    name = "plateau"

    def __post_init__(self):
        if self.patience < 1:
            raise InvalidParameterError(f"patience must be >= 1, got {self.patience!r}")
        if self.metric not in ("accuracy", "macro_f1"):
            raise InvalidParameterError(f"metric must be 'accuracy' or 'macro_f1', got {self.metric!r}")

    def check(self, history: Sequence) -> StopDecision | None:
        if len(history) < self.patience + 1:
            return None
        values = np.array([getattr(h, self.metric) for h in history[-(self.patience + 1):]])
        gains = np.diff(values) * 100
        if np.isnan(gains).any() or (gains >= self.min_gain).any():
            return None
        listed = ", ".join(f"{g:+.2f}" for g in gains)
        return StopDecision(
            rule=self.name,
            cycle=history[-1].cycle,
            reason=(f"the last {self.patience} cycles changed {self.metric} by {listed} points, "
                    f"each below the {self.min_gain} point threshold"),
        )


@dataclass(frozen=True)
class LabelBudget:
    """Stop when the training labels used reach ``max_labels``."""

    max_labels: int
    name = "label_budget"

    def check(self, history: Sequence) -> StopDecision | None:
        if not history or history[-1].labels_used < self.max_labels:
            return None
        return StopDecision(rule=self.name, cycle=history[-1].cycle,
                            reason=f"{history[-1].labels_used} labels used of a budget of {self.max_labels}")


@dataclass(frozen=True)
class MoneyBudget:
    """Stop when what is left of ``max_money`` cannot buy another ``min_purchase``."""

    max_money: float
    min_purchase: float = 0.0
    name = "money_budget"

    def check(self, history: Sequence) -> StopDecision | None:
        if not history:
            return None
        spent = history[-1].money_spent
        left = self.max_money - spent
        if left > self.min_purchase:
            return None
        return StopDecision(rule=self.name, cycle=history[-1].cycle,
                            reason=f"{spent:.2f} spent of a budget of {self.max_money:.2f}")


def prediction_kappas(history: Sequence) -> list[float]:
    """Cohen's kappa between each pair of successive models' stop-set predictions.

    Identical predictions count as 1 even when kappa is undefined (one class).
    """
    out = []
    for prev, cur in zip(history, history[1:]):
        a, b = prev.stop_predictions, cur.stop_predictions
        if a is None or b is None or len(a) == 0:
            out.append(float("nan"))
        elif np.array_equal(a, b):
            out.append(1.0)
        else:
            out.append(float(cohen_kappa_score(a, b)))
    return out


@dataclass(frozen=True)
class StabilizingPredictions:
    """Stop when successive models agree on a fixed unlabeled stop set (Bloodgood and Vijay-Shanker 2009).

    Fires when the mean Cohen's kappa between successive models' predictions
    over the last ``window`` pairs is at least ``threshold``.
    """

    threshold: float = 0.99
    window: int = 3
    name = "stabilizing_predictions"

    def check(self, history: Sequence) -> StopDecision | None:
        if len(history) < self.window + 1:
            return None
        kappas = prediction_kappas(history[-(self.window + 1):])
        mean = float(np.mean(kappas))
        if not mean >= self.threshold:
            return None
        listed = ", ".join(f"{k:.3f}" for k in kappas)
        n = len(history[-1].stop_predictions)
        return StopDecision(rule=self.name, cycle=history[-1].cycle,
                            reason=(f"successive models agree on the {n}-item stop set: kappa {listed} "
                                    f"(mean {mean:.3f} >= {self.threshold})"))


@dataclass(frozen=True)
class MaxCycles:
    """Stop after ``max_cycles`` cycles."""

    max_cycles: int
    name = "max_cycles"

    def check(self, history: Sequence) -> StopDecision | None:
        if len(history) < self.max_cycles:
            return None
        return StopDecision(rule=self.name, cycle=history[-1].cycle,
                            reason=f"{len(history)} cycles run, the maximum is {self.max_cycles}")


def check_stopping(rules: Sequence, history: Sequence) -> list[StopDecision]:
    """Every rule that fires on ``history``, in the order given."""
    return [d for d in (rule.check(history) for rule in rules) if d is not None]


# The rules a project's advice and a simulation's replay use: a plateau of under 0.5 points for 2 cycles,
# and predictions on the stop set agreeing at kappa 0.99 over 3 cycles.
DEFAULT_RULES = (Plateau(min_gain=0.5, patience=2), StabilizingPredictions(threshold=0.99, window=3))
