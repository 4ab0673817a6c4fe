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
from sqlalchemy.orm import Session, aliased

from activelabel.errors import InvalidParameterError
from activelabel.store.schema import Annotation, Assignment, Batch, BatchItem, Item

__all__ = ["QueueSettings", "Served", "lock_queue", "current_batch", "open_assignment", "answered_since",
           "serve_next", "heartbeat", "answer", "undo_last", "release_open_assignments", "batch_progress",
           "batch_closed", "held_items", "skipped_out", "pool_left", "pool_labeled", "test_target", "test_labeled", "answers_needed", "mark_imported"]

_QUEUE_LOCK = 7_205_911  # any constant: the advisory lock key of the queue


@dataclass(frozen=True)
class QueueSettings:
    """How items are handed out.

    test_share : share of served items that are unlabeled test items, until the test target is labeled.
    overlap_fraction, overlap_annotators : that share of items (chosen by a hash of their id,
        so the choice is stable) goes to that many different annotators, for agreement.
    assignment_minutes : idle time; an unanswered assignment expires after it (a heartbeat renews it).
    skip_limit : an item skipped or marked unsure by this many people leaves the batch.
    test_target : labeled test items wanted; 0 means every test item.
    """

    test_share: float = 0.2
    overlap_fraction: float = 0.0
    overlap_annotators: int = 3
    assignment_minutes: float = 5.0
    skip_limit: int = 2
    test_target: int = 0

    @property
    def idle(self) -> timedelta:
        return timedelta(minutes=self.assignment_minutes)


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


def _is_open(now: datetime):
    return and_(Assignment.answered_at.is_(None), Assignment.expires_at > now)


def _claims(item, now: datetime):
    """Places taken on ``item``: labels given in the app, labels imported from files, and open assignments."""
    held = (select(func.count()).select_from(Assignment)
            .where(Assignment.item_id == item, or_(Assignment.outcome == "label", _is_open(now))).scalar_subquery())
    imported = (select(func.count()).select_from(Annotation)
                .where(Annotation.item_id == item, Annotation.source != "web", Annotation.answer == "label")
                .scalar_subquery())
    return held + imported


def _skips(item):
    """How many people skipped ``item`` or marked it unsure (an undone skip no longer counts)."""
    return (select(func.count()).select_from(Assignment)
            .where(Assignment.item_id == item, Assignment.outcome.in_(("skip", "unsure"))).scalar_subquery())


def _mine(item, annotator_id, now: datetime):
    """This annotator already answered ``item`` (label, skip or unsure) or holds it open."""
    return (exists().where(Assignment.item_id == item, Assignment.annotator_id == annotator_id,
                           or_(Assignment.outcome.in_(("label", "skip", "unsure")), _is_open(now)))
            .correlate_except(Assignment))  # the item may come from two levels out (see batch_closed)


def _imported_label(item):
    """A label from a file (with or without an annotator) already settles the item."""
    return exists().where(Annotation.item_id == item, Annotation.source != "web", Annotation.answer == "label")


def _retired(item):
    return exists().where(Item.id == item, Item.retired_at.is_not(None))


def _issued_out(item):
    """The item is out with an outside labeling service (``query``) and that batch was not released."""
    other = aliased(BatchItem)
    return (select(other.item_id).join(Batch, Batch.id == other.batch_id)
            .where(other.item_id == item, Batch.purpose == "issued", Batch.released_at.is_(None)).exists())


def open_assignment(annotator_id: int, now: datetime):
    """The annotator's unexpired, unanswered assignment (newest first), found by ``ix_assignments_open``."""
    return (select(Assignment.id, Assignment.item_id, Item.split).join(Item, Item.id == Assignment.item_id)
            .where(Assignment.annotator_id == annotator_id, Assignment.answered_at.is_(None),
                   Assignment.expires_at > now, Item.retired_at.is_(None)).order_by(Assignment.id.desc()).limit(1))


def answered_since(annotator_id: int, since: datetime):
    """How many answers the annotator gave since ``since`` (undos not counted), by ``ix_annotations_annotator_time``."""
    return select(func.count()).where(Annotation.annotator_id == annotator_id, Annotation.created_at >= since,
                                      Annotation.answer != "retract")


def test_target(s: Session, settings: QueueSettings) -> int:
    """Labeled test items wanted: the setting, or every (not retired) test item."""
    n_test = s.scalar(select(func.count()).where(Item.split == "test", Item.retired_at.is_(None))) or 0
    return min(settings.test_target, n_test) if settings.test_target else n_test


def _labeled(item):
    """``item`` has a label from anyone: given in the app, or imported from a file (by index on the item)."""
    web = exists().where(Assignment.item_id == item, Assignment.outcome == "label")
    return or_(web, _imported_label(item))


