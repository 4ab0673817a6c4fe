"""Repository functions: every query the project, the CLI and the app make, each taking a session.

Rows never leave this module as ORM objects where a plain frame or record
will do, so callers do not depend on the session still being open.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable, Sequence
from typing import Any

import numpy as np
import pandas as pd
from sqlalchemy import func, insert, select, union
from sqlalchemy.orm import Session

from activelabel.store.adjudication import SOURCE as ADJUDICATION
from activelabel.store.schema import (
    Annotation,
    Annotator,
    Assignment,
    Batch,
    BatchItem,
    Cycle,
    Import,
    Item,
)

__all__ = [
    "known_items", "items_state", "insert_items", "record_import", "add_annotations", "annotations_frame", "current_labels",
    "standing_answers", "items_frame", "annotator_by_token", "annotator_ids", "hash_token", "add_cycle", "cycles",
    "add_batch", "count_imports", "settled_items", "newest_answer_id", "item_view", "served_to", "annotator_pace",
    "newest_good_cycle", "annotators_frame", "retired_times", "answers_export_frame",
]

_CHUNK = 20_000  # rows per INSERT round trip: large enough to be fast, small enough for bounded memory


def _frame(rows: Sequence[tuple], columns: list[str]) -> pd.DataFrame:
    """A frame from result rows, column by column (much faster than row by row for millions of rows)."""
    if not rows:
        return pd.DataFrame({c: [] for c in columns})
    return pd.DataFrame(dict(zip(columns, map(list, zip(*rows)))))


def known_items(s: Session, import_id: int | None = None) -> pd.DataFrame:
    """Items' ``id``, ``external_id`` and ``content_hash``: all of them, or those of one import."""
    query = select(Item.id, Item.external_id, Item.content_hash)
    if import_id is not None:
        query = query.where(Item.import_id == import_id)
    return _frame(s.execute(query).all(), ["id", "external_id", "content_hash"])


def items_state(s: Session) -> pd.DataFrame:
    """Every item in id order: ``id``, ``external_id``, ``split``, ``kind``, ``content_hash``, ``retired`` (bool)."""
    rows = s.execute(select(Item.id, Item.external_id, Item.split, Item.kind, Item.content_hash,
                            Item.retired_at.is_not(None)).order_by(Item.id)).all()
    frame = _frame(rows, ["id", "external_id", "split", "kind", "content_hash", "retired"])
    frame["retired"] = frame["retired"].astype(bool)
    return frame


def insert_items(s: Session, frame: pd.DataFrame) -> None:
    """Insert items from a frame with one column per :class:`Item` field (NaN or None for empty), in chunks."""
    table = Item.__table__
    columns = [c for c in frame.columns if frame[c].notna().any()]  # all-empty columns stay NULL
    for start in range(0, len(frame), _CHUNK):
        part = frame.iloc[start:start + _CHUNK]
        values = [part[c].astype(object).where(part[c].notna(), None).tolist() for c in columns]
        s.connection().execute(insert(table), [dict(zip(columns, row)) for row in zip(*values)])


def record_import(s: Session, *, path: str, kind: str, n_new: int, n_existing: int) -> int:
    row = Import(path=path, kind=kind, n_new=n_new, n_existing=n_existing)
    s.add(row)
    s.flush()
    return row.id


def count_imports(s: Session) -> int:
    return s.scalar(select(func.count()).select_from(Import)) or 0


def add_annotations(s: Session, rows: Sequence[dict]) -> None:
    """Append answer events (dicts with item_id, answer, label, source, and optionally annotator_id, seconds)."""
    for start in range(0, len(rows), _CHUNK):
        s.connection().execute(insert(Annotation.__table__), rows[start:start + _CHUNK])


