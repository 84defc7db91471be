"""Writes: users, new songs (admitted against the user's usage in the same transaction),
and compare-and-set state changes with their audit and ledger rows.

State changes are compare-and-set: ``UPDATE ... WHERE id = ? AND state IN (...)`` and a
check that one row changed, so two processes can never both move the same job. Each
change writes its `job_events` row and its ledger row in the same transaction.
"""

from __future__ import annotations

import functools
from collections.abc import Collection, Mapping
from datetime import datetime
from typing import Any, cast

from sqlalchemy import (
    BindParameter,
    Row,
    String,
    Table,
    bindparam,
    func,
    insert,
    literal,
    or_,
    select,
    update,
)
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncConnection

from bot.domain import ACTIVE_STATES, FINAL_STATES, Controls, Edit, Job, JobState, UserId
from bot.quotas import QUOTA_WINDOW, Refusal, UsageNeeds, UsageSnapshot
from bot.stores import EVERYTHING, Admission, Enqueued, NewJob, UserKey
from storage.db import Sessions
from storage.jobs.events import audit
from storage.jobs.queue import fair_place, place_of, places_of
from storage.jobs.rows import (
    JOBS,
    USERS,
    advisory_lock,
    as_columns,
    edit_columns,
    is_job_id,
    on_postgres,
    row_to_job,
    state_values,
)
from storage.models import JobRow, LedgerRow, UserRow

# The statements of every new song, built once (their values are bound when they run): on
# the table, not the mapped classes, so neither building them nor the ORM's layers are paid
# for each song (docs/performance.md, section 3).
LEDGER = cast(Table, LedgerRow.__table__)
TOUCH_USER = (
    update(USERS)
    .where(
        USERS.c.platform == bindparam("b_platform"),
        USERS.c.platform_user_id == bindparam("b_user_id"),
    )
    .values(last_request_at=bindparam("b_now", type_=USERS.c.last_request_at.type))
    .returning(USERS.c.id)
)
ACTIVE_JOBS = (
    select(func.count())
    .select_from(JOBS)
    .where(JOBS.c.user_id == bindparam("user_id"), JOBS.c.state.in_(state_values(ACTIVE_STATES)))
)
_THIS_MONTH = JOBS.c.created_at >= bindparam("since", type_=JOBS.c.created_at.type)
MONTH_COST = select(func.coalesce(func.sum(JOBS.c.cost_usd), 0.0)).where(_THIS_MONTH)
# The user's active songs and the chat's: two ranges of indexes (ix_jobs_user_state,
# ix_jobs_scope_state) over songs in the works, whatever the chat's history.
ACTIVE_IN_SCOPE = select(
    ACTIVE_JOBS.scalar_subquery(),
    select(func.count())
    .select_from(JOBS)
    .where(
        JOBS.c.platform == bindparam("platform"),
        JOBS.c.scope_id == bindparam("scope"),
        JOBS.c.state.in_(state_values(ACTIVE_STATES)),
    )
    .scalar_subquery(),
)
# The user's active songs, and the chat's active songs and this month's cost, in one
# statement: with a chat budget, a scan of the chat's songs.
USAGE_IN_SCOPE = select(
    ACTIVE_JOBS.correlate(None).scalar_subquery(),  # its own scan, not the outer rows
    func.count().filter(JOBS.c.state.in_(state_values(ACTIVE_STATES))),
    func.coalesce(func.sum(JOBS.c.cost_usd).filter(_THIS_MONTH), 0.0),
).where(JOBS.c.platform == bindparam("platform"), JOBS.c.scope_id == bindparam("scope"))
# What each reservation still holds: all of it, none once refunded, or the takes that were
# delivered when some of a job's takes failed alone.
_REFUND = LEDGER.alias("refund")
_HELD = LEDGER.c.seconds - func.coalesce(
    select(_REFUND.c.seconds)
    .where(_REFUND.c.job_id == LEDGER.c.job_id, _REFUND.c.kind == "refund")
    .scalar_subquery(),
    0,
)
RESERVATIONS = (
    select(LEDGER.c.created_at, _HELD)
    .where(
        LEDGER.c.user_id == bindparam("user_id"),
        LEDGER.c.kind == "reserve",
        LEDGER.c.created_at > bindparam("since"),
        _HELD > 0,
    )
    .order_by(LEDGER.c.created_at)
)
LEDGER_INSERT = insert(LEDGER)
BY_IDEMPOTENCY_KEY = select(JOBS).where(JOBS.c.idempotency_key == bindparam("key"))
STATE_OF = select(JOBS.c.state).where(JOBS.c.id == bindparam("job_id", type_=JOBS.c.id.type))

