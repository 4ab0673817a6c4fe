"""Replay the loop on labeled data: each strategy against random, on the same splits.

For every seed, the held-out test set and the seed set depend only on the
seed, so every strategy (random included) starts from the same labels and
is measured on the same test items. The ceiling is the same model trained
on the whole pool of that seed, measured on the same test items.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np
from numpy.typing import ArrayLike
from joblib import Parallel, delayed
from scipy import stats
from sklearn.base import BaseEstimator, clone

from activelabel.errors import InvalidParameterError, SingleClassError
from activelabel.loop.learner import ActiveLearner, CycleRecord, QueryContext, strategy_name
from activelabel.models.loading import default_model
from activelabel.stopping import DEFAULT_RULES, check_stopping

__all__ = ["Curve", "SimulationResult", "simulate", "normalized_aulc", "median_or_none"]


def normalized_aulc(labels: ArrayLike, accuracy: ArrayLike) -> float:
    """Area under the learning curve divided by its label range: the mean accuracy over the run."""
    labels = np.asarray(labels, dtype=float)
    accuracy = np.asarray(accuracy, dtype=float)
    if len(labels) < 2 or labels[-1] == labels[0]:
        return float(accuracy[-1])
    # the trapezoid rule by hand: np.trapezoid needs NumPy 2, np.trapz is gone from it
    area = float(np.sum(np.diff(labels) * (accuracy[1:] + accuracy[:-1]) / 2))
    return area / float(labels[-1] - labels[0])


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


def median_or_none(values: list[float | None]) -> float | None:
    """Median where a missing value (never reached) counts as infinite; None when that median is infinite."""
    m = float(np.median([np.inf if v is None else v for v in values]))
    return None if np.isinf(m) else m


@dataclass(frozen=True, kw_only=True)
class SimulationResult:
    """Histories per strategy and seed, the ceilings, and the summaries people ask for."""

    histories: dict[str, list[list[CycleRecord]]]
    seeds: list[int]
    ceilings: list[float]
    price_per_label: float
    settings: dict

    @property
    def strategies(self) -> list[str]:
        return list(self.histories)

    @property
    def ceiling_accuracy(self) -> float:
        """Mean over seeds of the full-pool model's test accuracy."""
        return float(np.mean(self.ceilings))

    def curve(self, strategy: str) -> Curve:
        runs = self.histories[strategy]
        n = min(len(h) for h in runs)
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

    def ece(self, strategy: str) -> list[float | None]:
        """Expected calibration error per cycle, mean over seeds (None where the test set was empty)."""
        runs = self.histories[strategy]
        n = min(len(h) for h in runs)
        values = np.array([[r.ece for r in h[:n]] for h in runs], dtype=float).reshape(len(runs), n)
        known = ~np.isnan(values)
        return [float(values[known[:, i], i].mean()) if known[:, i].any() else None for i in range(n)]

    def aulc(self, strategy: str) -> np.ndarray:
        """Normalized AULC per seed."""
        return np.array([normalized_aulc([r.labels_used for r in h], [r.accuracy for r in h])
                         for h in self.histories[strategy]])

    def labels_to(self, strategy: str, fraction: float) -> float | None:
        """Median over seeds of the labels needed to reach ``fraction`` of that seed's ceiling."""
        per_seed = []
        for history, ceiling in zip(self.histories[strategy], self.ceilings):
            hit = [r.labels_used for r in history if r.accuracy >= fraction * ceiling - 1e-12]
            per_seed.append(hit[0] if hit else None)
        return median_or_none(per_seed)

    def saving_vs_random(self, strategy: str, fraction: float) -> float | None:
        """Share of random's labels saved to reach ``fraction`` of the ceiling (None if either misses)."""
        mine, base = self.labels_to(strategy, fraction), self.labels_to("random", fraction)
        if mine is None or base is None or base == 0:
            return None
        return 1.0 - mine / base

    def p_value_vs_random(self, strategy: str) -> float | None:
        """Two-sided Wilcoxon signed-rank test on per-seed AULC against random (None for random)."""
        if strategy == "random":
            return None
        diff = self.aulc(strategy) - self.aulc("random")
        if len(diff) < 2 or np.allclose(diff, 0):
            return 1.0
        return float(stats.wilcoxon(diff).pvalue)

    def stopping(self, strategy: str) -> dict:
        """Where each replayed stopping rule would have stopped: median labels, mean accuracy and money."""
        out = {}
        for rule in DEFAULT_RULES:
            points = [_first_stop(rule, h) for h in self.histories[strategy]]
            hit = [p for p in points if p is not None]
            out[rule.name] = {
                "stopped_in_seeds": len(hit),
                "labels": median_or_none([None if p is None else p.labels_used for p in points]),
                "accuracy": float(np.mean([p.accuracy for p in hit])) if hit else None,
                "money_spent": float(np.mean([p.money_spent for p in hit])) if hit else None,
            }
        return out

    def summary(self) -> dict:
        """Every number of the run, as written to ``results.json``."""
        strategies = {}
        for name in self.strategies:
            c = self.curve(name)
            aulc = self.aulc(name)
            to99, base99 = self.labels_to(name, 0.99), self.labels_to("random", 0.99)
            strategies[name] = {
                "aulc_mean": float(aulc.mean()),
                "aulc_per_seed": [float(v) for v in aulc],
                "final_accuracy": float(c.mean[-1]),
                "labels_to_95": self.labels_to(name, 0.95),
                "labels_to_99": to99,
                "savings_vs_random_95": self.saving_vs_random(name, 0.95),
                "savings_vs_random_99": self.saving_vs_random(name, 0.99),
                "money_saved_vs_random_99": (None if to99 is None or base99 is None
                                             else (base99 - to99) * self.price_per_label),
                "p_value_vs_random": self.p_value_vs_random(name),
                "stopping": self.stopping(name),
                "curve": {"labels": [int(v) for v in c.labels], "accuracy": [float(v) for v in c.mean],
                          "low": [float(v) for v in c.low], "high": [float(v) for v in c.high],
                          "ece": self.ece(name)},
            }
        return {
            "settings": self.settings,
            "seeds": self.seeds,
            "ceiling_accuracy": self.ceiling_accuracy,
            "ceiling_per_seed": [float(v) for v in self.ceilings],
            "price_per_label": self.price_per_label,
            "strategies": strategies,
        }


