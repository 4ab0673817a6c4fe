"""Queue indexes: an annotator's open assignment and today's answers without reading their history

Without them, asking for the next item read every assignment the annotator
ever had, and the "labeled today" count every annotation they ever gave:
fine for a day, slow after months of labeling. They replace the
one-column annotator indexes, which they start with.

Revision ID: 0003
Revises: 0002
"""

from alembic import op

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_index("ix_assignments_open", "assignments", ["annotator_id", "answered_at"])
    op.create_index("ix_annotations_annotator_time", "annotations", ["annotator_id", "created_at"])
    op.drop_index("ix_assignments_annotator", table_name="assignments")
    op.drop_index("ix_annotations_annotator", table_name="annotations")


def downgrade() -> None:
    op.create_index("ix_annotations_annotator", "annotations", ["annotator_id"])
    op.create_index("ix_assignments_annotator", "assignments", ["annotator_id"])
    op.drop_index("ix_annotations_annotator_time", table_name="annotations")
    op.drop_index("ix_assignments_open", table_name="assignments")