def test_labeled(s: Session) -> int:
    """Test items with a label from any source (the app or a file)."""
    return s.scalar(select(func.count()).where(Item.split == "test", Item.retired_at.is_(None),
                                               _labeled(Item.id))) or 0


def _want_test(s: Session, annotator_id: int, settings: QueueSettings, batch_id: int | None) -> bool:
    """Is it this annotator's turn for a test item (every 1/test_share-th item), while the target is not met?"""
    if settings.test_share <= 0:
        return False
    served = s.scalar(select(func.count()).where(Assignment.annotator_id == annotator_id)) or 0
    turn = int((served + 1) * settings.test_share) > int(served * settings.test_share)
    return batch_id is None or turn


def _next_test(s: Session, annotator_id: int, settings: QueueSettings, now: datetime) -> int | None:
    """The first test item this annotator may take, or None once the test target is labeled.

    Never an item labeled from any source, never a second person's unless
    overlap asks for it, never one this annotator skipped.
    """
    if test_labeled(s) >= test_target(s, settings):
        return None
    most = settings.overlap_annotators if settings.overlap_fraction > 0 else 1
    candidates = s.execute(
        select(Item.id, _claims(Item.id, now)).where(
            Item.split == "test", Item.retired_at.is_(None), _claims(Item.id, now) < most,
            _skips(Item.id) < settings.skip_limit, ~_mine(Item.id, annotator_id, now), ~_issued_out(Item.id))
        .order_by(Item.id).limit(200)).all()
    if not candidates:
        return None
    need = answers_needed(np.array([c[0] for c in candidates]), settings)
    return next((int(c[0]) for c, n in zip(candidates, need) if c[1] < n), None)


def _next_pool(s: Session, annotator_id: int, settings: QueueSettings, batch_id: int, now: datetime) -> int | None:
    """The best-ranked batch item this annotator may take: the batch first, then its reserve, by rank.

    The checks run on the 200 best-ranked open items first and on the rest
    only when none of those fits: PostgreSQL otherwise evaluates them for
    every open item before sorting (35 ms at 4,000 open items, measured)
    where SQLite walks the queue's index in rank order and stops at the first.
    """
    def fitting(candidates):
        return (select(candidates.c.item_id).where(
            _claims(candidates.c.item_id, now) < candidates.c.need, _skips(candidates.c.item_id) < settings.skip_limit,
            ~_mine(candidates.c.item_id, annotator_id, now), ~_retired(candidates.c.item_id),
            ~_issued_out(candidates.c.item_id)).order_by(candidates.c.rank).limit(1))

    open_items = (select(BatchItem.item_id, BatchItem.rank, BatchItem.need)
                  .where(BatchItem.batch_id == batch_id, BatchItem.done.is_(False)).order_by(BatchItem.rank))
    item = s.scalar(fitting(open_items.limit(200).subquery()))
    return item if item is not None else s.scalar(fitting(open_items.offset(200).subquery()))


def serve_next(s: Session, annotator_id: int, settings: QueueSettings, now: datetime) -> Served | None:
    """The item this annotator should label now, as an assignment; None when nothing is left to serve.

    An open assignment of theirs is served again (a reload shows the same
    item) and renewed. Otherwise items come from the current batch in the
    strategy's order and then from its reserve (the next-ranked items,
    labeled while the next cycle trains), with unlabeled test items
    interleaved at ``test_share`` until the test target is labeled. An item
    is passed over when its answers and open assignments already reach what
    it needs, when ``skip_limit`` people skipped it, when this annotator
    answered or skipped it, or when it is retired or out with an outside
    service. One indexed query per source, whatever the batch size.
    """
    lock_queue(s)
    mine = s.execute(open_assignment(annotator_id, now)).first()
    if mine is not None:
        s.execute(update(Assignment).where(Assignment.id == mine[0]).values(expires_at=now + settings.idle))
        return Served(*mine)
    batch_id = current_batch(s)
    test_first = _want_test(s, annotator_id, settings, batch_id)
    for source in (["test", "pool"] if test_first else ["pool", "test"]):
        if source == "pool":
            item = None if batch_id is None else _next_pool(s, annotator_id, settings, batch_id, now)
        else:
            item = _next_test(s, annotator_id, settings, now) if settings.test_share > 0 or batch_id is None else None
        if item is not None:
            row = Assignment(item_id=item, annotator_id=annotator_id, batch_id=batch_id if source == "pool" else None,
                             assigned_at=now, expires_at=now + settings.idle)
            s.add(row)
            s.flush()
            return Served(row.id, item, source)
    return None