# Settling a reservation (commit or refund, first one wins), built once like the above.
_JOB: BindParameter[int] = bindparam("b_job", type_=LEDGER.c.job_id.type)
_SETTLED = (
    select(LEDGER.c.id)
    .where(LEDGER.c.job_id == _JOB, LEDGER.c.kind.in_(["commit", "refund"]))
    .exists()
)
SETTLED = _SETTLED.select()


def _settling(kind: Any, seconds: Any, *, unless_settled: bool) -> Any:
    """INSERT a ledger row of ``kind`` for ``seconds`` of the job's reservation."""
    return insert(LEDGER).from_select(
        ["user_id", "job_id", "kind", "seconds", "created_at"],
        select(
            LEDGER.c.user_id,
            LEDGER.c.job_id,
            kind,
            seconds,
            bindparam("b_now", type_=LEDGER.c.created_at.type),
        ).where(
            LEDGER.c.job_id == _JOB,
            LEDGER.c.kind == "reserve",
            *((~_SETTLED,) if unless_settled else ()),
        ),
    )


_REFUNDED: BindParameter[int] = bindparam("b_refund", type_=LEDGER.c.seconds.type)
SETTLE = _settling(bindparam("b_kind", type_=String), LEDGER.c.seconds, unless_settled=True)
SETTLE_SPLIT_COMMIT = _settling(
    literal("commit"), LEDGER.c.seconds - _REFUNDED, unless_settled=False
)
SETTLE_SPLIT_REFUND = _settling(literal("refund"), _REFUNDED, unless_settled=False)


