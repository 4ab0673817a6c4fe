"""Comments and flags on items (table ``item_notes``), and the admin's review list.

A note is append-only, like an answer: an annotator comments on an item
("the second sentence is cut off") or flags it for an admin ("this is not
English"). The review list gathers the items someone was unsure about,
skipped or flagged, newest first, with their notes and current label.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import UTC, datetime

import pandas as pd
from sqlalchemy import exists, func, select
from sqlalchemy.orm import Session, aliased

from activelabel.errors import InvalidParameterError, UnknownItemError
from activelabel.store import repo
from activelabel.store.schema import Annotation, Annotator, Item, ItemNote

__all__ = ["NOTE_KINDS", "MAX_NOTE", "REVIEW_KINDS", "add_note", "notes_of", "review_items", "snippet"]

NOTE_KINDS = ("comment", "flag")
MAX_NOTE = 2000  # characters: a note is a remark, not a document
REVIEW_KINDS = ("all", "flag", "comment", "skip", "unsure")
_SNIPPET = 300


def add_note(s: Session, item_id: int, annotator_id: int, kind: str, text: str, now: datetime) -> int:
    """Append a comment or a flag on ``item_id`` by ``annotator_id``; the note's id.

    A comment needs text; a flag may come without (the flag says enough).
    """
    if kind not in NOTE_KINDS:
        raise InvalidParameterError(f"a note is a comment or a flag, got {kind!r}")
    text = (text or "").strip()
    if kind == "comment" and not text:
        raise InvalidParameterError("the comment is empty: write what should be known about this item")
    if len(text) > MAX_NOTE:
        raise InvalidParameterError(f"the {kind} is {len(text):,} characters long; at most {MAX_NOTE:,} fit")
    if "\x00" in text:
        raise InvalidParameterError(f"the {kind} holds a NUL character")
    if not 0 < item_id < 2**63 or s.get(Item, item_id) is None:
        raise UnknownItemError(f"no item {item_id}")
    note = ItemNote(item_id=item_id, annotator_id=annotator_id, kind=kind, text=text, created_at=now)
    s.add(note)
    s.flush()
    return int(note.id)


def notes_of(s: Session, item_ids: Iterable[int], annotator_id: int | None = None) -> dict[int, list[dict]]:
    """The notes on each of ``item_ids`` (all, or one annotator's), oldest first: kind, annotator, text, time."""
    ids = [int(i) for i in item_ids]
    out: dict[int, list[dict]] = {i: [] for i in ids}
    for start in range(0, len(ids), 5_000):
        query = (select(ItemNote.item_id, ItemNote.kind, Annotator.name, ItemNote.text, ItemNote.created_at)
                 .join(Annotator, Annotator.id == ItemNote.annotator_id)
                 .where(ItemNote.item_id.in_(ids[start:start + 5_000])).order_by(ItemNote.id))
        if annotator_id is not None:
            query = query.where(ItemNote.annotator_id == annotator_id)
        for item_id, kind, name, text, at in s.execute(query):
            out[int(item_id)].append({"kind": kind, "annotator": name, "text": text, "at": at})
    return out


def snippet(kind: str, text: str | None, image: str | None, data: dict | None, limit: int = _SNIPPET) -> str:
    """A short line that tells an item apart: its text's start, its image's file name, or its row's values."""
    if kind == "image":
        return (image or "").replace("\\", "/").rsplit("/", 1)[-1]
    line = (text or "") if kind == "text" else ", ".join(f"{k}: {v}" for k, v in (data or {}).items())
    return line if len(line) <= limit else line[:limit] + "…"


def _live_doubts(s: Session, answers: tuple[str, ...], most: int):
    """Items with live (not retracted) skip or unsure answers: item, answer, how many, newest time."""
    retraction = aliased(Annotation)
    live = ~exists().where(retraction.retracts_id == Annotation.id)
    newest = func.max(Annotation.created_at)
    return s.execute(select(Annotation.item_id, Annotation.answer, func.count(), newest)
                     .where(Annotation.answer.in_(answers), live)
                     .group_by(Annotation.item_id, Annotation.answer).order_by(newest.desc()).limit(most)).all()


def review_items(s: Session, show: str = "all", limit: int = 200) -> list[dict]:
    """Items an admin should look at: marked unsure, skipped, flagged or commented on, newest activity first.

    Each is a dict with ``item_id``, ``external_id``, ``split``, ``kind``,
    ``snippet``, ``skips``, ``unsure``, ``flags``, ``notes`` (list of
    kind, annotator, text, time), ``label`` (its current label or None)
    and ``last`` (the time of its newest skip, unsure or note). ``show``
    keeps one kind: ``flag``, ``comment``, ``skip`` or ``unsure``.
    """
    if show not in REVIEW_KINDS:
        raise InvalidParameterError(f"show must be one of {', '.join(REVIEW_KINDS)}, got {show!r}")
    found: dict[int, dict] = {}

    def entry(item_id: int) -> dict:
        return found.setdefault(int(item_id), {"skips": 0, "unsure": 0, "flags": 0, "comments": 0, "last": None})

    def seen(row: dict, at) -> None:
        if at is not None and (row["last"] is None or _naive(at) > _naive(row["last"])):
            row["last"] = at

    answers = {"all": ("skip", "unsure"), "skip": ("skip",), "unsure": ("unsure",)}.get(show, ())
    if answers:
        for item_id, answer, n, at in _live_doubts(s, answers, limit * 2):
            row = entry(item_id)
            row["skips" if answer == "skip" else "unsure"] += int(n)
            seen(row, at)
    kinds = {"all": NOTE_KINDS, "flag": ("flag",), "comment": ("comment",)}.get(show, ())
    if kinds:
        newest = func.max(ItemNote.created_at)
        rows = s.execute(select(ItemNote.item_id, ItemNote.kind, func.count(), newest)
                         .where(ItemNote.kind.in_(kinds)).group_by(ItemNote.item_id, ItemNote.kind)
                         .order_by(newest.desc()).limit(limit * 2)).all()
        for item_id, kind, n, at in rows:
            row = entry(item_id)
            row["flags" if kind == "flag" else "comments"] += int(n)
            seen(row, at)
    chosen = sorted(found, key=lambda i: (_naive(found[i]["last"]), i), reverse=True)[:limit]
    if not chosen:
        return []
    items = {int(r.id): r for r in s.execute(
        select(Item.id, Item.external_id, Item.split, Item.kind, func.substr(Item.text, 1, _SNIPPET + 1).label("text"),
               Item.image, Item.data).where(Item.id.in_(chosen)))}
    notes = notes_of(s, chosen)
    cols = [Annotation.id, Annotation.item_id, Annotation.annotator_id, Annotation.source, Annotation.answer,
            Annotation.label, Annotation.retracts_id]
    events = pd.DataFrame(s.execute(select(*cols).where(Annotation.item_id.in_(chosen)).order_by(Annotation.id)).all(),
                          columns=[c.key for c in cols])
    labels = repo.current_labels(events)["label"].to_dict()
    out = []
    for item_id in chosen:
        item = items[item_id]
        out.append({"item_id": item_id, "external_id": item.external_id, "split": item.split, "kind": item.kind,
                    "snippet": snippet(item.kind, item.text, item.image, item.data), "notes": notes[item_id],
                    "label": labels.get(item_id), **found[item_id]})
    return out


def _naive(at) -> datetime:
    """A time comparable with any other (SQLite hands back naive UTC times, PostgreSQL aware ones)."""
    if at is None:
        return datetime.min
    return at if at.tzinfo is None else at.astimezone(UTC).replace(tzinfo=None)
