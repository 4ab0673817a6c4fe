"""Team safety: leases (one training, one server), unique model versions, retired items, vectors in the database

``leases`` holds the project-wide train lock and the server lease;
``cycles.model_version`` becomes unique; items can be retired without
deleting their history; precomputed feature vectors live beside their items
(written in the same transaction); issued batches remember their file and
whether they were released; imports remember their file's content hash.

Revision ID: 0004
Revises: 0003
"""

import sqlalchemy as sa
from alembic import op

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "leases",
        sa.Column("name", sa.String(length=50), primary_key=True),
        sa.Column("holder", sa.String(length=300), nullable=False),
        sa.Column("acquired_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("heartbeat_at", sa.DateTime(timezone=True), nullable=False),
    )
    op.create_table(
        "item_vectors",
        sa.Column("item_id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), sa.ForeignKey("items.id"),
                  primary_key=True),
        sa.Column("featurizer", sa.String(length=200), primary_key=True),
        sa.Column("vector", sa.LargeBinary(), nullable=False),
    )
    with op.batch_alter_table("items") as batch:
        batch.add_column(sa.Column("retired_at", sa.DateTime(timezone=True), nullable=True))
        batch.add_column(sa.Column("retired_reason", sa.Text(), nullable=True))
    with op.batch_alter_table("imports") as batch:
        batch.add_column(sa.Column("content_hash", sa.String(length=64), nullable=True))
    with op.batch_alter_table("batches") as batch:
        batch.add_column(sa.Column("file", sa.Text(), nullable=True))
        batch.add_column(sa.Column("released_at", sa.DateTime(timezone=True), nullable=True))
    with op.batch_alter_table("cycles") as batch:
        batch.create_unique_constraint("uq_cycles_model_version", ["model_version"])
    op.create_index("ix_batch_items_item", "batch_items", ["item_id"])  # is an item in an open or issued batch


def downgrade() -> None:
    op.drop_index("ix_batch_items_item", table_name="batch_items")
    with op.batch_alter_table("cycles") as batch:
        batch.drop_constraint("uq_cycles_model_version", type_="unique")
    with op.batch_alter_table("batches") as batch:
        batch.drop_column("released_at")
        batch.drop_column("file")
    with op.batch_alter_table("imports") as batch:
        batch.drop_column("content_hash")
    with op.batch_alter_table("items") as batch:
        batch.drop_column("retired_reason")
        batch.drop_column("retired_at")
    op.drop_table("item_vectors")
    op.drop_table("leases")
