"""The fair queue's order is stored: each job's round and turn, and an index of queued jobs
in serving order

Revision ID: 0004
Revises: 0003
Create Date: 2026-12-04
"""

from collections import Counter, defaultdict
from collections.abc import Sequence
from datetime import datetime

import sqlalchemy as sa
from alembic import op

revision: str = "0004"
down_revision: str | None = "0003"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

IN_FLIGHT = ("submitting", "submitted", "running")
QUEUED_ONLY = sa.text("state = 'queued'")


def upgrade() -> None:
    op.add_column(
        "jobs", sa.Column("fair_round", sa.BigInteger(), nullable=False, server_default="0")
    )
    op.add_column("jobs", sa.Column("chat_turn", sa.Integer(), nullable=False, server_default="0"))
    op.add_column(
        "jobs", sa.Column("fair_served", sa.BigInteger(), nullable=False, server_default="0")
    )
    _backfill()
    op.create_index(
        "ix_jobs_fair",
        "jobs",
        ["backend", "fair_round", "fair_served", "chat_turn", "id"],
        sqlite_where=QUEUED_ONLY,
        postgresql_where=QUEUED_ONLY,
    )


def downgrade() -> None:
    op.drop_index("ix_jobs_fair", table_name="jobs")
    op.drop_column("jobs", "fair_served")
    op.drop_column("jobs", "chat_turn")
    op.drop_column("jobs", "fair_round")


def _backfill() -> None:
    """Queued jobs keep the order the queue computed until now (0003): a user's k-th queued
    job in round k + their jobs in flight; within a round, chats take turns, then users
    served longest ago, then arrival. Each gets that round, and its rank within the round as
    its turn (their served mark stays 0); jobs in flight are in round 0, the round being
    served."""
    bind = op.get_bind()
    served: dict[int, float] = {
        # SQLite hands back text: only the order of these moments matters here.
        user_id: (at if isinstance(at, datetime) else datetime.fromisoformat(at)).timestamp()
        for user_id, at in bind.execute(sa.text("SELECT id, last_served_at FROM users"))
        if at is not None
    }
    flying: Counter[tuple[str, int]] = Counter()
    in_flight = sa.text("SELECT backend, user_id FROM jobs WHERE state IN :states").bindparams(
        sa.bindparam("states", expanding=True)
    )
    for backend, user_id in bind.execute(in_flight, {"states": list(IN_FLIGHT)}):
        flying[backend, user_id] += 1
    rounds: dict[str, list[tuple[int, float, int, str, int]]] = defaultdict(list)
    seen: Counter[tuple[str, int]] = Counter()
    queued = sa.text(
        "SELECT id, backend, user_id, platform, chat_id FROM jobs WHERE state = 'queued' "
        "ORDER BY id"
    )
    for job_id, backend, user_id, platform, chat_id in bind.execute(queued):
        round_ = flying[backend, user_id] + seen[backend, user_id]
        seen[backend, user_id] += 1
        when = served.get(user_id, float("-inf"))
        rounds[backend].append((round_, when, job_id, f"{platform}:{chat_id}", user_id))
    place = sa.text("UPDATE jobs SET fair_round = :round, chat_turn = :turn WHERE id = :id")
    for members in rounds.values():
        members.sort()
        by_round: dict[int, list[tuple[int, float, int, str, int]]] = defaultdict(list)
        for member in members:
            by_round[member[0]].append(member)
        updates = []
        for round_, jobs in by_round.items():
            per_chat: Counter[str] = Counter()
            keyed = []
            for rank, (_, _, job_id, chat, _) in enumerate(jobs):
                keyed.append((per_chat[chat], rank, job_id))
                per_chat[chat] += 1
            keyed.sort()
            updates += [
                {"round": round_, "turn": turn, "id": job_id}
                for turn, (_, _, job_id) in enumerate(keyed)
            ]
        if updates:
            bind.execute(place, updates)
