"""What a project reports: status with stopping advice, money spent, predictions, exports."""

from __future__ import annotations

from pathlib import Path
from types import SimpleNamespace
from typing import TYPE_CHECKING

import numpy as np
import pandas as pd

from activelabel.project.features import item_features
from activelabel.project.state import money_spent, state
from activelabel.project.training import latest_model
from activelabel.store import repo

if TYPE_CHECKING:
    from activelabel.project import Project

__all__ = ["status", "counted_cycles", "predictions", "export"]


def status(project: Project) -> dict:
    """Counts, the latest metrics with intervals, money, and the stopping rules' advice in words."""
    from activelabel.stopping import (
        LabelBudget,
        MoneyBudget,
        Plateau,
        StabilizingPredictions,
        check_stopping,
    )

    st = state(project)
    items = st.items
    retired = items["retired"].to_numpy()
    live = items[~retired]
    labeled = live["label"].notna()
    good = [c for c in st.cycles if c.error is None]
    history = [SimpleNamespace(cycle=c.model_version, accuracy=np.nan if c.accuracy is None else c.accuracy,
                               macro_f1=np.nan if c.macro_f1 is None else c.macro_f1,
                               labels_used=c.labels_used, money_spent=c.money_spent,
                               stop_predictions=np.array((c.details or {}).get("stop_predictions", [])))
               for c in counted_cycles(good)]
    rules = [Plateau(min_gain=0.5, patience=2), StabilizingPredictions(threshold=0.99, window=3)]
    if project.config.label_budget:
        rules.append(LabelBudget(project.config.label_budget))
    if project.config.budget:
        rules.append(MoneyBudget(project.config.budget, min_purchase=project.config.price_per_label))
    decisions = check_stopping(rules, history)
    latest = good[-1] if good else None
    failed = st.cycles[-1] if st.cycles and st.cycles[-1].error is not None else None
    spent = money_spent(project, st.events)
    if not history:
        advice = "no model yet: label a seed set (activelabel query -n 200), then run activelabel train"
    elif decisions:
        advice = "stop: " + "; ".join(d.reason for d in decisions)
    else:
        advice = "continue: no stopping rule has fired"
    return {
        "items": int(len(items)), "pool": int((live["split"] == "pool").sum()),
        "test": int((live["split"] == "test").sum()), "retired": int(retired.sum()),
        "labeled": int((labeled & (live["split"] == "pool")).sum()),
        "test_labeled": int((labeled & (live["split"] == "test")).sum()),
        "answers": int((st.events["answer"] != "retract").sum()) if len(st.events) else 0,
        "cycles": len(good),
        "latest": None if latest is None else {
            "cycle": latest.model_version, "accuracy": latest.accuracy,
            "accuracy_ci": [latest.accuracy_low, latest.accuracy_high], "macro_f1": latest.macro_f1,
            "macro_f1_ci": [latest.macro_f1_low, latest.macro_f1_high], "labels_used": latest.labels_used,
            "test_labels": latest.test_labels, "strategy": latest.strategy},
        "curve": [{"cycle": c.model_version, "labels_used": c.labels_used, "accuracy": c.accuracy,
                   "accuracy_ci": [c.accuracy_low, c.accuracy_high]} for c in good],
        "last_error": None if failed is None else {"at": failed.created_at, "error": failed.error},
        "money_spent": spent, "budget": project.config.budget or None,
        "budget_left": (project.config.budget - spent) if project.config.budget else None,
        "stop": [{"rule": d.rule, "reason": d.reason} for d in decisions], "advice": advice,
    }


def counted_cycles(cycles: list) -> list:
    """The cycles the stopping rules count: each one that trained on more labels than the last counted one.

    Retraining without new labels (pressing retrain again, a forced cycle)
    repeats a point of the learning curve; counting it would let the
    plateau rule fire on repetition instead of on labels that stopped helping.
    """
    counted, most = [], None
    for c in cycles:
        if most is None or c.labels_used > most:
            counted.append(c)
            most = c.labels_used
    return counted


def predictions(project: Project, items: pd.DataFrame) -> tuple[np.ndarray, np.ndarray] | None:
    """The latest model's predicted label and its probability for every item, or None before any model."""
    from activelabel.models import predict_proba_aligned

    model = latest_model(project)
    if model is None:
        return None
    proba = predict_proba_aligned(model, item_features(project, items), project.classes)
    return project.classes[proba.argmax(axis=1)], proba.max(axis=1)


def export(project: Project, path: str | Path, fmt: str | None = None) -> int:
    """Write every item that is not retired with its label, votes and the latest model's prediction.

    Returns the row count.
    """
    from activelabel.interchange import write_export

    st = state(project)
    with project.store.session(readonly=True) as s:
        content = repo.items_frame(s)
    items = st.items.merge(content[["id", "text", "image", "data"]], on="id")
    pred = predictions(project, st.items)
    if pred is not None:
        items["prediction"], items["confidence"] = pred
    else:
        items["prediction"], items["confidence"] = None, np.nan
    items = items[~items["retired"].to_numpy()].reset_index(drop=True)
    model_version = st.cycles[-1].model_version if st.cycles else None
    return write_export(items, Path(path), fmt, labels=project.config.labels, model_version=model_version)