def _first_stop(rule, history: list[CycleRecord]) -> CycleRecord | None:
    for i in range(len(history)):
        if check_stopping([rule], history[: i + 1]):
            return history[i]
    return None


def _run(model, X, y, strategy, seed, kwargs) -> tuple[str, int, list[CycleRecord]]:
    learner = ActiveLearner(model, strategy=strategy, random_state=seed, **kwargs)
    learner.start(X, y)
    return strategy_name(strategy), seed, learner.run(lambda idx: y[idx], max_cycles=100_000)


def ceiling_accuracy(model: BaseEstimator, X: np.ndarray, y: np.ndarray, seed: int,
                     kwargs: dict) -> tuple[str, int, float]:
    """Test accuracy of the model trained on the whole pool of this seed's split (the learner's ``kwargs``),
    tagged ``("__ceiling__", seed, accuracy)`` for the parallel runners."""
    learner = ActiveLearner(model, random_state=seed, **kwargs)
    learner.start(X, y)
    pool = np.setdiff1d(np.arange(len(y)), learner.test_indices_)
    fitted = clone(model).fit(X[pool], y[pool])
    test = learner.test_indices_
    return "__ceiling__", seed, float((fitted.predict(X[test]) == y[test]).mean())


def simulate(X: ArrayLike, y: ArrayLike, *,
             strategies: Sequence[str | Callable[[QueryContext], ArrayLike]] = ("default",),
             seeds: int | Sequence[int] = 3, model: BaseEstimator | None = None, batch_size: int = 10,
             seed_size: int | float = 20, test_size: int | float = 0.2, max_labels: int = 300,
             random_fraction: float = 0.1, price_per_label: float = 0.0, n_jobs: int = 1,
             on_run: Callable[[str, int], None] | None = None) -> SimulationResult:
    """Run every strategy, and random as the baseline, over the same seeds.

    Parameters
    ----------
    X : array-like of shape (n_items, n_features)
    y : array-like of shape (n_items,)
        The true labels; the oracle answers from them.
    strategies : sequence of str or callable
        Strategy names, or callables taking a :class:`QueryContext` (named
        by their ``name`` or ``__name__``). Random is added as the baseline.
    seeds : int or sequence of int
        Number of seeds (0..n-1), or the seeds themselves.
    model : scikit-learn classifier, optional
        Default :func:`default_model`.
    max_labels : int
        Training-label budget of every run; the seed set counts against it,
        so a ``seed_size`` above it is refused with
        :class:`~activelabel.errors.InvalidParameterError`.
    n_jobs : int
        Runs (strategy x seed) in parallel processes; -1 for every core.
    on_run : callable, optional
        Called as ``on_run(strategy, seed)`` when a run finishes (the
        ceiling runs report strategy ``"__ceiling__"``).
    """
    X = np.asarray(X)
    y = np.asarray(y)
    seed_list = list(range(seeds)) if isinstance(seeds, (int, np.integer)) else list(seeds)
    if not seed_list:
        raise InvalidParameterError("seeds must name at least one seed")
    by_name = {strategy_name(s): s for s in [*strategies, "random"]}
    names = list(by_name)
    model = default_model() if model is None else model
    kwargs = dict(batch_size=batch_size, seed_size=seed_size, test_size=test_size,
                  random_fraction=random_fraction, max_labels=max_labels, price_per_label=price_per_label)
    # Fail fast, in this process, on settings every run would reject (a seed set
    # larger than max_labels or than the pool, a batch larger than the pool, ...).
    for seed in seed_list:  # and on a seed whose seed set holds one class: its first cycle could not train
        learner = ActiveLearner(model, strategy=by_name[names[0]], random_state=seed, **kwargs)
        learner.start(X, y)
        held = np.unique(y[learner.seed_indices_])
        if len(held) < 2:
            raise SingleClassError(f"seed {seed}: the {len(learner.seed_indices_)}-item seed set holds only the class "
                                   f"{held[0].item() if isinstance(held[0], np.generic) else held[0]!r}; a larger seed_size (--seed-size) gives it a second class")
    tasks = [delayed(ceiling_accuracy)(model, X, y, s, kwargs) for s in seed_list]
    tasks += [delayed(_run)(model, X, y, by_name[name], s, kwargs) for name in names for s in seed_list]
    done: dict[tuple[str, int], object] = {}
    for name, seed, value in Parallel(n_jobs=n_jobs, return_as="generator_unordered")(tasks):
        done[name, seed] = value
        if on_run is not None:
            on_run(name, seed)
    histories = {name: [done[name, s] for s in seed_list] for name in names}
    settings = dict(kwargs, strategies=names, seeds=len(seed_list), model=" ".join(repr(model).split()))
    return SimulationResult(histories=histories, seeds=seed_list,
                            ceilings=[done["__ceiling__", s] for s in seed_list],
                            price_per_label=price_per_label, settings=settings)
