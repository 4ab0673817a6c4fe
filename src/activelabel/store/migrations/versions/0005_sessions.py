"""Sessions and annotator management: login sessions, revoked annotators

``sessions`` holds one row per browser login (the hash of its random id,
never the id itself); ``annotators.revoked_at`` marks an annotator whose
token, logins and sessions no longer work (their answers stay).

Revision ID: 0005
Revises: 0004
"""

import sqlalchemy as sa
from alembic import op

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "sessions",
        sa.Column("id_hash", sa.String(length=64), primary_key=True),
        sa.Column("annotator_id", sa.Integer(), sa.ForeignKey("annotators.id"), nullable=False),
        sa.Column("token_hash", sa.String(length=64), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("seen_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("ended_at", sa.DateTime(timezone=True), nullable=True),
    )
    op.create_index("ix_sessions_annotator", "sessions", ["annotator_id"])
    with op.batch_alter_table("annotators") as batch:
        batch.add_column(sa.Column("revoked_at", sa.DateTime(timezone=True), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("annotators") as batch:
        batch.drop_column("revoked_at")
    op.drop_index("ix_sessions_annotator", table_name="sessions")
    op.drop_table("sessions")
