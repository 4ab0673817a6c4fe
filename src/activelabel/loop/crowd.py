"""Replay labeling with noisy annotators: what extra opinions, aggregation and routing buy, at equal money.

Simulated annotators (each a confusion matrix around a given accuracy, see
:func:`activelabel.agreement.noisy_labels`) answer the items the loop asks
for. Every plan spends the same money per cycle (``batch_size`` opinions):

- ``1x_majority``: one opinion per new item (the baseline);
- ``Nx_<method>``: N opinions per new item from N different people,
  aggregated by majority vote, Dawid-Skene or CROWDLAB;
- ``routing_<method>``: one opinion per new item, and up to
  ``relabel_fraction`` of each cycle's opinions spent instead on labeled
  items whose label is least trusted (:mod:`activelabel.agreement.routing`),
  up to ``max_opinions`` each.

The test set is a gold set labeled with the truth (its cost is the same for
every plan and left out); accuracy is measured on it against the ceiling,
the same model trained on the whole pool's true labels. Who answers an
item, and what each person answers, depend only on the seed, so plans are
compared paired.
"""

from __future__ import annotations

import warnings
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np
from joblib import Parallel, delayed
from numpy.typing import ArrayLike
from scipy import stats
from sklearn.base import BaseEstimator

from activelabel.agreement import MISSING, aggregate, noisy_labels, relabel_scores, route
from activelabel.errors import InvalidParameterError, SingleClassError
from activelabel.loop.learner import ActiveLearner
from activelabel.loop.simulate import ceiling_accuracy, median_or_none, normalized_aulc
from activelabel.models import out_of_fold_proba, predict_proba_aligned
from activelabel.models.loading import default_model

__all__ = ["CrowdResult", "plans", "simulate_annotators"]

BASELINE = "1x_majority"


def plans(opinions: Sequence[int], methods: Sequence[str] = ("majority", "dawid_skene", "crowdlab"),
          routing: Sequence[str] = ("dawid_skene",)) -> list[str]:
    """Plan names for these opinion counts and methods: ``1x_majority`` always, ``Nx_<method>`` for N >= 2,
    ``routing_<method>`` when more than one opinion is allowed."""
    names = [BASELINE]
    for n in sorted(set(opinions)):
        if n >= 2:
            names += [f"{n}x_{m}" for m in methods]
    if max(opinions) >= 2:
        names += [f"routing_{m}" for m in routing]
    return names


