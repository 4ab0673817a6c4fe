"""Serving the next item: the labeling page and the JSON API both ask here.

The queue itself (who gets which item) is :mod:`activelabel.store.queue`;
this module turns its answer into what a page shows: the item, the
annotator's progress, the model's suggestion and, when nothing is served,
the reason why. It also holds what keeps shown text honest: control and
invisible characters made visible (the ``visible`` template filter), and
Markdown rendered without any HTML of its own (the guidelines).
"""

from __future__ import annotations

import logging
import threading
import time
import unicodedata
from datetime import UTC, datetime
from functools import cache, lru_cache
from typing import TYPE_CHECKING

from markupsafe import Markup, escape

from activelabel.server.auth import Caller
from activelabel.server.deps import now, templates
from activelabel.store import queue, repo, suggestions

if TYPE_CHECKING:
    from sqlalchemy.orm import Session
    from starlette.datastructures import State

    from activelabel.project import Project

__all__ = ["next_for", "item_view", "show_invisible", "time_tag", "markdown_html", "Suggester", "suggester"]

log = logging.getLogger("activelabel.server")

# ---------------------------------------------------------------- honest text

_HIDDEN = ("Cc", "Cf", "Zl", "Zp", "Co", "Cs", "Cn")  # controls, format (bidi, zero-width), separators, unassigned
_KEPT = "\n\t\r"  # line breaks and tabs are shown as what they are (the text box keeps white space)


def _hidden(ch: str) -> bool:
    return ch not in _KEPT and unicodedata.category(ch) in _HIDDEN


@cache
def _candidates():
    """Hidden characters of the Basic Multilingual Plane, and every character beyond it (rare: emoji, old
    scripts; each is looked up on its own). One class of BMP ranges stays a constant-time bitmap lookup in
    the regular expression engine, where ranges above U+FFFF would be tried one by one for every character."""
    import re

    ranges, start = [], None
    for cp in range(0x10001):
        hidden = cp < 0x10000 and _hidden(chr(cp))
        if hidden and start is None:
            start = cp
        elif not hidden and start is not None:
            ranges.append(f"\\u{start:04x}-\\u{cp - 1:04x}")
            start = None
    return re.compile("[" + "".join(ranges) + "]|[\\U00010000-\\U0010ffff]")


def show_invisible(value: object) -> Markup:
    """``value`` escaped, with each control or invisible character shown as a marker such as ``⟨U+202E⟩``.

    A right-to-left override, a zero-width space or a stray control
    character then cannot make a text look like something it is not. The
    marker is a ``span`` of class ``ctl`` (styled apart, named in its title),
    so typing "⟨U+202E⟩" into a text does not look like one.
    """
    text = "" if value is None else str(value)
    parts, pos = [], 0
    for m in _candidates().finditer(text):
        ch = m.group()
        if ord(ch) > 0xFFFF and not _hidden(ch):
            continue
        name = unicodedata.name(ch, "control character" if unicodedata.category(ch) == "Cc" else "invisible character")
        parts.append(escape(text[pos:m.start()]))
        parts.append(Markup('<span class="ctl" title="{}">⟨U+{:04X}⟩</span>').format(name.lower(), ord(ch)))
        pos = m.end()
    if not parts:
        return escape(text)
    parts.append(escape(text[pos:]))
    return Markup("").join(parts)


def time_tag(at: datetime | None) -> Markup:
    """A ``<time>`` element: readable UTC on the server, turned into the reader's local time by ``time.js``."""
    if at is None:
        return Markup("")
    at = at.replace(tzinfo=UTC) if at.tzinfo is None else at.astimezone(UTC)
    return Markup('<time class="local" datetime="{}">{}</time>').format(
        at.isoformat(timespec="seconds"), at.strftime("%Y-%m-%d %H:%M UTC"))


templates.env.filters["visible"] = show_invisible
templates.env.filters["time_tag"] = time_tag


@cache
def _markdown():
    from markdown_it import MarkdownIt

    md = MarkdownIt("commonmark", {"html": False}).enable(["table", "strikethrough"])

    def link_open(renderer, tokens, idx, options, env):  # links open beside the labeling page, never replace it
        tokens[idx].attrSet("target", "_blank")
        tokens[idx].attrSet("rel", "noopener noreferrer")
        return renderer.renderToken(tokens, idx, options, env)

    md.add_render_rule("link_open", link_open)
    return md


@lru_cache(maxsize=64)
def markdown_html(text: str) -> Markup:
    """Markdown as HTML, safely: raw HTML in it is shown as text and ``javascript:`` links are not made."""
    return Markup(_markdown().render(text or ""))


# ---------------------------------------------------------------- the model's suggestion

