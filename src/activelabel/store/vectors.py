"""Precomputed feature vectors (table ``item_vectors``) and the lookups an import makes before it writes.

Vectors are stored as float32 bytes, one row per (item, featurizer), and
are written in the same transaction as their items, so no committed item
of a precomputed project is ever without its vector.
"""

from __future__ import annotations

from collections.abc import Iterable

import numpy as np
import pandas as pd
from sqlalchemy import func, insert, select, update
from sqlalchemy.orm import Session

from activelabel.store.schema import Annotation, Import, Item, ItemVector

__all__ = ["feature_columns", "import_with_hash", "imported_answer_keys", "insert_vectors", "load_vectors", "other_kind",
           "set_import_hash", "vector_dimension", "vector_ids"]

_CHUNK = 5_000  # vectors per INSERT round trip (a 384-dim vector is 1.5 kB)


def insert_vectors(s: Session, featurizer: str, item_ids: np.ndarray, X: np.ndarray) -> None:
    """Store row ``k`` of ``X`` (n, d) as the vector of ``item_ids[k]``, as float32 bytes, in chunks."""
    X = np.ascontiguousarray(X, dtype=np.float32)
    ids = np.asarray(item_ids, dtype=np.int64)
    for start in range(0, len(ids), _CHUNK):
        part = X[start:start + _CHUNK]
        s.connection().execute(insert(ItemVector.__table__),
                               [{"item_id": int(i), "featurizer": featurizer, "vector": row.tobytes()}
                                for i, row in zip(ids[start:start + _CHUNK], part)])


def load_vectors(s: Session, featurizer: str) -> tuple[np.ndarray, np.ndarray | None]:
    """Every stored vector of ``featurizer``: item ids (ascending) and the (n, d) float32 matrix (None if none)."""
    rows = s.execute(select(ItemVector.item_id, ItemVector.vector).where(ItemVector.featurizer == featurizer)
                     .order_by(ItemVector.item_id)).all()
    if not rows:
        return np.empty(0, dtype=np.int64), None
    ids = np.fromiter((r[0] for r in rows), dtype=np.int64, count=len(rows))
    X = np.frombuffer(b"".join(bytes(r[1]) for r in rows), dtype=np.float32).reshape(len(rows), -1)
    return ids, X


def vector_ids(s: Session, featurizer: str) -> np.ndarray:
    """Ids of the items that have a vector of ``featurizer``."""
    ids = s.scalars(select(ItemVector.item_id).where(ItemVector.featurizer == featurizer)).all()
    return np.asarray(ids, dtype=np.int64)


def vector_dimension(s: Session, featurizer: str) -> int | None:
    """The length of the stored vectors of ``featurizer``, or None when there are none."""
    size = s.scalar(select(func.length(ItemVector.vector)).where(ItemVector.featurizer == featurizer).limit(1))
    return None if size is None else int(size) // 4


def other_kind(s: Session, kind: str) -> str | None:
    """The kind (text, image, row) of a stored item that is not ``kind``, or None when every item is of that kind."""
    return s.scalar(select(Item.kind).where(Item.kind != kind).limit(1))


def feature_columns(s: Session) -> list[str] | None:
    """The table columns of the project's row items (those of its first one), or None when it has none."""
    data = s.scalar(select(Item.data).where(Item.kind == "row").order_by(Item.id).limit(1))
    return None if data is None else list(data)


def import_with_hash(s: Session, content_hash: str, kind: str) -> int | None:
    """The id of an earlier import of ``kind`` whose file had this content hash, or None."""
    return s.scalar(select(Import.id).where(Import.content_hash == content_hash, Import.kind == kind)
                    .order_by(Import.id).limit(1))


def set_import_hash(s: Session, import_id: int, content_hash: str) -> None:
    s.execute(update(Import).where(Import.id == import_id).values(content_hash=content_hash))


def imported_answer_keys(s: Session, item_ids: Iterable[int]) -> pd.DataFrame:
    """Answers imported from files (source ``import:...``) for these items: ``item_id``, ``annotator_id``,
    ``answer``, ``label``, one row per stored answer (so a key stored twice appears twice)."""
    ids = sorted({int(i) for i in item_ids})
    cols = [Annotation.item_id, Annotation.annotator_id, Annotation.answer, Annotation.label]
    rows = []
    for start in range(0, len(ids), 10_000):
        rows += s.execute(select(*cols).where(Annotation.source.startswith("import:"),
                                              Annotation.item_id.in_(ids[start:start + 10_000]))).all()
    return pd.DataFrame(rows, columns=["item_id", "annotator_id", "answer", "label"])
