"""The fair queue: which queued jobs go upstream next, and a job's place in line.

The order is stored (:mod:`bot.scheduler`): each job gets its place when it is queued
(:func:`fair_place`), and the queue is the partial index ``ix_jobs_fair`` (backend,
fair_round, fair_served, chat_turn, id) over queued jobs. A claim reads the index's first
entries; a place in line counts the entries before a job's. Neither depends on how many
users are waiting or how many songs they queued (docs/jobs.md, "Claiming and fairness").
"""

from __future__ import annotations

from collections.abc import Collection
from datetime import datetime

from sqlalchemy import BindParameter, and_, bindparam, func, select, tuple_, update
from sqlalchemy.ext.asyncio import AsyncConnection

from bot.domain import IN_FLIGHT_STATES, Job, JobId, JobState
from bot.scheduler import fair_round
from storage.db import Sessions
from storage.jobs.events import audit
from storage.jobs.rows import (
    JOBS,
    QUEUED,
    USERS,
    advisory_lock,
    on_postgres,
    row_to_job,
    state_values,
)

# The statements of every new song's place, built once (values bound when they run), on the
# table rather than the mapped class: the same SQL without building it, or the ORM's layers,
# for each song (docs/performance.md, section 3).
_BACKEND: BindParameter[str] = bindparam("backend")
_QUEUED_ON = and_(JOBS.c.state == QUEUED, JOBS.c.backend == _BACKEND)
_IN_LINE = (JOBS.c.fair_round, JOBS.c.fair_served, JOBS.c.chat_turn, JOBS.c.id)
FLYING_ROUND = select(func.max(JOBS.c.fair_round)).where(
    JOBS.c.state.in_(state_values(IN_FLIGHT_STATES)), JOBS.c.backend == _BACKEND
)
FIRST_ROUND = select(JOBS.c.fair_round).where(_QUEUED_ON).order_by(*_IN_LINE).limit(1)
LATEST_ROUND = select(func.max(JOBS.c.fair_round)).where(
    JOBS.c.state.in_([QUEUED, *state_values(IN_FLIGHT_STATES)]),
    JOBS.c.backend == _BACKEND,
    JOBS.c.user_id == bindparam("user_id"),
)
CHAT_TURN = select(func.count()).where(
    _QUEUED_ON,
    JOBS.c.fair_round == bindparam("round"),
    JOBS.c.platform == bindparam("platform"),
    JOBS.c.chat_id == bindparam("chat_id"),
)
LAST_SERVED = select(USERS.c.last_served_at).where(USERS.c.id == bindparam("user_id"))
# What a new song's place starts from, read in one statement (three index seeks): the user's
# latest round, the round in flight and when the user was last served.
PLACE_INPUTS = select(
    LATEST_ROUND.scalar_subquery(), FLYING_ROUND.scalar_subquery(), LAST_SERVED.scalar_subquery()
)
LATEST_QUEUED = (
    select(JOBS.c.backend, func.max(JOBS.c.fair_round))
    .where(JOBS.c.id.in_(bindparam("ids", expanding=True)), JOBS.c.state == QUEUED)
    .group_by(JOBS.c.backend)
)
_LINE = (
    select(JOBS.c.id, func.row_number().over(order_by=_IN_LINE).label("place"))
    .where(_QUEUED_ON, JOBS.c.fair_round <= bindparam("latest"))
    .subquery("line")
)
PLACES = select(_LINE.c.id, _LINE.c.place).where(
    _LINE.c.id.in_(bindparam("wanted", expanding=True))
)


# A new song's place: the queued entries up to its own in serving order, counted from the
# index (a range of ix_jobs_fair) rather than numbered by a window over the line, which cost
# ~1 µs per song queued ahead on every new song (docs/performance.md, section 3).
PLACE_OF = select(func.count()).where(
    _QUEUED_ON,
    tuple_(*_IN_LINE)
    <= tuple_(bindparam("b_round"), bindparam("b_served"), bindparam("b_turn"), bindparam("b_id")),
)


async def place_of(
    connection: AsyncConnection, job: Job, round_: int, served: int, turn: int
) -> int:
    """The place in line (1 = next) of ``job``, queued with this round, mark and turn."""
    found = await connection.scalar(
        PLACE_OF,
        {
            "backend": job.backend,
            "b_round": round_,
            "b_served": served,
            "b_turn": turn,
            "b_id": job.id,
        },
    )
    return int(found or 0)


# A claim's statements, built once like the above.
IN_FLIGHT = (
    select(func.count())
    .select_from(JOBS)
    .where(JOBS.c.backend == _BACKEND, JOBS.c.state.in_(state_values(IN_FLIGHT_STATES)))
)
LINE = select(JOBS.c.id).where(_QUEUED_ON).order_by(*_IN_LINE)
LINE_HEAD = LINE.limit(bindparam("first"))
CLAIM = (
    update(JOBS)
    .where(JOBS.c.id.in_(bindparam("ids", expanding=True)), JOBS.c.state == QUEUED)
    .values(
        state=JobState.SUBMITTING.value,
        updated_at=bindparam("b_now", type_=JOBS.c.updated_at.type),
        lease_owner=bindparam("b_owner"),
        lease_expires_at=bindparam("b_until", type_=JOBS.c.lease_expires_at.type),
        attempts=JOBS.c.attempts + 1,
    )
    .returning(*JOBS.c)
)
SERVED = (
    update(USERS)
    .where(USERS.c.id.in_(bindparam("ids", expanding=True)))
    .values(last_served_at=bindparam("b_now", type_=USERS.c.last_served_at.type))
)
# A served user's next song: one index seek (a user's queued songs are in order by id).
NEXT_MARK = (
    update(JOBS)
    .where(
        JOBS.c.id
        == select(func.min(JOBS.c.id))
        .where(
            JOBS.c.state == QUEUED,
            # Not "backend": an UPDATE of jobs keeps its column names for its own values.
            JOBS.c.backend == bindparam("b_backend"),
            JOBS.c.user_id == bindparam("b_user"),
        )
        .scalar_subquery()
    )
    .values(fair_served=bindparam("b_mark"))
)


