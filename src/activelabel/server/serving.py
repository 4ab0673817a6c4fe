"""Serving the next item: the labeling page and the JSON API both ask here.

The queue itself (who gets which item) is :mod:`activelabel.store.queue`;
this module turns its answer into what a page shows: the item, the
annotator's progress, and, when nothing is served, the reason why.
"""

from __future__ import annotations

from activelabel.server.auth import Caller
from activelabel.server.deps import now
from activelabel.store import queue, repo

__all__ = ["next_for", "item_view"]


def item_view(state, s, served: queue.Served | None) -> dict | None:
    """What the page shows of a served item (None when nothing was served)."""
    if served is None:
        return None
    item = repo.item_view(s, served.item_id)
    return {"assignment_id": served.assignment_id, "item_id": item["id"], "kind": item["kind"],
            "text": item["text"], "data": item["data"],
            "image_url": f"/image/{item['id']}" if item["kind"] == "image" else None,
            "test": state.project.config.show_test_items and item["split"] == "test"}


def budget_stop(state, s) -> str | None:
    """Why labeling must stop for money or labels, or None (checked only when a budget is set)."""
    config = state.project.config
    if config.budget and repo.answer_count(s) * config.price_per_label >= config.budget:
        return f"The labeling budget ({config.budget:,.2f}) is spent: there is nothing more to label."
    if config.label_budget and queue.pool_labeled(s) >= config.label_budget:
        return f"The label budget ({config.label_budget:,} training labels) is reached: nothing more to label."
    return None


def empty_reason(state, s) -> str:
    """Why nothing is served: a budget, an exhausted pool, a cycle training, or others holding what is left."""
    stop = budget_stop(state, s)
    if stop:
        return stop
    if queue.pool_left(s) == 0:
        return "Every pool item is labeled: there is nothing left to label."
    worker = state.retrainer
    if worker is not None and (worker.running or worker.due_now()):
        return "A new batch is being trained from the answers so far; it appears here as soon as it is ready."
    return ("Nothing is free for you right now: the items left in this batch are being labeled by others or "
            "were skipped by you. This page updates by itself when work appears.")


def progress(s, caller: Caller) -> dict:
    midnight = now().replace(hour=0, minute=0, second=0, microsecond=0)
    mine = queue.annotator_progress(s, caller.annotator_id, midnight)
    return {"today": mine["today"], "left": mine["left"], "size": mine["size"]}


def next_for(state, caller: Caller) -> tuple[dict | None, dict]:
    """The caller's item (served or re-served) and their progress; the queue's write lock is held only
    while assigning."""
    store, config = state.project.store, state.project.config
    if config.budget or config.label_budget:
        with store.session(readonly=True) as s:
            stop = budget_stop(state, s)
        if stop:
            return None, {"today": 0, "left": 0, "size": 0, "empty": stop}
    with store.session() as s:
        served = queue.serve_next(s, caller.annotator_id, state.settings, now())
    with store.session(readonly=True) as s:
        prog = progress(s, caller)
        if served is None:
            prog["empty"] = empty_reason(state, s)
        return item_view(state, s, served), prog
