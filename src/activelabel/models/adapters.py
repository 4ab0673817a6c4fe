"""Adapters over scikit-learn classifiers and their ensembles.

The loop speaks one class order (the learner's ``classes``); a model fitted
on a seed that lacks some classes knows only a subset. These helpers put
every probability matrix into the learner's order, with zeros for classes
the model has not seen.
"""

from __future__ import annotations

from typing import Any

import numpy as np
from numpy.typing import ArrayLike

from activelabel.errors import MissingPredictProbaError

__all__ = ["check_probabilistic", "predict_proba_aligned", "committee_samples", "build_committee",
           "out_of_fold_proba"]


def check_probabilistic(model: object) -> None:
    """Raise :class:`MissingPredictProbaError` unless ``model`` has ``predict_proba``."""
    if not hasattr(model, "predict_proba"):
        hint = " (for SVC pass probability=True)" if type(model).__name__ in {"SVC", "NuSVC"} else ""
        raise MissingPredictProbaError(
            f"{type(model).__name__} has no predict_proba; active learning needs class probabilities{hint}"
        )


def _align(proba: np.ndarray, model_classes, classes: np.ndarray) -> np.ndarray:
    """Place the columns of ``proba`` (in ``model_classes`` order) into ``classes`` order."""
    model_classes = np.asarray(model_classes)
    if len(model_classes) == len(classes) and np.array_equal(model_classes, classes):
        return proba
    out = np.zeros((*proba.shape[:-1], len(classes)), dtype=np.float64)
    out[..., np.searchsorted(classes, model_classes)] = proba
    return out


def predict_proba_aligned(model: Any, X: ArrayLike, classes: np.ndarray) -> np.ndarray:
    """Probabilities of shape (n_samples, len(classes)) in ``classes`` order.

    ``classes`` must be sorted (as ``np.unique`` returns them) and contain
    every class the model was fitted on.
    """
    return _align(model.predict_proba(X), model.classes_, classes)


def out_of_fold_proba(model: Any, X: ArrayLike, y: ArrayLike, classes: np.ndarray, random_state: int = 0,
                      folds: int = 5) -> np.ndarray | None:
    """Each labeled item's probabilities from a clone of ``model`` that did not train on it (stratified folds).

    A model's probabilities on its own training items echo their labels, mistakes included, so judging labels
    (CROWDLAB, routing) takes items it did not train on, as cleanlab advises. Fewer folds when a class is rare;
    None when a class has a single item (no fold could hold it out and still learn it).
    """
    from sklearn.base import clone
    from sklearn.model_selection import StratifiedKFold

    X, y = np.asarray(X), np.asarray(y)
    _, counts = np.unique(y, return_counts=True)
    folds = min(folds, int(counts.min())) if len(counts) > 1 else 0
    if folds < 2:
        return None
    import warnings

    out = np.zeros((len(y), len(classes)))
    with warnings.catch_warnings():  # a fold of few items over many classes "could be a regression problem": not so
        warnings.filterwarnings("ignore", message="The number of unique classes", category=UserWarning)
        for train, test in StratifiedKFold(folds, shuffle=True, random_state=random_state).split(X, y):
            out[test] = predict_proba_aligned(clone(model).fit(X[train], y[train]), X[test], classes)
    return out


def committee_samples(model: Any, X: ArrayLike, classes: np.ndarray) -> np.ndarray:
    """Each ensemble member's probabilities, shape (n_members, n_samples, len(classes)).

    A model with ``sample_proba(X)`` (MC dropout, deep ensembles) gives its own stack. Otherwise works for
    ``BaggingClassifier`` (honouring its feature subsets),
    ``RandomForestClassifier``, ``ExtraTreesClassifier`` and any fitted
    ensemble with ``estimators_``. Members of these ensembles are fitted
    on encoded labels (0..k-1 over ``model.classes_``), which is mapped back.
    """
    if hasattr(model, "sample_proba"):  # MC dropout or a deep ensemble (activelabel.models.deep)
        return _align(model.sample_proba(X), model.classes_, classes)
    X = np.asarray(X)
    features = getattr(model, "estimators_features_", None)
    out = []
    for i, member in enumerate(model.estimators_):
        Xi = X if features is None else X[:, features[i]]
        member_classes = np.asarray(model.classes_)[np.asarray(member.classes_, dtype=int)]
        out.append(_align(member.predict_proba(Xi), member_classes, classes))
    return np.stack(out)


def build_committee(model: Any, X_train: ArrayLike, y_train: ArrayLike, *, size: int = 5,
                    random_state: int | None = None) -> Any:
    """The committee that committee strategies score with, fitted; read it with :func:`committee_samples`.

    A fitted forest or bagging ensemble is its own committee. A single model
    gets a bootstrap committee of ``size`` clones used only for scoring
    (query by bagging, Abe and Mamitsuka 1998), so the model that is
    evaluated is the same whatever the strategy.
    """
    from sklearn.base import clone
    from sklearn.ensemble import BaggingClassifier, ExtraTreesClassifier, RandomForestClassifier

    if isinstance(model, (BaggingClassifier, RandomForestClassifier, ExtraTreesClassifier)) or \
            hasattr(model, "sample_proba"):  # a model that samples its own uncertainty is its own committee
        return model
    return BaggingClassifier(clone(model), n_estimators=size, random_state=random_state).fit(X_train, y_train)
