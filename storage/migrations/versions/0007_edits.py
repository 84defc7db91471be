"""Edits of a track (extend, remix, repaint): what a job makes, its source, and the chat's
own-audio switch

Revision ID: 0007
Revises: 0006
Create Date: 2026-12-05
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0007"
down_revision: str | None = "0006"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    # Every job made before edits existed made a song: the server default says so.
    op.add_column("jobs", sa.Column("task", sa.String(16), nullable=False, server_default="song"))
    # The Edit's fields as one object (storage/jobs/rows.py); NULL for a song.
    op.add_column("jobs", sa.Column("edit", sa.JSON(), nullable=True))
    # NULL: the default (on in direct messages, off in groups; bot/edits.py).
    op.add_column("chat_settings", sa.Column("own_audio", sa.Boolean(), nullable=True))


def downgrade() -> None:
    op.drop_column("chat_settings", "own_audio")
    for column in ("edit", "task"):
        op.drop_column("jobs", column)