class Suggester:
    """The newest model's suggestion (label and confidence) for the current batch's items.

    When a new model or batch appears, a background thread loads the model
    (cached by version) and predicts every item of the batch and its
    reserve from the features training cached; a request then looks its
    item up in a dictionary. Nothing here runs inside the queue's write
    lock, and the features are never recomputed here: when the items
    changed since the model trained (a new import), there is no suggestion
    until the next cycle.
    """

    RECHECK_SECONDS = 2.0  # how often a request looks for a newer model or batch

    def __init__(self, project: Project) -> None:
        self.project = project
        self.key: tuple[int, int | None] | None = None  # (model version, batch) of the table, or being computed
        self.table: dict[int, tuple[str, float]] = {}
        self.models: dict[int, object] = {}  # model version -> fitted model (only the newest is kept)
        self.lock = threading.Lock()
        self.thread: threading.Thread | None = None
        self.checked = -1e9

    def suggest(self, item_id: int, wait: float = 0.5) -> dict | None:
        """``{"label", "confidence"}`` for the item, or None (no model yet, not in the batch, still computing)."""
        self._refresh(wait)
        hit = self.table.get(int(item_id))
        return None if hit is None else {"label": hit[0], "confidence": hit[1]}

    @property
    def computing(self) -> bool:
        """Suggestions for a new model or batch are being computed (the first one loads scikit-learn)."""
        return self.thread is not None and self.thread.is_alive()

    def _refresh(self, wait: float) -> None:
        with self.lock:
            if time.monotonic() - self.checked >= self.RECHECK_SECONDS:
                self.checked = time.monotonic()
                with self.project.store.session(readonly=True) as s:
                    key = suggestions.suggestion_key(s)
                if key is None:
                    self.key, self.table = None, {}
                elif key != self.key:
                    self.key = key
                    self.thread = threading.Thread(target=self._compute, args=(key,), daemon=True,
                                                   name="activelabel-suggestions")
                    self.thread.start()
            thread = self.thread
        if thread is not None and thread.is_alive() and wait > 0:
            thread.join(wait)  # the first request after a new model waits a moment rather than showing none

    def _compute(self, key: tuple[int, int | None]) -> None:
        version, batch = key
        try:
            table = self._predict(version, batch)
        except Exception as error:  # a suggestion is a help, never a reason for the page to fail
            log.warning("no suggestions for model %s: %s", version, error)
            table = {}
        with self.lock:
            if self.key == key:
                self.table = table

    def _predict(self, version: int, batch: int | None) -> dict[int, tuple[str, float]]:
        import joblib
        import numpy as np
        import pandas as pd

        from activelabel.models import predict_proba_aligned
        from activelabel.models.featurizers import featurizer_version

        project = self.project
        with project.store.session(readonly=True) as s:
            path = suggestions.model_path(s, version)
            ids = np.array(suggestions.batch_item_ids(s, batch), dtype=np.int64)
            name = project.config.featurizer
            items = repo.items_state(s) if name in ("tfidf", "table") else None
        if path is None or not len(ids):
            return {}
        if items is not None:  # collection-wide features: only the version training cached, never a new one
            if project.features.dimension(featurizer_version(name, items)) is None:
                return {}
            rows = np.searchsorted(items["id"].to_numpy(), ids)
        else:  # features of each item alone: only the batch's, which training cached
            items = pd.DataFrame({"id": np.sort(ids)})
            rows = np.searchsorted(items["id"].to_numpy(), ids)
        model = self.models.get(version)
        if model is None:
            model = joblib.load(project.folder / path)["model"]
            self.models = {version: model}
        X = project.item_features(items)[rows]
        classes = project.classes
        proba = predict_proba_aligned(model, X, classes)
        best = proba.argmax(axis=1)
        return {int(i): (str(classes[k]), float(proba[n, k])) for n, (i, k) in enumerate(zip(ids, best))}


_SUGGESTER_LOCK = threading.Lock()


def suggester(state: State) -> Suggester:
    """The app's :class:`Suggester`, made on first use."""
    with _SUGGESTER_LOCK:
        found = getattr(state, "suggester", None)
        if found is None:
            found = state.suggester = Suggester(state.project)
        return found


# ---------------------------------------------------------------- the served item

def item_view(state: State, s: Session, served: queue.Served | None) -> dict | None:
    """What the page shows of a served item (None when nothing was served)."""
    if served is None:
        return None
    item = repo.item_view(s, served.item_id)
    return {"assignment_id": served.assignment_id, "item_id": item["id"], "kind": item["kind"],
            "text": item["text"], "data": item["data"],
            "image_url": f"/image/{item['id']}" if item["kind"] == "image" else None,
            "test": state.project.config.show_test_items and item["split"] == "test", "suggestion": None,
            "suggestion_pending": False}


def with_suggestion(state, item: dict | None, split: str) -> dict | None:
    """The item with the model's suggestion, when the project shows them; never on a test item (the test
    set measures the model, so its labels must not lean on the model's guess)."""
    if item is not None and state.project.config.show_suggestions and split == "pool":
        found = suggester(state)
        item["suggestion"] = found.suggest(item["item_id"])
        item["suggestion_pending"] = item["suggestion"] is None and found.computing
    return item


def budget_stop(state, s) -> str | None:
    """Why nothing new is handed out for money or labels, or None: the budget is spent, or what is left of
    it is out with people labeling now (checked only when a budget is set)."""
    config, settings = state.project.config, state.settings
    if settings.answer_cap is None and settings.label_cap is None:
        return None
    use = queue.budget_use(s, now())
    if settings.answer_cap is not None and use.paid >= settings.answer_cap:
        return f"The labeling budget ({config.budget:,.2f}) is spent: there is nothing more to label."
    if settings.label_cap is not None and use.labeled >= settings.label_cap:
        return f"The label budget ({config.label_budget:,} training labels) is reached: nothing more to label."
    if use.left(settings) <= 0:
        return ("What is left of the budget is out with people labeling now: if some of it comes back "
                "unanswered, it is handed out again.")
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
    return {"today": mine["today"], "passed": mine["passed"], "left": mine["left"], "size": mine["size"]}


def next_for(state: State, caller: Caller) -> tuple[dict | None, dict]:
    """The caller's item (served or re-served, with the model's suggestion when shown) and their progress;
    the queue's write lock is held only while assigning."""
    store = state.project.store
    with store.session() as s:
        served = queue.serve_next(s, caller.annotator_id, state.settings, now())
    with store.session(readonly=True) as s:
        prog = progress(s, caller)
        if served is None:
            prog["empty"] = empty_reason(state, s)
        item = item_view(state, s, served)
    return (with_suggestion(state, item, served.split) if served else None), prog
