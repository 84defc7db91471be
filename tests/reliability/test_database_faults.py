"""The database locked or briefly gone: the bot waits it out; nothing lost or doubled."""

from __future__ import annotations

import asyncio
import logging
import sqlite3
import threading
import time
from pathlib import Path

import pytest
from sqlalchemy.ext.asyncio import create_async_engine

from bot.app import run_bot
from bot.domain import Destination, JobState
from bot.errors import StoreUnavailable
from bot.service import Accepted, Requester
from storage.db import create_engine, read_session_factory, session_factory, upgrade
from storage.jobs import SqlJobStore
from tests.adapters.telegram.conftest import WAIT, bot_settings
from tests.fakes.audio import probe_audio
from tests.fakes.telegram import FakeTelegram
from tests.fakes.wavespeed import FakeWaveSpeed
from tests.harness import (
    WAVESPEED_KEY,
    RecordingDelivery,
    running_core,
    wait_for_job,
    wavespeed_settings,
)
from tests.kit.outage import database_outage

pytestmark = pytest.mark.faults


async def _queue_songs(core, count: int) -> list[int]:  # type: ignore[no-untyped-def]
    ids: list[int] = []
    for n in range(count):
        user = Requester("telegram", f"u{n}")
        request = core.service.validate(tags=f"song {n}", duration=10)
        outcome = await core.service.submit(
            user, Destination("telegram", "c", user.user_id), request
        )
        assert isinstance(outcome, Accepted)
        ids.append(outcome.job.id)
    return ids


@pytest.mark.postgres
async def test_postgres_connections_cut_mid_run(tmp_path: Path, postgres_url: str) -> None:
    chat = RecordingDelivery()
    async with FakeWaveSpeed(time_scale=0.04, api_key=WAVESPEED_KEY) as fake:
        fake.runtime = 20.0
        settings = wavespeed_settings(
            tmp_path, fake.base_url, database_url=postgres_url, wavespeed_max_concurrency=3
        )
        admin = create_async_engine(postgres_url, isolation_level="AUTOCOMMIT")
        try:
            async with running_core(settings, [chat]) as core:
                ids = await _queue_songs(core, 3)
                cut = 0
                for _ in range(3):  # cut every connection of the bot, a few times
                    await asyncio.sleep(0.2)
                    async with admin.connect() as conn:
                        result = await conn.exec_driver_sql(
                            "SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
                            "WHERE datname = current_database() AND pid <> pg_backend_pid()"
                        )
                        cut += len(result.all())
                assert cut > 0
                jobs = [await wait_for_job(core, i, {JobState.DELIVERED}, timeout=30) for i in ids]
        finally:
            await admin.dispose()
    assert len(fake.submits) == 3
    assert sorted(d[0] for d in chat.delivered) == sorted(j.id for j in jobs)


@pytest.mark.postgres
async def test_a_pooled_connection_the_server_closed_while_idle_is_replaced_unseen(
    postgres_url: str,
) -> None:
    """A server restart (or its idle timeout) while the bot is quiet: the next request finds
    a dead connection in the pool. One idle past IDLE_PING_SECONDS is checked and replaced
    before use; without that check, the request fails (the second engine shows it)."""
    admin = create_async_engine(postgres_url, isolation_level="AUTOCOMMIT")

    async def first_request_after_a_restart(idle_ping_seconds: float) -> int | None:
        engine = create_engine(postgres_url, idle_ping_seconds=idle_ping_seconds)
        await upgrade(engine)
        store = SqlJobStore(session_factory(engine), read_session_factory(engine))
        try:
            await store.get(1)  # the connection goes back to the pool, idle
            async with admin.connect() as conn:
                cut = await conn.exec_driver_sql(
                    "SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
                    "WHERE datname = current_database() AND pid <> pg_backend_pid()"
                )
                assert cut.all()
            job = await store.get(1)
            return job.id if job is not None else None
        finally:
            await engine.dispose()

    try:
        assert await first_request_after_a_restart(idle_ping_seconds=0.0) is None  # answered
        with pytest.raises(StoreUnavailable):
            await first_request_after_a_restart(idle_ping_seconds=float("inf"))
    finally:
        await admin.dispose()


async def test_sqlite_locked_by_another_process_for_a_while(tmp_path: Path) -> None:
    chat = RecordingDelivery()
    async with FakeWaveSpeed(time_scale=0.04, api_key=WAVESPEED_KEY) as fake:
        fake.runtime = 15.0
        settings = wavespeed_settings(tmp_path, fake.base_url, wavespeed_max_concurrency=3)
        async with running_core(settings, [chat]) as core:
            ids = await _queue_songs(core, 3)
            released = threading.Event()

            def hold_lock() -> None:  # another program holding the write lock
                other = sqlite3.connect(tmp_path / "acejam.db", isolation_level=None)
                other.execute("BEGIN EXCLUSIVE")
                released.wait(1.5)
                other.execute("COMMIT")
                other.close()

            holder = asyncio.create_task(asyncio.to_thread(hold_lock))
            await asyncio.sleep(1.0)
            released.set()
            await holder
            jobs = [await wait_for_job(core, i, {JobState.DELIVERED}, timeout=30) for i in ids]
    assert len(fake.submits) == 3
    assert len(chat.delivered) == len(jobs) == 3


@pytest.mark.postgres
async def test_the_adapters_process_rides_out_a_5_s_database_outage(
    tmp_path: Path,
    postgres_url: str,
    tg: FakeTelegram,
    ws: FakeWaveSpeed,
    caplog: pytest.LogCaptureFixture,
) -> None:
    """`acejam run --role adapters` beside a worker: the database goes away for 5 s; the
    chat process stays up, and a song asked for afterwards arrives."""
    caplog.set_level(logging.WARNING, logger="bot.relay")
    stop = asyncio.Event()
    chat_side = bot_settings(tmp_path / "adapters", tg, ws, database_url=postgres_url)
    adapters = asyncio.create_task(run_bot(chat_side, stop, role="adapters"))
    try:
        worker_side = wavespeed_settings(
            tmp_path / "worker", ws.base_url, database_url=postgres_url
        )
        async with running_core(worker_side):
            await tg.wait_until(lambda: tg.calls_to("getUpdates"), what="polling", timeout=WAIT)
            async with database_outage(postgres_url):
                began = time.monotonic()
                async with asyncio.timeout(WAIT):  # the relay meets the outage (or dies of it)
                    while not adapters.done() and not [
                        r for r in caplog.records if r.name == "bot.relay"
                    ]:
                        await asyncio.sleep(0.05)
                await asyncio.sleep(max(0.0, 5.0 - (time.monotonic() - began)))  # the outage
            assert not adapters.done(), adapters.exception()
            alice = tg.user(42, "Alice")
            chat = tg.private_chat(alice)
            await tg.send_message(chat, alice, "/song piano | 10")
            track = await tg.wait_for_audio(chat, timeout=WAIT)
            assert track.audio is not None and abs(probe_audio(track.audio.data)[0] - 10) <= 0.1
            assert not adapters.done()
    finally:
        stop.set()
        await asyncio.wait_for(adapters, WAIT)
