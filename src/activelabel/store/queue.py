"""The labeling queue: which item an annotator is served next, answers, and undo.

Every function runs inside one writing transaction (``store.session()``).
On SQLite that transaction holds the write lock from its first statement;
on PostgreSQL :func:`lock_queue` takes a transaction-scoped advisory lock.
Either way two annotators asking at the same moment are served one after
the other, so an item is never handed to two people unless overlap asks
for it.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from datetime import datetime, timedelta

import numpy as np
from sqlalchemy import and_, case, exists, func, or_, select, text, update
from sqlalchemy.orm import Session

from activelabel.errors import InvalidParameterError
from activelabel.store.schema import Annotation, Assignment, Batch, BatchItem, Item

__all__ = ["QueueSettings", "Served", "lock_queue", "current_batch", "open_assignment", "answered_since",
           "serve_next", "answer", "undo_last", "release_open_assignments", "batch_progress", "answers_needed",
           "mark_imported"]

_QUEUE_LOCK = 7_205_911  # any constant: the advisory lock key of the queue


@dataclass(frozen=True)
class QueueSettings:
    """How items are handed out.

    test_share : share of served items that are unlabeled test items, while any are left.
    overlap_fraction, overlap_annotators : that share of items (chosen by a hash of their id,
        so the choice is stable) goes to that many different annotators, for agreement.
    assignment_minutes : an unanswered assignment expires after this long.
    """

    test_share: float = 0.2
    overlap_fraction: float = 0.0
    overlap_annotators: int = 3
    assignment_minutes: float = 5.0
    skip_limit: int = 2
    test_target: int = 0


@dataclass(frozen=True)
class Served:
    assignment_id: int
    item_id: int
    split: str


def lock_queue(s: Session) -> None:
    """Serialize queue changes on PostgreSQL (SQLite's BEGIN IMMEDIATE already does)."""
    if s.get_bind().dialect.name == "postgresql":
        s.execute(text("SELECT pg_advisory_xact_lock(:k)"), {"k": _QUEUE_LOCK})


def answers_needed(item_ids: np.ndarray, settings: QueueSettings) -> np.ndarray:
    """1 for most items; ``overlap_annotators`` for the stable ``overlap_fraction`` share."""
    if settings.overlap_fraction <= 0:
        return np.ones(len(item_ids), dtype=np.int64)
    u = np.array([int.from_bytes(hashlib.blake2b(str(int(i)).encode(), digest_size=4).digest(), "big") / 2**32
                  for i in item_ids])
    return np.where(u < settings.overlap_fraction, settings.overlap_annotators, 1)


def current_batch(s: Session) -> int | None:
    """The newest batch published by a cycle: what annotators are served from."""
    return s.scalar(select(func.max(Batch.id)).where(Batch.purpose == "cycle"))


def _claims(item, now: datetime):
    """Assignments that hold a place on ``item``: answered with a label, or open and not expired."""
    return (select(func.count()).select_from(Assignment)
            .where(Assignment.item_id == item,
                   or_(Assignment.outcome == "label",
                       and_(Assignment.answered_at.is_(None), Assignment.expires_at > now)))
            .scalar_subquery())


def _mine(item, annotator_id: int, now: datetime):
    """This annotator already answered ``item`` (label, skip or unsure) or holds it open."""
    return exists().where(Assignment.item_id == item, Assignment.annotator_id == annotator_id,
                          or_(Assignment.outcome.in_(("label", "skip", "unsure")),
                              and_(Assignment.answered_at.is_(None), Assignment.expires_at > now)))


def _imported_label(item):
    """A label from a file (no annotator) already settles the item."""
    return exists().where(Annotation.item_id == item, Annotation.annotator_id.is_(None), Annotation.answer == "label")


def open_assignment(annotator_id: int, now: datetime):
    """The annotator's unexpired, unanswered assignment (newest first), found by ``ix_assignments_open``."""
    return (select(Assignment.id, Assignment.item_id, Item.split).join(Item, Item.id == Assignment.item_id)
            .where(Assignment.annotator_id == annotator_id, Assignment.answered_at.is_(None),
                   Assignment.expires_at > now).order_by(Assignment.id.desc()).limit(1))


def answered_since(annotator_id: int, since: datetime):
    """How many answers the annotator gave since ``since`` (undos not counted), by ``ix_annotations_annotator_time``."""
    return select(func.count()).where(Annotation.annotator_id == annotator_id, Annotation.created_at >= since,
                                      Annotation.answer != "retract")


def serve_next(s: Session, annotator_id: int, settings: QueueSettings, now: datetime) -> Served | None:
    """The item this annotator should label now, as an assignment; None when nothing is left to serve.

    An open assignment of theirs is served again (a reload shows the same
    item). Otherwise items come from the current batch in the strategy's
    order, with unlabeled test items interleaved at ``test_share``; an item
    is passed over when its answers (and open assignments) already reach
    what it needs, or when this annotator answered or skipped it. One
    indexed query per source, whatever the batch size.
    """
    lock_queue(s)
    mine = s.execute(open_assignment(annotator_id, now)).first()
    if mine is not None:
        return Served(*mine)
    batch_id = current_batch(s)
    served_count = s.scalar(select(func.count()).where(Assignment.annotator_id == annotator_id)) or 0
    want_test = settings.test_share > 0 and (
        batch_id is None or int((served_count + 1) * settings.test_share) > int(served_count * settings.test_share))
    for source in (["test", "pool"] if want_test else ["pool", "test"]):
        if source == "pool":
            if batch_id is None:
                continue
            query = (select(BatchItem.item_id).where(BatchItem.batch_id == batch_id, BatchItem.done.is_(False),
                                                     _claims(BatchItem.item_id, now) < BatchItem.need,
                                                     ~_mine(BatchItem.item_id, annotator_id, now),
                                                     ~_imported_label(BatchItem.item_id))
                     .order_by(BatchItem.rank).limit(1))
        else:
            if settings.test_share <= 0 and batch_id is not None:
                continue
            query = (select(Item.id).where(Item.split == "test", _claims(Item.id, now) < 1,
                                           ~_mine(Item.id, annotator_id, now), ~_imported_label(Item.id))
                     .order_by(Item.id).limit(1))
        item = s.scalar(query)
        if item is not None:
            row = Assignment(item_id=item, annotator_id=annotator_id, batch_id=batch_id if source == "pool" else None,
                             assigned_at=now, expires_at=now + timedelta(minutes=settings.assignment_minutes))
            s.add(row)
            s.flush()
            return Served(row.id, item, source)
    return None


def answer(s: Session, assignment_id: int, annotator_id: int, kind: str, label: str | None, labels: list[str],
           now: datetime) -> bool:
    """Store the answer to an assignment; False (and nothing stored) when it was answered already.

    Seconds spent are measured on the server, from when the item was served.
    """
    if kind not in ("label", "skip", "unsure"):
        raise InvalidParameterError(f"answer must be label, skip or unsure, got {kind!r}")
    if kind == "label" and label not in labels:
        raise InvalidParameterError(f"unknown label {label!r}; labels are {', '.join(labels)}")
    lock_queue(s)
    row = s.execute(select(Assignment.item_id, Assignment.assigned_at, Assignment.answered_at)
                    .where(Assignment.id == assignment_id, Assignment.annotator_id == annotator_id)).first()
    if row is None:
        raise InvalidParameterError(f"no assignment {assignment_id} for this annotator")
    if row.answered_at is not None:
        return False
    assigned = row.assigned_at if row.assigned_at.tzinfo else row.assigned_at.replace(tzinfo=now.tzinfo)
    s.execute(update(Assignment).where(Assignment.id == assignment_id).values(answered_at=now, outcome=kind))
    if kind == "label":
        _mark_done(s, row.item_id, now)
    s.add(Annotation(item_id=row.item_id, annotator_id=annotator_id, answer=kind,
                     label=label if kind == "label" else None, seconds=(now - assigned).total_seconds(),
                     source="web", created_at=now))
    return True


def mark_imported(s: Session, item_ids) -> None:
    """Items labeled from a file are done in the current batch."""
    batch_id = current_batch(s)
    ids = [int(i) for i in item_ids]
    for start in range(0, len(ids) if batch_id is not None else 0, 5_000):
        s.execute(update(BatchItem).where(BatchItem.batch_id == batch_id,
                                          BatchItem.item_id.in_(ids[start:start + 5_000])).values(done=True))


def _mark_done(s: Session, item_id: int, now: datetime) -> None:
    """Bring the item's ``done`` flag in the current batch up to date with its labeled answers."""
    batch_id = current_batch(s)
    if batch_id is None:
        return
    labeled = (select(func.count()).select_from(Assignment)
               .where(Assignment.item_id == item_id, Assignment.outcome == "label").scalar_subquery())
    s.execute(update(BatchItem).where(BatchItem.batch_id == batch_id, BatchItem.item_id == item_id)
              .values(done=labeled >= BatchItem.need))


def undo_last(s: Session, annotator_id: int, settings: QueueSettings, now: datetime) -> int | None:
    """Retract this annotator's latest answer and serve its item to them again; the item id, or None."""
    lock_queue(s)
    retracted = select(Annotation.retracts_id).where(Annotation.retracts_id.is_not(None))
    last = s.execute(select(Annotation.id, Annotation.item_id)
                     .where(Annotation.annotator_id == annotator_id, Annotation.source == "web",
                            Annotation.answer != "retract", Annotation.id.not_in(retracted))
                     .order_by(Annotation.id.desc()).limit(1)).first()
    if last is None:
        return None
    s.add(Annotation(item_id=last.item_id, annotator_id=annotator_id, answer="retract", label=None,
                     source="web", retracts_id=last.id, created_at=now))
    answered = s.scalar(select(func.max(Assignment.id)).where(
        Assignment.annotator_id == annotator_id, Assignment.item_id == last.item_id,
        Assignment.outcome.in_(("label", "skip", "unsure"))))
    if answered is not None:
        s.execute(update(Assignment).where(Assignment.id == answered).values(outcome="undone"))
        _mark_done(s, last.item_id, now)
    s.execute(update(Assignment).where(Assignment.annotator_id == annotator_id, Assignment.answered_at.is_(None))
              .values(expires_at=now))
    s.add(Assignment(item_id=last.item_id, annotator_id=annotator_id, batch_id=None, assigned_at=now,
                     expires_at=now + timedelta(minutes=settings.assignment_minutes)))
    return last.item_id


def release_open_assignments(s: Session, now: datetime) -> int:
    """Expire every open assignment (after a restart nobody is holding them); returns how many."""
    result = s.execute(update(Assignment).where(Assignment.answered_at.is_(None), Assignment.expires_at > now)
                       .values(expires_at=now))
    return result.rowcount


def batch_progress(s: Session) -> dict:
    """Items in the current batch, and how many still need answers (one query on the queue's index)."""
    newest = select(func.max(Batch.id)).where(Batch.purpose == "cycle").scalar_subquery()
    batch_id, size, done = s.execute(select(func.max(BatchItem.batch_id), func.count(),
                                            func.coalesce(func.sum(case((BatchItem.done, 1), else_=0)), 0))
                                     .where(BatchItem.batch_id == newest)).one()
    if batch_id is None:
        return {"batch": None, "size": 0, "left": 0}
    return {"batch": int(batch_id), "size": int(size), "left": int(size - done)}
