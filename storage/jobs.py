"""Every query on jobs, users and the quota ledger (procrastinate's JobManager role).

State changes are compare-and-set: ``UPDATE ... WHERE id = ? AND state IN (...)`` and a
check that one row changed, so two processes can never both move the same job. Each
change writes its `job_events` row and its ledger row in the same transaction.
"""

from __future__ import annotations

import zlib
from collections.abc import Callable, Collection, Iterable, Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import and_, case, func, or_, select, text, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

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
from bot.quotas import QUOTA_WINDOW, UsageSnapshot
from bot.scheduler import QueuedRef, fair_order
from storage.models import JobEventRow, JobRow, LedgerRow, UserRow


@dataclass(frozen=True)
class NewJob:
    user_id: UserId
    request: GenerationRequest
    destination: Destination
    backend: str
    idempotency_key: str | None = None
    parent_id: JobId | None = None
    cost_usd: float | None = None  # reserved against budgets until the job ends


@dataclass(frozen=True)
class UsageRow:
    platform: str
    user_id: str
    display_name: str | None
    jobs: int
    seconds: int
    cost_usd: float
    gpu_seconds: float
    last_job_at: datetime | None


@dataclass(frozen=True)
class Enqueued:
    job: Job
    created: bool  # False when the idempotency key already had a job


# The admission policy is a pure function handed in by the core (bot/quotas.py).
Admission = Callable[[UsageSnapshot], object | None]


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


def _states(states: Iterable[JobState]) -> list[str]:
    return [s.value for s in states]


