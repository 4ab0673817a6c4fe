"""A project's state in one snapshot (items with their current labels) and its items' features."""

from __future__ import annotations

from types import SimpleNamespace
from typing import TYPE_CHECKING

import numpy as np
import pandas as pd

from activelabel.project.agreement import consensus
from activelabel.store.adjudication import SOURCE as ADJUDICATION
from activelabel.store import issuing, queue, repo

if TYPE_CHECKING:
    from activelabel.project import Project

__all__ = ["state", "labeled_rows", "money_spent", "paid_answers"]


def state(project: Project) -> SimpleNamespace:
    """Items (id, external_id, split, kind, content hash, retired) with their current label, from one snapshot.

    ``events`` is every answer event, ``issued`` the ids of items issued to an
    outside service and not answered or released, ``skipped`` those skipped by
    ``skip_limit`` people (left out of selection), ``cycles`` the history.
    """
    with project.store.session(readonly=True) as s:
        items = repo.items_state(s)
        events = repo.annotations_frame(s)
        issued = issuing.issued_items(s)
        skipped = queue.skipped_out(s, project.config.queue_settings())
        history = repo.cycles(s)
    current = repo.current_labels(events)
    method, agreed = consensus(project, events, current, history)
    items["label"] = items["id"].map(agreed["label"])
    items["consensus"] = items["id"].map(agreed["confidence"])
    items["method"] = items["id"].map(agreed["method"]).where(items["label"].notna())
    items["adjudicated"] = items["id"].isin(agreed.index[agreed["adjudicated"].astype(bool)])
    items["n_votes"] = items["id"].map(current["n_votes"]).fillna(0).astype(int)
    return SimpleNamespace(items=items, events=events, issued=issued, skipped=skipped, cycles=history,
                           aggregation=method)


def labeled_rows(items: pd.DataFrame, split: str) -> np.ndarray:
    """Row positions of the labeled, not retired items of a split (``items`` is in id order, as feature rows are)."""
    return np.flatnonzero((items["split"].to_numpy() == split) & items["label"].notna().to_numpy()
                          & ~items["retired"].to_numpy())


def paid_answers(events: pd.DataFrame) -> int:
    """Answers paid for: each person's answer on an item once (label, skip or unsure), however often they
    changed it (undo and answer again, or a correction from their history); each imported answer that names
    nobody. The same count as :func:`activelabel.store.queue.budget_use`."""
    if events.empty:
        return 0
    given = events[(events["answer"] != "retract") & (events["source"] != ADJUDICATION)]  # admins' decisions: unpaid
    named = given["annotator_id"].notna()
    return int(len(given.loc[named, ["annotator_id", "item_id"]].drop_duplicates()) + (~named).sum())


def money_spent(project: Project, events: pd.DataFrame) -> float:
    """The answers paid for (:func:`paid_answers`) at the project's price per label."""
    return float(paid_answers(events) * project.config.price_per_label)
