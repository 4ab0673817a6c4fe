"""The tables of a labeling project (SQLAlchemy 2.0 declarative models).

Annotations are append-only events: a correction, a skip or an undo is a
new row, never an update, so every label anyone gave survives. An item's
current label is derived from its events (:func:`activelabel.store.repo.current_labels`).
The migrations in ``migrations/versions`` create exactly these tables; a
test checks that the two agree.
"""

from __future__ import annotations

from datetime import UTC, datetime

from sqlalchemy import (
    JSON,
    BigInteger,
    Boolean,
    DateTime,
    Float,
    ForeignKey,
    Index,
    Integer,
    LargeBinary,
    String,
    Text,
    UniqueConstraint,
)
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

__all__ = ["Base", "Item", "ItemVector", "Annotator", "Annotation", "Cycle", "Batch", "BatchItem", "Assignment", "Import",
           "Lease", "LoginSession", "ItemNote",
           "ANSWERS", "SPLITS", "ROLES", "utcnow"]

ANSWERS = ("label", "skip", "unsure", "retract")
SPLITS = ("pool", "test")
ROLES = ("annotator", "admin", "external")

# SQLite has no 64-bit autoincrement type of its own; INTEGER is its rowid.
BigId = BigInteger().with_variant(Integer(), "sqlite")


def utcnow() -> datetime:
    return datetime.now(UTC)


class Base(DeclarativeBase):
    pass


class Item(Base):
    """One thing to label: text, an image path or a table row; in the pool or in the held-out test set."""

    __tablename__ = "items"
    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    external_id: Mapped[str] = mapped_column(String(200), unique=True)
    content_hash: Mapped[str] = mapped_column(String(64))
    kind: Mapped[str] = mapped_column(String(10))  # text, image or row
    text: Mapped[str | None] = mapped_column(Text)
    image: Mapped[str | None] = mapped_column(Text)  # absolute path
    data: Mapped[dict | None] = mapped_column(JSON)  # table row, or extra columns kept for export
    split: Mapped[str] = mapped_column(String(5))
    import_id: Mapped[int] = mapped_column(ForeignKey("imports.id"))
    retired_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))  # out of selection, training, export
    retired_reason: Mapped[str | None] = mapped_column(Text)
    __table_args__ = (Index("ix_items_split", "split"),)


class ItemVector(Base):
    """An item's precomputed feature vector (float32 bytes), stored in the same transaction as the item."""

    __tablename__ = "item_vectors"
    item_id: Mapped[int] = mapped_column(ForeignKey("items.id"), primary_key=True)
    featurizer: Mapped[str] = mapped_column(String(200), primary_key=True)
    vector: Mapped[bytes] = mapped_column(LargeBinary)


class Annotator(Base):
    """A person (or an outside service) who answers; only a hash of their token is stored."""

    __tablename__ = "annotators"
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    name: Mapped[str] = mapped_column(String(100), unique=True)
    role: Mapped[str] = mapped_column(String(10))
    token_hash: Mapped[str | None] = mapped_column(String(64), unique=True)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
    revoked_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))  # no login, no token, no session


class LoginSession(Base):
    """A browser's login: the cookie carries a random id, the table only its hash.

    It ends when logged out, when idle or old enough (the project's session
    settings), and when its annotator is revoked or their token rotated
    (``token_hash`` no longer matches theirs).
    """

    __tablename__ = "sessions"
    id_hash: Mapped[str] = mapped_column(String(64), primary_key=True)
    annotator_id: Mapped[int] = mapped_column(ForeignKey("annotators.id"))
    token_hash: Mapped[str] = mapped_column(String(64))  # the annotator's token hash when they logged in
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    seen_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    ended_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    __table_args__ = (Index("ix_sessions_annotator", "annotator_id"),)


class Annotation(Base):
    """One answer event: a label, a skip, unsure, or the retraction of an earlier answer (undo)."""

    __tablename__ = "annotations"
    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    item_id: Mapped[int] = mapped_column(ForeignKey("items.id"))
    annotator_id: Mapped[int | None] = mapped_column(ForeignKey("annotators.id"))
    answer: Mapped[str] = mapped_column(String(7))
    label: Mapped[str | None] = mapped_column(String(200))
    seconds: Mapped[float | None] = mapped_column(Float)
    source: Mapped[str] = mapped_column(String(200))  # "web", "import:labels.csv", ...
    retracts_id: Mapped[int | None] = mapped_column(ForeignKey("annotations.id"))
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
    __table_args__ = (Index("ix_annotations_item", "item_id"),
                      Index("ix_annotations_annotator_time", "annotator_id", "created_at"))


