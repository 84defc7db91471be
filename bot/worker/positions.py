"""Queue positions: when the line moves, tell the first few waiting songs their new place."""

from __future__ import annotations

from bot.clock import utcnow
from bot.domain import LOCAL_PLATFORM
from bot.notify import Notifier
from bot.ports import Backend, EventKind, JobEvent
from bot.stores import WorkerStore
from bot.worker.forecast import Forecast

POSITIONS_ANNOUNCED = 10  # queued songs told when the line moves


class Positions:
    def __init__(
        self, *, store: WorkerStore, backend: Backend, notifier: Notifier, forecast: Forecast
    ) -> None:
        self._store = store
        self._backend = backend
        self._notifier = notifier
        self._forecast = forecast
        self._announced: dict[int, int] = {}  # job id -> queue position last shown

    async def announce(self) -> None:
        """The line moved: tell the first few waiting songs their new place."""
        if not self._notifier.platforms - {LOCAL_PLATFORM}:
            return
        order = await self._store.queue_order(self._backend.name, first=POSITIONS_ANNOUNCED)
        now = utcnow()
        for job in await self._store.get_many(order):
            position = order.index(job.id) + 1
            eta = self._forecast.queued_eta(
                job, now=now, position=position, concurrency=self._backend.max_concurrency
            )
            if self._announced.get(job.id) != position:
                self._announced[job.id] = position
                await self._notifier.emit(
                    JobEvent(EventKind.QUEUED, job, position=position, eta=eta)
                )
        for job_id in set(self._announced) - set(order):
            del self._announced[job_id]
