"""`JamClock`: what happens to jams when nobody presses anything (docs/jams.md, The clock).

It runs in the processes that run the chat adapters (``acejam run``, roles all and
adapters). At every look it takes the open jams and acts on what is due
(:func:`bot.jams.model.due`): collecting time up → render as the host; every take of a
rendering round ended → voting (or back to collecting when none was made); voting time up →
close with the winner; a rendering round with takes not queued (a crash between the render
and its submits) → queue them (their idempotency keys make a repeat the same job).

It looks at the next deadline, every ``interval`` seconds whatever happens (another
process's jams, a missed wake), and at once when one of a jam's takes ended here (it
watches the notifier: a take delivered, failed or cancelled) or a jam got a deadline.
Every change is a compare-and-set in the store, so two clocks (two adapter processes) or a
clock and a press never both act.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Sequence
from datetime import datetime

from bot.domain import Job
from bot.errors import StoreUnavailable
from bot.jams.model import due, next_deadline
from bot.jams.rounds import Rounds
from bot.jams.service import JamService
from bot.ports import EventKind, JobEvent, TrackFile

logger = logging.getLogger(__name__)

INTERVAL_SECONDS = 15.0


def _of_jam(job: Job) -> bool:
    return "jam_id" in job.destination.context


class JamClock:
    def __init__(self, jams: JamService, *, interval: float = INTERVAL_SECONDS) -> None:
        self._jams = jams
        self._interval = interval
        self._woken = asyncio.Event()
        jams.on_change(self.wake)

    def wake(self) -> None:
        self._woken.set()

    # A bot.notify.Watcher: a jam's take ended here.
    def on_event(self, event: JobEvent) -> None:
        if event.kind in (EventKind.FAILED, EventKind.CANCELLED) and _of_jam(event.job):
            self.wake()

    def on_delivered(self, job: Job, tracks: Sequence[TrackFile], seconds: float) -> None:
        if _of_jam(job):
            self.wake()

    def on_refused(self, code: str) -> None:
        return None

    async def tick(self) -> datetime | None:
        """Act on every open jam once; the next deadline among them (None: none)."""
        now = self._jams.now()
        soonest: datetime | None = None
        for jam in await self._jams.store.open_jams():
            action = due(jam, now)
            if action is not None:
                try:
                    await Rounds(self._jams).settle(jam, action)
                except StoreUnavailable:
                    raise
                except Exception:  # one jam's trouble must not stop the others'
                    logger.exception("jam %s: %s failed", jam.id, action)
                fresh = await self._jams.get(jam.id)
                jam = fresh if fresh is not None else jam
            deadline = next_deadline(jam)
            if deadline is not None and (soonest is None or deadline < soonest):
                soonest = deadline
        return soonest

    async def run(self, stop: asyncio.Event) -> None:
        while not stop.is_set():
            self._woken.clear()
            try:
                soonest = await self.tick()
            except StoreUnavailable as exc:
                logger.warning("jam clock: the database did not answer (%s)", exc.kind)
                soonest = None
            wait = self._interval
            if soonest is not None:
                wait = min(wait, max(0.0, (soonest - self._jams.now()).total_seconds()) + 0.05)
            stopping = asyncio.ensure_future(stop.wait())
            woken = asyncio.ensure_future(self._woken.wait())
            try:
                await asyncio.wait(
                    {stopping, woken}, timeout=wait, return_when=asyncio.FIRST_COMPLETED
                )
            finally:
                for task in (stopping, woken):
                    task.cancel()
                    with contextlib.suppress(asyncio.CancelledError):
                        await task
