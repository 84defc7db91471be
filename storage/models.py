"""Typed tables. Rows stay inside `storage/`; frozen domain values cross the boundary."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from sqlalchemy import (
    JSON,
    BigInteger,
    Boolean,
    DateTime,
    Float,
    ForeignKey,
    Index,
    Integer,
    String,
    Text,
    TypeDecorator,
    UniqueConstraint,
    text,
)
from sqlalchemy.engine import Dialect
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column


class UTCDateTime(TypeDecorator[datetime]):
    """Aware UTC datetimes on every database (SQLite would hand back naive ones)."""

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError("naive datetime given to the database")
        return value.astimezone(UTC)

    def process_result_value(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


# Ids of the tables that grow with every song: 64-bit on PostgreSQL. SQLite's INTEGER PRIMARY
# KEY is already 64-bit, and a BIGINT key there would not be the rowid that numbers new rows.
BigId = BigInteger().with_variant(Integer(), "sqlite")


class Base(DeclarativeBase):
    type_annotation_map = {datetime: UTCDateTime(), dict[str, Any]: JSON()}  # noqa: RUF012


class UserRow(Base):
    __tablename__ = "users"
    __table_args__ = (
        UniqueConstraint("platform", "platform_user_id", name="uq_users_platform_id"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    platform: Mapped[str] = mapped_column(String(16))
    platform_user_id: Mapped[str] = mapped_column(String(64))
    display_name: Mapped[str | None] = mapped_column(String(128))
    created_at: Mapped[datetime]
    # Touched at the start of every enqueue: the write serialises one user's enqueues.
    last_request_at: Mapped[datetime | None]
    # When a job of theirs was last claimed: copied to their next songs (jobs.fair_served),
    # the fair queue's tie-break within a round.
    last_served_at: Mapped[datetime | None]


class JobRow(Base):
    __tablename__ = "jobs"
    __table_args__ = (
        # A backend's in-flight jobs; and, per user, their queued jobs in order (claims,
        # positions and /queue read a user's first few without scanning the queue).
        Index("ix_jobs_queue", "state", "backend", "user_id", "id"),
        # The fair queue in serving order (bot/scheduler.py): a claim reads its first entries,
        # a place in line counts the entries before a job's. Queued jobs only.
        Index(
            "ix_jobs_fair",
            "backend",
            "fair_round",
            "fair_served",
            "chat_turn",
            "id",
            sqlite_where=text("state = 'queued'"),
            postgresql_where=text("state = 'queued'"),
        ),
        Index("ix_jobs_user_state", "user_id", "state"),
        Index("ix_jobs_chat", "platform", "chat_id"),
        Index("ix_jobs_scope_state", "platform", "scope_id", "state"),
        Index("ix_jobs_created_at", "created_at"),  # this month's costs
    )

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    # platform + event id: a re-delivered chat event never creates a second job
    idempotency_key: Mapped[str | None] = mapped_column(String(160), unique=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id"))
    parent_id: Mapped[int | None] = mapped_column(BigId, ForeignKey("jobs.id"))

    platform: Mapped[str] = mapped_column(String(16))
    chat_id: Mapped[str] = mapped_column(String(64))
    # The community the chat belongs to: a Discord guild, or the Telegram chat itself.
    scope_id: Mapped[str] = mapped_column(String(64))
    platform_user_id: Mapped[str] = mapped_column(String(64))
    context: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)

    tags: Mapped[str] = mapped_column(Text)
    lyrics: Mapped[str] = mapped_column(Text, default="")
    duration: Mapped[int] = mapped_column(Integer)
    seed: Mapped[int] = mapped_column(BigInteger)
    takes: Mapped[int] = mapped_column(Integer, default=1, server_default="1")
    bpm: Mapped[int | None] = mapped_column(Integer)
    key_scale: Mapped[str | None] = mapped_column(String(16))
    time_signature: Mapped[int | None] = mapped_column(Integer)
    vocal_language: Mapped[str | None] = mapped_column(String(8))
    describe: Mapped[str] = mapped_column(Text, default="", server_default="")
    # What the job makes (bot.domain.Task), and for an edit its source and what to do to it
    # (bot.domain.Edit's fields but its task, as one object; NULL for a song).
    task: Mapped[str] = mapped_column(String(16), default="song", server_default="song")
    edit: Mapped[dict[str, Any] | None] = mapped_column(JSON)

    state: Mapped[str] = mapped_column(String(16))
    backend: Mapped[str] = mapped_column(String(16))
    remote_id: Mapped[str | None] = mapped_column(String(160))
    seed_used: Mapped[int | None] = mapped_column(BigInteger)
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    # The job's place in the fair queue, fixed when it is queued (bot/scheduler.py): served in
    # (fair_round, fair_served, chat_turn, id) order; kept when the job is handed back.
    fair_round: Mapped[int] = mapped_column(BigInteger, default=0, server_default="0")
    chat_turn: Mapped[int] = mapped_column(Integer, default=0, server_default="0")
    fair_served: Mapped[int] = mapped_column(BigInteger, default=0, server_default="0")
    progress: Mapped[float | None] = mapped_column(Float)
    progress_text: Mapped[str | None] = mapped_column(String(200))
    error_code: Mapped[str | None] = mapped_column(String(64))
    error_message: Mapped[str | None] = mapped_column(Text)
    nsfw: Mapped[bool] = mapped_column(Boolean, default=False)

    audio_path: Mapped[str | None] = mapped_column(String(512))
    audio_format: Mapped[str | None] = mapped_column(String(16))
    audio_duration: Mapped[float | None] = mapped_column(Float)
    delivered_message_id: Mapped[str | None] = mapped_column(String(64))
    # Each take of a job that asked for several (bot.domain.Take as a list of objects, see
    # storage/jobs/rows.py); NULL for a one-take job. The take its owner kept (▶ Keep N).
    take_states: Mapped[list[dict[str, Any]] | None] = mapped_column(JSON)
    kept_take: Mapped[int | None] = mapped_column(Integer)
    # What the job cost: USD on WaveSpeed (refunded upstream when it fails), GPU seconds
    # on a self-hosted server.
    cost_usd: Mapped[float | None] = mapped_column(Float)
    gpu_seconds: Mapped[float | None] = mapped_column(Float)
    # When the job completed upstream, in seconds after submit (the poll planner learns it).
    remote_seconds: Mapped[float | None] = mapped_column(Float)

    # Which process holds the job, and until when; an expired lease may be taken over.
    lease_owner: Mapped[str | None] = mapped_column(String(128))
    lease_expires_at: Mapped[datetime | None]

    created_at: Mapped[datetime]
    updated_at: Mapped[datetime]
    submitted_at: Mapped[datetime | None]
    finished_at: Mapped[datetime | None]
    delivered_at: Mapped[datetime | None]


class JobEventRow(Base):
    """One row per state change: the audit trail of a job."""

    __tablename__ = "job_events"

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    job_id: Mapped[int] = mapped_column(BigId, ForeignKey("jobs.id"), index=True)
    at: Mapped[datetime]
    from_state: Mapped[str | None] = mapped_column(String(16))
    to_state: Mapped[str] = mapped_column(String(16))
    detail: Mapped[str | None] = mapped_column(Text)


class LedgerRow(Base):
    """Quota movements. One reserve, then at most one commit or one refund, per job:
    the unique constraint makes a double refund impossible, not just unlikely."""

    __tablename__ = "quota_ledger"
    __table_args__ = (
        UniqueConstraint("job_id", "kind", name="uq_ledger_job_kind"),
        Index("ix_ledger_user_time", "user_id", "created_at"),
    )

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id"))
    job_id: Mapped[int] = mapped_column(BigId, ForeignKey("jobs.id"))
    kind: Mapped[str] = mapped_column(String(8))  # reserve | commit | refund
    seconds: Mapped[int] = mapped_column(Integer)
    created_at: Mapped[datetime]


class ChatSettingsRow(Base):
    """What a guild's or chat's admins decided. Unset columns fall back to the settings.
    The ``operator_*`` columns are the operator's (`acejam admin`): how far this chat may go
    past the settings. The chat's admins may only choose less."""

    __tablename__ = "chat_settings"
    __table_args__ = (UniqueConstraint("platform", "scope_id", name="uq_chat_settings_scope"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    platform: Mapped[str] = mapped_column(String(16))
    scope_id: Mapped[str] = mapped_column(String(64))
    quota_seconds_per_day: Mapped[int | None] = mapped_column(Integer)
    # role id (Discord) or "admins" → seconds per day for members holding it
    role_quotas: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    max_active_jobs: Mapped[int | None] = mapped_column(Integer)
    default_duration: Mapped[int | None] = mapped_column(Integer)
    max_duration: Mapped[int | None] = mapped_column(Integer)
    allowed_channels: Mapped[list[str]] = mapped_column(JSON, default=list)
    others_may_press: Mapped[bool] = mapped_column(Boolean, default=False)
    allow_nsfw: Mapped[bool] = mapped_column(Boolean, default=False)
    blocked_words: Mapped[list[str]] = mapped_column(JSON, default=list)
    monthly_budget_usd: Mapped[float | None] = mapped_column(Float)
    # Whether members may edit audio they send (NULL: on in direct messages, off in groups).
    own_audio: Mapped[bool | None] = mapped_column(Boolean)
    # Who pays for a jam's takes: "host" or "chat" (NULL: the host).
    jam_pays: Mapped[str | None] = mapped_column(String(8))
    operator_quota_seconds_per_day: Mapped[int | None] = mapped_column(Integer)  # -1 unlimited
    operator_max_active_jobs: Mapped[int | None] = mapped_column(Integer)
    updated_at: Mapped[datetime]


class UserOverrideRow(Base):
    """A user's own quota or block, in one scope or everywhere (scope_id "*").
    ``quota_seconds_per_day`` is what the scope's admins chose (at most what the operator
    allows); ``operator_quota_seconds_per_day`` is the operator's grant, which may be more."""

    __tablename__ = "user_overrides"
    __table_args__ = (
        UniqueConstraint("platform", "platform_user_id", "scope_id", name="uq_user_override"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    platform: Mapped[str] = mapped_column(String(16))
    platform_user_id: Mapped[str] = mapped_column(String(64))
    scope_id: Mapped[str] = mapped_column(String(64))
    quota_seconds_per_day: Mapped[int | None] = mapped_column(Integer)  # -1 = unlimited
    operator_quota_seconds_per_day: Mapped[int | None] = mapped_column(Integer)
    blocked: Mapped[bool] = mapped_column(Boolean, default=False)
    note: Mapped[str | None] = mapped_column(String(200))
    updated_at: Mapped[datetime]


class JamRow(Base):
    """A community jam (bot/jams/): where it lives, who hosts it, its current round."""

    __tablename__ = "jams"
    __table_args__ = (
        # One jam not ended per place it was started from: a second /jam start racing the
        # first fails here.
        Index(
            "ux_jams_origin_live",
            "platform",
            "origin_id",
            unique=True,
            sqlite_where=text("state <> 'ended'"),
            postgresql_where=text("state <> 'ended'"),
        ),
        Index("ix_jams_chat", "platform", "chat_id", "state"),
        Index("ix_jams_scope", "platform", "scope_id"),  # /jam stats
        Index("ix_jams_state", "state"),  # the clock's open jams
    )

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    platform: Mapped[str] = mapped_column(String(16))
    chat_id: Mapped[str] = mapped_column(String(64))
    origin_id: Mapped[str] = mapped_column(String(64))
    scope_id: Mapped[str] = mapped_column(String(64))
    host_id: Mapped[str] = mapped_column(String(64))
    host_name: Mapped[str | None] = mapped_column(String(128))
    theme: Mapped[str] = mapped_column(Text)
    takes: Mapped[int] = mapped_column(Integer)
    collect_minutes: Mapped[int] = mapped_column(Integer)
    vote_minutes: Mapped[int] = mapped_column(Integer)
    state: Mapped[str] = mapped_column(String(16))  # the current round's, or "ended"
    round: Mapped[int] = mapped_column(Integer)
    token: Mapped[str | None] = mapped_column(String(64), unique=True)  # the board's
    context: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    created_at: Mapped[datetime]
    updated_at: Mapped[datetime]


class JamRoundRow(Base):
    __tablename__ = "jam_rounds"

    jam_id: Mapped[int] = mapped_column(BigId, ForeignKey("jams.id"), primary_key=True)
    number: Mapped[int] = mapped_column(Integer, primary_key=True)
    state: Mapped[str] = mapped_column(String(16))
    # Which render of the round its takes are (one that made nothing may be tried again).
    attempt: Mapped[int] = mapped_column(Integer, default=1, server_default="1")
    collect_ends_at: Mapped[datetime | None]
    vote_ends_at: Mapped[datetime | None]
    winner_take: Mapped[int | None] = mapped_column(Integer)
    base_job_id: Mapped[int | None] = mapped_column(BigId, ForeignKey("jobs.id"))
    extended: Mapped[bool] = mapped_column(Boolean, default=False, server_default=text("false"))
    updated_at: Mapped[datetime]


class JamContributionRow(Base):
    __tablename__ = "jam_contributions"

    jam_id: Mapped[int] = mapped_column(BigId, ForeignKey("jams.id"), primary_key=True)
    number: Mapped[int] = mapped_column(Integer, primary_key=True)  # per jam, from 1
    round: Mapped[int] = mapped_column(Integer)
    part: Mapped[str] = mapped_column(String(8))  # tag | line
    # Before ``text`` below, which hides sqlalchemy's text() in the rest of the class body.
    removed: Mapped[bool] = mapped_column(Boolean, default=False, server_default=text("false"))
    text: Mapped[str] = mapped_column(Text)
    author_id: Mapped[str] = mapped_column(String(64))
    author_name: Mapped[str | None] = mapped_column(String(128))
    at: Mapped[datetime]


class JamTakeRow(Base):
    """A take's job (an ordinary job, jam:<jam>:<round>:<take> its idempotency key)."""

    __tablename__ = "jam_takes"

    jam_id: Mapped[int] = mapped_column(BigId, ForeignKey("jams.id"), primary_key=True)
    round: Mapped[int] = mapped_column(Integer, primary_key=True)
    attempt: Mapped[int] = mapped_column(Integer, primary_key=True)
    take: Mapped[int] = mapped_column(Integer, primary_key=True)
    job_id: Mapped[int] = mapped_column(BigId, ForeignKey("jobs.id"), unique=True)


class JamVoteRow(Base):
    """One vote per member and round: the key makes a second press an update, not a vote."""

    __tablename__ = "jam_votes"

    jam_id: Mapped[int] = mapped_column(BigId, ForeignKey("jams.id"), primary_key=True)
    round: Mapped[int] = mapped_column(Integer, primary_key=True)
    voter_id: Mapped[str] = mapped_column(String(64), primary_key=True)
    take: Mapped[int] = mapped_column(Integer)
    at: Mapped[datetime]
