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
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime, timedelta
from functools import cache

import numpy as np
from sqlalchemy import Select, and_, bindparam, case, exists, func, insert, or_, select, text, union_all, update
from sqlalchemy.orm import Session, aliased

from activelabel.errors import InvalidParameterError
from activelabel.store.adjudication import SOURCE as ADJUDICATION
from activelabel.store.schema import Annotation, Annotator, Assignment, Batch, BatchItem, Item

__all__ = ["QueueSettings", "Served", "lock_queue", "current_batch", "open_assignment",
           "serve_next", "heartbeat", "answer", "undo_last", "release_open_assignments", "batch_progress",
           "annotator_progress", "batch_closed", "held_items", "skipped_out", "pool_left", "pool_labeled",
           "test_target", "test_labeled", "answers_needed", "label_claims", "mark_imported", "mark_done"]

_QUEUE_LOCK = 7_205_911  # any constant: the advisory lock key of the queue

# The statements on the serving path are built once, with bound parameters, and reused: building
# them (SQLAlchemy's coercions and operators) cost more than running them (measured: 4.9 ms per
# next item, of which SQLite ran 0.5 ms), and every millisecond counts while the queue's lock is held.
NOW, WHO, BATCH, ITEM = bindparam("now"), bindparam("who"), bindparam("batch"), bindparam("item")
SKIP_LIMIT, MOST = bindparam("skip_limit"), bindparam("most")


@dataclass(frozen=True)
class QueueSettings:
    """How items are handed out.

    test_share : share of served items that are unlabeled test items, until the test target is labeled.
    overlap_fraction, overlap_annotators : that share of items (chosen by a hash of their id,
        so the choice is stable) goes to that many different annotators, for agreement.
    assignment_minutes : idle time; an unanswered assignment expires after it (a heartbeat renews it).
    skip_limit : an item skipped or marked unsure by this many people leaves the batch.
    test_target : labeled test items wanted; 0 means every test item.
    answer_cap, label_cap : the answers the money budget pays for, and the training labels of the label
        budget (None: no cap). An item is handed out only while answers (or pool labels) plus the items
        out with people stay below the cap, so the items in flight cannot overshoot the budget.
    """

    test_share: float = 0.2
    overlap_fraction: float = 0.0
    overlap_annotators: int = 3
    assignment_minutes: float = 5.0
    skip_limit: int = 2
    test_target: int = 0
    answer_cap: int | None = None
    label_cap: int | None = None

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


def label_claims(s: Session, item_ids: Iterable[int]) -> dict[int, int]:
    """Labels each item holds, as the queue counts them: labels given in the app and labels from files."""
    ids = [int(i) for i in item_ids]
    if not ids:
        return {}
    web = (select(Assignment.item_id, func.count()).where(Assignment.item_id.in_(ids), Assignment.outcome == "label")
           .group_by(Assignment.item_id))
    files = (select(Annotation.item_id, func.count()).where(Annotation.item_id.in_(ids), Annotation.source != "web",
                                                            Annotation.answer == "label").group_by(Annotation.item_id))
    out: dict[int, int] = {}
    for query in (web, files):
        for item, n in s.execute(query):
            out[int(item)] = out.get(int(item), 0) + int(n)
    return out


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
    """This annotator already answered ``item`` (label, skip or unsure, in the app or in a file imported under
    their name) or holds it open."""
    in_app = (exists().where(Assignment.item_id == item, Assignment.annotator_id == annotator_id,
                             or_(Assignment.outcome.in_(("label", "skip", "unsure")), _is_open(now)))
              .correlate_except(Assignment))  # the item may come from two levels out (see batch_closed)
    imported = (exists().where(Annotation.item_id == item, Annotation.annotator_id == annotator_id,
                               Annotation.source != "web", Annotation.answer != "retract")
                .correlate_except(Annotation))
    return or_(in_app, imported)


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


def open_assignment(annotator_id: int, now: datetime) -> Select:
    """The annotator's unexpired, unanswered assignment (newest first), found by ``ix_assignments_open``."""
    return (select(Assignment.id, Assignment.item_id, Item.split).join(Item, Item.id == Assignment.item_id)
            .where(Assignment.annotator_id == annotator_id, Assignment.answered_at.is_(None),
                   Assignment.expires_at > now, Item.retired_at.is_(None)).order_by(Assignment.id.desc()).limit(1))


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