def annotations_frame(s: Session) -> pd.DataFrame:
    """Every annotation event, oldest first."""
    cols = [Annotation.id, Annotation.item_id, Annotation.annotator_id, Annotation.source, Annotation.answer,
            Annotation.label, Annotation.retracts_id, Annotation.seconds, Annotation.created_at]
    rows = s.execute(select(*cols).order_by(Annotation.id)).all()
    return pd.DataFrame(rows, columns=[c.key for c in cols])


def standing_answers(events: pd.DataFrame) -> tuple[pd.DataFrame, pd.Series]:
    """Each answerer's standing answer per item, and the items an admin settled.

    An answerer is an annotator, or the source file for unattributed imports
    (column ``voter``); their latest answer that was not retracted stands.
    Adjudications are not answers among others: they come back apart, as the
    latest adjudicated label per item id.
    """
    retracted = set(events["retracts_id"].dropna().astype(np.int64))
    live = events[(events["answer"] != "retract") & ~events["id"].isin(retracted)].sort_values("id")
    settled = live[live["source"] == ADJUDICATION].groupby("item_id")["label"].last()
    live = live[live["source"] != ADJUDICATION]
    voter = live["annotator_id"].astype("Int64").astype(str).where(live["annotator_id"].notna(),
                                                                    "source:" + live["source"])
    return live.assign(voter=voter).groupby(["item_id", "voter"], sort=False).tail(1), settled


def current_labels(events: pd.DataFrame) -> pd.DataFrame:
    """Each item's current label, derived from its answer events.

    Each answerer counts with their standing answer (:func:`standing_answers`);
    the item's label is the most frequent label among those answers, ties
    going to the most recent, unless an admin adjudicated it. Items whose
    answerers all skipped or were unsure have none.

    Returns
    -------
    DataFrame indexed by item_id with columns ``label`` and ``n_votes``.
    """
    empty = pd.DataFrame({"label": pd.Series(dtype=object), "n_votes": pd.Series(dtype=np.int64)})
    empty.index.name = "item_id"
    if events.empty:
        return empty
    latest, settled = standing_answers(events)
    labeled = latest[latest["answer"] == "label"]
    if labeled.empty and settled.empty:
        return empty
    tally = labeled.groupby(["item_id", "label"]).agg(votes=("id", "size"), last=("id", "max")).reset_index()
    tally = tally.sort_values(["item_id", "votes", "last"], ascending=[True, False, False])
    best = tally.drop_duplicates("item_id").set_index("item_id")["label"]
    best = pd.concat([best[~best.index.isin(settled.index)], settled]).sort_index()
    n_votes = labeled.groupby("item_id").size().reindex(best.index).fillna(0).astype(np.int64)
    out = pd.DataFrame({"label": best, "n_votes": n_votes})
    out.index.name = "item_id"
    return out


def items_frame(s: Session, *, content: bool = True, ids: Iterable[int] | None = None) -> pd.DataFrame:
    """Items ordered by id: ``id``, ``external_id``, ``split``, ``kind`` and, with ``content``, text/image/data."""
    cols = [Item.id, Item.external_id, Item.split, Item.kind]
    if content:
        cols += [Item.text, Item.image, Item.data]
    query = select(*cols).order_by(Item.id)
    if ids is not None:
        ids = [int(i) for i in ids]
        frames = [pd.DataFrame(s.execute(query.where(Item.id.in_(ids[i:i + 10_000]))).all(),
                               columns=[c.key for c in cols]) for i in range(0, len(ids), 10_000)]
        return (pd.concat(frames) if frames else pd.DataFrame(columns=[c.key for c in cols])).sort_values("id")
    return pd.DataFrame(s.execute(query).all(), columns=[c.key for c in cols])


def hash_token(token: str) -> str:
    """SHA-256 of a token: tokens are long random strings, so a plain hash suffices (no password stretching)."""
    return hashlib.sha256(token.encode()).hexdigest()


def annotator_by_token(s: Session, token: str) -> Annotator | None:
    return s.scalar(select(Annotator).where(Annotator.token_hash == hash_token(token)))


