"""Every query on jobs, users and the quota ledger (procrastinate's JobManager role).

State changes are compare-and-set: ``UPDATE ... WHERE id = ? AND state IN (...)`` and a
check that one row changed, so two processes can never both move the same job. Each
change writes its `job_events` row and its ledger row in the same transaction.
"""

from __future__ import annotations

import zlib
from collections.abc import Collection, Iterable, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from sqlalchemy import (
    Integer,
    String,
    and_,
    bindparam,
    case,
    delete,
    func,
    insert,
    literal,
    or_,
    select,
    text,
    update,
)
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker
from sqlalchemy.orm import aliased

from bot.domain import (
    ACTIVE_STATES,
    FINAL_STATES,
    IN_FLIGHT_STATES,
    Destination,
    GenerationRequest,
    Job,
    JobId,
    JobState,
    UserId,
)
from bot.quotas import QUOTA_WINDOW, Refusal, UsageNeeds, UsageSnapshot
from bot.stores import EVERYTHING, Admission, Enqueued, NewJob, UsageRow, UserKey
from storage.errors import raises_store_unavailable
from storage.models import JobEventRow, JobRow, LedgerRow, UserRow


def row_to_job(row: JobRow) -> Job:
    return Job(
        id=JobId(row.id),
        user_id=UserId(row.user_id),
        request=GenerationRequest(
            tags=row.tags, lyrics=row.lyrics, duration=row.duration, seed=row.seed
        ),
        destination=Destination(
            platform=row.platform,
            chat_id=row.chat_id,
            user_id=row.platform_user_id,
            context=dict(row.context or {}),
            scope_id=row.scope_id,
        ),
        state=JobState(row.state),
        backend=row.backend,
        created_at=row.created_at,
        updated_at=row.updated_at,
        remote_id=row.remote_id,
        seed_used=row.seed_used,
        attempts=row.attempts,
        progress=row.progress,
        progress_text=row.progress_text,
        error_code=row.error_code,
        error_message=row.error_message,
        audio_path=row.audio_path,
        audio_format=row.audio_format,
        audio_duration=row.audio_duration,
        delivered_message_id=row.delivered_message_id,
        parent_id=JobId(row.parent_id) if row.parent_id is not None else None,
        submitted_at=row.submitted_at,
        finished_at=row.finished_at,
        nsfw=row.nsfw,
        cost_usd=row.cost_usd,
        gpu_seconds=row.gpu_seconds,
    )


QUEUED = JobState.QUEUED.value
# Job ids are 64-bit in the database: a number outside this range names no job (and the
# drivers would raise on it rather than find nothing).
MAX_JOB_ID = 2**63 - 1


def _is_job_id(job_id: int) -> bool:
    return 0 < job_id <= MAX_JOB_ID


def _in_line(*, limited: bool) -> Any:
    """Each waiting user's first ``:per_user`` queued jobs on ``:backend`` (all of them unless
    ``limited``), with their fair-queue round: a CTE of (id, user_id, platform, chat_id,
    served, flying, round).

    The rule is :func:`bot.scheduler.fair_order`'s (tests hold the two equal): a user's k-th
    queued job is in round k + their jobs in flight. The waiting users are found by a loose
    index scan of ``ix_jobs_queue`` (one seek per user), and each one's jobs are an index
    range stopped after ``per_user``: the cost never depends on how many songs anyone has
    queued beyond that, and what SQLite sorts stays in C; only rows asked for reach Python.
    Rounds below ``per_user`` are complete (a later round has a user's ``per_user`` jobs
    before it, so the first ``per_user`` places are exact too).
    """
    backend = bindparam("backend", type_=String)
    queued = and_(JobRow.state == QUEUED, JobRow.backend == backend)
    seek = (
        select(func.min(JobRow.user_id).label("user_id")).where(queued).cte("seek", recursive=True)
    )
    after = seek.alias("after")
    seek = seek.union_all(
        select(
            select(func.min(JobRow.user_id))
            .where(queued, JobRow.user_id > after.c.user_id)
            .scalar_subquery()
        ).where(after.c.user_id.is_not(None))
    )
    # Jobs in flight are few (at most the backend's concurrency): counted in one pass.
    upstream = (
        select(JobRow.user_id, func.count().label("n"))
        .where(JobRow.state.in_(_states(IN_FLIGHT_STATES)), JobRow.backend == backend)
        .group_by(JobRow.user_id)
        .subquery("upstream")
    )
    waiting = (
        select(
            UserRow.id.label("user_id"),
            UserRow.last_served_at.label("served"),
            func.coalesce(upstream.c.n, 0).label("flying"),
        )
        .select_from(seek)
        .join(UserRow, seek.c.user_id == UserRow.id)
        .outerjoin(upstream, upstream.c.user_id == UserRow.id)
        .cte("waiting")
        .prefix_with("MATERIALIZED")  # read once per user, not once per job
    )
    if not limited:
        theirs = and_(JobRow.user_id == waiting.c.user_id, queued)
    else:
        mine = aliased(JobRow)
        theirs = JobRow.id.in_(
            select(mine.id)
            .where(mine.state == QUEUED, mine.backend == backend, mine.user_id == waiting.c.user_id)
            .order_by(mine.id)
            .limit(bindparam("per_user", type_=Integer))
        )
    round_ = (
        waiting.c.flying
        - 1
        + func.row_number().over(partition_by=JobRow.user_id, order_by=JobRow.id)
    )
    return (
        select(
            JobRow.id,
            JobRow.user_id,
            JobRow.platform,
            JobRow.chat_id,
            waiting.c.served,
            waiting.c.flying,
            round_.label("round"),
        )
        .select_from(waiting)
        .join(JobRow, theirs)
        .cte("in_line")
        .prefix_with("MATERIALIZED")
    )


