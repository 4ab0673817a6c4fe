"""Queue bookkeeping: when and how an assignment was answered; answers wanted per batch item

An assignment is answered once, so a repeated submit stores nothing twice;
its outcome and the batch item's ``need`` let the queue find the next free
item with one indexed query.

Revision ID: 0002
Revises: 0001
"""

import sqlalchemy as sa
from alembic import op

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("assignments") as batch:
        batch.add_column(sa.Column("answered_at", sa.DateTime(timezone=True), nullable=True))
        batch.add_column(sa.Column("outcome", sa.String(length=7), nullable=True))
    with op.batch_alter_table("batch_items") as batch:
        batch.add_column(sa.Column("need", sa.Integer(), nullable=False, server_default="1"))
        batch.add_column(sa.Column("done", sa.Boolean(), nullable=False, server_default=sa.false()))
        batch.create_index("ix_batch_items_queue", ["batch_id", "done", "rank"])


def downgrade() -> None:
    with op.batch_alter_table("batch_items") as batch:
        batch.drop_index("ix_batch_items_queue")
        batch.drop_column("done")
        batch.drop_column("need")
    with op.batch_alter_table("assignments") as batch:
        batch.drop_column("outcome")
        batch.drop_column("answered_at")
