"""Adjudication: an admin settles a contested item; the label is final.

An adjudication is an answer event like any other (append-only), with
``source = "adjudication"``: it is not one more opinion among the annotators'
but the item's label, whatever the votes say. An admin changes it by
adjudicating the item again (the latest decision stands).
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import insert, select
from sqlalchemy.orm import Session

from activelabel.errors import InvalidParameterError
from activelabel.store.schema import Annotation, Item

__all__ = ["SOURCE", "adjudicate"]

SOURCE = "adjudication"


def adjudicate(s: Session, item_id: int, annotator_id: int, label: str, labels: list[str], now: datetime) -> None:
    """Record ``label`` as the final label of ``item_id``, decided by admin ``annotator_id``."""
    if label not in labels:
        raise InvalidParameterError(f"unknown label {label[:40]!r}; labels are {', '.join(labels)}")
    if not 0 < item_id < 2**63:
        raise InvalidParameterError(f"no item {item_id}")
    retired = s.execute(select(Item.retired_at).where(Item.id == item_id)).first()
    if retired is None:
        raise InvalidParameterError(f"no item {item_id}")
    if retired[0] is not None:
        raise InvalidParameterError(f"item {item_id} is retired")
    s.execute(insert(Annotation).values(item_id=item_id, annotator_id=annotator_id, answer="label", label=label,
                                        source=SOURCE, created_at=now))
    # settled: done in the open batch (an item waiting there for another opinion would otherwise hold it open,
    # since the queue counts the decision as a label and serves the item to nobody)
    from activelabel.store.queue import mark_imported  # the queue imports this module's SOURCE

    mark_imported(s, [item_id])