async def fair_place(
    connection: AsyncConnection, *, user_id: int, backend: str, platform: str, chat_id: str
) -> tuple[int, int, int]:
    """(round, turn, served) of a job this user is about to queue (:mod:`bot.scheduler`). Called
    after the user's row was written, so one user's enqueues compute it one at a time; two
    users of one chat may get the same turn on PostgreSQL, and then arrival (id) decides.

    The round being served is the latest among the jobs in flight (few, at most the
    backend's concurrency), else the first queued one's (one index entry), else 0."""
    inputs = {"backend": backend, "user_id": user_id}
    latest, serving, served = (await connection.execute(PLACE_INPUTS, inputs)).one()
    if serving is None:
        serving = await connection.scalar(FIRST_ROUND, {"backend": backend})
    round_ = fair_round(None if latest is None else int(latest), int(serving or 0))
    turn = await connection.scalar(
        CHAT_TURN, {"backend": backend, "round": round_, "platform": platform, "chat_id": chat_id}
    )
    return round_, int(turn or 0), served_mark(served)


def served_mark(served: datetime | None) -> int:
    """When the user was last served, in µs since the epoch (0: never): within a round, who
    had been served longest ago when queueing goes first."""
    return 0 if served is None else int(served.timestamp() * 1_000_000)


async def head(connection: AsyncConnection, backend: str, first: int | None) -> list[int]:
    """The first ``first`` places of the line (all of it with None): an index scan."""
    if first is None:
        return list((await connection.scalars(LINE, {"backend": backend})).all())
    return list((await connection.scalars(LINE_HEAD, {"backend": backend, "first": first})).all())


async def places_of(connection: AsyncConnection, jobs: Collection[Job]) -> dict[JobId, int]:
    """Places in line (1 = next) of those of ``jobs`` still queued: one scan of
    ``ix_jobs_fair`` in serving order, from its start to the round of the latest of them
    (so it costs the same for one job or fifty of one user's)."""
    wanted = [job.id for job in jobs if job.state == JobState.QUEUED]
    if not wanted:
        return {}
    rows = await connection.execute(LATEST_QUEUED, {"ids": wanted})
    places: dict[JobId, int] = {}
    for backend, latest in rows.all():
        found = await connection.execute(
            PLACES, {"backend": backend, "latest": latest, "wanted": wanted}
        )
        places.update({JobId(job_id): int(place) for job_id, place in found.all()})
    return places


class FairQueueQueries(Sessions):
    async def queue_order(self, backend: str, *, first: int | None = None) -> list[int]:
        """Queued job ids of one backend, in the order they will be served (the ``first``
        few only, when given)."""
        async with self._querying() as connection:
            return await head(connection, backend, first)

    async def position(self, job: Job) -> int:
        """1 = next in line; 0 when the job is past the queue."""
        return (await self.positions([job])).get(job.id, 0)

    async def positions(self, jobs: Collection[Job]) -> dict[JobId, int]:
        """The place in line (1 = next) of each of ``jobs`` still queued (/queue)."""
        async with self._querying() as connection:
            return await places_of(connection, jobs)

    # ------------------------------------------------------------ claiming
    async def claim_for_submit(
        self,
        backend: str,
        *,
        owner: str,
        max_in_flight: int,
        lease_until: datetime,
        now: datetime,
        at_most: int | None = None,
    ) -> list[Job]:
        """Move up to the free slots' worth of queued jobs to SUBMITTING, fairly."""
        async with self._writing() as connection:
            if on_postgres(connection):
                # One claimer per backend at a time, so the concurrency limit holds across
                # processes; rows themselves are protected by the compare-and-set below.
                await advisory_lock(connection, f"acejam-claim:{backend}")
            in_flight = await connection.scalar(IN_FLIGHT, {"backend": backend})
            slots = max_in_flight - int(in_flight or 0)
            if at_most is not None:
                slots = min(slots, at_most)
            if slots <= 0:
                return []
            chosen = await head(connection, backend, slots)
            if not chosen:
                return []
            result = await connection.execute(
                CLAIM, {"ids": chosen, "b_now": now, "b_owner": owner, "b_until": lease_until}
            )
            rows = {row.id: row for row in result.all()}
            await audit(connection, list(rows), JobState.QUEUED.value, JobState.SUBMITTING, now)
            served = {row.user_id for row in rows.values()}
            if served:  # what a user's next songs are ranked by within their round
                await connection.execute(SERVED, {"ids": sorted(served), "b_now": now})
            for user_id in served:
                # Their next song waits behind those of users served before them: its mark
                # becomes now.
                await connection.execute(
                    NEXT_MARK,
                    {"b_backend": backend, "b_user": user_id, "b_mark": served_mark(now)},
                )
            return [row_to_job(rows[job_id]) for job_id in chosen if job_id in rows]