class Import(Base):
    """One import of a file: what it added."""

    __tablename__ = "imports"
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    path: Mapped[str] = mapped_column(Text)
    kind: Mapped[str] = mapped_column(String(20))  # items or labels
    n_new: Mapped[int] = mapped_column(Integer)
    n_existing: Mapped[int] = mapped_column(Integer)
    content_hash: Mapped[str | None] = mapped_column(String(64))  # of the file, so a re-import is recognized
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)


class Cycle(Base):
    """One training cycle: the model it produced, its test metrics, and the failure if it failed."""

    __tablename__ = "cycles"
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    model_version: Mapped[int | None] = mapped_column(Integer)  # unique; NULL for a failed cycle
    model_path: Mapped[str | None] = mapped_column(Text)
    strategy: Mapped[str] = mapped_column(String(100))
    featurizer: Mapped[str | None] = mapped_column(String(200))
    labels_used: Mapped[int] = mapped_column(Integer, default=0)
    test_labels: Mapped[int] = mapped_column(Integer, default=0)
    accuracy: Mapped[float | None] = mapped_column(Float)
    accuracy_low: Mapped[float | None] = mapped_column(Float)
    accuracy_high: Mapped[float | None] = mapped_column(Float)
    macro_f1: Mapped[float | None] = mapped_column(Float)
    macro_f1_low: Mapped[float | None] = mapped_column(Float)
    macro_f1_high: Mapped[float | None] = mapped_column(Float)
    money_spent: Mapped[float] = mapped_column(Float, default=0.0)
    seconds: Mapped[float | None] = mapped_column(Float)
    details: Mapped[dict | None] = mapped_column(JSON)  # stop-set predictions, classes
    error: Mapped[str | None] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
    __table_args__ = (UniqueConstraint("model_version", name="uq_cycles_model_version"),)


class Batch(Base):
    """Items selected together: a cycle's next batch, or a batch issued to an outside service."""

    __tablename__ = "batches"
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    cycle_id: Mapped[int | None] = mapped_column(ForeignKey("cycles.id"))
    purpose: Mapped[str] = mapped_column(String(10))  # cycle or issued
    strategy: Mapped[str] = mapped_column(String(100))
    size: Mapped[int] = mapped_column(Integer)  # the batch proper; items ranked after it are its reserve
    file: Mapped[str | None] = mapped_column(Text)  # where an issued batch was written
    released_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))  # unanswered items back to the pool
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)


class BatchItem(Base):
    __tablename__ = "batch_items"
    batch_id: Mapped[int] = mapped_column(ForeignKey("batches.id"), primary_key=True)
    item_id: Mapped[int] = mapped_column(ForeignKey("items.id"), primary_key=True)
    rank: Mapped[int] = mapped_column(Integer)
    score: Mapped[float | None] = mapped_column(Float)
    is_random: Mapped[bool] = mapped_column(Boolean, default=False)
    need: Mapped[int] = mapped_column(Integer, default=1)  # answers wanted: more than 1 for overlap items
    done: Mapped[bool] = mapped_column(Boolean, default=False)  # has its answers: the queue skips it by index
    __table_args__ = (Index("ix_batch_items_queue", "batch_id", "done", "rank"),
                      Index("ix_batch_items_item", "item_id"))


class Assignment(Base):
    """An item served to an annotator, until it is answered or expires."""

    __tablename__ = "assignments"
    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    item_id: Mapped[int] = mapped_column(ForeignKey("items.id"))
    annotator_id: Mapped[int] = mapped_column(ForeignKey("annotators.id"))
    batch_id: Mapped[int | None] = mapped_column(ForeignKey("batches.id"))
    assigned_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
    expires_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    answered_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    outcome: Mapped[str | None] = mapped_column(String(7))  # label, skip, unsure; undone after an undo
    __table_args__ = (Index("ix_assignments_item", "item_id"),
                      Index("ix_assignments_open", "annotator_id", "answered_at"))


class Lease(Base):
    """A named, exclusive, expiring hold on the project: ``train`` (one cycle at a time), ``serve`` (one server).

    The holder renews ``heartbeat_at``; a lease whose heartbeat is older than
    its time-out, or whose holder process on this host is gone, can be taken over.
    """

    __tablename__ = "leases"
    name: Mapped[str] = mapped_column(String(50), primary_key=True)
    holder: Mapped[str] = mapped_column(String(300))
    acquired_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    heartbeat_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))


class ItemNote(Base):
    """An annotator's comment on an item, or a flag asking an admin to look at it (append-only, like answers)."""

    __tablename__ = "item_notes"
    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    item_id: Mapped[int] = mapped_column(ForeignKey("items.id"))
    annotator_id: Mapped[int] = mapped_column(ForeignKey("annotators.id"))
    kind: Mapped[str] = mapped_column(String(7))  # comment or flag
    text: Mapped[str] = mapped_column(Text, default="")
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
    __table_args__ = (Index("ix_item_notes_item", "item_id"), Index("ix_item_notes_time", "created_at"))
