"""A core on the in-memory stores (tests/kit/memory_store.py): the same service, worker and
backend client as :func:`bot.app.open_core` builds, without a database. For service and
worker tests that are not about the database; tests/storage/test_store_contract.py holds
the memory store to the SQL one, and the crash suite and storage tests stay on real files."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Callable, Iterable
from contextlib import AbstractAsyncContextManager
from dataclasses import dataclass, field
from datetime import timedelta
from typing import cast

import httpx

from bot import quotas
from bot.app import Core, build_backend, build_downloader
from bot.config import Settings
from bot.domain import Limits
from bot.notify import Notifier
from bot.ports import Delivery
from bot.service import GenerationService
from bot.worker import Worker, WorkerConfig
from storage.jobs import SqlJobStore
from storage.rules import SqlRulesStore
from tests.kit.memory_store import MemoryJobStore, MemoryRulesStore

# What the ``running`` fixture of tests/service/conftest.py hands a test: call it as
# ``running_core(settings, deliveries)``.
Running = Callable[..., AbstractAsyncContextManager[Core]]


@dataclass
class MemoryDatabase:
    """What a database file is to ``open_core``: cores opened on the same one (one after
    the other: a restart) see the same jobs."""

    jobs: MemoryJobStore = field(default_factory=MemoryJobStore)
    rules: MemoryRulesStore = field(default_factory=MemoryRulesStore)


@contextlib.asynccontextmanager
async def open_memory_core(settings: Settings, database: MemoryDatabase) -> AsyncIterator[Core]:
    """As ``open_core(settings)``, on the in-memory ``database``; keep the two in step."""
    timeout = httpx.Timeout(settings.http_timeout_seconds, connect=10.0)
    limits = httpx.Limits(max_connections=50, max_keepalive_connections=20)
    async with (
        httpx.AsyncClient(timeout=timeout, limits=limits) as http,
        build_downloader(settings, timeout) as downloads,
    ):
        backend = build_backend(settings, http, downloads)
        store, rules = database.jobs, database.rules
        notifier = Notifier({})
        price = settings.wavespeed_price_per_second if backend.name == "wavespeed" else 0.0
        service = GenerationService(
            store=store,
            rules=rules,
            notifier=notifier,
            backend_name=backend.name,
            limits=Limits(
                backend.min_duration,
                min(settings.max_duration, backend.max_duration),
                max_tags_chars=backend.max_tags_chars,
                max_lyrics_chars=backend.max_lyrics_chars,
            ),
            policy=quotas.QuotaPolicy(
                seconds_per_day=settings.quota_seconds_per_day,
                max_active_jobs=settings.max_active_jobs_per_user,
                max_active_jobs_per_scope=settings.max_active_jobs_per_chat,
                total_budget_usd=settings.monthly_budget_usd,
            ),
            price_per_second_usd=price,
            blocked_words=tuple(settings.blocked_words),
        )
        worker = Worker(
            store=store,
            rules=rules,
            backend=backend,
            notifier=notifier,
            config=WorkerConfig(
                audio_dir=settings.audio_dir,
                lease_seconds=settings.lease_seconds,
                job_timeout_seconds=settings.job_timeout_seconds,
                max_download_bytes=settings.max_download_mb * 1024 * 1024,
                time_scale=settings.poll_time_scale,
                audio_retention=timedelta(days=settings.audio_retention_days),
                event_retention=timedelta(days=settings.event_retention_days),
                secrets=tuple(settings.secrets()),
            ),
        )
        service.on_new_work(worker.nudge)
        # Core names the SQL stores; the memory ones have every method it is asked for.
        yield Core(
            settings,
            cast(SqlJobStore, store),
            cast(SqlRulesStore, rules),
            service,
            worker,
            backend,
        )


@contextlib.asynccontextmanager
async def running_memory_core(
    settings: Settings, database: MemoryDatabase, deliveries: Iterable[Delivery] = ()
) -> AsyncIterator[Core]:
    """As tests/harness.py ``running_core``: the worker running, stopped gracefully on exit."""
    async with open_memory_core(settings, database) as core:
        for delivery in deliveries:
            core.service.register_delivery(delivery)
        stop = asyncio.Event()
        task = asyncio.create_task(core.worker.run(stop))
        try:
            yield core
        finally:
            stop.set()
            await task