def heartbeat(s: Session, annotator_id: int, settings: QueueSettings, now: datetime) -> bool:
    """Renew the annotator's open assignment (the labeling page is open and in use); False when none is open."""
    result = s.execute(update(Assignment).where(Assignment.annotator_id == annotator_id,
                                                Assignment.answered_at.is_(None), Assignment.expires_at > now)
                       .values(expires_at=now + settings.idle))
    return result.rowcount > 0


STORED, AGAIN, TAKEN = "stored", "again", "taken"


def answer(s: Session, assignment_id: int, annotator_id: int, kind: str, label: str | None, labels: list[str],
           now: datetime, settings: QueueSettings = QueueSettings()) -> str:
    """Store the answer to an assignment; what happened: ``stored``, ``again`` or ``taken``.

    ``again``: the assignment was answered already (a repeated submit), nothing
    stored. ``taken``: the assignment expired while its page sat idle and the
    item went to someone else, who holds it or labeled it enough; the late
    answer is not stored, so the item is never labeled twice (answering an
    expired assignment whose item is still free stores it as usual). Seconds
    spent are measured on the server, from when the item was served.
    """
    if kind not in ("label", "skip", "unsure"):
        raise InvalidParameterError(f"answer must be label, skip or unsure, got {kind!r}")
    if kind == "label" and label not in labels:
        raise InvalidParameterError(f"unknown label {label!r}; labels are {', '.join(labels)}")
    lock_queue(s)
    row = s.execute(select(Assignment.item_id, Assignment.assigned_at, Assignment.answered_at, Assignment.expires_at)
                    .where(Assignment.id == assignment_id, Assignment.annotator_id == annotator_id)).first()
    if row is None:
        raise InvalidParameterError(f"no assignment {assignment_id} for this annotator")
    if row.answered_at is not None:
        return AGAIN
    expires = row.expires_at if row.expires_at.tzinfo else row.expires_at.replace(tzinfo=now.tzinfo)
    if _taken(s, row.item_id, annotator_id, settings, now, expired=expires <= now):
        s.execute(update(Assignment).where(Assignment.id == assignment_id).values(answered_at=now, outcome="late"))
        return TAKEN
    assigned = row.assigned_at if row.assigned_at.tzinfo else row.assigned_at.replace(tzinfo=now.tzinfo)
    s.execute(update(Assignment).where(Assignment.id == assignment_id).values(answered_at=now, outcome=kind))
    _mark_done(s, row.item_id, settings)
    s.add(Annotation(item_id=row.item_id, annotator_id=annotator_id, answer=kind,
                     label=label if kind == "label" else None, seconds=(now - assigned).total_seconds(),
                     source="web", created_at=now))
    return STORED


def _taken(s: Session, item_id: int, annotator_id: int, settings: QueueSettings, now: datetime,
           expired: bool = True) -> bool:
    """Its labels (from the app or a file) already reach what ``item_id`` needs, or (when this annotator's
    hold ``expired``) someone else holds it now."""
    if expired and s.scalar(select(func.count()).where(Assignment.item_id == item_id,
                                                       Assignment.annotator_id != annotator_id, _is_open(now))):
        return True
    batch_id = current_batch(s)
    need = s.scalar(select(BatchItem.need).where(BatchItem.batch_id == batch_id, BatchItem.item_id == item_id)) \
        if batch_id is not None else None
    need = need or int(answers_needed(np.array([item_id]), settings)[0])
    web = s.scalar(select(func.count()).where(Assignment.item_id == item_id, Assignment.outcome == "label")) or 0
    imported = s.scalar(select(func.count()).where(Annotation.item_id == item_id, Annotation.source != "web",
                                                   Annotation.answer == "label")) or 0
    return web + imported >= need


def mark_imported(s: Session, item_ids) -> None:
    """Items labeled from a file are done in the current batch."""
    batch_id = current_batch(s)
    ids = [int(i) for i in item_ids]
    for start in range(0, len(ids) if batch_id is not None else 0, 5_000):
        s.execute(update(BatchItem).where(BatchItem.batch_id == batch_id,
                                          BatchItem.item_id.in_(ids[start:start + 5_000])).values(done=True))


