"""Job events across processes.

When workers and chat adapters run in different processes (`acejam run --role ...`), the
worker's in-process events can't reach the chat. The adapters' process follows the
`job_events` table instead and turns state changes into the same :class:`JobEvent`s
(started, failed, cancelled; the track itself comes through delivery, docs/jobs.md).

On PostgreSQL the worker also nudges it (:class:`bot.ports.Nudges`, ``Nudge.EVENT``): a
state change makes it read the feed at once rather than at its next turn, and a progress
report (which is no state change, so never in the feed) comes in the nudge itself. A lost
nudge costs a state change its promptness (the feed is read every ``interval`` anyway) and
a progress report itself (the next one says more).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime

from bot import messages
from bot.domain import LOCAL_PLATFORM, JobState
from bot.notify import Notifier
from bot.ports import EventKind, JobEvent, Nudge, Nudges
from bot.retry import backoff
from bot.stores import WorkerStore
from bot.worker import DB_ERRORS, outage

logger = logging.getLogger(__name__)

MAX_OUTAGE_PAUSE = 5.0  # seconds between reads while the database is away

EVENT_FOR_STATE = {
    JobState.SUBMITTED: EventKind.STARTED,
    JobState.FAILED: EventKind.FAILED,
    JobState.CANCELLED: EventKind.CANCELLED,
}
# The feed's events, which a nudge only announces (the feed says what they are).
FEED_KINDS = frozenset(EVENT_FOR_STATE.values())
PROGRESSING = frozenset({JobState.SUBMITTED, JobState.RUNNING})


class NoNudges:
    """A process alone on its database (SQLite): nobody else to tell, nothing to hear; its
    own parts nudge each other in-process (``GenerationService.on_new_work``)."""

    def send(self, nudge: Nudge, key: str, payload: str = "") -> None:
        pass

    def on(self, nudge: Nudge, key: str, hear: Callable[[str], None]) -> None:
        pass


@dataclass(frozen=True)
class ProgressReport:
    """A PROGRESS event as it crosses to another process: the job is read there again."""

    job_id: int
    progress: float | None
    eta: datetime | None

    def encode(self) -> str:
        progress = "-" if self.progress is None else f"{self.progress:.4f}"
        eta = "-" if self.eta is None else f"{self.eta.timestamp():.3f}"
        return f"{self.job_id} {progress} {eta}"

    @classmethod
    def decode(cls, payload: str) -> ProgressReport | None:
        """None for an empty payload (read the feed) or one this version can't read."""
        try:
            job_id, progress, eta = payload.split(" ")
            return cls(
                int(job_id),
                None if progress == "-" else float(progress),
                None if eta == "-" else datetime.fromtimestamp(float(eta), UTC),
            )
        except ValueError:
            return None


def forward_events(nudges: Nudges) -> Callable[[JobEvent], None]:
    """What a :class:`Notifier` does with an event for a platform this process doesn't
    serve: nudge the processes that do."""

    def forward(event: JobEvent) -> None:
        platform = event.job.destination.platform
        if platform == LOCAL_PLATFORM:
            return
        if event.kind == EventKind.PROGRESS:
            report = ProgressReport(event.job.id, event.progress, event.eta)
            nudges.send(Nudge.EVENT, platform, report.encode())
        elif event.kind in FEED_KINDS:
            nudges.send(Nudge.EVENT, platform)

    return forward


class EventRelay:
    def __init__(self, *, store: WorkerStore, notifier: Notifier, interval: float = 0.5) -> None:
        self._store = store
        self._notifier = notifier
        self._interval = interval
        self._wake = asyncio.Event()
        self._reports: dict[int, ProgressReport] = {}  # the latest per job, not yet told

    def hear(self, payload: str) -> None:
        """A nudge (``Nudge.EVENT``): read the feed now, and tell a progress report."""
        report = ProgressReport.decode(payload)
        if report is not None:
            self._reports[report.job_id] = report
        self._wake.set()

    async def run(self, stop: asyncio.Event) -> None:
        last_id: int | None = None
        failures = 0
        while not stop.is_set():
            self._wake.clear()  # a nudge from here on brings the next read forward
            try:
                if last_id is None:
                    last_id = await self._store.last_event_id()
                rows = await self._store.events_after(last_id, platforms=self._notifier.platforms)
            except DB_ERRORS as exc:
                # The database is away for a moment: the events wait there for us, so
                # keep our place and try again, as the worker does; never end the process.
                failures += 1
                pause = backoff(failures, base=self._interval, cap=MAX_OUTAGE_PAUSE)
                logger.warning(
                    "database unavailable (%s); relaying job events again in %.1f s",
                    outage(exc),
                    pause,
                )
                with contextlib.suppress(TimeoutError):  # nudges can't bring this forward
                    await asyncio.wait_for(stop.wait(), pause)
                continue
            if failures:
                logger.info("database back after %d failed reads; relaying job events", failures)
                failures = 0
            for event_id, job, to_state in rows:
                last_id = event_id
                kind = EVENT_FOR_STATE.get(to_state)
                if kind is None or job is None:
                    continue
                message = None
                if kind == EventKind.FAILED:
                    message = messages.failure_message(job.error_code)
                elif kind == EventKind.CANCELLED:
                    message = messages.cancel_message(job)
                await self._notifier.emit(JobEvent(kind, job, message=message))
            await self._tell_progress()
            await self._pause(stop, self._interval)

    async def _tell_progress(self) -> None:
        """Progress reports heard, after the feed (so a job's start is told before them),
        each about the job as it is now: one that ended meanwhile is not told."""
        reports, self._reports = self._reports, {}
        if not reports:
            return
        with contextlib.suppress(*DB_ERRORS):  # best effort: the next report says more
            for job in await self._store.get_many(list(reports)):
                if job.state in PROGRESSING:
                    report = reports[job.id]
                    event = JobEvent(
                        EventKind.PROGRESS, job, progress=report.progress, eta=report.eta
                    )
                    await self._notifier.emit(event)

    async def _pause(self, stop: asyncio.Event, seconds: float) -> None:
        """Until the next read is due, a nudge arrives, or the process stops."""
        if self._wake.is_set():
            return
        waiters = [asyncio.ensure_future(stop.wait()), asyncio.ensure_future(self._wake.wait())]
        try:
            await asyncio.wait(waiters, timeout=seconds, return_when=asyncio.FIRST_COMPLETED)
        finally:
            for waiter in waiters:
                waiter.cancel()