def _want_test(served: int, settings: QueueSettings, batch_id: int | None) -> bool:
    """Is it this annotator's turn for a test item (every 1/test_share-th item of the ``served`` so far)?"""
    if settings.test_share <= 0:
        return False
    turn = int((served + 1) * settings.test_share) > int(served * settings.test_share)
    return batch_id is None or turn


@cache
def _test_candidates():
    """Test items the annotator ``who`` may take, in id order (with the places taken on each)."""
    return (select(Item.id, _claims(Item.id, NOW)).where(
        Item.split == "test", Item.retired_at.is_(None), _claims(Item.id, NOW) < MOST,
        _skips(Item.id) < SKIP_LIMIT, ~_mine(Item.id, WHO, NOW), ~_issued_out(Item.id))
        .order_by(Item.id).limit(200))


def _next_test(s: Session, annotator_id: int, settings: QueueSettings, now: datetime) -> int | None:
    """The first test item this annotator may take, or None once the test target is labeled.

    Never an item labeled from any source, never a second person's unless
    overlap asks for it, never one this annotator skipped. The labeled test
    items are counted only when the target is set below every test item
    (otherwise the candidates themselves say when none is left).
    """
    if settings.test_target and test_labeled(s) >= test_target(s, settings):
        return None
    most = settings.overlap_annotators if settings.overlap_fraction > 0 else 1
    candidates = s.execute(_test_candidates(), {"now": now, "who": annotator_id, "most": most,
                                                "skip_limit": settings.skip_limit}).all()
    if not candidates:
        return None
    need = answers_needed(np.array([c[0] for c in candidates]), settings)
    return next((int(c[0]) for c, n in zip(candidates, need) if c[1] < n), None)


@cache
def _pool_candidate(rest: bool):
    """The best-ranked open item of batch ``batch`` that annotator ``who`` may take: among the 200
    best-ranked open items, or (``rest``) among the others."""
    open_items = (select(BatchItem.item_id, BatchItem.rank, BatchItem.need)
                  .where(BatchItem.batch_id == BATCH, BatchItem.done.is_(False)).order_by(BatchItem.rank))
    c = (open_items.offset(200) if rest else open_items.limit(200)).subquery()
    return (select(c.c.item_id).where(
        _claims(c.c.item_id, NOW) < c.c.need, _skips(c.c.item_id) < SKIP_LIMIT,
        ~_mine(c.c.item_id, WHO, NOW), ~_retired(c.c.item_id), ~_issued_out(c.c.item_id))
        .order_by(c.c.rank).limit(1))


def _next_pool(s: Session, annotator_id: int, settings: QueueSettings, batch_id: int, now: datetime) -> int | None:
    """The best-ranked batch item this annotator may take: the batch first, then its reserve, by rank.

    The checks run on the 200 best-ranked open items first and on the rest
    only when none of those fits: PostgreSQL otherwise evaluates them for
    every open item before sorting (35 ms at 4,000 open items, measured)
    where SQLite walks the queue's index in rank order and stops at the first.
    """
    params = {"batch": batch_id, "now": now, "who": annotator_id, "skip_limit": settings.skip_limit}
    item = s.scalar(_pool_candidate(False), params)
    return item if item is not None else s.scalar(_pool_candidate(True), params)


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
    mine = s.execute(_open_mine(), {"who": annotator_id, "now": now}).first()
    if mine is not None:
        s.execute(_renew(), {"assignment": mine[0], "expires": now + settings.idle})
        return Served(*mine)
    if (settings.answer_cap is not None or settings.label_cap is not None) and over_cap(s, settings, now):
        return None
    batch_id, served = s.execute(_batch_and_served(), {"who": annotator_id}).one()
    test_first = _want_test(served, settings, batch_id)
    for source in (["test", "pool"] if test_first else ["pool", "test"]):
        if source == "pool":
            item = None if batch_id is None else _next_pool(s, annotator_id, settings, batch_id, now)
        else:
            item = _next_test(s, annotator_id, settings, now) if settings.test_share > 0 or batch_id is None else None
        if item is not None:
            new_id = s.execute(insert(Assignment).values(
                item_id=item, annotator_id=annotator_id, batch_id=batch_id if source == "pool" else None,
                assigned_at=now, expires_at=now + settings.idle)).inserted_primary_key[0]
            return Served(int(new_id), item, source)
    return None


