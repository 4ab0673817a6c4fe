"""Curating a project's items: retiring bad ones (duplicates, broken images, off-topic rows) and restoring them.

Retiring never deletes: the item, its answers and its batch history stay;
it is left out of selection, training, the queue and exports from then on.
"""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path
from typing import TYPE_CHECKING

from activelabel.errors import (
    InvalidParameterError,
    MalformedFileError,
    UnknownItemError,
    UnreadableFileError,
)
from activelabel.store import items as item_store
from activelabel.store import queue
from activelabel.store.schema import Item, utcnow

if TYPE_CHECKING:
    from activelabel.project import Project

__all__ = ["retire_items", "restore_items", "read_ids"]


def _resolve(s, external_ids: Iterable[str]) -> dict[str, tuple[int, bool]]:
    ids = [str(i).strip() for i in external_ids]
    if not ids or not all(ids):
        raise InvalidParameterError("give at least one item id (and no empty ones)")
    # an id the database could not hold (a NUL byte, too long) names no item: not looked up (PostgreSQL refuses it)
    limit = Item.__table__.c.external_id.type.length
    found = item_store.find_items(s, [i for i in ids if "\x00" not in i and len(i) <= limit])
    missing = [i for i in ids if i not in found]
    if missing:
        more = f" (and {len(missing) - 1} more)" if len(missing) > 1 else ""
        raise UnknownItemError(f"no item with id {missing[0]!r}{more}; nothing was changed")
    return found


def retire_items(project: Project, external_ids: Iterable[str], *, reason: str | None = None) -> dict:
    """Retire items by their ids: all of them, or none when any id is unknown.

    Returns ``{"retired": newly retired, "already": retired before}``.

    Raises
    ------
    UnknownItemError
        An id the project does not have (the message names it); nothing is retired.
    """
    with project.store.session() as s:
        queue.lock_queue(s)
        found = _resolve(s, external_ids)
        n = item_store.retire(s, [i for i, _ in found.values()], reason or None, utcnow())
    return {"retired": n, "already": len(found) - n}


def restore_items(project: Project, external_ids: Iterable[str]) -> dict:
    """Bring retired items back: ``{"restored": n, "not_retired": m}``; unknown ids change nothing."""
    with project.store.session() as s:
        queue.lock_queue(s)
        found = _resolve(s, external_ids)
        n = item_store.restore(s, [i for i, _ in found.values()])
    return {"restored": n, "not_retired": len(found) - n}


def read_ids(path: str | Path, id_column: str = "id") -> list[str]:
    """Item ids from a file: the ``id_column`` of a CSV, JSONL or Parquet file (a ``query`` batch file
    works as is), or one id per line of any other text file (blank lines and ``#`` comments ignored).

    Raises
    ------
    UnreadableFileError, MissingColumnError, MalformedFileError
        From reading the file; the message names it.
    """
    from activelabel.files import FORMATS, read_records

    path = Path(path)
    if FORMATS.get(path.suffix.lower()) in ("csv", "jsonl", "parquet"):
        records = read_records(path)
        records.require(id_column)
        return [str(v).strip() for v in records.frame[id_column].dropna() if str(v).strip()]
    if not path.is_file():
        raise UnreadableFileError(f"{path}: no such file")
    try:
        text = path.read_text(encoding="utf-8-sig")
    except UnicodeDecodeError:
        raise MalformedFileError(f"{path}: not UTF-8 text; save the file as UTF-8") from None
    return [line.strip() for line in text.splitlines() if line.strip() and not line.lstrip().startswith("#")]