def _mark_done(s: Session, item_id: int, settings: QueueSettings) -> None:
    """Bring the item's ``done`` flag in the current batch up to date: labeled enough, or skipped by enough people."""
    batch_id = current_batch(s)
    if batch_id is None:
        return
    labeled = (select(func.count()).select_from(Assignment)
               .where(Assignment.item_id == item_id, Assignment.outcome == "label").scalar_subquery())
    s.execute(update(BatchItem).where(BatchItem.batch_id == batch_id, BatchItem.item_id == item_id)
              .values(done=or_(labeled >= BatchItem.need, _skips(item_id) >= settings.skip_limit,
                               _imported_label(item_id))))


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
        _mark_done(s, last.item_id, settings)
    s.execute(update(Assignment).where(Assignment.annotator_id == annotator_id, Assignment.answered_at.is_(None))
              .values(expires_at=now))
    if not _taken(s, last.item_id, annotator_id, settings, now):  # else the item went on to someone else meanwhile
        s.add(Assignment(item_id=last.item_id, annotator_id=annotator_id, batch_id=None, assigned_at=now,
                         expires_at=now + timedelta(minutes=settings.assignment_minutes)))
    return last.item_id


def release_open_assignments(s: Session, now: datetime) -> int:
    """Expire every open assignment (after a restart nobody is holding them); returns how many."""
    result = s.execute(update(Assignment).where(Assignment.answered_at.is_(None), Assignment.expires_at > now)
                       .values(expires_at=now))
    return result.rowcount


def batch_progress(s: Session) -> dict:
    """Items in the current batch proper (not its reserve), and how many still need answers (one query)."""
    newest = select(func.max(Batch.id)).where(Batch.purpose == "cycle").scalar_subquery()
    batch_id, size, done = s.execute(
        select(func.max(BatchItem.batch_id), func.count(), func.coalesce(func.sum(case((BatchItem.done, 1), else_=0)), 0))
        .join(Batch, Batch.id == BatchItem.batch_id)
        .where(BatchItem.batch_id == newest, BatchItem.rank < Batch.size)).one()
    if batch_id is None:
        return {"batch": None, "size": 0, "left": 0}
    return {"batch": int(batch_id), "size": int(size), "left": int(size - done)}


def _active_annotators(now: datetime, idle: timedelta):
    """People labeling now: holding an open assignment, or answered within the idle time."""
    return (select(Assignment.annotator_id).where(or_(_is_open(now), Assignment.answered_at >= now - idle))
            .distinct())


def batch_closed(s: Session, settings: QueueSettings, now: datetime) -> bool:
    """True when no item of the current batch proper can still be answered by someone labeling now.

    An item is settled when it has its labels, or ``skip_limit`` people
    skipped it, or it is retired or out with an outside service; an item
    nobody holds and no active annotator may take (they all skipped it, or
    everybody walked away and their assignments expired after the idle time)
    no longer holds the cycle back either. So a skip, an unsure or an
    abandoned item never keeps the next cycle from training.
    """
    batch_id = current_batch(s)
    if batch_id is None:
        return True
    active = _active_annotators(now, settings.idle).subquery()
    held = exists().where(Assignment.item_id == BatchItem.item_id, _is_open(now))
    takeable = exists().select_from(active).where(~_mine(BatchItem.item_id, active.c.annotator_id, now))
    pending = s.scalar(
        select(func.count()).select_from(BatchItem).join(Batch, Batch.id == BatchItem.batch_id)
        .where(BatchItem.batch_id == batch_id, BatchItem.rank < Batch.size, BatchItem.done.is_(False),
               ~_retired(BatchItem.item_id), ~_issued_out(BatchItem.item_id),
               _skips(BatchItem.item_id) < settings.skip_limit, or_(held, takeable)))
    return not pending


def pool_left(s: Session) -> int:
    """Pool items without a label from anyone, not retired: what could still be selected and served."""
    return s.scalar(select(func.count()).where(Item.split == "pool", Item.retired_at.is_(None),
                                               ~_labeled(Item.id))) or 0


def pool_labeled(s: Session) -> int:
    """Pool items with a label from anyone, not retired: the training labels a label budget counts."""
    return s.scalar(select(func.count()).where(Item.split == "pool", Item.retired_at.is_(None),
                                               _labeled(Item.id))) or 0


def held_items(s: Session, item_ids, now: datetime) -> set[int]:
    """Which of ``item_ids`` someone holds open in the app now."""
    ids = [int(i) for i in item_ids]
    return {int(i) for start in range(0, len(ids), 5_000)
            for i in s.scalars(select(Assignment.item_id).where(Assignment.item_id.in_(ids[start:start + 5_000]),
                                                               _is_open(now)))}


def skipped_out(s: Session, settings: QueueSettings) -> set[int]:
    """Items skipped or marked unsure by ``skip_limit`` people: left out of later batches too."""
    q = (select(Assignment.item_id).where(Assignment.outcome.in_(("skip", "unsure"))).group_by(Assignment.item_id)
         .having(func.count() >= settings.skip_limit))
    return {int(i) for i in s.scalars(q)}
