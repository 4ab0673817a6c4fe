"""Replay the loop on labeled data: each strategy against random, on the same splits.

For every seed, the held-out test set and the seed set depend only on the
seed, so every strategy (random included) starts from the same labels and
is measured on the same test items.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np
from scipy import stats
from sklearn.linear_model import LogisticRegression
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler

from activelabel.errors import InvalidParameterError
from activelabel.loop.learner import ActiveLearner, CycleRecord

__all__ = ["Curve", "SimulationResult", "simulate", "default_model", "normalized_aulc"]


def default_model():
    """Standardized features into a multinomial logistic regression."""
    return make_pipeline(StandardScaler(), LogisticRegression(max_iter=1000))


def normalized_aulc(labels: np.ndarray, accuracy: np.ndarray) -> float:
    """Area under the learning curve divided by its label range: the mean accuracy over the run."""
    labels = np.asarray(labels, dtype=float)
    if len(labels) < 2 or labels[-1] == labels[0]:
        return float(accuracy[-1])
    return float(np.trapezoid(accuracy, labels) / (labels[-1] - labels[0]))


@dataclass(frozen=True, kw_only=True)
class Curve:
    """A learning curve averaged over seeds, with a 95% band.

    The band is a t-interval of the mean over seeds (with one seed, that
    seed's bootstrap interval on the test set).
    """

    labels: np.ndarray
    mean: np.ndarray
    low: np.ndarray
    high: np.ndarray


@dataclass(frozen=True, kw_only=True)
class SimulationResult:
    """Histories per strategy and seed, with the summaries people ask for."""

    histories: dict[str, list[list[CycleRecord]]]
    seeds: list[int]
    price_per_label: float

    @property
    def strategies(self) -> list[str]:
        return list(self.histories)

    def curve(self, strategy: str) -> Curve:
        runs = self.histories[strategy]
        n = min(len(h) for h in runs)  # seeds stop at the same budget; guard anyway
        labels = np.array([r.labels_used for r in runs[0][:n]])
        acc = np.array([[r.accuracy for r in h[:n]] for h in runs])
        mean = acc.mean(axis=0)
        if len(runs) > 1:
            half = stats.t.ppf(0.975, len(runs) - 1) * acc.std(axis=0, ddof=1) / np.sqrt(len(runs))
            low, high = mean - half, mean + half
        else:
            low = np.array([r.accuracy_ci[0] for r in runs[0][:n]])
            high = np.array([r.accuracy_ci[1] for r in runs[0][:n]])
        return Curve(labels=labels, mean=mean, low=low, high=high)

    def aulc(self, strategy: str) -> np.ndarray:
        """Normalized AULC per seed."""
        return np.array([normalized_aulc([r.labels_used for r in h], np.array([r.accuracy for r in h]))
                         for h in self.histories[strategy]])

    def labels_to_reach(self, strategy: str, target: float) -> int | None:
        """Fewest labels at which the mean curve reaches ``target`` accuracy (None if never)."""
        c = self.curve(strategy)
        hit = np.flatnonzero(c.mean >= target - 1e-12)
        return int(c.labels[hit[0]]) if len(hit) else None

    def labels_saved(self, strategy: str, baseline: str = "random") -> tuple[int | None, float]:
        """Labels ``strategy`` needs to reach the baseline's final accuracy, and the saving.

        Returns
        -------
        needed : int or None
            None when the strategy never reaches it.
        saved_fraction : float
            Share of the baseline's labels saved (0 when not reached).
        """
        base = self.curve(baseline)
        needed = self.labels_to_reach(strategy, float(base.mean[-1]))
        if needed is None:
            return None, 0.0
        return needed, 1.0 - needed / float(base.labels[-1])


def simulate(X, y, *, strategies: Sequence[str] = ("default",), seeds: int | Sequence[int] = 3,
             model=None, batch_size: int = 10, seed_size=20, test_size=0.2, max_labels: int = 300,
             random_fraction: float = 0.1, price_per_label: float = 0.0,
             on_cycle: Callable[[str, int, CycleRecord], None] | None = None) -> SimulationResult:
    """Run every strategy, and random as the baseline, over the same seeds.

    Parameters
    ----------
    X : array-like of shape (n_items, n_features)
    y : array-like of shape (n_items,)
        The true labels; the oracle answers from them.
    strategies : sequence of str
        Random is added as the baseline when missing.
    seeds : int or sequence of int
        Number of seeds (0..n-1), or the seeds themselves.
    model : scikit-learn classifier, optional
        Default :func:`default_model`.
    max_labels : int
        Training-label budget of every run.
    on_cycle : callable, optional
        Called as ``on_cycle(strategy, seed, record)`` after every cycle.
    """
    y = np.asarray(y)
    seed_list = list(range(seeds)) if isinstance(seeds, (int, np.integer)) else list(seeds)
    if not seed_list:
        raise InvalidParameterError("seeds must name at least one seed")
    names = list(dict.fromkeys([*strategies, "random"]))
    model = default_model() if model is None else model
    histories: dict[str, list[list[CycleRecord]]] = {name: [] for name in names}
    for name in names:
        for seed in seed_list:
            learner = ActiveLearner(model, strategy=name, batch_size=batch_size, seed_size=seed_size,
                                    test_size=test_size, random_fraction=random_fraction,
                                    max_labels=max_labels, price_per_label=price_per_label,
                                    random_state=seed)
            learner.start(X, y)
            callback = None if on_cycle is None else (lambda r, name=name, seed=seed: on_cycle(name, seed, r))
            histories[name].append(learner.run(lambda idx: y[idx], max_cycles=10_000, on_cycle=callback))
    return SimulationResult(histories=histories, seeds=seed_list, price_per_label=price_per_label)