class JobWrites(Sessions):
    # ------------------------------------------------------------ users
    async def _touch_user(self, connection: AsyncConnection, who: UserKey, now: datetime) -> UserId:
        """The user's id, creating the row on first sight. Writing the row first serialises
        one user's enqueues (a row lock on PostgreSQL, the write lock on SQLite), so two
        requests can't both pass the quota."""
        touch = {"b_platform": who.platform, "b_user_id": who.user_id, "b_now": now}
        found = (await connection.execute(TOUCH_USER, touch)).scalar_one_or_none()
        if found is not None:
            return UserId(found)
        try:
            async with connection.begin_nested():
                created = await connection.execute(
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
            return UserId((await connection.execute(TOUCH_USER, touch)).scalar_one())

    async def find_user(self, platform: str, platform_user_id: str) -> UserId | None:
        async with self._querying() as connection:
            found = await connection.scalar(
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
        async with self._writing() as connection:
            if new.idempotency_key is not None:
                existing = (
                    await connection.execute(BY_IDEMPOTENCY_KEY, {"key": new.idempotency_key})
                ).one_or_none()
                if existing is not None:
                    job = row_to_job(existing)
                    return Enqueued(job, False, (await places_of(connection, [job])).get(job.id, 0))
            if on_postgres(connection):
                # Limits that count other users' jobs (the month's spending, the chat's songs)
                # serialise the enqueues they concern; the user row below only serialises this
                # user's. SQLite's BEGIN IMMEDIATE already lets one writer in at a time. Always
                # the budget first, then the chat: two locks never taken in opposite orders.
                if needs.month_cost:
                    await advisory_lock(connection, "acejam-budget")
                if needs.scope:
                    scope = f"{new.destination.platform}:{new.destination.scope}"
                    await advisory_lock(connection, f"acejam-scope:{scope}")
            user_id = await self._touch_user(connection, new.user, now)
            usage = await self._usage(
                connection,
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
            round_, turn, served = await fair_place(
                connection,
                user_id=user_id,
                backend=new.backend,
                platform=new.destination.platform,
                chat_id=new.destination.chat_id,
            )
            inserted = await connection.execute(
                insert(JOBS)  # Core, not ORM: the same INSERT for a fraction of the CPU
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
                    takes=request.takes,
                    bpm=request.controls.bpm,
                    key_scale=request.controls.key_scale,
                    time_signature=request.controls.time_signature,
                    vocal_language=request.controls.vocal_language,
                    describe=request.describe,
                    **edit_columns(request.edit),
                    state=JobState.QUEUED.value,
                    backend=new.backend,
                    attempts=0,
                    fair_round=round_,
                    chat_turn=turn,
                    fair_served=served,
                    nsfw=False,
                    cost_usd=new.cost_usd,
                    created_at=now,
                    updated_at=now,
                )
                .returning(*JOBS.c)
            )
            job = row_to_job(inserted.one())
            await connection.execute(
                LEDGER_INSERT,
                {
                    "user_id": user_id,
                    "job_id": job.id,
                    "kind": "reserve",
                    "seconds": (
                        new.quota_seconds
                        if new.quota_seconds is not None
                        else request.duration * request.takes
                    ),
                    "created_at": now,
                },
            )
            await audit(connection, [job.id], None, JobState.QUEUED, now)
            return Enqueued(job, True, await place_of(connection, job, round_, served, turn))

    async def usage(
        self,
        user_id: UserId,
        now: datetime,
        *,
        platform: str | None = None,
        scope: str | None = None,
    ) -> UsageSnapshot:
        async with self._querying() as connection:
            return await self._usage(connection, user_id, now, platform=platform, scope=scope)

    async def _usage(
        self,
        connection: AsyncConnection,
        user_id: int,
        now: datetime,
        *,
        platform: str | None = None,
        scope: str | None = None,
        needs: UsageNeeds = EVERYTHING,
    ) -> UsageSnapshot:
        month_start = now.replace(day=1, hour=0, minute=0, second=0, microsecond=0)
        scope_active: int | None = 0
        scope_cost: float | None = 0.0
        if needs.scope and platform is not None and scope is not None:
            in_scope = {"user_id": user_id, "platform": platform, "scope": scope}
            if needs.scope_cost:
                counted = await connection.execute(
                    USAGE_IN_SCOPE, {**in_scope, "since": month_start}
                )
                active, scope_active, scope_cost = counted.one()
            else:
                active, scope_active = (await connection.execute(ACTIVE_IN_SCOPE, in_scope)).one()
        else:
            active = await connection.scalar(ACTIVE_JOBS, {"user_id": user_id})
        reservations: tuple[tuple[datetime, int], ...] = ()
        if needs.reservations:
            rows = await connection.execute(
                RESERVATIONS, {"user_id": user_id, "since": now - QUOTA_WINDOW}
            )
            reservations = tuple((at, seconds) for at, seconds in rows.all())
        total_cost: float | None = 0.0
        if needs.month_cost:
            total_cost = await connection.scalar(MONTH_COST, {"since": month_start})
        return UsageSnapshot(
            active_jobs=int(active or 0),
            reservations=reservations,
            scope_active_jobs=int(scope_active or 0),
            scope_month_cost_usd=float(scope_cost or 0.0),
            total_month_cost_usd=float(total_cost or 0.0),
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
        refund_seconds: float | None = None,
        **fields: Any,
    ) -> Job | None:
        """Compare-and-set a job's state; None when it was not in ``from_states``.

        ``ledger`` ("commit" or "refund") writes the matching quota row in the same
        transaction; the unique (job, kind) constraint makes it happen at most once. A
        commit with ``refund_seconds`` (takes that failed alone) gives those back beside it.
        """
        if to_state in FINAL_STATES:
            fields.setdefault("lease_owner", None)
            fields.setdefault("lease_expires_at", None)
        async with self._writing() as connection:
            row = await self._cas(
                connection, job_id, from_states, to_state, now, detail=detail, **fields
            )
            if row is None:
                return None
            if ledger is not None:
                await _settle(connection, job_id, ledger, now, int(refund_seconds or 0))
            return row_to_job(row)

    async def update_fields(
        self, job_id: int, in_states: Collection[JobState], *, now: datetime, **fields: Any
    ) -> Job | None:
        """Change fields without a state change (progress, poll count), if still in a state."""
        async with self._writing() as connection:
            result = await connection.execute(
                update(JOBS)
                .where(JOBS.c.id == job_id, JOBS.c.state.in_(state_values(in_states)))
                .values(updated_at=now, **as_columns(fields))
                .returning(*JOBS.c)
            )
            row = result.one_or_none()
            return row_to_job(row) if row is not None else None

    async def record_prepared(
        self, job_id: int, in_states: Collection[JobState], *, edit: Edit, now: datetime
    ) -> Job | None:
        return await self.update_fields(job_id, in_states, now=now, **edit_columns(edit))

    async def record_written(
        self,
        job_id: int,
        in_states: Collection[JobState],
        *,
        tags: str,
        lyrics: str,
        duration: int,
        controls: Controls,
        now: datetime,
    ) -> Job | None:
        """The job's request becomes what the language model wrote; the ledger's reserved
        seconds are left alone (a plain field update, no audit or ledger row)."""
        return await self.update_fields(
            job_id,
            in_states,
            now=now,
            tags=tags,
            lyrics=lyrics,
            duration=duration,
            bpm=controls.bpm,
            key_scale=controls.key_scale,
            time_signature=controls.time_signature,
            vocal_language=controls.vocal_language,
        )

    async def merge_context(
        self, job_id: int, patch: Mapping[str, Any], now: datetime
    ) -> Job | None:
        if not is_job_id(job_id):
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
        connection: AsyncConnection,
        job_id: int,
        from_states: Collection[JobState],
        to_state: JobState,
        now: datetime,
        *,
        detail: str | None = None,
        **fields: Any,
    ) -> Row[Any] | None:
        if len(from_states) == 1:
            (only,) = from_states
            current: str | None = only.value
        else:  # for the audit row: which of them it was
            current = await connection.scalar(STATE_OF, {"job_id": job_id})
        values = {"state": to_state.value, "updated_at": now, **as_columns(fields)}
        statement = self._cas_statement(tuple(state_values(from_states)), tuple(sorted(values)))
        params = {f"set_{name}": value for name, value in values.items()}
        row = (await connection.execute(statement, {"cas_id": job_id, **params})).one_or_none()
        if row is not None:
            await audit(connection, [job_id], current, to_state, now, detail)
        return row

    @functools.cached_property
    def _cas_statements(self) -> dict[tuple[tuple[str, ...], tuple[str, ...]], Any]:
        return {}

    def _cas_statement(self, from_states: tuple[str, ...], columns: tuple[str, ...]) -> Any:
        """The compare-and-set UPDATE for these source states and columns, built once per
        store (a handful of shapes): a Core statement on the table, its values bound at
        execution, costs a fraction of building an ORM one for every state change."""
        key = (from_states, columns)
        statement = self._cas_statements.get(key)
        if statement is None:
            statement = (
                update(JOBS)
                .where(
                    JOBS.c.id == bindparam("cas_id"),
                    or_(*(JOBS.c.state == state for state in from_states)),
                )
                .values(
                    {name: bindparam(f"set_{name}", type_=JOBS.c[name].type) for name in columns}
                )
                .returning(*JOBS.c)
            )
            self._cas_statements[key] = statement
        return statement


async def _settle(
    connection: AsyncConnection, job_id: int, ledger: str, now: datetime, refund_seconds: int
) -> None:
    """Settle the reservation once: commit or refund, whichever comes first; a commit with
    ``refund_seconds`` splits it (both rows at once, so the first-wins check is read first)."""
    values = {"b_job": job_id, "b_now": now}
    if ledger == "commit" and refund_seconds > 0:
        if await connection.scalar(SETTLED, values):
            return
        split = {**values, "b_refund": refund_seconds}
        await connection.execute(SETTLE_SPLIT_COMMIT, split)
        await connection.execute(SETTLE_SPLIT_REFUND, split)
        return
    await connection.execute(SETTLE, {**values, "b_kind": ledger})