def annotator_ids(s: Session, names: Iterable[str], role: str = "external") -> dict[str, int]:
    """Ids of annotators by name, creating (tokenless) ones for names not seen before."""
    names = sorted(set(names))
    have = dict(s.execute(select(Annotator.name, Annotator.id).where(Annotator.name.in_(names))).all())
    for name in names:
        if name not in have:
            row = Annotator(name=name, role=role)
            s.add(row)
            s.flush()
            have[name] = row.id
    return have


def add_cycle(s: Session, **fields: Any) -> int:
    row = Cycle(**fields)
    s.add(row)
    s.flush()
    return row.id


def cycles(s: Session) -> list[Cycle]:
    return list(s.scalars(select(Cycle).order_by(Cycle.id)))


def add_batch(s: Session, *, cycle_id: int | None, purpose: str, strategy: str, item_ids: Sequence[int],
              scores: Sequence[float], is_random: Sequence[bool], need: Sequence[int] | None = None,
              size: int | None = None, file: str | None = None) -> int:
    """Record a batch; ``size`` is the batch proper (default all), the items ranked after it its reserve."""
    batch = Batch(cycle_id=cycle_id, purpose=purpose, strategy=strategy, size=len(item_ids) if size is None else size,
                  file=file)
    s.add(batch)
    s.flush()
    need = [1] * len(item_ids) if need is None else need
    rows = [{"batch_id": batch.id, "item_id": int(i), "rank": r, "score": float(sc) if np.isfinite(sc) else None,
             "is_random": bool(rd), "need": int(n)}
            for r, (i, sc, rd, n) in enumerate(zip(item_ids, scores, is_random, need))]
    for start in range(0, len(rows), _CHUNK):
        s.connection().execute(insert(BatchItem.__table__), rows[start:start + _CHUNK])
    return batch.id


def retired_or_out(s: Session, item_ids: Sequence[int]) -> set[int]:
    """Which of ``item_ids`` are retired or out with an outside service (labeled ones may still be relabeled)."""
    ids = [int(i) for i in item_ids]
    if not ids:
        return set()
    retired = select(Item.id).where(Item.id.in_(ids), Item.retired_at.is_not(None))
    issued = (select(BatchItem.item_id).join(Batch, Batch.id == BatchItem.batch_id)
              .where(BatchItem.item_id.in_(ids), Batch.purpose == "issued", Batch.released_at.is_(None)))
    return set(s.scalars(union(retired, issued)))


def settled_items(s: Session, item_ids: Sequence[int]) -> set[int]:
    """Which of ``item_ids`` have a label from anyone, are retired, or are out with an outside service."""
    ids = [int(i) for i in item_ids]
    out: set[int] = set()
    for start in range(0, len(ids), 5_000):
        part = ids[start:start + 5_000]
        web = select(Assignment.item_id).where(Assignment.item_id.in_(part), Assignment.outcome == "label")
        imported = select(Annotation.item_id).where(Annotation.item_id.in_(part), Annotation.source != "web",
                                                    Annotation.answer == "label")
        retired = select(Item.id).where(Item.id.in_(part), Item.retired_at.is_not(None))
        issued = (select(BatchItem.item_id).join(Batch, Batch.id == BatchItem.batch_id)
                  .where(BatchItem.item_id.in_(part), Batch.purpose == "issued", Batch.released_at.is_(None)))
        out.update(s.scalars(union(web, imported, retired, issued)))
    return out


def newest_answer_id(s: Session, labels_only: bool = False) -> int:
    """The id of the newest answer event (0 when there is none); with ``labels_only``, of the newest label."""
    query = select(func.max(Annotation.id))
    if labels_only:
        query = query.where(Annotation.answer == "label")
    return s.scalar(query) or 0


def item_view(s: Session, item_id: int) -> dict | None:
    """What the labeling page shows of an item."""
    row = s.execute(select(Item.id, Item.kind, Item.text, Item.data, Item.image, Item.split)
                    .where(Item.id == item_id)).first()
    return None if row is None else dict(row._mapping)