@dataclass(frozen=True, kw_only=True)
class CrowdResult:
    """Per plan and seed: money, items, accuracy and training-label accuracy after every cycle."""

    runs: dict[str, list[dict[str, np.ndarray]]]
    seeds: list[int]
    ceilings: list[float]
    settings: dict

    def money_to(self, plan: str, fraction: float) -> list[float | None]:
        """Per seed, the money spent when the test accuracy first reached ``fraction`` of the ceiling (None: never,
        or the run failed)."""
        out = []
        for run, ceiling in zip(self.runs[plan], self.ceilings):
            hit = np.flatnonzero(run["accuracy"] >= fraction * ceiling - 1e-12) if run is not None else []
            out.append(float(run["money"][hit[0]]) if len(hit) else None)
        return out

    def money_range(self) -> tuple[float, float] | None:
        """The money every finished run covers: from the dearest first model to the cheapest last one (None when
        the runs do not overlap, e.g. a budget close to the dearest seed set)."""
        done = [run for runs in self.runs.values() for run in runs if run is not None]
        if not done:
            return None
        start, stop = max(r["money"][0] for r in done), min(r["money"][-1] for r in done)
        return (start, stop) if stop > start else None

    def aulc(self, plan: str) -> np.ndarray:
        """Per seed, mean test accuracy over :meth:`money_range` (the accuracy at a sum is that of the last model
        trained on no more), so plans with dearer seed sets compare fairly; NaN for a failed run or no range."""
        span = self.money_range()
        out = []
        for run in self.runs[plan]:
            if run is None or span is None:
                out.append(np.nan)
                continue
            grid = np.linspace(*span, 200)
            at = np.searchsorted(run["money"], grid, side="right") - 1
            out.append(normalized_aulc(grid, run["accuracy"][np.maximum(at, 0)]))
        return np.array(out)

    def summary(self) -> dict:
        """``annotators.<plan>`` of ``results.json``: label accuracy, AULC over money, money to 99% of the
        ceiling, and paired Wilcoxon tests against one opinion per item (over the seeds where both finished).

        A run fails when people's labels never held two classes within the budget; its seed is listed in
        ``failed_seeds`` and left out of that plan's means.
        """
        out = {}
        base_aulc = self.aulc(BASELINE)
        base_labels = _last(self.runs[BASELINE], "label_accuracy")
        for plan, runs in self.runs.items():
            ok = np.array([r is not None for r in runs])
            label_acc, aulc = _last(runs, "label_accuracy"), self.aulc(plan)
            to99 = self.money_to(plan, 0.99)
            done = [r for r in runs if r is not None]
            n = min((len(r["money"]) for r in done), default=0)
            out[plan] = {
                "label_accuracy": _mean(label_acc),
                "label_accuracy_per_seed": _listed(label_acc),
                "aulc_mean": _mean(aulc),
                "aulc_per_seed": _listed(aulc),
                "money_to_99": median_or_none([v for v, good in zip(to99, ok) if good]) if ok.any() else None,
                "money_to_99_per_seed": to99,
                "final_accuracy": _mean(_last(runs, "accuracy")),
                "items_labeled": _mean(_last(runs, "items")),
                "failed_seeds": [seed for seed, good in zip(self.seeds, ok) if not good],
                "p_aulc_vs_1x": None if plan == BASELINE else _wilcoxon(aulc, base_aulc),
                "p_label_accuracy_vs_1x": None if plan == BASELINE else _wilcoxon(label_acc, base_labels),
                "curve": {"money": done[0]["money"][:n].tolist() if done else [],
                          "accuracy": np.mean([r["accuracy"][:n] for r in done], axis=0).tolist() if done else [],
                          "label_accuracy": (np.mean([r["label_accuracy"][:n] for r in done], axis=0).tolist()
                                             if done else [])},
            }
        return out


def _last(runs: list, key: str) -> np.ndarray:
    """Each run's last value of ``key``; NaN for a failed run."""
    return np.array([np.nan if r is None else r[key][-1] for r in runs], dtype=float)


def _mean(values: np.ndarray) -> float | None:
    return None if np.isnan(values).all() else float(np.nanmean(values))


def _listed(values: np.ndarray) -> list[float | None]:
    return [None if np.isnan(v) else float(v) for v in values]


def _wilcoxon(a: np.ndarray, b: np.ndarray) -> float | None:
    """Two-sided Wilcoxon signed-rank test over the seeds where both values exist; None with fewer than two."""
    both = ~(np.isnan(a) | np.isnan(b))
    a, b = a[both], b[both]
    if len(a) < 2:
        return None
    if np.allclose(a, b):
        return 1.0
    return float(stats.wilcoxon(a, b).pvalue)


def _parse(plan: str) -> tuple[int | None, str]:
    """(opinions per new item, or None for routing; aggregation method) of a plan name."""
    head, _, method = plan.partition("_")
    return (None if head == "routing" else int(head.rstrip("x"))), method


def _run(model, X, codes, plan, seed, accuracies, opt) -> tuple[str, int, dict[str, np.ndarray] | None]:
    """One plan on one seed: cycles until the money runs out or the loop stops; None when people's labels never
    held two classes within the budget (that plan failed on that seed; the others go on)."""
    with warnings.catch_warnings():
        # scikit-learn's guess that labels of a few items over many classes "could represent a regression
        # problem": they are classes, and small label sets are what this simulation is about
        warnings.filterwarnings("ignore", message="The number of unique classes", category=UserWarning)
        try:
            return plan, seed, _cycles(model, X, codes, plan, seed, accuracies, opt)
        except SingleClassError:
            return plan, seed, None


