"""Job events across processes.

When workers and chat adapters run in different processes (`acejam run --role ...`), the
worker's in-process events can't reach the chat. The adapters' process tails the
`job_events` table instead and turns state changes into the same :class:`JobEvent`s.
Progress percentages stay in the worker process; the chat sees started / failed /
cancelled, and the track itself through normal delivery.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging

from bot import messages
from bot.domain import JobState
from bot.notify import Notifier
from bot.ports import EventKind, JobEvent
from bot.retry import backoff
from bot.stores import EventFeed
from bot.worker import DB_ERRORS, outage

logger = logging.getLogger(__name__)

MAX_OUTAGE_PAUSE = 5.0  # seconds between reads while the database is away

EVENT_FOR_STATE = {
    JobState.SUBMITTED: EventKind.STARTED,
    JobState.FAILED: EventKind.FAILED,
    JobState.CANCELLED: EventKind.CANCELLED,
}


class EventRelay:
    def __init__(self, *, store: EventFeed, notifier: Notifier, interval: float = 0.5) -> None:
        self._store = store
        self._notifier = notifier
        self._interval = interval

    async def run(self, stop: asyncio.Event) -> None:
        last_id: int | None = None
        failures = 0
        while not stop.is_set():
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
                await self._pause(stop, pause)
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
            await self._pause(stop, self._interval)

    @staticmethod
    async def _pause(stop: asyncio.Event, seconds: float) -> None:
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(stop.wait(), seconds)