@dataclass(frozen=True)
class BudgetUse:
    """What the budget has paid for and what is out with people now.

    paid : answers paid for (a person's answer on an item once, however often they changed it, undo and
        answer again or a correction; an imported answer naming nobody once).
    out : items out with people: open assignments in the app and items issued to an outside service
        (``query``, not released, not yet labeled). ``out_pool`` counts the pool items among them.
    labeled : pool items with a label (the training labels a label budget counts).
    """

    paid: int
    out: int
    labeled: int
    out_pool: int

    def left(self, settings: QueueSettings) -> int | None:
        """Items that may still go out before a cap is reached (None without a cap); pool items only count
        against the label budget, so this is the smaller of the two."""
        lefts = []
        if settings.answer_cap is not None:
            lefts.append(settings.answer_cap - self.paid - self.out)
        if settings.label_cap is not None:
            lefts.append(settings.label_cap - self.labeled - self.out_pool)
        return min(lefts) if lefts else None


def budget_use(s: Session, now: datetime) -> BudgetUse:
    """What the budget has paid for and what is out with people (:class:`BudgetUse`), in one round trip."""
    return BudgetUse(*s.execute(_budget_use(), {"now": now}).one())


@cache
def _budget_use():
    given = and_(Annotation.answer != "retract", Annotation.source != ADJUDICATION)  # admins' decisions: unpaid
    people = select(Annotation.annotator_id, Annotation.item_id).where(given, Annotation.annotator_id.is_not(None))
    paid = (select(func.count()).select_from(people.distinct().subquery()).scalar_subquery()
            + select(func.count()).select_from(Annotation).where(given, Annotation.annotator_id.is_(None))
            .scalar_subquery())
    held = select(Assignment.item_id.label("item_id")).where(_is_open(NOW))
    issued = (select(BatchItem.item_id.label("item_id")).join(Batch, Batch.id == BatchItem.batch_id)
              .where(Batch.purpose == "issued", Batch.released_at.is_(None), ~_labeled(BatchItem.item_id)))
    out = union_all(held, issued).subquery()
    counted = select(func.count()).select_from(out)
    return select(paid, counted.scalar_subquery(),
                  select(func.count()).select_from(Item)
                  .where(Item.split == "pool", Item.retired_at.is_(None), _labeled(Item.id)).scalar_subquery(),
                  counted.join(Item, Item.id == out.c.item_id).where(Item.split == "pool").scalar_subquery())


def over_cap(s: Session, settings: QueueSettings, now: datetime) -> bool:
    """The budget is spent, or the rest of it is out with people: nothing new may be handed out."""
    left = budget_use(s, now).left(settings)
    return left is not None and left <= 0


@cache
def _open_mine():
    return open_assignment(WHO, NOW)


@cache
def _renew():
    return update(Assignment).where(Assignment.id == bindparam("assignment")).values(expires_at=bindparam("expires"))


@cache
def _batch_and_served():
    """One round trip: the current batch and how many items annotator ``who`` was served so far."""
    return select(select(func.max(Batch.id)).where(Batch.purpose == "cycle").scalar_subquery(),
                  select(func.count()).select_from(Assignment).where(Assignment.annotator_id == WHO)
                  .scalar_subquery())


def heartbeat(s: Session, annotator_id: int, settings: QueueSettings, now: datetime) -> bool:
    """Renew the annotator's open assignment (the labeling page is open and in use); False when none is open."""
    result = s.execute(update(Assignment).where(Assignment.annotator_id == annotator_id,
                                                Assignment.answered_at.is_(None), Assignment.expires_at > now)
                       .values(expires_at=now + settings.idle))
    return result.rowcount > 0


STORED, AGAIN, TAKEN, RETIRED = "stored", "again", "taken", "retired"


