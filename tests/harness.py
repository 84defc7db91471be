"""Helpers shared by service and adapter tests: settings for fakes, a running core,
and waiting on job states without fixed sleeps."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Iterable, Sequence
from pathlib import Path
from typing import Any

from bot.app import Core, open_core
from bot.config import Settings
from bot.domain import Job, JobState
from bot.ports import Delivery, DeliveryReceipt, JobEvent, TrackFile

WAVESPEED_KEY = "ws-test-key-not-real"
POLL_SCALE = 0.05


def wavespeed_settings(data_dir: Path, base_url: str, **overrides: Any) -> Settings:
    values: dict[str, Any] = {
        "backend": "wavespeed",
        "wavespeed_api_key": WAVESPEED_KEY,
        "wavespeed_base_url": base_url,
        "data_dir": data_dir,
        "lease_seconds": 1.0,
        "poll_time_scale": POLL_SCALE,
        "http_timeout_seconds": 10.0,
    }
    values.update(overrides)
    return Settings(_env_file=None, **values)  # type: ignore[call-arg]


def acestep_settings(data_dir: Path, base_url: str, **overrides: Any) -> Settings:
    values: dict[str, Any] = {
        "backend": "acestep",
        "acestep_api_url": base_url,
        "data_dir": data_dir,
        "lease_seconds": 1.0,
        "poll_time_scale": POLL_SCALE,
        "http_timeout_seconds": 10.0,
    }
    values.update(overrides)
    return Settings(_env_file=None, **values)  # type: ignore[call-arg]


@contextlib.asynccontextmanager
async def running_core(
    settings: Settings, deliveries: Iterable[Delivery] = ()
) -> AsyncIterator[Core]:
    """A core with its worker running; stopped gracefully on exit."""
    async with open_core(settings) as core:
        for delivery in deliveries:
            core.service.register_delivery(delivery)
        stop = asyncio.Event()
        task = asyncio.create_task(core.worker.run(stop))
        # The jam clock runs where the adapters do (bot.app.serve_role), so here too.
        clock = core.jam_clock
        ticking = asyncio.create_task(clock.run(stop)) if clock is not None else None
        try:
            yield core
        finally:
            stop.set()
            await task
            if ticking is not None:
                await ticking


async def wait_for_job(
    core: Core, job_id: int, states: Iterable[JobState], timeout: float = 15.0
) -> Job:
    wanted = set(states)
    async with asyncio.timeout(timeout):
        while True:
            job = await core.store.get(job_id)
            if job is not None and job.state in wanted:
                return job
            async with core.worker.finished:
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(core.worker.finished.wait(), 0.05)


class RecordingDelivery:
    """A chat platform reduced to what the core hands it; for core-level tests only
    (the adapters' tests use the real clients against fake platform servers)."""

    def __init__(self, platform: str = "telegram", *, fail_first: int = 0) -> None:
        self.platform = platform
        self.events: list[JobEvent] = []
        self.delivered: list[tuple[int, Path]] = []  # (job, its first take's file)
        self.tracks: dict[int, list[TrackFile]] = {}  # job -> every take it delivered
        self._fail_first = fail_first
        self._changed = asyncio.Condition()

    async def on_event(self, event: JobEvent) -> None:
        self.events.append(event)
        async with self._changed:
            self._changed.notify_all()

    async def deliver(self, job: Job, tracks: Sequence[TrackFile]) -> DeliveryReceipt:
        if self._fail_first > 0:
            self._fail_first -= 1
            raise ConnectionError("platform unavailable")
        self.delivered.append((job.id, tracks[0].path))
        self.tracks[job.id] = list(tracks)
        async with self._changed:
            self._changed.notify_all()
        return DeliveryReceipt(message_id=f"msg-{job.id}")

    def kinds(self, job_id: int) -> list[str]:
        return [e.kind.value for e in self.events if e.job.id == job_id]
