"""Retiring items (``activelabel items remove``) and bringing them back: two columns, never a deletion.

A retired item keeps its row, its answers and its batch history; it is only
left out of selection, training, the queue and exports.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime

from sqlalchemy import func, select, update
from sqlalchemy.orm import Session

from activelabel.store.schema import Item

__all__ = ["find_items", "retire", "restore", "count_retired"]

_CHUNK = 5_000  # ids per IN (...) list


def find_items(s: Session, external_ids: Sequence[str]) -> dict[str, tuple[int, bool]]:
    """``{external_id: (id, retired)}`` for those of ``external_ids`` the project has."""
    ids = list(dict.fromkeys(map(str, external_ids)))
    found: dict[str, tuple[int, bool]] = {}
    for start in range(0, len(ids), _CHUNK):
        q = select(Item.external_id, Item.id, Item.retired_at.is_not(None)).where(
            Item.external_id.in_(ids[start:start + _CHUNK]))
        found.update({r[0]: (int(r[1]), bool(r[2])) for r in s.execute(q)})
    return found


def _update(s: Session, item_ids: Sequence[int], condition, values: dict) -> int:
    """Update the items among ``item_ids`` that meet ``condition``, in chunks; returns how many."""
    ids = [int(i) for i in item_ids]
    return sum(s.execute(update(Item).where(Item.id.in_(ids[start:start + _CHUNK]), condition).values(**values))
               .rowcount for start in range(0, len(ids), _CHUNK))


def retire(s: Session, item_ids: Sequence[int], reason: str | None, now: datetime) -> int:
    """Retire the items not retired yet (an already retired item keeps its time and reason); returns how many."""
    return _update(s, item_ids, Item.retired_at.is_(None), {"retired_at": now, "retired_reason": reason})


def restore(s: Session, item_ids: Sequence[int]) -> int:
    """Bring retired items back; returns how many were retired."""
    return _update(s, item_ids, Item.retired_at.is_not(None), {"retired_at": None, "retired_reason": None})


def count_retired(s: Session) -> int:
    return s.scalar(select(func.count()).where(Item.retired_at.is_not(None))) or 0