def answer(s: Session, assignment_id: int, annotator_id: int, kind: str, label: str | None, labels: list[str],
           now: datetime, settings: QueueSettings = QueueSettings()) -> str:
    """Store the answer to an assignment; what happened: ``stored``, ``again`` or ``taken``.

    ``again``: the assignment was answered already (a repeated submit), nothing
    stored. ``taken``: the assignment expired while its page sat idle and the
    item went to someone else, who holds it or labeled it enough; the late
    answer is not stored, so the item is never labeled twice (answering an
    expired assignment whose item is still free stores it as usual).
    ``retired``: the item was retired while the page showed it; nothing is
    stored or paid. Seconds spent are measured on the server, from when the
    item was served.
    """
    if kind not in ("label", "skip", "unsure"):
        raise InvalidParameterError(f"answer must be label, skip or unsure, got {kind!r}")
    if not 0 < assignment_id < 2**63:  # beyond a 64-bit id the database fails on the number itself
        raise InvalidParameterError(f"no assignment {assignment_id} for this annotator")
    if kind == "label" and label not in labels:
        raise InvalidParameterError(f"unknown label {label!r}; labels are {', '.join(labels)}")
    lock_queue(s)
    row = s.execute(_assignment_of(), {"assignment": assignment_id, "who": annotator_id}).first()
    if row is None:
        raise InvalidParameterError(f"no assignment {assignment_id} for this annotator")
    if row.answered_at is not None:
        return AGAIN
    if row.retired_at is not None:
        s.execute(_close(), {"assignment": assignment_id, "now": now, "outcome": "late"})
        return RETIRED
    expires = row.expires_at if row.expires_at.tzinfo else row.expires_at.replace(tzinfo=now.tzinfo)
    batch_id, taken = _taken(s, row.item_id, annotator_id, settings, now, expired=expires <= now)
    if taken:
        s.execute(_close(), {"assignment": assignment_id, "now": now, "outcome": "late"})
        return TAKEN
    assigned = row.assigned_at if row.assigned_at.tzinfo else row.assigned_at.replace(tzinfo=now.tzinfo)
    s.execute(_close(), {"assignment": assignment_id, "now": now, "outcome": kind})
    mark_done(s, row.item_id, settings, batch_id)
    s.execute(insert(Annotation).values(item_id=row.item_id, annotator_id=annotator_id, answer=kind,
                                        label=label if kind == "label" else None,
                                        seconds=(now - assigned).total_seconds(), source="web", created_at=now))
    return STORED


@cache
def _assignment_of():
    return (select(Assignment.item_id, Assignment.assigned_at, Assignment.answered_at, Assignment.expires_at,
                   Item.retired_at).join(Item, Item.id == Assignment.item_id)
            .where(Assignment.id == bindparam("assignment"), Assignment.annotator_id == WHO))


@cache
def _close():
    return (update(Assignment).where(Assignment.id == bindparam("assignment"))
            .values(answered_at=NOW, outcome=bindparam("outcome")))


@cache
def _places_on_item():
    """One round trip: the current batch, what ``item`` needs in it, its labels (app and files), and how
    many people other than ``who`` hold it open now."""
    batch = select(func.max(Batch.id)).where(Batch.purpose == "cycle").scalar_subquery()
    need = select(BatchItem.need).where(BatchItem.batch_id == batch, BatchItem.item_id == ITEM).scalar_subquery()
    web = (select(func.count()).select_from(Assignment)
           .where(Assignment.item_id == ITEM, Assignment.outcome == "label").scalar_subquery())
    imported = (select(func.count()).select_from(Annotation)
                .where(Annotation.item_id == ITEM, Annotation.source != "web", Annotation.answer == "label")
                .scalar_subquery())
    held = (select(func.count()).select_from(Assignment)
            .where(Assignment.item_id == ITEM, Assignment.annotator_id != WHO, _is_open(NOW)).scalar_subquery())
    return select(batch, need, web + imported, held)


def _taken(s: Session, item_id: int, annotator_id: int, settings: QueueSettings, now: datetime,
           expired: bool = True) -> tuple[int | None, bool]:
    """The current batch, and whether its labels (from the app or a file) already reach what ``item_id``
    needs, or (when this annotator's hold ``expired``) someone else holds it now."""
    batch_id, need, labeled, held = s.execute(_places_on_item(), {"item": item_id, "who": annotator_id,
                                                                   "now": now}).one()
    need = need or int(answers_needed(np.array([item_id]), settings)[0])
    return batch_id, bool(expired and held) or labeled >= need


def mark_imported(s: Session, item_ids: Iterable[int]) -> None:
    """Items labeled from a file are done in the current batch."""
    batch_id = current_batch(s)
    ids = [int(i) for i in item_ids]
    for start in range(0, len(ids) if batch_id is not None else 0, 5_000):
        s.execute(update(BatchItem).where(BatchItem.batch_id == batch_id,
                                          BatchItem.item_id.in_(ids[start:start + 5_000])).values(done=True))


def mark_done(s: Session, item_id: int, settings: QueueSettings, batch_id: int | None) -> None:
    """Bring the item's ``done`` flag in batch ``batch_id`` up to date: labeled enough, or skipped by enough people."""
    if batch_id is not None:
        s.execute(_update_done(), {"batch": batch_id, "item": item_id, "skip_limit": settings.skip_limit})


