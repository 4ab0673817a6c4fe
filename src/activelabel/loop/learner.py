"""The active-learning cycle: fit -> evaluate -> score -> select -> label -> add.

:class:`ActiveLearner` carves a random held-out test set out of the pool
first (never queried, never trained on), asks for a seed set, then runs
cycles. Labels come from an oracle callable (simulation) or are handed in
later by people through :meth:`ActiveLearner.teach`.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Hashable, Iterable, Mapping, Sequence
from dataclasses import dataclass, replace

import numpy as np
from numpy.typing import ArrayLike
from sklearn.base import BaseEstimator, clone
from sklearn.model_selection import train_test_split

from activelabel.errors import (
    BatchTooLargeError,
    EmptyPoolError,
    InvalidParameterError,
    ShapeMismatchError,
    SingleClassError,
    UnknownLabelError,
    UnknownStrategyError,
)
from activelabel.loop.cost import CostModel
from activelabel.loop.evaluation import evaluate, expected_calibration_error
from activelabel.models import (
    build_committee,
    check_probabilistic,
    committee_samples,
    predict_proba_aligned,
)
from activelabel.stopping import LabelBudget, MoneyBudget, StopDecision, check_stopping
from activelabel.strategies import COMMITTEE_STRATEGIES, STRATEGIES, Batch, select_batch
from activelabel.strategies.checks import (
    check_batch_size,
    check_features,
    check_fraction,
)

__all__ = ["ActiveLearner", "CycleRecord", "QueryContext", "strategy_name"]



@dataclass(frozen=True, kw_only=True)
class CycleRecord:
    """What one cycle did and measured.

    Attributes
    ----------
    cycle : int
        0 for the model trained on the seed set.
    labels_used : int
        Training labels the model of this cycle was fitted on.
    test_labels : int
        Labeled test items the metrics rest on.
    accuracy, macro_f1 : float
        On the labeled test items.
    accuracy_ci, macro_f1_ci : (float, float)
        Bootstrap 95% intervals.
    strategy : str
    selected : ndarray of int
        Pool indices chosen to be labeled next (empty once stopped).
    n_random : int
        How many of ``selected`` are the random share.
    seconds : float
        Fit, evaluation and selection time.
    money_spent : float
        Price of every label bought so far (training and test).
    budget_left : float or None
    full_pool_cost : float
        What labeling the whole pool at the same prices would cost.
    saving : float
        ``full_pool_cost - money_spent``.
    classes_seen : int
        Classes present in the training labels.
    stop_predictions : ndarray of int
        Predicted class indices on the fixed stop set (for stopping rules).
    ece : float
        Expected calibration error of the model's probabilities on the labeled test items.
    stop : tuple of StopDecision
        The stopping rules that fired after this cycle.
    """

    cycle: int
    labels_used: int
    test_labels: int
    accuracy: float
    accuracy_ci: tuple[float, float]
    macro_f1: float
    macro_f1_ci: tuple[float, float]
    strategy: str
    selected: np.ndarray
    n_random: int
    seconds: float
    money_spent: float
    budget_left: float | None
    full_pool_cost: float
    saving: float
    classes_seen: int
    stop_predictions: np.ndarray
    stop: tuple[StopDecision, ...] = ()
    ece: float = float("nan")


def _resolve_size(name: str, size, n: int) -> int:
    """A count, or a fraction of ``n`` when ``size`` is a float below 1."""
    if isinstance(size, float) and 0 < size < 1:
        return max(1, int(round(size * n)))
    if isinstance(size, (int, np.integer)) and not isinstance(size, bool) and size >= 0:
        return int(size)
    raise InvalidParameterError(f"{name} must be a count >= 0 or a fraction in (0, 1), got {size!r}")


def _draw(indices: np.ndarray, size: int, y, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """Split ``indices`` into (chosen, rest), stratified by ``y`` when possible."""
    if size == 0:
        return np.empty(0, dtype=np.intp), indices
    if size >= len(indices):
        return indices, np.empty(0, dtype=np.intp)
    if y is not None:
        try:
            chosen, rest = train_test_split(indices, train_size=size, stratify=np.asarray(y)[indices],
                                            random_state=int(rng.integers(2**31)))
            return np.sort(chosen), np.sort(rest)
        except ValueError:
            pass  # a class too small to stratify (or fewer items than classes): fall back to random
    chosen = rng.choice(indices, size, replace=False)
    return np.sort(chosen), np.setdiff1d(indices, chosen)


class ActiveLearner:
    """Pool-based active learning over any scikit-learn classifier with ``predict_proba``.

    Parameters
    ----------
    model : scikit-learn classifier
        Cloned and refitted every cycle; the object passed in is not changed.
    strategy : str, default "default"
        A name from :data:`activelabel.strategies.STRATEGIES`. Committee
        strategies score with a bootstrap ``BaggingClassifier`` of
        ``committee_size`` clones of a single model (a forest or bagging
        ensemble is its own committee); the model itself is evaluated.
    batch_size : int, default 10
    seed_size : int or float, default 20
        Seed set: a count, or a fraction of the pool. Must fit in the pool
        left after the test set, and in ``max_labels``.
    test_size : int or float, default 0.2
        Held-out test set: a count, or a fraction of all items.
    random_fraction : float, default 0.1
        Share of every batch drawn uniformly at random.
    classes : sequence, optional
        The label set. Inferred from ``y`` in :meth:`start` when given,
        else from the labels taught.
    price_per_label : float or mapping of label to float, default 0
    money_budget : float, optional
        Batches are trimmed so spending never exceeds it. Refused when even
        the cheapest labels for the test and seed sets would exceed it.
    max_labels : int, optional
        Training-label budget; batches are trimmed to fit. Refused when the
        seed set alone is larger.
    stopping : sequence of rules, default ()
        From :mod:`activelabel.stopping`; budgets above add their own.
    committee_size : int, default 5
    stop_set_size : int, default 1000
        Unlabeled pool items whose predictions feed the stabilizing rule.
    n_bootstrap : int, default 1000
        Resamples for the metric intervals.
    random_state : int, Generator or None
        The test split and the seed set depend only on this (and on ``y``),
        not on the strategy, so strategies compare on the same split.
    """

    def __init__(self, model: BaseEstimator, *,
                 strategy: str | Callable[[QueryContext], ArrayLike] = "default", batch_size: int = 10,
                 seed_size: int | float = 20, test_size: int | float = 0.2, random_fraction: float = 0.1,
                 classes: Iterable[Hashable] | None = None, price_per_label: float | Mapping[Hashable, float] = 0.0,
                 money_budget: float | None = None, max_labels: int | None = None, stopping: Sequence = (),
                 committee_size: int = 5, stop_set_size: int = 1000, n_bootstrap: int = 1000,
                 random_state: int | np.random.Generator | None = None) -> None:
        self.model = model
        self.strategy = strategy
        self.batch_size = batch_size
        self.seed_size = seed_size
        self.test_size = test_size
        self.random_fraction = random_fraction
        self.classes = classes
        self.price_per_label = price_per_label
        self.money_budget = money_budget
        self.max_labels = max_labels
        self.stopping = stopping
        self.committee_size = committee_size
        self.stop_set_size = stop_set_size
        self.n_bootstrap = n_bootstrap
        self.random_state = random_state

    # -- set-up ---------------------------------------------------------------

    def start(self, X: ArrayLike, y: ArrayLike | None = None) -> np.ndarray:
        """Carve out the test set and the seed set; return the indices to label first.

        Parameters
        ----------
        X : array-like of shape (n_items, n_features)
        y : array-like of shape (n_items,), optional
            Labels known in advance (simulation): used only to stratify the
            test and seed sets and to learn the classes, never as labels.

        Returns
        -------
        pending : ndarray of int
            The test items, then the seed items, awaiting labels.
        """
        check_probabilistic(self.model)
        if not callable(self.strategy) and self.strategy not in STRATEGIES:
            raise UnknownStrategyError(f"unknown strategy {self.strategy!r}; choose one of: {', '.join(STRATEGIES)}")
        check_fraction("random_fraction", self.random_fraction)
        check_batch_size(self.batch_size)
        X = check_features(X)
        if X.shape[0] == 0:
            raise EmptyPoolError(f"the pool is empty: X has shape {X.shape}")
        self.X_ = X
        n = len(self.X_)
        if y is not None:
            y = np.asarray(y)
            if y.shape != (n,):
                raise ShapeMismatchError(f"y has shape {y.shape} but X has {n} rows")
        known = self.classes if self.classes is not None else (np.unique(y) if y is not None else None)
        self.classes_ = None if known is None else np.array(sorted({_plain(v) for v in known}), dtype=object)
        self.cost_ = CostModel(price_per_label=self.price_per_label, budget=self.money_budget)
        if self.classes_ is not None:
            self.cost_.check_classes(self.classes_)

        seed = self.random_state if isinstance(self.random_state, (int, np.integer)) else \
            int(np.random.default_rng(self.random_state).integers(2**63))
        split_rng, seed_rng, stop_rng, self._select_rng, self._boot_rng = [
            np.random.default_rng(s) for s in np.random.SeedSequence(seed).spawn(5)]

        n_test = _resolve_size("test_size", self.test_size, n)
        if n_test >= n:
            raise InvalidParameterError(f"test_size {self.test_size!r} leaves no pool: {n_test} of {n} items")
        self.test_indices_, pool = _draw(np.arange(n), n_test, y, split_rng)
        if self.batch_size > len(pool):
            raise BatchTooLargeError(
                f"batch_size {self.batch_size} is larger than the pool of {len(pool)} items left after "
                f"the {n_test}-item test set")
        n_seed = _resolve_size("seed_size", self.seed_size, len(pool))
        self._check_budgets(n_test, n_seed, len(pool))
        self.seed_indices_, _ = _draw(pool, n_seed, y, seed_rng)
        self.stop_indices_ = np.sort(stop_rng.choice(pool, min(self.stop_set_size, len(pool)), replace=False))

        self.is_test_ = np.zeros(n, dtype=bool)
        self.is_test_[self.test_indices_] = True
        self.labels_ = np.empty(n, dtype=object)
        self.has_label_ = np.zeros(n, dtype=bool)
        self.bought_ = []  # every label paid for, in order (corrections are paid for too)
        self.history_: list[CycleRecord] = []
        self.pending_ = np.concatenate([self.test_indices_, self.seed_indices_])
        self.stop_decisions_: tuple[StopDecision, ...] = ()
        return self.pending_

    # -- labels ---------------------------------------------------------------

    def teach(self, indices: ArrayLike, labels: ArrayLike) -> None:
        """Record labels for items; all-or-nothing.

        Every index and label is checked before anything is stored, so a bad
        label leaves the learner exactly as it was.
        """
        self._check_started()
        indices = np.asarray(indices)
        labels = np.asarray(labels, dtype=object)
        if indices.ndim != 1 or labels.shape != indices.shape:
            raise ShapeMismatchError(f"got {indices.shape} indices but labels of shape {labels.shape}")
        if len(indices) == 0:
            return
        if not np.issubdtype(indices.dtype, np.integer):
            raise InvalidParameterError(f"indices must be integers, got dtype {indices.dtype}")
        out = (indices < 0) | (indices >= len(self.X_))
        if out.any():
            raise InvalidParameterError(f"index {int(indices[out][0])} is outside the pool of {len(self.X_)} items")
        for i, label in zip(indices, labels):
            if label is None or (isinstance(label, float) and np.isnan(label)):
                raise UnknownLabelError(f"item {int(i)} has an empty label")
        if self.classes_ is not None:
            known = set(self.classes_.tolist())
            for i, label in zip(indices, labels):
                if _plain(label) not in known:
                    raise UnknownLabelError(
                        f"label {label!r} for item {int(i)} is not one of the known classes "
                        f"{sorted(map(str, known))}")
        self.cost_.cost_of(labels.tolist())  # raises for a class without a price
        self.labels_[indices] = [_plain(v) for v in labels]
        self.has_label_[indices] = True
        self.bought_.extend(_plain(v) for v in labels)
        self.pending_ = self.pending_[~np.isin(self.pending_, indices)]

    def request(self, indices: ArrayLike) -> None:
        """Hand out more items for labeling outside a cycle (a seed set grown by hand, e.g. while its labels
        hold a single class)."""
        self._check_started()
        indices = np.asarray(indices, dtype=np.intp)
        if ((indices < 0) | (indices >= len(self.X_))).any() or self.is_test_[indices].any():
            raise InvalidParameterError("only pool items (not test items) can be requested for labeling")
        self.pending_ = np.union1d(self.pending_, indices)

    def withdraw(self, indices: ArrayLike) -> None:
        """Take back items handed out and not labeled yet: they return to the pool (a batch cut short)."""
        self._check_started()
        self.pending_ = self.pending_[~np.isin(self.pending_, np.asarray(indices))]

    @property
    def pending(self) -> np.ndarray:
        """Indices handed out for labeling and not labeled yet."""
        self._check_started()
        return self.pending_

    @property
    def labeled_mask(self) -> np.ndarray:
        """Training items (not test) that have a label."""
        return self.has_label_ & ~self.is_test_

    # -- the cycle ------------------------------------------------------------

    def cycle(self) -> CycleRecord:
        """Fit on the labeled training items, evaluate, check stopping, select the next batch."""
        self._check_started()
        t0 = time.perf_counter()
        train = np.flatnonzero(self.labeled_mask)
        if len(train) == 0:
            raise EmptyPoolError(
                f"no labeled training item yet: label the {len(self.pending_)} pending items first")
        classes = self.classes_ if self.classes_ is not None else np.unique(self.labels_[self.has_label_])
        y_train = self.labels_[train]
        seen = np.unique(y_train)
        if len(seen) < 2:
            raise SingleClassError(
                f"all {len(train)} labeled training items have the class {seen[0]!r}; "
                "a classifier needs at least two classes: label more items or enlarge the seed set")
        y_train = _as_model_labels(y_train)
        model = self._fit(train, y_train)
        cls = np.unique(_as_model_labels(classes))

        test = self.test_indices_[self.has_label_[self.test_indices_]]
        truth = np.searchsorted(cls, _as_model_labels(self.labels_[test])) if len(test) else np.empty(0, int)
        test_proba = predict_proba_aligned(model, self.X_[test], cls) if len(test) else np.empty((0, len(cls)))
        metrics = evaluate(truth, test_proba.argmax(axis=1), len(cls), n_resamples=self.n_bootstrap,
                           random_state=self._boot_rng)
        stop_pred = predict_proba_aligned(model, self.X_[self.stop_indices_], cls).argmax(axis=1)
        cost = self.cost_.summary(self.bought_, len(self.X_))

        record = CycleRecord(
            cycle=len(self.history_), labels_used=len(train), test_labels=len(test),
            accuracy=metrics.accuracy, accuracy_ci=metrics.accuracy_ci,
            macro_f1=metrics.macro_f1, macro_f1_ci=metrics.macro_f1_ci, strategy=strategy_name(self.strategy),
            selected=np.empty(0, dtype=np.intp), n_random=0, seconds=0.0, money_spent=cost.spent,
            budget_left=cost.budget_left, full_pool_cost=cost.full_pool_cost, saving=cost.saving,
            classes_seen=len(seen), stop_predictions=stop_pred, ece=expected_calibration_error(truth, test_proba))
        stops = tuple(check_stopping(self._rules(), [*self.history_, record]))
        selected, n_random = np.empty(0, dtype=np.intp), 0
        size = self._next_batch_size()
        if not stops and size > 0:
            batch = self._select(model, cls, size, train, y_train)
            selected, n_random = batch.indices, batch.n_random
        elif not stops:
            stops = (StopDecision(rule="pool_exhausted", cycle=record.cycle,
                                  reason="no unlabeled item left that the budget allows"),)
        record = replace(record, selected=selected, n_random=n_random, stop=stops,
                          seconds=time.perf_counter() - t0)
        self.history_.append(record)
        self.pending_ = np.concatenate([self.pending_, selected])
        self.stop_decisions_ = stops
        self.model_ = model
        return record

    def run(self, oracle: Callable[[np.ndarray], Sequence], max_cycles: int = 100,
            on_cycle: Callable[[CycleRecord], None] | None = None) -> list[CycleRecord]:
        """Label what is pending with ``oracle`` and cycle until a stopping rule fires.

        Parameters
        ----------
        oracle : callable
            Takes an array of item indices, returns their labels.
        max_cycles : int, default 100
            Cycles to run at most in this call.
        on_cycle : callable, optional
            Called with each new :class:`CycleRecord` (progress bars).
        """
        self._check_started()
        for _ in range(max_cycles):
            if len(self.pending_):
                asked = self.pending_.copy()
                self.teach(asked, oracle(asked))
            record = self.cycle()
            if on_cycle is not None:
                on_cycle(record)
            if record.stop:
                break
        return self.history_

    # -- helpers --------------------------------------------------------------

    def _check_started(self):
        if not hasattr(self, "X_"):
            raise InvalidParameterError("call start(X) before labeling or cycling")

    def _check_budgets(self, n_test: int, n_seed: int, n_pool: int) -> None:
        """Refuse a seed set or budget that would silently buy more labels than allowed."""
        seed = f"seed set of {n_seed} items" + ("" if isinstance(self.seed_size, (int, np.integer))
                                                 else f" (seed_size {self.seed_size!r})")
        if n_seed > n_pool:
            raise InvalidParameterError(
                f"the {seed} is larger than the pool of {n_pool} items left after the {n_test}-item test set")
        if self.max_labels is not None:
            if (isinstance(self.max_labels, bool) or not isinstance(self.max_labels, (int, np.integer))
                    or self.max_labels < 1):
                raise InvalidParameterError(f"max_labels must be a positive integer, got {self.max_labels!r}")
            if n_seed > self.max_labels:
                raise InvalidParameterError(
                    f"the {seed} is larger than the training-label budget max_labels={self.max_labels}")
        if self.money_budget is not None:
            prices = (self.price_per_label.values() if isinstance(self.price_per_label, Mapping)
                      else [self.price_per_label])
            least = min(map(float, prices), default=0.0) * (n_test + n_seed)
            if least > self.money_budget + 1e-9:
                raise InvalidParameterError(
                    f"money_budget {self.money_budget!r} is less than the {least:g} that the {n_test} test "
                    f"and {n_seed} seed labels cost at the cheapest price")

    def _rules(self):
        rules = list(self.stopping)
        if self.max_labels is not None:
            rules.append(LabelBudget(self.max_labels))
        if self.money_budget is not None:
            rules.append(MoneyBudget(self.money_budget, min_purchase=0.0))
        return rules

    def _next_batch_size(self) -> int:
        """The batch size, trimmed to the unlabeled pool and to the label and money budgets."""
        free = int((~(self.has_label_ | self.is_test_)).sum()) - len(self.pending_)
        size = min(self.batch_size, max(free, 0))
        if self.max_labels is not None:
            size = min(size, self.max_labels - int(self.labeled_mask.sum()) - len(self.pending_))
        price = self.cost_.max_price()
        if self.money_budget is not None and price > 0:
            left = self.money_budget - self.cost_.cost_of(self.bought_) - price * len(self.pending_)
            size = min(size, int(np.floor(left / price + 1e-9)))
        return max(size, 0)

    def _fit(self, train: np.ndarray, y_train: np.ndarray):
        """Fit the model on the training labels; it alone is evaluated and predicts."""
        return clone(self.model).fit(self.X_[train], y_train)

    def _committee(self, model, train: np.ndarray, y_train: np.ndarray):
        """The committee that committee strategies score with (see :func:`activelabel.models.build_committee`)."""
        return build_committee(model, self.X_[train], y_train, size=self.committee_size,
                               random_state=int(self._select_rng.integers(2**31)))

    def _select(self, model, cls: np.ndarray, size: int, train: np.ndarray, y_train: np.ndarray):
        X = self.X_
        samples = None
        if not callable(self.strategy) and self.strategy in COMMITTEE_STRATEGIES or hasattr(model, "sample_proba"):
            samples = committee_samples(self._committee(model, train, y_train), X, cls)
        # MC dropout or a deep ensemble: the stack's mean, rather than one pass with dropout off
        proba = samples.mean(axis=0) if hasattr(model, "sample_proba") else predict_proba_aligned(model, X, cls)
        # Pending pool items are about to be training labels: the batch spreads away from them too.
        # Test items take no part: never picked, never a centre or a density reference.
        labeled = self.labeled_mask.copy()
        labeled[self.pending_] = True
        labeled &= ~self.is_test_
        if callable(self.strategy):
            return self._custom(model, proba, cls, labeled | self.is_test_, size, train, y_train)
        return select_batch(self.strategy, batch_size=size, proba=proba, samples=samples, X=X,
                            labeled_mask=labeled, exclude_mask=self.is_test_, random_fraction=self.random_fraction,
                            random_state=self._select_rng)

    def _custom(self, model, proba, cls, mask, size, train, y_train) -> Batch:
        """Run a callable strategy and check that it kept the batch contract."""
        candidates = np.flatnonzero(~mask)
        context = QueryContext(model=model, X=self.X_, proba=proba, classes=cls, candidates=candidates,
                               labeled=train, y_labeled=y_train, batch_size=size, rng=self._select_rng)
        picks = np.asarray(self.strategy(context)).astype(np.intp).ravel()
        name = strategy_name(self.strategy)
        if len(picks) != size or len(np.unique(picks)) != size or not np.isin(picks, candidates).all():
            raise InvalidParameterError(
                f"strategy {name!r} returned {len(picks)} indices ({len(np.unique(picks))} distinct) "
                f"where {size} distinct candidates were asked for")
        return Batch(indices=picks, scores=np.full(len(self.X_), np.nan), strategy=name, n_random=0)


def strategy_name(strategy: str | Callable[[QueryContext], ArrayLike]) -> str:
    """A strategy's name: the string itself, or a callable's ``name`` or ``__name__``."""
    if isinstance(strategy, str):
        return strategy
    return getattr(strategy, "name", None) or getattr(strategy, "__name__", type(strategy).__name__)


@dataclass(frozen=True, kw_only=True)
class QueryContext:
    """What a callable strategy gets: the fitted model, the pool and who is labeled.

    A callable strategy returns ``batch_size`` distinct indices taken from
    ``candidates`` (unlabeled, not test, not pending). No random share is
    added to its picks.
    """

    model: object
    X: np.ndarray
    proba: np.ndarray
    classes: np.ndarray
    candidates: np.ndarray
    labeled: np.ndarray
    y_labeled: np.ndarray
    batch_size: int
    rng: np.random.Generator


def _plain(value):
    """NumPy scalars to Python scalars, so labels compare and hash alike."""
    return value.item() if isinstance(value, np.generic) else value


def _as_model_labels(labels: np.ndarray) -> np.ndarray:
    """Object arrays of numbers or strings as a typed array scikit-learn sorts consistently."""
    values = list(labels)
    if all(isinstance(v, (int, np.integer)) and not isinstance(v, bool) for v in values):
        return np.asarray(values, dtype=np.int64)
    if all(isinstance(v, (int, float, np.number)) for v in values):
        return np.asarray(values, dtype=np.float64)
    return np.asarray([str(v) for v in values])
