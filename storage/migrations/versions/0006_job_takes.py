"""Each take of a job that asks for several, and the take its owner kept

Revision ID: 0006
Revises: 0005
Create Date: 2026-12-05
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0006"
down_revision: str | None = "0005"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    # One JSON list on the job rather than a table of takes: the takes are only ever read
    # with their job and written by its lease holder, so a job with several costs no extra
    # statement anywhere, and a one-take job (NULL) costs exactly what it did.
    op.add_column("jobs", sa.Column("take_states", sa.JSON(), nullable=True))
    op.add_column("jobs", sa.Column("kept_take", sa.Integer(), nullable=True))


def downgrade() -> None:
    for column in ("kept_take", "take_states"):
        op.drop_column("jobs", column)
