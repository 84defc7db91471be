"""upstream run time; users' last service; an index for monthly sums; drop the unused poll
counter

Revision ID: 0002
Revises: 0001
Create Date: 2026-12-03
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

import storage.models

revision: str = "0002"
down_revision: str | None = "0001"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    # Plain ALTERs, no batch mode: SQLite >= 3.35 drops a column in place, and a batch
    # copy of `jobs` would trip the foreign keys that point at it.
    op.add_column("jobs", sa.Column("remote_seconds", sa.Float(), nullable=True))
    op.add_column(
        "users",
        sa.Column("last_served_at", storage.models.UTCDateTime(timezone=True), nullable=True),
    )
    op.drop_column("jobs", "polls")
    op.create_index("ix_jobs_created_at", "jobs", ["created_at"])


def downgrade() -> None:
    op.drop_index("ix_jobs_created_at", table_name="jobs")
    op.add_column(
        "jobs", sa.Column("polls", sa.Integer(), nullable=False, server_default=sa.text("0"))
    )
    op.drop_column("users", "last_served_at")
    op.drop_column("jobs", "remote_seconds")
