"""An annotator's own recent answers, and correcting one of them.

A correction changes nothing in place: it appends the retraction of the old
answer and the new answer (both ``source="web"``, by the same annotator), so
:func:`activelabel.store.repo.current_labels` counts the new one as that
person's vote, in training and exports alike. The queue's bookkeeping
follows in the same transaction: the assignment that was answered takes
the new outcome (never a second assignment, so the item is never counted
twice) and the item's ``done`` flag in the current batch is brought up to
date (a label turned into a skip sends the item on to someone else).
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import exists, func, insert, select, update
from sqlalchemy.orm import Session, aliased

from activelabel.errors import InvalidParameterError
from activelabel.store import queue
from activelabel.store.schema import Annotation, Assignment, Item

__all__ = ["recent_answers", "correct_answer", "CORRECTED", "UNCHANGED", "SNIPPET"]

CORRECTED, UNCHANGED = "corrected", "unchanged"
SNIPPET = 200  # characters of an item's text a history row shows


def _live():
    """The answer event is not retracted (by an undo or a correction)."""
    retraction = aliased(Annotation)
    return ~exists().where(retraction.retracts_id == Annotation.id)


def recent_answers(s: Session, annotator_id: int, limit: int = 20) -> list[dict]:
    """The annotator's newest answers given in the app that still stand, newest first.

    Each is a dict with ``id`` (the answer event), ``item_id``, ``split``,
    ``kind``, ``text`` (its first characters), ``image``, ``data``,
    ``answer``, ``label``, ``at`` and ``changed`` (an earlier answer of theirs
    on this item was undone or corrected).
    """
    rows = s.execute(
        select(Annotation.id, Annotation.item_id, Annotation.answer, Annotation.label, Annotation.created_at,
               Item.split, Item.kind, func.substr(Item.text, 1, SNIPPET + 1).label("text"), Item.image, Item.data)
        .join(Item, Item.id == Annotation.item_id)
        .where(Annotation.annotator_id == annotator_id, Annotation.source == "web", Annotation.answer != "retract",
               _live())
        .order_by(Annotation.id.desc()).limit(limit)).all()
    ids = {int(r.item_id) for r in rows}
    changed = set(s.scalars(select(Annotation.item_id).where(
        Annotation.annotator_id == annotator_id, Annotation.answer == "retract", Annotation.item_id.in_(ids)))) \
        if ids else set()
    return [{"id": int(r.id), "item_id": int(r.item_id), "split": r.split, "kind": r.kind, "text": r.text,
             "image": r.image, "data": r.data, "answer": r.answer, "label": r.label, "at": r.created_at,
             "changed": int(r.item_id) in changed} for r in rows]


def correct_answer(s: Session, answer_id: int, annotator_id: int, kind: str, label: str | None, labels: list[str],
                   now: datetime, settings: queue.QueueSettings = queue.QueueSettings()) -> str:
    """Replace the annotator's answer ``answer_id`` by ``kind`` (label, skip, unsure) and ``label``.

    Returns ``corrected``, or ``unchanged`` when the answer already says
    that (nothing is stored). Raises :class:`InvalidParameterError` for an
    unknown label or kind, for an answer that is not this annotator's own
    answer given in the app, and for one already undone or corrected
    (only the answer that stands can be corrected).
    """
    if kind not in ("label", "skip", "unsure"):
        raise InvalidParameterError(f"answer must be label, skip or unsure, got {kind!r}")
    if kind == "label" and label not in labels:
        raise InvalidParameterError(f"unknown label {label!r}; labels are {', '.join(labels)}")
    if not 0 < answer_id < 2**63:
        raise InvalidParameterError(f"no answer {answer_id} of yours")
    label = label if kind == "label" else None
    queue.lock_queue(s)  # the same order as answers and undos: the queue's bookkeeping changes below
    old = s.execute(select(Annotation.id, Annotation.item_id, Annotation.answer, Annotation.label)
                    .where(Annotation.id == answer_id, Annotation.annotator_id == annotator_id,
                           Annotation.source == "web", Annotation.answer != "retract")).first()
    if old is None:
        raise InvalidParameterError(f"no answer {answer_id} of yours")
    if s.scalar(select(func.count()).where(Annotation.retracts_id == answer_id)):
        raise InvalidParameterError(f"answer {answer_id} was already undone or corrected; "
                                    "correct the answer that stands now")
    if (old.answer, old.label) == (kind, label):
        return UNCHANGED
    s.execute(insert(Annotation).values(item_id=old.item_id, annotator_id=annotator_id, answer="retract", label=None,
                                        source="web", retracts_id=old.id, created_at=now))
    s.execute(insert(Annotation).values(item_id=old.item_id, annotator_id=annotator_id, answer=kind, label=label,
                                        seconds=None, source="web", created_at=now))
    answered = s.scalar(select(func.max(Assignment.id)).where(
        Assignment.annotator_id == annotator_id, Assignment.item_id == old.item_id,
        Assignment.outcome.in_(("label", "skip", "unsure"))))
    if answered is not None:
        s.execute(update(Assignment).where(Assignment.id == answered).values(outcome=kind))
        queue.mark_done(s, old.item_id, settings, queue.current_batch(s))  # the queue's own rule for "done"
    return CORRECTED
