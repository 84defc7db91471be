"""The audit trail: one `job_events` row per state change, written in the change's own
transaction. It is also the feed a chat-only process follows (bot/relay.py), and it is
pruned after EVENT_RETENTION_DAYS; jobs and the ledger are kept."""

from __future__ import annotations

from collections.abc import Collection
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import cast

from sqlalchemy import Table, delete, func, insert, select
from sqlalchemy.ext.asyncio import AsyncConnection

from bot.domain import Job, JobState
from storage.db import Sessions
from storage.jobs.rows import is_job_id, row_to_job
from storage.models import JobEventRow, JobRow

# Built once, on the table rather than the mapped class: the ORM's bulk-insert path and
# building the statement anew cost more than SQLite's own work for the row (a state change
# writes one, so every job writes five).
EVENT_INSERT = insert(cast(Table, JobEventRow.__table__))


@dataclass(frozen=True)
class Transition:
    """One row of a job's timeline (`acejam jobs show`)."""

    at: datetime
    from_state: str | None
    to_state: str
    detail: str | None


async def audit(
    connection: AsyncConnection,
    job_ids: list[int],
    from_state: str | None,
    to_state: JobState,
    now: datetime,
    detail: str | None = None,
) -> None:
    rows = [
        {
            "job_id": job_id,
            "at": now,
            "from_state": from_state,
            "to_state": to_state.value,
            "detail": detail,
        }
        for job_id in job_ids
    ]
    if rows:
        await connection.execute(EVENT_INSERT, rows[0] if len(rows) == 1 else rows)


class EventQueries(Sessions):
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
        if not is_job_id(job_id):
            return []
        async with self._reads() as session:
            rows = await session.execute(
                select(JobEventRow.from_state, JobEventRow.to_state, JobEventRow.detail)
                .where(JobEventRow.job_id == job_id)
                .order_by(JobEventRow.id)
            )
            return [tuple(r) for r in rows.all()]  # type: ignore[misc]

    async def timeline(self, job_id: int) -> list[Transition]:
        """Every state change of a job still kept (EVENT_RETENTION_DAYS), oldest first."""
        if not is_job_id(job_id):
            return []
        async with self._reads() as session:
            rows = await session.execute(
                select(
                    JobEventRow.at, JobEventRow.from_state, JobEventRow.to_state, JobEventRow.detail
                )
                .where(JobEventRow.job_id == job_id)
                .order_by(JobEventRow.id)
            )
            # SQLite hands datetimes back without their zone; they were written in UTC.
            return [
                Transition(at if at.tzinfo else at.replace(tzinfo=UTC), before, after, detail)
                for at, before, after, detail in rows.all()
            ]