@cache
def _update_done():
    labeled = (select(func.count()).select_from(Assignment)
               .where(Assignment.item_id == ITEM, Assignment.outcome == "label").scalar_subquery())
    return (update(BatchItem).where(BatchItem.batch_id == BATCH, BatchItem.item_id == ITEM)
            .values(done=or_(labeled >= BatchItem.need, _skips(ITEM) >= SKIP_LIMIT, _imported_label(ITEM))))


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
        mark_done(s, last.item_id, settings, current_batch(s))
    s.execute(update(Assignment).where(Assignment.annotator_id == annotator_id, Assignment.answered_at.is_(None))
              .values(expires_at=now))
    if not _taken(s, last.item_id, annotator_id, settings, now)[1]:  # else the item went on to someone else meanwhile
        s.add(Assignment(item_id=last.item_id, annotator_id=annotator_id, batch_id=None, assigned_at=now,
                         expires_at=now + timedelta(minutes=settings.assignment_minutes)))
    return last.item_id


def release_open_assignments(s: Session, now: datetime) -> int:
    """Expire every open assignment (after a restart nobody is holding them); returns how many."""
    result = s.execute(update(Assignment).where(Assignment.answered_at.is_(None), Assignment.expires_at > now)
                       .values(expires_at=now))
    return result.rowcount


@cache
def _batch_progress():
    newest = select(func.max(Batch.id)).where(Batch.purpose == "cycle").scalar_subquery()
    return (select(func.max(BatchItem.batch_id), func.count(),
                   func.coalesce(func.sum(case((BatchItem.done, 1), else_=0)), 0))
            .join(Batch, Batch.id == BatchItem.batch_id).where(BatchItem.batch_id == newest, BatchItem.rank < Batch.size))


def batch_progress(s: Session) -> dict:
    """Items in the current batch proper (not its reserve), and how many still need answers (one query)."""
    batch_id, size, done = s.execute(_batch_progress()).one()
    if batch_id is None:
        return {"batch": None, "size": 0, "left": 0}
    return {"batch": int(batch_id), "size": int(size), "left": int(size - done)}


@cache
def _answers_since():
    """Labels and passes (skip, unsure) annotator ``who`` gave since ``since``, and how many of each they undid
    since then (two index lookups on ``ix_annotations_annotator_time``, the undone ones by primary key)."""
    undone = aliased(Annotation)
    given = (select(func.coalesce(func.sum(case((Annotation.answer == "label", 1), else_=0)), 0),
                    func.coalesce(func.sum(case((Annotation.answer.in_(("skip", "unsure")), 1), else_=0)), 0))
             .where(Annotation.annotator_id == WHO, Annotation.created_at >= bindparam("since")))
    taken_back = (select(func.coalesce(func.sum(case((undone.answer == "label", 1), else_=0)), 0),
                         func.coalesce(func.sum(case((undone.answer.in_(("skip", "unsure")), 1), else_=0)), 0))
                  .select_from(Annotation).join(undone, undone.id == Annotation.retracts_id)
                  .where(Annotation.annotator_id == WHO, Annotation.created_at >= bindparam("since"),
                         Annotation.answer == "retract", undone.created_at >= bindparam("since")))
    return given, taken_back


def annotator_progress(s: Session, annotator_id: int, since: datetime) -> dict:
    """What the labeling page shows: the annotator's labels and passes (skip, unsure) since ``since``, not
    counting undone ones, and the batch's progress."""
    given, taken_back = _answers_since()
    params = {"who": annotator_id, "since": since}
    labels, passes = s.execute(given, params).one()
    undone_labels, undone_passes = s.execute(taken_back, params).one()
    return {"today": int(labels - undone_labels), "passed": int(passes - undone_passes), **batch_progress(s)}


def _active_annotators(now: datetime, idle: timedelta):
    """People labeling now: holding an open assignment, or answered within the idle time (not revoked since)."""
    revoked = select(Annotator.id).where(Annotator.revoked_at.is_not(None))  # they can answer nothing more
    return (select(Assignment.annotator_id).where(or_(_is_open(now), Assignment.answered_at >= now - idle),
                                                  Assignment.annotator_id.not_in(revoked))
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


def held_items(s: Session, item_ids: Iterable[int], now: datetime) -> set[int]:
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
