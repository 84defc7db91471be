"""When to poll a job and when to say it will be ready: recent run times, plus a hint.

Shared by the phases of one worker: the submit phase sets the backend's hint, a finished
poll adds a sample, and polls, progress notes and queue positions read them.
"""

from __future__ import annotations

from datetime import datetime

from bot import estimates
from bot.clock import utcnow
from bot.domain import Job
from bot.polling import PollPlanner


class Forecast:
    def __init__(self, planner: PollPlanner, *, min_interval: float) -> None:
        self._planner = planner
        self._min_interval = min_interval
        # The backend's own estimate (ACE-Step's average job time) seeds the poll plan
        # until this process has history of its own.
        self.hint: float | None = None

    def observe(self, duration: int, runtime: float) -> None:
        self._planner.observe(duration, runtime)

    @staticmethod
    def elapsed(job: Job) -> float:
        """Seconds since the upstream took the job (0 before)."""
        if job.submitted_at is None:
            return 0.0
        return max(0.0, (utcnow() - job.submitted_at).total_seconds())

    def poll_delay(self, job: Job) -> float:
        return self._planner.next_delay(job.request.duration, self.elapsed(job), self.hint)

    def runtime(self, job: Job, seen_unfinished: float | None, *, pushed: bool) -> float:
        """Best guess of when the job completed upstream, in seconds after submit. A poll
        only bounds it: the middle of the interval keeps the estimate from creeping later
        by the lag of every notice (the first poll would then only ever move later)."""
        noticed = self.elapsed(job)
        if pushed:
            return noticed
        before = seen_unfinished
        if before is None:  # done at the first look: it finished some time before
            before = max(0.0, noticed - self._min_interval)
        return (before + noticed) / 2

    def eta(self, job: Job, progress: float | None = None) -> datetime | None:
        if job.submitted_at is None:
            return None
        samples, duration = self._planner.samples, job.request.duration
        return estimates.ready_at(
            submitted_at=job.submitted_at,
            now=utcnow(),
            expected=estimates.expected_runtime(samples, duration, self.hint),
            slow=estimates.slow_runtime(samples, duration),
            progress=progress,
        )

    def queued_eta(
        self, job: Job, *, now: datetime, position: int, concurrency: int
    ) -> datetime | None:
        """When a song waiting at ``position`` in line should be ready."""
        samples = self._planner.samples
        return estimates.queued_ready_at(
            now=now,
            position=position,
            concurrency=concurrency,
            typical=estimates.typical_runtime(samples, self.hint),
            own=estimates.expected_runtime(samples, job.request.duration, self.hint),
        )
