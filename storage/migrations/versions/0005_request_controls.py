"""A request's takes, musical controls and description

Revision ID: 0005
Revises: 0004
Create Date: 2026-12-05
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0005"
down_revision: str | None = "0004"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.add_column("jobs", sa.Column("takes", sa.Integer(), nullable=False, server_default="1"))
    op.add_column("jobs", sa.Column("bpm", sa.Integer(), nullable=True))
    op.add_column("jobs", sa.Column("key_scale", sa.String(16), nullable=True))
    op.add_column("jobs", sa.Column("time_signature", sa.Integer(), nullable=True))
    op.add_column("jobs", sa.Column("vocal_language", sa.String(8), nullable=True))
    op.add_column("jobs", sa.Column("describe", sa.Text(), nullable=False, server_default=""))


def downgrade() -> None:
    for column in ("describe", "vocal_language", "time_signature", "key_scale", "bpm", "takes"):
        op.drop_column("jobs", column)
