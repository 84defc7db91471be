"""The fair queue: which queued jobs go upstream next, and a job's place in line.

The order is :func:`bot.scheduler.fair_order`'s (tests hold the two equal), computed by the
database: no query lists the whole queue, and only the rows asked for reach Python
(docs/jobs.md, "Claiming and fairness").
"""

from __future__ import annotations

from collections.abc import Collection
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from sqlalchemy import (
    Integer,
    String,
    and_,
    bindparam,
    case,
    func,
    literal,
    select,
    update,
)
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import aliased

from bot.domain import IN_FLIGHT_STATES, Job, JobId, JobState
from storage.db import Sessions
from storage.jobs.events import audit
from storage.jobs.rows import (
    QUEUED,
    advisory_lock,
    on_postgres,
    row_to_job,
    state_values,
)
from storage.models import JobRow, UserRow


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
        .where(JobRow.state.in_(state_values(IN_FLIGHT_STATES)), JobRow.backend == backend)
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


def _line(*, limited: bool) -> Any:
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
class QueueQueries:
    """The fair-queue statements, built once per store: SQLAlchemy takes longer to build one
    of them than SQLite takes to run it."""

    head: Any = field(default_factory=lambda: _line(limited=True))
    whole: Any = field(default_factory=lambda: _line(limited=False))
    places: Any = field(default_factory=_places)


async def head(
    session: AsyncSession, queries: QueueQueries, backend: str, first: int | None
) -> list[int]:
    """The first ``first`` places of the line (all of it with None)."""
    if first is None:
        rows = await session.scalars(queries.whole, {"backend": backend})
    else:
        params = {"backend": backend, "per_user": first}
        rows = await session.scalars(queries.head, params)
    return list(rows.all())


async def places_of(
    session: AsyncSession, queries: QueueQueries, jobs: Collection[Job]
) -> dict[JobId, int]:
    """Places in line without listing the queue: each waiting user's jobs are read only
    up to the latest round among ``jobs`` (see :func:`_places`)."""
    places: dict[JobId, int] = {}
    by_backend: dict[str, list[Job]] = {}
    for job in jobs:
        if job.state == JobState.QUEUED:
            by_backend.setdefault(job.backend, []).append(job)
    for backend, queued in by_backend.items():
        latest = await _latest_round(session, backend, queued)
        if latest is None:
            continue
        params = {
            "backend": backend,
            "per_user": latest + 1,
            "wanted": [job.id for job in queued],
        }
        rows = await session.execute(queries.places, params)
        places.update({JobId(job_id): int(n) for job_id, n in rows.all()})
    return places


async def _latest_round(session: AsyncSession, backend: str, jobs: Collection[Job]) -> int | None:
    """A bound on the latest fair-queue round among ``jobs``: a user's queued jobs are in
    rounds up to their jobs in flight + queued - 1. None when their users have nothing
    queued any more. One grouped count per user (an index range each)."""
    counted = await session.execute(
        select(
            func.count().filter(JobRow.state.in_(state_values(IN_FLIGHT_STATES))),
            func.count().filter(JobRow.state == QUEUED),
        )
        .where(
            JobRow.state.in_([QUEUED, *state_values(IN_FLIGHT_STATES)]),
            JobRow.backend == backend,
            JobRow.user_id.in_({job.user_id for job in jobs}),
        )
        .group_by(JobRow.user_id)
    )
    rounds = [int(flying) + int(waiting) - 1 for flying, waiting in counted.all() if waiting]
    return max(rounds, default=None)


class FairQueueQueries(Sessions):
    _queue: QueueQueries  # built once per store (SqlJobStore.__init__)

    async def queue_order(self, backend: str, *, first: int | None = None) -> list[int]:
        """Queued job ids of one backend, in the order they will be served (the ``first``
        few only, when given: far cheaper on a long queue)."""
        async with self._reads() as session:
            return await head(session, self._queue, backend, first)

    async def position(self, job: Job) -> int:
        """1 = next in line; 0 when the job is past the queue."""
        return (await self.positions([job])).get(job.id, 0)

    async def positions(self, jobs: Collection[Job]) -> dict[JobId, int]:
        """The place in line (1 = next) of each of ``jobs`` still queued (/queue)."""
        async with self._reads() as session:
            return await places_of(session, self._queue, jobs)

    # ------------------------------------------------------------ claiming
    async def claim_for_submit(
        self, backend: str, *, owner: str, max_in_flight: int, lease_until: datetime, now: datetime
    ) -> list[Job]:
        """Move up to the free slots' worth of queued jobs to SUBMITTING, fairly."""
        async with self._sessions.begin() as session:
            if on_postgres(session):
                # One claimer per backend at a time, so the concurrency limit holds across
                # processes; rows themselves are protected by the compare-and-set below.
                await advisory_lock(session, f"acejam-claim:{backend}")
            in_flight = await session.scalar(
                select(func.count())
                .select_from(JobRow)
                .where(JobRow.backend == backend, JobRow.state.in_(state_values(IN_FLIGHT_STATES)))
            )
            slots = max_in_flight - int(in_flight or 0)
            if slots <= 0:
                return []
            chosen = await head(session, self._queue, backend, slots)
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
            await audit(session, list(rows), JobState.QUEUED.value, JobState.SUBMITTING, now)
            if rows:  # round-robin's tie-break: who was served longest ago goes first
                await session.execute(
                    update(UserRow)
                    .where(UserRow.id.in_({row.user_id for row in rows.values()}))
                    .values(last_served_at=now)
                )
            return [row_to_job(rows[job_id]) for job_id in chosen if job_id in rows]