def _ranked(in_line: Any, *where: Any) -> Any:
    """Order within each round: users served longest ago (or never) first, then arrival
    (``place``); chats take turns (``k_chat``: a chat's n-th job of the round comes after
    every chat's (n-1)-th). The serving order is (round, k_chat, place)."""
    c = in_line.c
    in_round = (c.served.asc().nulls_first(), c.id)
    return (
        select(
            c.id,
            c.round,
            func.row_number()
            .over(partition_by=(c.round, c.platform, c.chat_id), order_by=in_round)
            .label("k_chat"),
            func.row_number().over(partition_by=c.round, order_by=in_round).label("place"),
        )
        .where(*where)
        .subquery("ranked")
    )


def _on_postgres(session: AsyncSession) -> bool:
    return session.get_bind().dialect.name == "postgresql"


async def _advisory_lock(session: AsyncSession, name: str) -> None:
    """A PostgreSQL lock held until the transaction ends."""
    await session.execute(
        text("SELECT pg_advisory_xact_lock(:key)"), {"key": zlib.crc32(name.encode())}
    )


def _states(states: Iterable[JobState]) -> list[str]:
    return [s.value for s in states]


def _head(*, limited: bool) -> Any:
    """The line in serving order: ids (the first ``:per_user`` only, when ``limited``)."""
    ranked = _ranked(_in_line(limited=limited))
    query = select(ranked.c.id).order_by(ranked.c.round, ranked.c.k_chat, ranked.c.place)
    return query.limit(bindparam("per_user", type_=Integer)) if limited else query


def _places() -> Any:
    """(id, place in line) of the jobs ``:wanted``, reading each waiting user's first
    ``:per_user`` jobs. A job in round R comes after every job of the rounds below — counted
    per user, not listed: min(queued, R - in flight) of each waiting user's — and within
    round R after the members ranked before it (at most one job per waiting user)."""
    in_line = _in_line(limited=True)
    wanted: Any = bindparam("wanted", expanding=True)
    asked = select(in_line.c.round).where(in_line.c.id.in_(wanted)).distinct().cte("asked")
    ranked = _ranked(in_line, in_line.c.round.in_(select(asked.c.round)))
    members = select(
        ranked.c.id,
        ranked.c.round,
        func.row_number()
        .over(partition_by=ranked.c.round, order_by=(ranked.c.k_chat, ranked.c.place))
        .label("n"),
    ).subquery("members")
    per_user = (
        select(func.count().label("queued"), func.max(in_line.c.flying).label("flying"))
        .group_by(in_line.c.user_id)
        .subquery("per_user")
    )
    earlier = asked.c.round - per_user.c.flying  # how many of a user's jobs come before
    before = (
        select(
            asked.c.round,
            func.sum(
                case(
                    (earlier <= 0, 0),
                    (earlier >= per_user.c.queued, per_user.c.queued),
                    else_=earlier,
                )
            ).label("jobs"),
        )
        .select_from(asked)
        .join(per_user, literal(True))
        .group_by(asked.c.round)
        .subquery("before")
    )
    return (
        select(members.c.id, members.c.n + before.c.jobs)
        .join(before, before.c.round == members.c.round)
        .where(members.c.id.in_(wanted))
    )


