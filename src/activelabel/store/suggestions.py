"""What the labeling page needs to show the model's suggestions: the newest model and the items it may suggest for."""

from __future__ import annotations

from sqlalchemy import select
from sqlalchemy.orm import Session

from activelabel.store import queue, repo
from activelabel.store.schema import BatchItem, Cycle

__all__ = ["suggestion_key", "model_path", "batch_item_ids"]


def suggestion_key(s: Session) -> tuple[int, int | None] | None:
    """The newest trained model's version and the current batch (two indexed look-ups); None before any model."""
    newest = repo.newest_good_cycle(s)
    return None if newest is None else (newest[0], queue.current_batch(s))


def model_path(s: Session, version: int) -> str | None:
    """Where model ``version`` was saved, relative to the project folder."""
    return s.scalar(select(Cycle.model_path).where(Cycle.model_version == version))


def batch_item_ids(s: Session, batch_id: int | None) -> list[int]:
    """The items of batch ``batch_id`` (the batch proper and its reserve), by rank."""
    if batch_id is None:
        return []
    return [int(i) for i in s.scalars(select(BatchItem.item_id).where(BatchItem.batch_id == batch_id)
                                      .order_by(BatchItem.rank))]
