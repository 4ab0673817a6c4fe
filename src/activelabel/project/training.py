"""Training a cycle and selecting its batch: one cycle at a time, unique model versions."""

from __future__ import annotations

import os
from collections.abc import Callable
from typing import TYPE_CHECKING

import numpy as np

from activelabel.errors import SingleClassError
from activelabel.project.features import item_features
from activelabel.project.state import labeled_rows, money_spent, state
from activelabel.store import queue, repo

if TYPE_CHECKING:
    from activelabel.project import Project

__all__ = ["train", "select", "latest_model", "record_failure"]

_COMMITTEE = {"vote_entropy", "consensus_entropy", "kl_disagreement", "bald"}
_STOP_SET = 1000  # pool items whose predictions the stabilizing-predictions rule compares


def _model(project: Project):
    from sklearn.base import clone

    from activelabel.models.loading import load_model

    return clone(load_model(project.config.model or None))


def train(project: Project, progress: Callable[[str], None] = lambda _: None) -> dict:
    """One cycle: fit on the labeled pool, evaluate on the labeled test items, select the next batch.

    Records the cycle (model version, metrics with 95% intervals,
    stop-set predictions) and its batch, and saves the model under
    ``models/``. Returns the cycle's summary.
    """
    import time

    import joblib

    from activelabel.loop.evaluation import evaluate
    from activelabel.models import predict_proba_aligned

    t0 = time.perf_counter()
    st = state(project)
    items = st.items
    classes = project.classes
    train_rows, test_rows = labeled_rows(items, "pool"), labeled_rows(items, "test")
    train, test = items.iloc[train_rows], items.iloc[test_rows]
    present = sorted(train["label"].unique())
    if len(present) < 2:
        raise SingleClassError(f"training needs labeled pool items of at least two classes; there are "
                               f"{len(train)} labeled pool items of {len(present)} class(es)"
                               + (f" ({present[0]!r})" if present else ""))
    progress("features")
    X = item_features(project, items)
    progress("fit")
    model = _model(project).fit(X[train_rows], train["label"].to_numpy(dtype=str))
    class_index = {c: k for k, c in enumerate(classes)}
    progress("evaluate")
    if len(test):
        pred = predict_proba_aligned(model, X[test_rows], classes).argmax(axis=1)
        metrics = evaluate(test["label"].map(class_index).to_numpy(), pred, len(classes),
                           random_state=project.config.seed)
    else:
        metrics = evaluate([], [], len(classes))
    pool_rows = np.flatnonzero(items["split"].to_numpy() == "pool")
    stop_rows = pool_rows[:_STOP_SET]
    stop_pred = predict_proba_aligned(model, X[stop_rows], classes).argmax(axis=1)
    version = max([c.model_version or 0 for c in st.cycles], default=0) + 1
    model_path = project.folder / "models" / f"model-v{version}.joblib"
    model_path.parent.mkdir(exist_ok=True)
    tmp = model_path.with_suffix(".tmp")
    joblib.dump({"model": model, "classes": list(classes), "featurizer": project.config.featurizer}, tmp)
    os.replace(tmp, model_path)
    progress("select")
    batch = select(project, model, X, items, st, train_rows, train["label"].to_numpy(dtype=str),
                         project.config.batch_size, salt=version)

    def num(x):
        return None if x is None or not np.isfinite(x) else float(x)

    with project.store.session() as s:
        cycle_id = repo.add_cycle(
            s, model_version=version, model_path=str(model_path.relative_to(project.folder)),
            strategy=project.config.strategy, featurizer=project.config.featurizer, labels_used=len(train),
            test_labels=len(test), accuracy=num(metrics.accuracy), accuracy_low=num(metrics.accuracy_ci[0]),
            accuracy_high=num(metrics.accuracy_ci[1]), macro_f1=num(metrics.macro_f1),
            macro_f1_low=num(metrics.macro_f1_ci[0]), macro_f1_high=num(metrics.macro_f1_ci[1]),
            money_spent=money_spent(project, st.events), seconds=time.perf_counter() - t0,
            details={"stop_predictions": stop_pred.tolist(), "classes": list(classes),
                     "n_random": int(batch["n_random"])})
        if len(batch["item_ids"]):
            repo.add_batch(s, cycle_id=cycle_id, purpose="cycle", strategy=project.config.strategy,
                           item_ids=batch["item_ids"], scores=batch["scores"], is_random=batch["is_random"],
                           need=queue.answers_needed(np.array(batch["item_ids"]), project.config.queue_settings()))
    return {"cycle": version, "labels_used": len(train), "test_labels": len(test),
            "accuracy": num(metrics.accuracy), "accuracy_ci": [num(v) for v in metrics.accuracy_ci],
            "macro_f1": num(metrics.macro_f1), "batch": len(batch["item_ids"]),
            "seconds": time.perf_counter() - t0}


def select(project: Project, model, X, items, st, train_rows, y_train, size: int, salt: int) -> dict:
    """The strategy's next batch among unlabeled pool items not issued yet; ids, scores, random flags."""
    from activelabel.models import committee_samples, predict_proba_aligned
    from activelabel.strategies import select_batch

    classes = project.classes
    blocked = (items["split"].to_numpy() != "pool") | items["label"].notna().to_numpy() \
        | items["id"].isin(st.issued).to_numpy()
    size = min(size, int((~blocked).sum()))
    if size == 0:
        return {"item_ids": [], "scores": [], "is_random": [], "n_random": 0}
    rng = np.random.default_rng([project.config.seed, 7, salt])
    proba = samples = None
    if model is not None:
        proba = predict_proba_aligned(model, X, classes)
        if project.config.strategy in _COMMITTEE:
            from sklearn.base import clone
            from sklearn.ensemble import BaggingClassifier

            bag = BaggingClassifier(clone(model), n_estimators=5, random_state=int(rng.integers(2**31)))
            samples = committee_samples(bag.fit(X[train_rows], y_train), X, classes)
    strategy = project.config.strategy if model is not None else "random"
    batch = select_batch(strategy, batch_size=size, proba=proba, samples=samples, X=X, labeled_mask=blocked,
                         random_fraction=project.config.random_fraction, random_state=rng)
    picks = batch.indices
    return {"item_ids": items["id"].to_numpy()[picks].tolist(), "scores": batch.scores[picks].tolist(),
            "is_random": batch.is_random.tolist(), "n_random": batch.n_random}


def record_failure(project: Project, error: str) -> None:
    """Record a cycle that failed (the app shows it; labeling goes on with the previous batch)."""
    with project.store.session() as s:
        repo.add_cycle(s, strategy=project.config.strategy, featurizer=project.config.featurizer, error=error,
                       money_spent=0.0)


def latest_model(project: Project):
    """The newest saved model, or None before the first cycle."""
    import joblib

    with project.store.session(readonly=True) as s:
        history = [c for c in repo.cycles(s) if c.model_path]
    if not history:
        return None
    return joblib.load(project.folder / history[-1].model_path)["model"]


