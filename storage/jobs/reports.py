"""What admins and audits list: usage per user, the active jobs, a user's ledger."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import case, func, select

from bot.domain import ACTIVE_STATES, Job, JobState
from bot.stores import StateCount, UsageRow
from storage.db import Sessions
from storage.jobs.rows import row_to_job, state_values
from storage.models import JobRow, LedgerRow, UserRow


class ReportQueries(Sessions):
    async def usage_report(
        self, *, since: datetime, platform: str | None = None, scope: str | None = None
    ) -> list[UsageRow]:
        """Per user since ``since``: jobs asked, seconds delivered, cost, GPU time."""
        done = JobRow.state.in_(state_values({JobState.SUCCEEDED, JobState.DELIVERED}))
        query = (
            select(
                UserRow.platform,
                UserRow.platform_user_id,
                UserRow.display_name,
                func.count(JobRow.id),
                # Every take counts, as in the quota.
                func.coalesce(func.sum(case((done, JobRow.duration * JobRow.takes), else_=0)), 0),
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
        query = (
            select(JobRow).where(JobRow.state.in_(state_values(ACTIVE_STATES))).order_by(JobRow.id)
        )
        if platform is not None:
            query = query.where(JobRow.platform == platform)
        if scope is not None:
            query = query.where(JobRow.scope_id == scope)
        async with self._reads() as session:
            return [row_to_job(r) for r in (await session.scalars(query.limit(500))).all()]

    async def active_counts(self) -> list[StateCount]:
        query = (
            select(JobRow.backend, JobRow.state, func.count(JobRow.id), func.min(JobRow.created_at))
            .where(JobRow.state.in_(state_values(ACTIVE_STATES)))
            .group_by(JobRow.backend, JobRow.state)
        )
        async with self._reads() as session:
            rows = (await session.execute(query)).all()
        return [
            StateCount(backend, JobState(state), int(jobs), oldest)
            for backend, state, jobs, oldest in rows
        ]

    async def ledger_balance(self, user_id: int) -> dict[str, int]:
        """Seconds per ledger kind for one user (for audits and tests)."""
        async with self._reads() as session:
            rows = await session.execute(
                select(LedgerRow.kind, func.coalesce(func.sum(LedgerRow.seconds), 0))
                .where(LedgerRow.user_id == user_id)
                .group_by(LedgerRow.kind)
            )
            return {kind: int(total) for kind, total in rows.all()}
