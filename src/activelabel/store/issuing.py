"""Batches issued to an outside labeling service (``activelabel query``): what is out, what came back.

An item is *out* while it sits in an issued batch that was not released and
nobody has labeled it yet. Recording a batch happens inside one writing
transaction that first takes the queue's lock (SQLite: the write lock of
``BEGIN IMMEDIATE``; PostgreSQL: the queue's advisory lock), so the check
"is any of these items out already?" and the insert cannot interleave with
another ``query`` or with the web queue.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime

import numpy as np
from sqlalchemy import and_, func, select, update
from sqlalchemy.orm import Session

from activelabel.store import queue, repo
from activelabel.store.schema import utcnow, Annotation, Batch, BatchItem

__all__ = ["IssuedBatch", "issued_items", "open_web_items", "unavailable", "lock_issuing", "add_issued_batch",
           "issued_batches", "release_batch", "count_issued_batches"]

_CHUNK = 5_000  # ids per IN (...) list


@dataclass(frozen=True)
class IssuedBatch:
    """One issued batch with how much of it came back."""

    id: int
    created_at: datetime
    strategy: str
    file: str | None
    size: int
    answered: int
    unanswered: int
    released_at: datetime | None


def _labeled():
    """Ids of items with a label from anyone (an answer ``label`` that was not retracted)."""
    retracted = select(Annotation.retracts_id).where(Annotation.retracts_id.is_not(None))
    return select(Annotation.item_id).where(Annotation.answer == "label", Annotation.id.not_in(retracted))


def _out():
    """Ids of items in an issued batch that was not released, still without a label."""
    return (select(BatchItem.item_id).join(Batch, Batch.id == BatchItem.batch_id)
            .where(Batch.purpose == "issued", Batch.released_at.is_(None), BatchItem.item_id.not_in(_labeled())))


def issued_items(s: Session) -> np.ndarray:
    """Ids of items out with an outside service: issued, not released, and still without a label from anyone."""
    return np.unique(np.fromiter(s.scalars(_out()), dtype=np.int64))


def open_web_items(s: Session) -> np.ndarray:
    """Ids of the items the web app is serving: the current cycle batch's items that are not done."""
    batch_id = queue.current_batch(s)
    if batch_id is None:
        return np.empty(0, dtype=np.int64)
    q = select(BatchItem.item_id).where(BatchItem.batch_id == batch_id, BatchItem.done.is_(False))
    return np.fromiter(s.scalars(q), dtype=np.int64)


def lock_issuing(s: Session) -> None:
    """Serialize issuing with other ``query`` runs and the web queue (call first in the writing session)."""
    queue.lock_queue(s)


def unavailable(s: Session, item_ids: Sequence[int]) -> set[int]:
    """Which of ``item_ids`` are out with an outside service, open in the web batch, held by someone in the app
    now, or were labeled (from any source) since the selection read its snapshot (call under the lock)."""
    ids = [int(i) for i in item_ids]
    batch_id = queue.current_batch(s)
    found: set[int] = repo.settled_items(s, ids) | queue.held_items(s, ids, utcnow())
    for start in range(0, len(ids), _CHUNK):
        part = ids[start:start + _CHUNK]
        found.update(s.scalars(_out().where(BatchItem.item_id.in_(part))))
        if batch_id is not None:
            found.update(s.scalars(select(BatchItem.item_id).where(
                BatchItem.batch_id == batch_id, BatchItem.done.is_(False), BatchItem.item_id.in_(part))))
    return found


def add_issued_batch(s: Session, *, strategy: str, file: str | None, item_ids: Sequence[int],
                     scores: Sequence[float], is_random: Sequence[bool]) -> int:
    """Record an issued batch (purpose ``issued``) and the file it was written to; returns its id."""
    batch_id = repo.add_batch(s, cycle_id=None, purpose="issued", strategy=strategy, item_ids=item_ids,
                              scores=scores, is_random=is_random)
    s.execute(update(Batch).where(Batch.id == batch_id).values(file=file))
    return batch_id


def count_issued_batches(s: Session) -> int:
    return s.scalar(select(func.count()).where(Batch.purpose == "issued")) or 0


def issued_batches(s: Session, batch_id: int | None = None) -> list[IssuedBatch]:
    """Every issued batch (or one), oldest first, with its answered (labeled) and unanswered counts."""
    labeled = _labeled().subquery()
    answered = func.count(labeled.c.item_id.distinct())
    q = (select(Batch.id, Batch.created_at, Batch.strategy, Batch.file, func.count(BatchItem.item_id.distinct()),
                answered, Batch.released_at)
         .join(BatchItem, BatchItem.batch_id == Batch.id, isouter=True)
         .join(labeled, and_(labeled.c.item_id == BatchItem.item_id), isouter=True)
         .where(Batch.purpose == "issued").group_by(Batch.id).order_by(Batch.id))
    if batch_id is not None:
        q = q.where(Batch.id == batch_id)
    return [IssuedBatch(id=r[0], created_at=r[1], strategy=r[2], file=r[3], size=int(r[4]), answered=int(r[5]),
                        unanswered=int(r[4]) - int(r[5]), released_at=r[6]) for r in s.execute(q).all()]


def release_batch(s: Session, batch_id: int, now: datetime) -> bool:
    """Return an issued batch's unanswered items to the pool; False when it was released already."""
    lock_issuing(s)
    result = s.execute(update(Batch).where(Batch.id == batch_id, Batch.purpose == "issued",
                                           Batch.released_at.is_(None)).values(released_at=now))
    return result.rowcount > 0
