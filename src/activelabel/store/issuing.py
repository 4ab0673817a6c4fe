"""Batches issued to an outside labeling service (``activelabel query``): what is out, what came back."""

from __future__ import annotations

import numpy as np
from sqlalchemy import select
from sqlalchemy.orm import Session

from activelabel.store.schema import Batch, BatchItem

__all__ = ["issued_items"]


def issued_items(s: Session) -> np.ndarray:
    """Ids of items handed to an outside service (``query``), labeled or not."""
    q = select(BatchItem.item_id).join(Batch, Batch.id == BatchItem.batch_id).where(Batch.purpose == "issued")
    return np.fromiter(s.scalars(q), dtype=np.int64)
