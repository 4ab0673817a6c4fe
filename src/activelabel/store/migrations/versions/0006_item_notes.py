"""Item notes: an annotator's comment on an item, or a flag for an admin's review

``item_notes`` is append-only, like ``annotations``: one row per comment or
flag, with who wrote it and when.

Revision ID: 0006
Revises: 0005
"""

import sqlalchemy as sa
from alembic import op

revision = "0006"
down_revision = "0005"
branch_labels = None
depends_on = None


def upgrade() -> None:
    big_id = sa.BigInteger().with_variant(sa.Integer(), "sqlite")
    op.create_table(
        "item_notes",
        sa.Column("id", big_id, primary_key=True),
        sa.Column("item_id", big_id, sa.ForeignKey("items.id"), nullable=False),
        sa.Column("annotator_id", sa.Integer(), sa.ForeignKey("annotators.id"), nullable=False),
        sa.Column("kind", sa.String(length=7), nullable=False),
        sa.Column("text", sa.Text(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
    )
    op.create_index("ix_item_notes_item", "item_notes", ["item_id"])
    op.create_index("ix_item_notes_time", "item_notes", ["created_at"])


def downgrade() -> None:
    op.drop_index("ix_item_notes_time", table_name="item_notes")
    op.drop_index("ix_item_notes_item", table_name="item_notes")
    op.drop_table("item_notes")