def _cycles(model, X, codes, plan, seed, accuracies, opt) -> dict[str, np.ndarray]:
    k = int(codes.max()) + 1
    answers = noisy_labels(codes, accuracies, k, random_state=seed)  # what each person would answer
    order = np.argsort(np.random.default_rng([seed, 31]).random(answers.shape), axis=1)  # who answers 1st, 2nd...
    per_item, method = _parse(plan)
    B, price = opt["batch_size"], opt["price_per_label"]
    new_per_cycle = B if per_item is None else max(B // per_item, 1)
    learner = ActiveLearner(model, strategy=opt["strategy"], batch_size=new_per_cycle, seed_size=opt["seed_size"],
                            test_size=opt["test_size"], random_fraction=opt["random_fraction"],
                            n_bootstrap=100, random_state=seed)
    learner.start(X, codes)
    test = learner.test_indices_
    learner.teach(test, codes[test])  # the gold set
    rng = np.random.default_rng([seed, 37])
    count = np.zeros(len(codes), dtype=np.int64)
    extra = np.empty(0, dtype=np.intp)
    proba = None
    out = {key: [] for key in ("money", "items", "accuracy", "label_accuracy")}
    while True:
        new = learner.pending
        new = new[~learner.is_test_[new]]
        # routing starts with every opinion on the seed set: the overlap tells who is reliable from the start
        count[new] = (opt["max_opinions"] if proba is None else 1) if per_item is None else per_item
        count[extra] += 1
        rows = np.flatnonzero(count)
        matrix = np.full((len(rows), answers.shape[1]), MISSING)
        for j in range(int(count.max())):
            take = count[rows] > j
            who = order[rows[take], j]
            matrix[np.flatnonzero(take), who] = answers[rows[take], who]
        use = method if (method != "crowdlab" or proba is not None) else "majority"
        consensus = aggregate(matrix, k, use, pred_probs=None if proba is None else proba[rows], random_state=seed)
        learner.teach(rows, consensus.labels)
        money = float(count.sum() * price)
        if len(np.unique(consensus.labels)) < 2:  # people's labels hold one class: a model needs more items
            if money + B * price > opt["max_money"] + 1e-9:
                raise SingleClassError(f"{plan}: every label bought with {money:g} money holds one class")
            free = np.flatnonzero((count == 0) & ~learner.is_test_)
            each = per_item or opt["max_opinions"]  # routing buys every opinion for items before the first model
            learner.request(rng.choice(free, min(B // each, len(free)), replace=False))
            extra = np.empty(0, dtype=np.intp)
            continue
        record = learner.cycle()
        for key, value in (("money", money), ("items", len(rows)), ("accuracy", record.accuracy),
                           ("label_accuracy", float((consensus.labels == codes[rows]).mean()))):
            out[key].append(value)
        if record.stop or money + B * price > opt["max_money"] + 1e-9:
            break
        if per_item is not None and method != "crowdlab":
            continue  # only CROWDLAB and routing weigh the model's view of the labels
        proba = predict_proba_aligned(learner.model_, X, np.arange(k))
        judged = out_of_fold_proba(model, X[rows], consensus.labels, np.arange(k), seed)
        if judged is not None:  # else (a class with one item) the model's own, in-sample
            proba[rows] = judged
        extra = np.empty(0, dtype=np.intp)
        if per_item is None:
            picks = record.selected
            open_ = count[rows] < opt["max_opinions"]
            labels = consensus.labels[open_]
            scores = relabel_scores(consensus.quality[open_], count[rows][open_], proba[rows[open_], labels])
            new_scores = 1 - proba[picks].max(axis=1)
            extra = rows[open_][route(scores, new_scores, int(opt["relabel_fraction"] * B))]
            if len(extra):  # the same money: the batch's least informative new items wait for a later cycle
                learner.withdraw(picks[np.argsort(new_scores, kind="stable")[:len(extra)]])
    return {key: np.asarray(v, dtype=float) for key, v in out.items()}


def check_settings(accuracies: Sequence[float], opinions: Sequence[int], n_classes: int, *, batch_size: int,
                   seed_size: int, max_money: float, price_per_label: float,
                   relabel_fraction: float) -> tuple[list[float], list[int]]:
    """Refuse, before any run, settings that no run could honour; the accuracies and the sorted opinion counts.

    Raises :class:`~activelabel.errors.InvalidParameterError` naming the setting: more opinions per item than
    annotators, an accuracy outside (0, 1] or at or below chance (the confusions are drawn around an accuracy
    above chance), a batch smaller than the opinions one item gets, a seed set the budget cannot pay for at
    the most opinions per item, a price of 0 (plans are compared by money).
    """
    accuracies = [float(a) for a in accuracies]
    opinions = sorted({int(n) for n in opinions})
    if not opinions or opinions[0] < 1:
        raise InvalidParameterError(f"opinions must be counts >= 1, got {opinions}")
    if opinions[-1] > len(accuracies):
        raise InvalidParameterError(f"{opinions[-1]} opinions per item (--opinions) need at least {opinions[-1]} "
                                    f"annotators; {len(accuracies)} given")
    chance = 1.0 / n_classes
    for a in accuracies:
        if not chance < a <= 1:
            raise InvalidParameterError(f"annotator accuracy {a:g} must be above chance ({chance:.3g} for "
                                        f"{n_classes} classes) and at most 1")
    if not 0 <= relabel_fraction <= 1:
        raise InvalidParameterError(f"relabel_fraction must be in [0, 1], got {relabel_fraction!r}")
    if not price_per_label > 0:
        raise InvalidParameterError(f"the price per label must be > 0 to compare plans by money, got "
                                    f"{price_per_label!r}")
    if batch_size < opinions[-1]:
        raise InvalidParameterError(f"a batch of {batch_size} opinions cannot buy {opinions[-1]} opinions for one "
                                    f"item; use a batch of at least {opinions[-1]}")
    seed_cost = seed_size * opinions[-1] * price_per_label
    if seed_cost > max_money + 1e-9:
        raise InvalidParameterError(f"the seed set of {seed_size} items with {opinions[-1]} opinions each costs "
                                    f"{seed_cost:g}, more than the budget of {max_money:g}")
    return accuracies, opinions


def simulate_annotators(X: ArrayLike, y: ArrayLike, accuracies: Sequence[float], *,
                        opinions: Sequence[int] = (1, 2, 3), plan_names: Sequence[str] | None = None,
                        seeds: int | Sequence[int] = 3, model: BaseEstimator | None = None,
                        strategy: str = "default", batch_size: int = 20, seed_size: int = 20,
                        test_size: int | float = 0.2, random_fraction: float = 0.1, max_money: float = 1000.0,
                        price_per_label: float = 1.0, relabel_fraction: float = 0.4, n_jobs: int = 1,
                        on_run: Callable[[str, int], None] | None = None) -> CrowdResult:
    """Run every plan (:func:`plans`) over the same seeds with simulated annotators.

    Parameters
    ----------
    accuracies : sequence of float
        One simulated annotator per value, each in (0, 1].
    opinions : sequence of int
        Opinion counts per item to compare (``1..3`` on the command line); the largest is routing's
        ``max_opinions`` and may not exceed the number of annotators.
    max_money : float
        Money each run may spend on opinions (``price_per_label`` each).
    relabel_fraction : float
        Routing's cap: this share of each cycle's opinions may go to labeled items.
    """
    X = np.asarray(X)
    classes, codes = np.unique(np.asarray(y), return_inverse=True)
    accuracies, opinions = check_settings(accuracies, opinions, len(classes), batch_size=batch_size,
                                          seed_size=seed_size, max_money=max_money, price_per_label=price_per_label,
                                          relabel_fraction=relabel_fraction)
    names = list(plan_names) if plan_names is not None else plans(opinions)
    if BASELINE not in names:
        names.insert(0, BASELINE)
    seed_list = list(range(seeds)) if isinstance(seeds, (int, np.integer)) else list(seeds)
    model = default_model() if model is None else model
    opt = dict(strategy=strategy, batch_size=batch_size, seed_size=seed_size, test_size=test_size,
               random_fraction=random_fraction, max_money=max_money, price_per_label=price_per_label,
               relabel_fraction=relabel_fraction, max_opinions=opinions[-1])
    kwargs = dict(batch_size=batch_size, seed_size=seed_size, test_size=test_size, random_fraction=random_fraction)
    tasks = [delayed(ceiling_accuracy)(model, X, codes, s, kwargs) for s in seed_list]
    tasks += [delayed(_run)(model, X, codes, plan, s, accuracies, opt) for plan in names for s in seed_list]
    done = {}
    for name, seed, value in Parallel(n_jobs=n_jobs, return_as="generator_unordered")(tasks):
        done[name, seed] = value
        if on_run is not None:
            on_run(name, seed)
    settings = dict(opt, accuracies=accuracies, opinions=opinions, plans=names, seeds=len(seed_list))
    return CrowdResult(runs={p: [done[p, s] for s in seed_list] for p in names}, seeds=seed_list,
                       ceilings=[done["__ceiling__", s] for s in seed_list], settings=settings)
