"""Leases: a worker owns the jobs it claimed until its lease runs out; it renews them, hands
them back when it stops, and takes over those whose owner is gone (docs/jobs.md, "Leases")."""

from __future__ import annotations

from collections.abc import Collection
from datetime import datetime

from sqlalchemy import and_, or_, select, update

from bot.domain import FINAL_STATES, IN_FLIGHT_STATES, Job, JobState
from storage.db import Sessions
from storage.jobs.rows import row_to_job, state_values
from storage.models import JobRow


class LeaseQueries(Sessions):
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
                and_(JobRow.backend == backend, JobRow.state.in_(state_values(IN_FLIGHT_STATES)))
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
                        JobRow.id == job_id,
                        lease_free,
                        JobRow.state.not_in(state_values(FINAL_STATES)),
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