class SqlJobStore:
    """The `JobStore` port on SQLAlchemy (SQLite or PostgreSQL)."""

    def __init__(self, sessions: async_sessionmaker[AsyncSession]) -> None:
        self._sessions = sessions

    # ------------------------------------------------------------ users
    async def ensure_user(
        self, platform: str, platform_user_id: str, display_name: str | None, now: datetime
    ) -> UserId:
        async with self._sessions.begin() as session:
            found = await session.scalar(
                select(UserRow.id).where(
                    UserRow.platform == platform, UserRow.platform_user_id == platform_user_id
                )
            )
            if found is not None:
                return UserId(found)
        try:
            async with self._sessions.begin() as session:
                user = UserRow(
                    platform=platform,
                    platform_user_id=platform_user_id,
                    display_name=(display_name or "")[:128] or None,
                    created_at=now,
                )
                session.add(user)
                await session.flush()
                return UserId(user.id)
        except IntegrityError:  # created meanwhile by a concurrent request
            async with self._sessions.begin() as session:
                found = await session.scalar(
                    select(UserRow.id).where(
                        UserRow.platform == platform, UserRow.platform_user_id == platform_user_id
                    )
                )
                assert found is not None
                return UserId(found)

    async def find_user(self, platform: str, platform_user_id: str) -> UserId | None:
        async with self._sessions() as session:
            found = await session.scalar(
                select(UserRow.id).where(
                    UserRow.platform == platform, UserRow.platform_user_id == platform_user_id
                )
            )
            return UserId(found) if found is not None else None

    # ------------------------------------------------------------ enqueue
    async def enqueue(self, new: NewJob, *, admit: Admission, now: datetime) -> Enqueued | object:
        """Insert a queued job and reserve its seconds, if ``admit`` lets it in.

        Returns :class:`Enqueued`, or whatever refusal ``admit`` returned.
        """
        async with self._sessions.begin() as session:
            if new.idempotency_key is not None:
                existing = await session.scalar(
                    select(JobRow).where(JobRow.idempotency_key == new.idempotency_key)
                )
                if existing is not None:
                    return Enqueued(row_to_job(existing), created=False)
            # Writing the user row first serialises this user's enqueues (a row lock on
            # PostgreSQL, the write lock on SQLite), so two requests can't both pass the quota.
            await session.execute(
                update(UserRow).where(UserRow.id == new.user_id).values(last_request_at=now)
            )
            usage = await self._usage(
                session,
                new.user_id,
                now,
                platform=new.destination.platform,
                scope=new.destination.scope,
            )
            refusal = admit(usage)
            if refusal is not None:
                return refusal
            request = new.request
            row = JobRow(
                idempotency_key=new.idempotency_key,
                user_id=new.user_id,
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
                polls=0,
                nsfw=False,
                cost_usd=new.cost_usd,
                created_at=now,
                updated_at=now,
            )
            session.add(row)
            await session.flush()
            session.add(
                LedgerRow(
                    user_id=new.user_id,
                    job_id=row.id,
                    kind="reserve",
                    seconds=request.duration,
                    created_at=now,
                )
            )
            session.add(JobEventRow(job_id=row.id, at=now, from_state=None, to_state="queued"))
            return Enqueued(row_to_job(row), created=True)

    async def usage(
        self,
        user_id: UserId,
        now: datetime,
        *,
        platform: str | None = None,
        scope: str | None = None,
    ) -> UsageSnapshot:
        async with self._sessions() as session:
            return await self._usage(session, user_id, now, platform=platform, scope=scope)

    async def _usage(
        self,
        session: AsyncSession,
        user_id: int,
        now: datetime,
        *,
        platform: str | None = None,
        scope: str | None = None,
    ) -> UsageSnapshot:
        active = await session.scalar(
            select(func.count())
            .select_from(JobRow)
            .where(JobRow.user_id == user_id, JobRow.state.in_(_states(ACTIVE_STATES)))
        )
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
        total_cost = await session.scalar(
            select(func.coalesce(func.sum(JobRow.cost_usd), 0.0)).where(this_month)
        )
        scope_active, scope_cost = 0, 0.0
        if platform is not None and scope is not None:
            in_scope = and_(JobRow.platform == platform, JobRow.scope_id == scope)
            scope_active = await session.scalar(
                select(func.count())
                .select_from(JobRow)
                .where(in_scope, JobRow.state.in_(_states(ACTIVE_STATES)))
            )
            scope_cost = await session.scalar(
                select(func.coalesce(func.sum(JobRow.cost_usd), 0.0)).where(in_scope, this_month)
            )
        return UsageSnapshot(
            active_jobs=int(active or 0),
            reservations=reservations,
            scope_active_jobs=int(scope_active or 0),
            scope_month_cost_usd=float(scope_cost or 0.0),
            total_month_cost_usd=float(total_cost or 0.0),
        )

    # ------------------------------------------------------------ reads
    async def get(self, job_id: int) -> Job | None:
        async with self._sessions() as session:
            row = await session.get(JobRow, job_id)
            return row_to_job(row) if row is not None else None

    async def get_many(self, job_ids: Collection[int]) -> list[Job]:
        if not job_ids:
            return []
        async with self._sessions() as session:
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
        async with self._sessions() as session:
            return [row_to_job(r) for r in (await session.scalars(query)).all()]

    async def queue_order(self, backend: str) -> list[int]:
        """Queued job ids of one backend, in the order they will be served."""
        async with self._sessions() as session:
            return [ref.job_id for ref in await self._fair_queue(session, backend)]

    async def _fair_queue(self, session: AsyncSession, backend: str) -> list[QueuedRef]:
        queued = await session.execute(
            select(JobRow.id, JobRow.user_id, JobRow.platform, JobRow.chat_id)
            .where(JobRow.state == JobState.QUEUED.value, JobRow.backend == backend)
            .order_by(JobRow.id)
            .limit(5000)
        )
        refs = [QueuedRef(j, u, f"{p}:{c}") for j, u, p, c in queued.all()]
        in_flight = await session.execute(
            select(JobRow.user_id, func.count())
            .where(JobRow.backend == backend, JobRow.state.in_(_states(IN_FLIGHT_STATES)))
            .group_by(JobRow.user_id)
        )
        users = {ref.user_id for ref in refs}
        last_served: dict[int, datetime] = {}
        if users:
            served = await session.execute(
                select(JobRow.user_id, func.max(JobRow.submitted_at))
                .where(
                    JobRow.backend == backend,
                    JobRow.user_id.in_(users),
                    JobRow.submitted_at.is_not(None),
                )
                .group_by(JobRow.user_id)
            )
            last_served = {u: at for u, at in served.all() if at is not None}
        return fair_order(refs, {u: n for u, n in in_flight.all()}, last_served)

    async def recent_runtimes(self, backend: str, limit: int = 50) -> list[tuple[int, float]]:
        """(duration asked, seconds from submit to upstream completion) of recent jobs."""
        async with self._sessions() as session:
            rows = await session.execute(
                select(JobRow.duration, JobRow.submitted_at, JobRow.finished_at)
                .where(
                    JobRow.backend == backend,
                    JobRow.submitted_at.is_not(None),
                    JobRow.finished_at.is_not(None),
                    JobRow.state.in_(_states({JobState.SUCCEEDED, JobState.DELIVERED})),
                )
                .order_by(JobRow.id.desc())
                .limit(limit)
            )
            return [
                (duration, (finished - submitted).total_seconds())
                for duration, submitted, finished in rows.all()
            ]

    async def kept_audio(self) -> set[str]:
        """Audio files that must not be deleted: their jobs are not delivered yet."""
        async with self._sessions() as session:
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
            if session.bind.dialect.name == "postgresql":
                # One claimer per backend at a time, so the concurrency limit holds across
                # processes; rows themselves are protected by the compare-and-set below.
                await session.execute(
                    text("SELECT pg_advisory_xact_lock(:key)"),
                    {"key": zlib.crc32(f"acejam-claim:{backend}".encode())},
                )
            in_flight = await session.scalar(
                select(func.count())
                .select_from(JobRow)
                .where(JobRow.backend == backend, JobRow.state.in_(_states(IN_FLIGHT_STATES)))
            )
            slots = max_in_flight - int(in_flight or 0)
            if slots <= 0:
                return []
            chosen = [ref.job_id for ref in (await self._fair_queue(session, backend))[:slots]]
            claimed: list[Job] = []
            for job_id in chosen:
                row = await self._cas(
                    session,
                    job_id,
                    {JobState.QUEUED},
                    JobState.SUBMITTING,
                    now,
                    lease_owner=owner,
                    lease_expires_at=lease_until,
                    attempts=JobRow.attempts + 1,
                )
                if row is not None:
                    claimed.append(row_to_job(row))
            return claimed

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
        async with self._sessions() as session:
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
                reserved = await session.scalar(
                    select(LedgerRow.seconds).where(
                        LedgerRow.job_id == job_id, LedgerRow.kind == "reserve"
                    )
                )
                already = await session.scalar(
                    select(func.count())
                    .select_from(LedgerRow)
                    .where(LedgerRow.job_id == job_id, LedgerRow.kind.in_(["commit", "refund"]))
                )
                if reserved is not None and not already:
                    session.add(
                        LedgerRow(
                            user_id=row.user_id,
                            job_id=job_id,
                            kind=ledger,
                            seconds=reserved,
                            created_at=now,
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
            session.add(
                JobEventRow(
                    job_id=job_id,
                    at=now,
                    from_state=current,
                    to_state=to_state.value,
                    detail=detail,
                )
            )
        return row

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
        async with self._sessions() as session:
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
        async with self._sessions() as session:
            return [row_to_job(r) for r in (await session.scalars(query.limit(500))).all()]

    # ------------------------------------------------------------ audit
    async def ledger_balance(self, user_id: int) -> dict[str, int]:
        """Seconds per ledger kind for one user (for audits and tests)."""
        async with self._sessions() as session:
            rows = await session.execute(
                select(LedgerRow.kind, func.coalesce(func.sum(LedgerRow.seconds), 0))
                .where(LedgerRow.user_id == user_id)
                .group_by(LedgerRow.kind)
            )
            return {kind: int(total) for kind, total in rows.all()}

    async def last_event_id(self) -> int:
        async with self._sessions() as session:
            return int(
                await session.scalar(select(func.coalesce(func.max(JobEventRow.id), 0))) or 0
            )

    async def events_after(
        self, event_id: int, *, platforms: Collection[str], limit: int = 200
    ) -> list[tuple[int, Job | None, JobState]]:
        """State changes after ``event_id`` for jobs of these platforms, oldest first."""
        async with self._sessions() as session:
            rows = await session.execute(
                select(JobEventRow.id, JobEventRow.to_state, JobRow)
                .join(JobRow, JobRow.id == JobEventRow.job_id)
                .where(JobEventRow.id > event_id, JobRow.platform.in_(list(platforms)))
                .order_by(JobEventRow.id)
                .limit(limit)
            )
            return [(eid, row_to_job(job), JobState(state)) for eid, state, job in rows.all()]

    async def events(self, job_id: int) -> list[tuple[str | None, str, str | None]]:
        async with self._sessions() as session:
            rows = await session.execute(
                select(JobEventRow.from_state, JobEventRow.to_state, JobEventRow.detail)
                .where(JobEventRow.job_id == job_id)
                .order_by(JobEventRow.id)
            )
            return [tuple(r) for r in rows.all()]  # type: ignore[misc]
