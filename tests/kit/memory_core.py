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

from bot.app import Core, assemble_core, backend_client, build_backend, build_downloader
from bot.config import Settings
from bot.metrics import Metrics
from bot.ports import Delivery
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
    metrics = Metrics()
    with metrics.rate_limit_waits_seen():
        async with (
            backend_client(settings, metrics) as http,
            build_downloader(settings, http.timeout, metrics) as downloads,
        ):
            backend = build_backend(settings, http, downloads)
            yield assemble_core(settings, backend, database.jobs, database.rules, metrics=metrics)


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