@dataclass(frozen=True)
class _QueueQueries:
    """The fair-queue statements, built once per store: SQLAlchemy takes longer to build one
    of them than SQLite takes to run it."""

    head: Any = field(default_factory=lambda: _head(limited=True))
    whole: Any = field(default_factory=lambda: _head(limited=False))
    places: Any = field(default_factory=_places)


@raises_store_unavailable
class SqlJobStore:
    """The core's job stores (bot/stores.py: JobStore, FairQueue, Leases, EventFeed, Reports)
    on SQLAlchemy (SQLite or PostgreSQL)."""

    def __init__(
        self,
        sessions: async_sessionmaker[AsyncSession],
        reads: async_sessionmaker[AsyncSession] | None = None,
    ) -> None:
        self._sessions = sessions  # transactions that write
        self._reads = reads or sessions  # queries only (SQLite: no write lock taken)
        self._queue = _QueueQueries()

    # ------------------------------------------------------------ users
    async def _touch_user(self, session: AsyncSession, who: UserKey, now: datetime) -> UserId:
        """The user's id, creating the row on first sight. Writing the row first serialises
        one user's enqueues (a row lock on PostgreSQL, the write lock on SQLite), so two
        requests can't both pass the quota."""
        touch = (
            update(UserRow)
            .where(UserRow.platform == who.platform, UserRow.platform_user_id == who.user_id)
            .values(last_request_at=now)
            .returning(UserRow.id)
        )
        found = (await session.execute(touch)).scalar_one_or_none()
        if found is not None:
            return UserId(found)
        try:
            async with session.begin_nested():
                created = await session.execute(
                    insert(UserRow)
                    .values(
                        platform=who.platform,
                        platform_user_id=who.user_id,
                        display_name=(who.display_name or "")[:128] or None,
                        created_at=now,
                        last_request_at=now,
                    )
                    .returning(UserRow.id)
                )
                return UserId(created.scalar_one())
        except IntegrityError:  # created meanwhile by a concurrent request (PostgreSQL)
            return UserId((await session.execute(touch)).scalar_one())

    async def find_user(self, platform: str, platform_user_id: str) -> UserId | None:
        async with self._reads() as session:
            found = await session.scalar(
                select(UserRow.id).where(
                    UserRow.platform == platform, UserRow.platform_user_id == platform_user_id
                )
            )
            return UserId(found) if found is not None else None

    # ------------------------------------------------------------ enqueue
    async def enqueue(
        self,
        new: NewJob,
        *,
        admit: Admission,
        now: datetime,
        needs: UsageNeeds = EVERYTHING,
    ) -> Enqueued | Refusal:
        """Insert a queued job and reserve its seconds, if ``admit`` lets it in: one
        transaction, which also finds the job's place in the queue.

        Returns :class:`Enqueued`, or whatever refusal ``admit`` returned.
        """
        async with self._sessions.begin() as session:
            if new.idempotency_key is not None:
                existing = await session.scalar(
                    select(JobRow).where(JobRow.idempotency_key == new.idempotency_key)
                )
                if existing is not None:
                    job = row_to_job(existing)
                    return Enqueued(
                        job, False, (await self._positions(session, [job])).get(job.id, 0)
                    )
            if _on_postgres(session):
                # Limits that count other users' jobs (the month's spending, the chat's songs)
                # serialise the enqueues they concern; the user row below only serialises this
                # user's. SQLite's BEGIN IMMEDIATE already lets one writer in at a time. Always
                # the budget first, then the chat: two locks never taken in opposite orders.
                if needs.month_cost:
                    await _advisory_lock(session, "acejam-budget")
                if needs.scope:
                    scope = f"{new.destination.platform}:{new.destination.scope}"
                    await _advisory_lock(session, f"acejam-scope:{scope}")
            user_id = await self._touch_user(session, new.user, now)
            usage = await self._usage(
                session,
                user_id,
                now,
                platform=new.destination.platform,
                scope=new.destination.scope,
                needs=needs,
            )
            refusal = admit(usage)
            if refusal is not None:
                return refusal
            request = new.request
            inserted = await session.execute(
                insert(JobRow)
                .values(
                    idempotency_key=new.idempotency_key,
                    user_id=user_id,
                    parent_id=new.parent_id,
                    platform=new.destination.platform,
                    chat_id=new.destination.chat_id,
                    scope_id=new.destination.scope,
                    platform_user_id=new.destination.user_id,
                    context=dict(new.destination.context),
                    tags=request.tags,
                    lyrics=request.lyrics,
                    duration=request.duration,
                    seed=request.seed,
                    state=JobState.QUEUED.value,
                    backend=new.backend,
                    attempts=0,
                    nsfw=False,
                    cost_usd=new.cost_usd,
                    created_at=now,
                    updated_at=now,
                )
                .returning(JobRow)
            )
            job = row_to_job(inserted.scalar_one())
            await session.execute(
                insert(LedgerRow).values(
                    user_id=user_id,
                    job_id=job.id,
                    kind="reserve",
                    seconds=request.duration,
                    created_at=now,
                )
            )
            await session.execute(
                insert(JobEventRow).values(
                    job_id=job.id, at=now, from_state=None, to_state=JobState.QUEUED.value
                )
            )
            return Enqueued(job, True, (await self._positions(session, [job])).get(job.id, 0))

    async def usage(
        self,
        user_id: UserId,
        now: datetime,
        *,
        platform: str | None = None,
        scope: str | None = None,
    ) -> UsageSnapshot:
        async with self._reads() as session:
            return await self._usage(session, user_id, now, platform=platform, scope=scope)

    async def _usage(
        self,
        session: AsyncSession,
        user_id: int,
        now: datetime,
        *,
        platform: str | None = None,
        scope: str | None = None,
        needs: UsageNeeds = EVERYTHING,
    ) -> UsageSnapshot:
        active = await session.scalar(
            select(func.count())
            .select_from(JobRow)
            .where(JobRow.user_id == user_id, JobRow.state.in_(_states(ACTIVE_STATES)))
        )
        reservations: tuple[tuple[datetime, int], ...] = ()
        if needs.reservations:
            refunded = select(LedgerRow.job_id).where(
                LedgerRow.user_id == user_id, LedgerRow.kind == "refund"
            )
            rows = await session.execute(
                select(LedgerRow.created_at, LedgerRow.seconds)
                .where(
                    LedgerRow.user_id == user_id,
                    LedgerRow.kind == "reserve",
                    LedgerRow.created_at > now - QUOTA_WINDOW,
                    LedgerRow.job_id.not_in(refunded),
                )
                .order_by(LedgerRow.created_at)
            )
            reservations = tuple((at, seconds) for at, seconds in rows.all())
        month_start = now.replace(day=1, hour=0, minute=0, second=0, microsecond=0)
        this_month = JobRow.created_at >= month_start
        total_cost: float | None = 0.0
        if needs.month_cost:
            total_cost = await session.scalar(
                select(func.coalesce(func.sum(JobRow.cost_usd), 0.0)).where(this_month)
            )
        scope_active: int | None = 0
        scope_cost: float | None = 0.0
        if needs.scope and platform is not None and scope is not None:
            in_scope = and_(JobRow.platform == platform, JobRow.scope_id == scope)
            counted = await session.execute(
                select(
                    func.count().filter(JobRow.state.in_(_states(ACTIVE_STATES))),
                    func.coalesce(func.sum(JobRow.cost_usd).filter(this_month), 0.0),
                ).where(in_scope)
            )
            scope_active, scope_cost = counted.one()
        return UsageSnapshot(
            active_jobs=int(active or 0),
            reservations=reservations,
            scope_active_jobs=int(scope_active or 0),
            scope_month_cost_usd=float(scope_cost or 0.0),
            total_month_cost_usd=float(total_cost or 0.0),
        )

    # ------------------------------------------------------------ reads
    async def get(self, job_id: int) -> Job | None:
        if not _is_job_id(job_id):
            return None
        async with self._reads() as session:
            row = await session.get(JobRow, job_id)
            return row_to_job(row) if row is not None else None

    async def get_many(self, job_ids: Collection[int]) -> list[Job]:
        job_ids = [job_id for job_id in job_ids if _is_job_id(job_id)]
        if not job_ids:
            return []
        async with self._reads() as session:
            rows = await session.scalars(select(JobRow).where(JobRow.id.in_(list(job_ids))))
            return [row_to_job(r) for r in rows.all()]

    async def list_jobs(
        self,
        *,
        limit: int = 20,
        user_id: int | None = None,
        states: Collection[JobState] | None = None,
        newest_first: bool = True,
    ) -> list[Job]:
        query = select(JobRow)
        if user_id is not None:
            query = query.where(JobRow.user_id == user_id)
        if states is not None:
            query = query.where(JobRow.state.in_(_states(states)))
        query = query.order_by(JobRow.id.desc() if newest_first else JobRow.id).limit(limit)
        async with self._reads() as session:
            return [row_to_job(r) for r in (await session.scalars(query)).all()]

    async def queue_order(self, backend: str, *, first: int | None = None) -> list[int]:
        """Queued job ids of one backend, in the order they will be served (the ``first``
        few only, when given: far cheaper on a long queue)."""
        async with self._reads() as session:
            return await self._head(session, backend, first)

    async def position(self, job: Job) -> int:
        """1 = next in line; 0 when the job is past the queue."""
        return (await self.positions([job])).get(job.id, 0)

    async def positions(self, jobs: Collection[Job]) -> dict[JobId, int]:
        """The place in line (1 = next) of each of ``jobs`` still queued (/queue)."""
        async with self._reads() as session:
            return await self._positions(session, jobs)

    async def _head(self, session: AsyncSession, backend: str, first: int | None) -> list[int]:
        """The first ``first`` places of the line (all of it with None)."""
        if first is None:
            rows = await session.scalars(self._queue.whole, {"backend": backend})
        else:
            params = {"backend": backend, "per_user": first}
            rows = await session.scalars(self._queue.head, params)
        return list(rows.all())

    async def _positions(self, session: AsyncSession, jobs: Collection[Job]) -> dict[JobId, int]:
        """Places in line without listing the queue: each waiting user's jobs are read only
        up to the latest round among ``jobs`` (see :func:`_places`)."""
        places: dict[JobId, int] = {}
        by_backend: dict[str, list[Job]] = {}
        for job in jobs:
            if job.state == JobState.QUEUED:
                by_backend.setdefault(job.backend, []).append(job)
        for backend, queued in by_backend.items():
            latest = await self._latest_round(session, backend, queued)
            if latest is None:
                continue
            params = {
                "backend": backend,
                "per_user": latest + 1,
                "wanted": [job.id for job in queued],
            }
            rows = await session.execute(self._queue.places, params)
            places.update({JobId(job_id): int(n) for job_id, n in rows.all()})
        return places

    async def _latest_round(
        self, session: AsyncSession, backend: str, jobs: Collection[Job]
    ) -> int | None:
        """A bound on the latest fair-queue round among ``jobs``: a user's queued jobs are in
        rounds up to their jobs in flight + queued - 1. None when their users have nothing
        queued any more. One grouped count per user (an index range each)."""
        counted = await session.execute(
            select(
                func.count().filter(JobRow.state.in_(_states(IN_FLIGHT_STATES))),
                func.count().filter(JobRow.state == QUEUED),
            )
            .where(
                JobRow.state.in_([QUEUED, *_states(IN_FLIGHT_STATES)]),
                JobRow.backend == backend,
                JobRow.user_id.in_({job.user_id for job in jobs}),
            )
            .group_by(JobRow.user_id)
        )
        rounds = [int(flying) + int(waiting) - 1 for flying, waiting in counted.all() if waiting]
        return max(rounds, default=None)

    async def recent_runtimes(self, backend: str, limit: int = 50) -> list[tuple[int, float]]:
        """(duration asked, seconds from submit to upstream completion) of recent jobs."""
        async with self._reads() as session:
            rows = await session.execute(
                select(JobRow.duration, JobRow.remote_seconds)
                .where(
                    JobRow.backend == backend,
                    JobRow.remote_seconds.is_not(None),
                    JobRow.state.in_(_states({JobState.SUCCEEDED, JobState.DELIVERED})),
                )
                .order_by(JobRow.id.desc())
                .limit(limit)
            )
            return [(duration, seconds) for duration, seconds in rows.all() if seconds]

    async def kept_audio(self) -> set[str]:
        """Audio files that must not be deleted: their jobs are not delivered yet."""
        async with self._reads() as session:
            rows = await session.scalars(
                select(JobRow.audio_path).where(
                    JobRow.audio_path.is_not(None), JobRow.state.in_(_states(ACTIVE_STATES))
                )
            )
            return {p for p in rows.all() if p}

    # ------------------------------------------------------------ claiming
    async def claim_for_submit(
        self, backend: str, *, owner: str, max_in_flight: int, lease_until: datetime, now: datetime
    ) -> list[Job]:
        """Move up to the free slots' worth of queued jobs to SUBMITTING, fairly."""
        async with self._sessions.begin() as session:
            if _on_postgres(session):
                # One claimer per backend at a time, so the concurrency limit holds across
                # processes; rows themselves are protected by the compare-and-set below.
                await _advisory_lock(session, f"acejam-claim:{backend}")
            in_flight = await session.scalar(
                select(func.count())
                .select_from(JobRow)
                .where(JobRow.backend == backend, JobRow.state.in_(_states(IN_FLIGHT_STATES)))
            )
            slots = max_in_flight - int(in_flight or 0)
            if slots <= 0:
                return []
            chosen = await self._head(session, backend, slots)
            if not chosen:
                return []
            result = await session.execute(
                update(JobRow)
                .where(JobRow.id.in_(chosen), JobRow.state == JobState.QUEUED.value)
                .values(
                    state=JobState.SUBMITTING.value,
                    updated_at=now,
                    lease_owner=owner,
                    lease_expires_at=lease_until,
                    attempts=JobRow.attempts + 1,
                )
                .returning(JobRow)
                .execution_options(synchronize_session=False)
            )
            rows = {row.id: row for row in result.scalars().all()}
            await self._audit(session, list(rows), JobState.QUEUED.value, JobState.SUBMITTING, now)
            if rows:  # round-robin's tie-break: who was served longest ago goes first
                await session.execute(
                    update(UserRow)
                    .where(UserRow.id.in_({row.user_id for row in rows.values()}))
                    .values(last_served_at=now)
                )
            return [row_to_job(rows[job_id]) for job_id in chosen if job_id in rows]

    async def adopt(
        self,
        *,
        owner: str,
        now: datetime,
        lease_until: datetime,
        backend: str | None,
        deliver_platforms: Collection[str],
        dead_owners: Collection[str] = (),
    ) -> list[Job]:
        """Take over unfinished jobs whose lease ran out (or whose owner is known dead).

        In-flight jobs of ``backend`` are taken for polling; finished-but-undelivered jobs
        only by a process that can deliver to their platform.
        """
        lease_free = or_(
            JobRow.lease_owner.is_(None),
            JobRow.lease_expires_at < now,
            JobRow.lease_owner.in_(list(dead_owners)),
        )
        wanted = []
        if backend is not None:
            wanted.append(
                and_(JobRow.backend == backend, JobRow.state.in_(_states(IN_FLIGHT_STATES)))
            )
        if deliver_platforms:
            wanted.append(
                and_(
                    JobRow.state == JobState.SUCCEEDED.value,
                    JobRow.platform.in_(list(deliver_platforms)),
                )
            )
        if not wanted:
            return []
        async with self._sessions.begin() as session:
            ids = (
                await session.scalars(
                    select(JobRow.id).where(lease_free, or_(*wanted)).order_by(JobRow.id).limit(500)
                )
            ).all()
            adopted: list[Job] = []
            for job_id in ids:
                result = await session.execute(
                    update(JobRow)
                    .where(
                        JobRow.id == job_id, lease_free, JobRow.state.not_in(_states(FINAL_STATES))
                    )
                    .values(lease_owner=owner, lease_expires_at=lease_until)
                    .returning(JobRow)
                )
                row = result.scalar_one_or_none()
                if row is not None:
                    adopted.append(row_to_job(row))
            return adopted

    async def live_owners(self, now: datetime) -> set[str]:
        async with self._reads() as session:
            rows = await session.scalars(
                select(JobRow.lease_owner)
                .where(JobRow.lease_owner.is_not(None), JobRow.lease_expires_at >= now)
                .distinct()
            )
            return {r for r in rows.all() if r}

    async def renew_leases(self, owner: str, job_ids: Collection[int], until: datetime) -> set[int]:
        """Extend our leases; returns the ids we still hold (others were taken or finished)."""
        if not job_ids:
            return set()
        async with self._sessions.begin() as session:
            result = await session.execute(
                update(JobRow)
                .where(JobRow.id.in_(list(job_ids)), JobRow.lease_owner == owner)
                .values(lease_expires_at=until)
                .returning(JobRow.id)
            )
            return set(result.scalars().all())

    async def release(self, owner: str, job_ids: Collection[int]) -> None:
        """Give up our leases (graceful shutdown): another process may adopt at once."""
        if not job_ids:
            return
        async with self._sessions.begin() as session:
            await session.execute(
                update(JobRow)
                .where(JobRow.id.in_(list(job_ids)), JobRow.lease_owner == owner)
                .values(lease_owner=None, lease_expires_at=None)
            )

    # ------------------------------------------------------------ transitions
    async def transition(
        self,
        job_id: int,
        from_states: Collection[JobState],
        to_state: JobState,
        *,
        now: datetime,
        ledger: str | None = None,
        detail: str | None = None,
        **fields: Any,
    ) -> Job | None:
        """Compare-and-set a job's state; None when it was not in ``from_states``.

        ``ledger`` ("commit" or "refund") writes the matching quota row in the same
        transaction; the unique (job, kind) constraint makes it happen at most once.
        """
        if to_state in FINAL_STATES:
            fields.setdefault("lease_owner", None)
            fields.setdefault("lease_expires_at", None)
        async with self._sessions.begin() as session:
            row = await self._cas(
                session, job_id, from_states, to_state, now, detail=detail, **fields
            )
            if row is None:
                return None
            if ledger is not None:
                # Settle the reservation once: commit or refund, whichever comes first.
                settled = select(LedgerRow.id).where(
                    LedgerRow.job_id == job_id, LedgerRow.kind.in_(["commit", "refund"])
                )
                await session.execute(
                    insert(LedgerRow).from_select(
                        ["user_id", "job_id", "kind", "seconds", "created_at"],
                        select(
                            LedgerRow.user_id,
                            LedgerRow.job_id,
                            literal(ledger),
                            LedgerRow.seconds,
                            literal(now, JobRow.created_at.type),
                        ).where(
                            LedgerRow.job_id == job_id,
                            LedgerRow.kind == "reserve",
                            ~settled.exists(),
                        ),
                    )
                )
            return row_to_job(row)

    async def update_fields(
        self, job_id: int, in_states: Collection[JobState], *, now: datetime, **fields: Any
    ) -> Job | None:
        """Change fields without a state change (progress, poll count), if still in a state."""
        async with self._sessions.begin() as session:
            result = await session.execute(
                update(JobRow)
                .where(JobRow.id == job_id, JobRow.state.in_(_states(in_states)))
                .values(updated_at=now, **fields)
                .returning(JobRow)
            )
            row = result.scalar_one_or_none()
            return row_to_job(row) if row is not None else None

    async def merge_context(
        self, job_id: int, patch: Mapping[str, Any], now: datetime
    ) -> Job | None:
        if not _is_job_id(job_id):
            return None
        async with self._sessions.begin() as session:
            row = await session.get(JobRow, job_id, with_for_update=True)
            if row is None:
                return None
            row.context = {**(row.context or {}), **patch}
            row.updated_at = now
            await session.flush()
            return row_to_job(row)

    async def _cas(
        self,
        session: AsyncSession,
        job_id: int,
        from_states: Collection[JobState],
        to_state: JobState,
        now: datetime,
        *,
        detail: str | None = None,
        **fields: Any,
    ) -> JobRow | None:
        if len(from_states) == 1:
            (only,) = from_states
            current: str | None = only.value
        else:  # for the audit row: which of them it was
            current = await session.scalar(select(JobRow.state).where(JobRow.id == job_id))
        result = await session.execute(
            update(JobRow)
            .where(JobRow.id == job_id, JobRow.state.in_(_states(from_states)))
            .values(state=to_state.value, updated_at=now, **fields)
            .returning(JobRow)
            .execution_options(synchronize_session=False)
        )
        row = result.scalar_one_or_none()
        if row is not None:
            await self._audit(session, [job_id], current, to_state, now, detail)
        return row

    async def _audit(
        self,
        session: AsyncSession,
        job_ids: list[int],
        from_state: str | None,
        to_state: JobState,
        now: datetime,
        detail: str | None = None,
    ) -> None:
        if job_ids:
            await session.execute(
                insert(JobEventRow),
                [
                    {
                        "job_id": job_id,
                        "at": now,
                        "from_state": from_state,
                        "to_state": to_state.value,
                        "detail": detail,
                    }
                    for job_id in job_ids
                ],
            )

    async def usage_report(
        self, *, since: datetime, platform: str | None = None, scope: str | None = None
    ) -> list[UsageRow]:
        """Per user since ``since``: jobs asked, seconds delivered, cost, GPU time."""
        done = JobRow.state.in_(_states({JobState.SUCCEEDED, JobState.DELIVERED}))
        query = (
            select(
                UserRow.platform,
                UserRow.platform_user_id,
                UserRow.display_name,
                func.count(JobRow.id),
                func.coalesce(func.sum(case((done, JobRow.duration), else_=0)), 0),
                func.coalesce(func.sum(JobRow.cost_usd), 0.0),
                func.coalesce(func.sum(JobRow.gpu_seconds), 0.0),
                func.max(JobRow.created_at),
            )
            .join(UserRow, UserRow.id == JobRow.user_id)
            .where(JobRow.created_at >= since)
            .group_by(UserRow.platform, UserRow.platform_user_id, UserRow.display_name)
            .order_by(func.count(JobRow.id).desc())
        )
        if platform is not None:
            query = query.where(JobRow.platform == platform)
        if scope is not None:
            query = query.where(JobRow.scope_id == scope)
        async with self._reads() as session:
            rows = await session.execute(query)
            return [
                UsageRow(p, u, n, int(jobs), int(secs), float(cost), float(gpu), last)
                for p, u, n, jobs, secs, cost, gpu, last in rows.all()
            ]

    async def active_jobs(
        self, *, platform: str | None = None, scope: str | None = None
    ) -> list[Job]:
        query = select(JobRow).where(JobRow.state.in_(_states(ACTIVE_STATES))).order_by(JobRow.id)
        if platform is not None:
            query = query.where(JobRow.platform == platform)
        if scope is not None:
            query = query.where(JobRow.scope_id == scope)
        async with self._reads() as session:
            return [row_to_job(r) for r in (await session.scalars(query.limit(500))).all()]

    # ------------------------------------------------------------ audit
    async def ledger_balance(self, user_id: int) -> dict[str, int]:
        """Seconds per ledger kind for one user (for audits and tests)."""
        async with self._reads() as session:
            rows = await session.execute(
                select(LedgerRow.kind, func.coalesce(func.sum(LedgerRow.seconds), 0))
                .where(LedgerRow.user_id == user_id)
                .group_by(LedgerRow.kind)
            )
            return {kind: int(total) for kind, total in rows.all()}

    async def last_event_id(self) -> int:
        async with self._reads() as session:
            return int(
                await session.scalar(select(func.coalesce(func.max(JobEventRow.id), 0))) or 0
            )

    async def events_after(
        self, event_id: int, *, platforms: Collection[str], limit: int = 200
    ) -> list[tuple[int, Job | None, JobState]]:
        """State changes after ``event_id`` for jobs of these platforms, oldest first."""
        async with self._reads() as session:
            rows = await session.execute(
                select(JobEventRow.id, JobEventRow.to_state, JobRow)
                .join(JobRow, JobRow.id == JobEventRow.job_id)
                .where(JobEventRow.id > event_id, JobRow.platform.in_(list(platforms)))
                .order_by(JobEventRow.id)
                .limit(limit)
            )
            return [(eid, row_to_job(job), JobState(state)) for eid, state, job in rows.all()]

    async def prune_events(self, *, before: datetime, batch: int = 5000) -> int:
        """Delete `job_events` rows older than ``before`` (jobs and the ledger, the accounting,
        are kept); returns how many. Oldest first, ``batch`` rows per transaction, so other
        sessions get the connection in between; ids grow with time, so each batch reads only
        the oldest rows and it stops at the first batch not wholly old (never a scan)."""
        removed = 0
        while True:
            async with self._sessions.begin() as session:
                oldest = select(JobEventRow.id).order_by(JobEventRow.id).limit(batch)
                result = await session.execute(
                    delete(JobEventRow)
                    .where(JobEventRow.id.in_(oldest.scalar_subquery()), JobEventRow.at < before)
                    .execution_options(synchronize_session=False)
                )
            count = int(getattr(result, "rowcount", 0) or 0)
            removed += count
            if count < batch:
                return removed

    async def events(self, job_id: int) -> list[tuple[str | None, str, str | None]]:
        if not _is_job_id(job_id):
            return []
        async with self._reads() as session:
            rows = await session.execute(
                select(JobEventRow.from_state, JobEventRow.to_state, JobEventRow.detail)
                .where(JobEventRow.job_id == job_id)
                .order_by(JobEventRow.id)
            )
            return [tuple(r) for r in rows.all()]  # type: ignore[misc]
