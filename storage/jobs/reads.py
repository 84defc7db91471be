"""Reads of jobs: by id, a user's (and a page of them, for /history), the recent run times
the poll planner learns from, and the audio files retention must keep."""

from __future__ import annotations

from collections.abc import Collection

from sqlalchemy import func, or_, select

from bot.domain import ACTIVE_STATES, Job, JobState
from bot.stores import JobPage
from storage.db import Sessions
from storage.jobs.rows import is_job_id, row_to_job, state_values
from storage.models import JobRow


class JobReads(Sessions):
    async def get(self, job_id: int) -> Job | None:
        if not is_job_id(job_id):
            return None
        async with self._reads() as session:
            row = await session.get(JobRow, job_id)
            return row_to_job(row) if row is not None else None

    async def get_many(self, job_ids: Collection[int]) -> list[Job]:
        job_ids = [job_id for job_id in job_ids if is_job_id(job_id)]
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
            query = query.where(JobRow.state.in_(state_values(states)))
        query = query.order_by(JobRow.id.desc() if newest_first else JobRow.id).limit(limit)
        async with self._reads() as session:
            return [row_to_job(r) for r in (await session.scalars(query)).all()]

    async def page_of_jobs(
        self, user_id: int, *, states: Collection[JobState], offset: int, limit: int
    ) -> JobPage:
        """Both queries walk ix_jobs_user_state (user_id, state): a user's own rows only,
        however many songs everyone else has made."""
        mine = (JobRow.user_id == user_id, JobRow.state.in_(state_values(states)))
        async with self._reads() as session:
            total = await session.scalar(select(func.count()).select_from(JobRow).where(*mine))
            rows = await session.scalars(
                select(JobRow)
                .where(*mine)
                .order_by(JobRow.id.desc())
                .offset(max(offset, 0))
                .limit(max(limit, 0))
            )
            return JobPage([row_to_job(r) for r in rows.all()], total or 0)

    async def recent_runtimes(self, backend: str, limit: int = 50) -> list[tuple[int, float]]:
        """(duration asked, seconds from submit to upstream completion) of recent jobs."""
        async with self._reads() as session:
            rows = await session.execute(
                select(JobRow.duration, JobRow.remote_seconds)
                .where(
                    JobRow.backend == backend,
                    JobRow.remote_seconds.is_not(None),
                    JobRow.state.in_(state_values({JobState.SUCCEEDED, JobState.DELIVERED})),
                )
                .order_by(JobRow.id.desc())
                .limit(limit)
            )
            return [(duration, seconds) for duration, seconds in rows.all() if seconds]

    async def kept_audio(self) -> set[str]:
        """Audio files that must not be deleted: their jobs are not delivered yet (every
        take of a job with several, and an edit's source)."""
        async with self._reads() as session:
            rows = await session.execute(
                select(JobRow.audio_path, JobRow.take_states, JobRow.edit).where(
                    or_(
                        JobRow.audio_path.is_not(None),
                        JobRow.take_states.is_not(None),
                        JobRow.edit.is_not(None),
                    ),
                    JobRow.state.in_(state_values(ACTIVE_STATES)),
                )
            )
            paths: set[str] = set()
            for path, takes, edit in rows.all():
                paths.update(p for p in (path, *(t.get("audio_path") for t in takes or ())) if p)
                if edit and edit.get("source_path"):
                    paths.add(edit["source_path"])
            return paths