def served_to(s: Session, item_id: int, annotator_id: int) -> bool:
    """Was ``item_id`` ever served to this annotator (so they may see its image)?"""
    return bool(s.scalar(select(func.count()).where(Assignment.item_id == item_id,
                                                    Assignment.annotator_id == annotator_id)))


def annotator_pace(s: Session) -> list[tuple]:
    """Per person: name, role, answers, mean seconds, last answer time (the admin page's table)."""
    return s.execute(
        select(Annotator.name, Annotator.role, func.count(Annotation.id), func.avg(Annotation.seconds),
               func.max(Annotation.created_at))
        .join(Annotation, Annotation.annotator_id == Annotator.id, isouter=True)
        .where(Annotator.role.in_(("annotator", "admin")))
        .group_by(Annotator.id, Annotator.name, Annotator.role).order_by(Annotator.name)).all()


def newest_good_cycle(s: Session) -> tuple[int, int | None] | None:
    """The newest cycle that trained: its model version and the newest answer id it trained on; None before any.

    One row and one small JSON field, so a poll every few seconds stays cheap however many cycles there were
    (``cycles`` loads every cycle's stop-set predictions).
    """
    row = s.execute(select(Cycle.model_version, Cycle.details["answer_mark"])
                    .where(Cycle.error.is_(None), Cycle.model_version.is_not(None))
                    .order_by(Cycle.id.desc()).limit(1)).first()
    if row is None:
        return None
    mark = row[1]
    return int(row[0]), (None if mark is None else int(mark))


def annotators_frame(s: Session) -> pd.DataFrame:
    """Every annotator: ``id``, ``name``, ``role`` (people, and the tokenless names imports recorded)."""
    rows = s.execute(select(Annotator.id, Annotator.name, Annotator.role).order_by(Annotator.name)).all()
    return _frame(rows, ["id", "name", "role"])


def active_people(s: Session, role: str | None = None) -> set[int]:
    """Ids of the people who can log in and answer now (with a token, not revoked), of ``role`` if given."""
    query = select(Annotator.id).where(Annotator.token_hash.is_not(None), Annotator.revoked_at.is_(None))
    return set(s.scalars(query if role is None else query.where(Annotator.role == role)))


def adjudicated(s: Session, item_ids: list[int]) -> set[int]:
    """Which of ``item_ids`` an admin adjudicated (and the decision still stands)."""
    from activelabel.store.adjudication import SOURCE

    if not item_ids:
        return set()
    retracted = select(Annotation.retracts_id).where(Annotation.retracts_id.is_not(None))
    return set(s.scalars(select(Annotation.item_id).where(Annotation.item_id.in_(item_ids),
                                                          Annotation.source == SOURCE,
                                                          Annotation.id.not_in(retracted))))


def retired_times(s: Session) -> dict[int, object]:
    """When each retired item was retired, by item id (what an old cycle's test set held is rebuilt from it)."""
    return dict(s.execute(select(Item.id, Item.retired_at).where(Item.retired_at.is_not(None))).all())


def answers_export_frame(s: Session) -> pd.DataFrame:
    """Every answer event for an audit, oldest first, with its item's external id and split and who answered.

    Columns ``event``, ``item``, ``split``, ``annotator``, ``answer``, ``label``,
    ``seconds``, ``time``, ``source``, ``retracts`` (the event an undo retracts).
    """
    query = (select(Annotation.id, Item.external_id, Item.split, Annotator.name, Annotation.answer, Annotation.label,
                    Annotation.seconds, Annotation.created_at, Annotation.source, Annotation.retracts_id)
             .join(Item, Item.id == Annotation.item_id)
             .join(Annotator, Annotator.id == Annotation.annotator_id, isouter=True)
             .order_by(Annotation.id))
    columns = ["event", "item", "split", "annotator", "answer", "label", "seconds", "time", "source", "retracts"]
    return pd.DataFrame(s.execute(query).all(), columns=columns)
