"""Community jams: jams, their rounds, contributions, takes and votes; the chat's jam_pays

Revision ID: 0008
Revises: 0007
Create Date: 2026-12-05
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0008"
down_revision: str | None = "0007"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

NOT_ENDED = sa.text("state <> 'ended'")


def upgrade() -> None:
    op.create_table(
        "jams",
        sa.Column("id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), primary_key=True),
        sa.Column("platform", sa.String(16), nullable=False),
        sa.Column("chat_id", sa.String(64), nullable=False),
        sa.Column("origin_id", sa.String(64), nullable=False),
        sa.Column("scope_id", sa.String(64), nullable=False),
        sa.Column("host_id", sa.String(64), nullable=False),
        sa.Column("host_name", sa.String(128), nullable=True),
        sa.Column("theme", sa.Text(), nullable=False),
        sa.Column("takes", sa.Integer(), nullable=False),
        sa.Column("collect_minutes", sa.Integer(), nullable=False),
        sa.Column("vote_minutes", sa.Integer(), nullable=False),
        sa.Column("state", sa.String(16), nullable=False),
        sa.Column("round", sa.Integer(), nullable=False),
        sa.Column("token", sa.String(64), nullable=True, unique=True),
        sa.Column("context", sa.JSON(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
    )
    # One jam not ended per place a jam was started from (a second /jam start racing the
    # first fails here); the jams of a place, and of a guild or chat (/jam stats).
    op.create_index(
        "ux_jams_origin_live",
        "jams",
        ["platform", "origin_id"],
        unique=True,
        sqlite_where=NOT_ENDED,
        postgresql_where=NOT_ENDED,
    )
    op.create_index("ix_jams_chat", "jams", ["platform", "chat_id", "state"])
    op.create_index("ix_jams_scope", "jams", ["platform", "scope_id"])
    op.create_index("ix_jams_state", "jams", ["state"])
    op.create_table(
        "jam_rounds",
        sa.Column(
            "jam_id",
            sa.BigInteger().with_variant(sa.Integer(), "sqlite"),
            sa.ForeignKey("jams.id"),
            primary_key=True,
        ),
        sa.Column("number", sa.Integer(), primary_key=True),
        sa.Column("state", sa.String(16), nullable=False),
        sa.Column("attempt", sa.Integer(), nullable=False, server_default="1"),
        sa.Column("collect_ends_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("vote_ends_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("winner_take", sa.Integer(), nullable=True),
        sa.Column(
            "base_job_id",
            sa.BigInteger().with_variant(sa.Integer(), "sqlite"),
            sa.ForeignKey("jobs.id"),
            nullable=True,
        ),
        sa.Column("extended", sa.Boolean(), nullable=False, server_default=sa.text("false")),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
    )
    op.create_table(
        "jam_contributions",
        sa.Column(
            "jam_id",
            sa.BigInteger().with_variant(sa.Integer(), "sqlite"),
            sa.ForeignKey("jams.id"),
            primary_key=True,
        ),
        sa.Column("number", sa.Integer(), primary_key=True),
        sa.Column("round", sa.Integer(), nullable=False),
        sa.Column("part", sa.String(8), nullable=False),
        sa.Column("text", sa.Text(), nullable=False),
        sa.Column("author_id", sa.String(64), nullable=False),
        sa.Column("author_name", sa.String(128), nullable=True),
        sa.Column("removed", sa.Boolean(), nullable=False, server_default=sa.text("false")),
        sa.Column("at", sa.DateTime(timezone=True), nullable=False),
    )
    op.create_table(
        "jam_takes",
        sa.Column(
            "jam_id",
            sa.BigInteger().with_variant(sa.Integer(), "sqlite"),
            sa.ForeignKey("jams.id"),
            primary_key=True,
        ),
        sa.Column("round", sa.Integer(), primary_key=True),
        sa.Column("attempt", sa.Integer(), primary_key=True),
        sa.Column("take", sa.Integer(), primary_key=True),
        sa.Column(
            "job_id",
            sa.BigInteger().with_variant(sa.Integer(), "sqlite"),
            sa.ForeignKey("jobs.id"),
            nullable=False,
            unique=True,
        ),
    )
    op.create_table(
        "jam_votes",
        sa.Column(
            "jam_id",
            sa.BigInteger().with_variant(sa.Integer(), "sqlite"),
            sa.ForeignKey("jams.id"),
            primary_key=True,
        ),
        sa.Column("round", sa.Integer(), primary_key=True),
        sa.Column("voter_id", sa.String(64), primary_key=True),
        sa.Column("take", sa.Integer(), nullable=False),
        sa.Column("at", sa.DateTime(timezone=True), nullable=False),
    )
    op.add_column("chat_settings", sa.Column("jam_pays", sa.String(8), nullable=True))


def downgrade() -> None:
    op.drop_column("chat_settings", "jam_pays")
    for table in ("jam_votes", "jam_takes", "jam_contributions", "jam_rounds"):
        op.drop_table(table)
    for index in ("ix_jams_state", "ix_jams_scope", "ix_jams_chat", "ux_jams_origin_live"):
        op.drop_index(index, table_name="jams")
    op.drop_table("jams")
