"""64-bit job ids; an index for each user's queued jobs; the operator's ceilings per chat and
per user

Revision ID: 0003
Revises: 0002
Create Date: 2026-12-04
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0003"
down_revision: str | None = "0002"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

# Every column holding a job id or an id of a table that grows with each song. SQLite needs
# nothing: its INTEGER PRIMARY KEY is already 64-bit.
WIDENED = (
    ("jobs", "id"),
    ("jobs", "parent_id"),
    ("job_events", "id"),
    ("job_events", "job_id"),
    ("quota_ledger", "id"),
    ("quota_ledger", "job_id"),
)
SEQUENCES = ("jobs", "job_events", "quota_ledger")


def _widen(to: type[sa.Integer], sequence_type: str) -> None:
    if op.get_bind().dialect.name != "postgresql":
        return
    for table, column in WIDENED:
        op.alter_column(table, column, type_=to())
    for table in SEQUENCES:
        # A serial column's sequence stops at 2**31 - 1 by its own type, whatever the column's.
        sequence = op.get_bind().scalar(sa.text(f"SELECT pg_get_serial_sequence('{table}', 'id')"))
        op.execute(f"ALTER SEQUENCE {sequence} AS {sequence_type}")


def upgrade() -> None:
    _widen(sa.BigInteger, "bigint")
    # (state, backend) was a prefix of this one: the in-flight counts use it as before.
    op.drop_index("ix_jobs_state_backend", table_name="jobs")
    op.create_index("ix_jobs_queue", "jobs", ["state", "backend", "user_id", "id"])
    op.add_column(
        "chat_settings", sa.Column("operator_quota_seconds_per_day", sa.Integer(), nullable=True)
    )
    op.add_column(
        "chat_settings", sa.Column("operator_max_active_jobs", sa.Integer(), nullable=True)
    )
    op.add_column(
        "user_overrides", sa.Column("operator_quota_seconds_per_day", sa.Integer(), nullable=True)
    )
    # Only `acejam admin` could write an everywhere-override: its quota is the operator's
    # grant. (A chat's own rows can't be told apart; they are capped like any chat admin's.)
    op.execute(
        "UPDATE user_overrides SET operator_quota_seconds_per_day = quota_seconds_per_day,"
        " quota_seconds_per_day = NULL WHERE scope_id = '*'"
    )


def downgrade() -> None:
    op.execute(
        "UPDATE user_overrides SET quota_seconds_per_day = operator_quota_seconds_per_day"
        " WHERE scope_id = '*' AND operator_quota_seconds_per_day IS NOT NULL"
    )
    op.drop_column("user_overrides", "operator_quota_seconds_per_day")
    op.drop_column("chat_settings", "operator_max_active_jobs")
    op.drop_column("chat_settings", "operator_quota_seconds_per_day")
    op.drop_index("ix_jobs_queue", table_name="jobs")
    op.create_index("ix_jobs_state_backend", "jobs", ["state", "backend"])
    _widen(sa.Integer, "integer")
