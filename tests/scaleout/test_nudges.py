"""Processes on one PostgreSQL wake each other (LISTEN/NOTIFY, storage/nudges.py): a song
queued by the chat's process is claimed by a worker process at once, a song finished there
is delivered by the chat's process at once, and progress reaches the chat; a nudge lost
is made up by the timers, and a listener whose connection is cut listens again.

The roles run in this test process, each on its own engine and its own listening
connection, as `acejam run --role ...` wires them (``bot.app.serve_role``). Where the test
is about the nudge, the lease round (the timers' safety net) is set 200 s away, so a song
claimed or delivered at all was woken by a nudge.
"""

from __future__ import annotations

import asyncio
import contextlib
import re
import time
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine, create_async_engine

from bot.app import (
    Core,
    Role,
    assemble_core,
    backend_client,
    build_backend,
    build_downloader,
    open_core,
    run_bot,
    serve_role,
)
from bot.config import Settings
from bot.domain import Destination, JobState
from bot.metrics import Metrics
from bot.service import Accepted, Requester
from storage.db import create_engine, read_session_factory, session_factory
from storage.jobs import SqlJobStore
from storage.nudges import PgNudges
from storage.rules import SqlRulesStore
from tests.adapters.telegram.conftest import TOKEN
from tests.fakes.acestep import FakeAceStep
from tests.fakes.audio import probe_audio
from tests.fakes.telegram import FakeTelegram
from tests.fakes.wavespeed import FakeWaveSpeed
from tests.harness import (
    POLL_SCALE,
    WAVESPEED_KEY,
    acestep_settings,
    wait_for_job,
    wavespeed_settings,
)

pytestmark = pytest.mark.postgres

WAIT = 20.0  # a bound on waits that end as soon as their condition holds
NEVER = 600.0  # LEASE_SECONDS: the next lease round (a third of it) is past every wait
CLAIMED = {JobState.SUBMITTING, JobState.SUBMITTED, JobState.RUNNING, JobState.SUCCEEDED}
# A nudges connection that has run a statement: its LISTENs come first.
LISTENING = text(
    "SELECT pid FROM pg_stat_activity WHERE application_name = :name "
    "AND query <> '' AND pid <> :other LIMIT 1"
)


@pytest.fixture(autouse=True)
def _ptb_timedelta(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PTB_TIMEDELTA", "true")  # as tests/adapters/telegram/conftest.py


@pytest.fixture
async def database(postgres_url: str) -> AsyncIterator[AsyncEngine]:
    """The test's own look at the database: who listens, who holds a lease."""
    engine = create_async_engine(postgres_url)
    try:
        yield engine
    finally:
        await engine.dispose()


@contextlib.asynccontextmanager
async def serving(settings: Settings, role: Role) -> AsyncIterator[Core]:
    """One role's core running, as `acejam run --role` runs it (without chat adapters)."""
    async with open_core(settings, generates=role != "adapters") as core:
        stop = asyncio.Event()
        task = asyncio.create_task(serve_role(core, stop, role=role, platforms=()))
        try:
            yield core
        finally:
            stop.set()
            await task


@contextlib.asynccontextmanager
async def core_that_tells_nobody(settings: Settings) -> AsyncIterator[Core]:
    """A core on the same database whose nudges are all lost (as if its process died
    between each commit and its NOTIFY): the songs it queues reach no one but the timers."""
    engine = create_engine(settings.resolved_database_url)
    try:
        async with (
            backend_client(settings, Metrics()) as http,
            build_downloader(settings, http.timeout) as downloads,
        ):
            backend = build_backend(settings, http, downloads)
            sessions, reads = session_factory(engine), read_session_factory(engine)
            store, rules = SqlJobStore(sessions, reads), SqlRulesStore(sessions, reads)
            yield assemble_core(settings, backend, store, rules, generates=False)
    finally:
        await engine.dispose()


async def queue_song(core: Core, tags: str, platform: str = "telegram") -> int:
    user = Requester(platform, "7")
    request = core.service.validate(tags=tags, duration=10)
    outcome = await core.service.submit(user, Destination(platform, "70", "7"), request)
    assert isinstance(outcome, Accepted), outcome
    return outcome.job.id


async def listener_pid(database: AsyncEngine, core: Core, *, other_than: int = 0) -> int:
    """The server process of ``core``'s listening connection once it has listened (a
    connection opened after ``other_than`` was cut, when given)."""
    assert isinstance(core.nudges, PgNudges)
    async with asyncio.timeout(WAIT):
        while True:
            async with database.connect() as conn:
                found = {"name": core.nudges.name, "other": other_than}
                pid = await conn.scalar(LISTENING, found)
            if pid is not None:
                return int(pid)
            await asyncio.sleep(0.02)


async def cut(database: AsyncEngine, pid: int) -> None:
    async with database.connect() as conn:
        assert await conn.scalar(text("SELECT pg_terminate_backend(:pid)"), {"pid": pid})


async def lease_owner(database: AsyncEngine, job_id: int) -> str | None:
    async with database.connect() as conn:
        owner = await conn.scalar(
            text("SELECT lease_owner FROM jobs WHERE id = :id"), {"id": job_id}
        )
    return None if owner is None else str(owner)


async def test_a_worker_process_claims_a_song_queued_by_the_chats_process_when_told(
    tmp_path: Path, postgres_url: str, database: AsyncEngine
) -> None:
    async with FakeWaveSpeed(time_scale=0.04, api_key=WAVESPEED_KEY) as ws:
        # The first song stays upstream for the whole test: the worker's start-up claim is
        # spent on it, and no song ends to make it look again.
        ws.runtime = lambda body: 100_000.0 if body["tags"].startswith("first") else 10.0

        def settings(name: str) -> Settings:
            return wavespeed_settings(
                tmp_path / name, ws.base_url, database_url=postgres_url, lease_seconds=NEVER
            )

        async with open_core(settings("chat"), generates=False) as chat:
            first = await queue_song(chat, "first, drone")
            async with serving(settings("worker"), "worker") as worker:
                await wait_for_job(chat, first, {JobState.SUBMITTED, JobState.RUNNING}, WAIT)
                await listener_pid(database, worker)

                second = await queue_song(chat, "second, piano")
                await wait_for_job(chat, second, CLAIMED, WAIT)
                assert await lease_owner(database, second) == worker.worker.owner


async def test_a_lost_nudge_is_made_up_by_the_lease_round_and_a_cut_listener_listens_again(
    tmp_path: Path, postgres_url: str, database: AsyncEngine
) -> None:
    async with FakeWaveSpeed(time_scale=0.04, api_key=WAVESPEED_KEY) as ws:
        lease = 1.5  # a lease round every 0.5 s
        settings = wavespeed_settings(
            tmp_path, ws.base_url, database_url=postgres_url, lease_seconds=lease
        )
        async with (
            serving(settings, "worker") as worker,
            core_that_tells_nobody(settings) as deaf,
        ):
            before = await listener_pid(database, worker)
            await cut(database, before)
            # No one is told of this song, and the worker's listener is down anyway.
            queued = time.monotonic()
            job_id = await queue_song(deaf, "nobody told")
            await wait_for_job(deaf, job_id, CLAIMED, WAIT)
            # Within a lease round (with room for a loaded machine), not at some later time.
            assert time.monotonic() - queued < 2 * lease
            assert await lease_owner(database, job_id) == worker.worker.owner

            after = await listener_pid(database, worker, other_than=before)
            assert after != before
            made = await wait_for_job(deaf, job_id, {JobState.SUCCEEDED}, WAIT)
            assert made.audio_path


async def test_a_worker_stopping_hands_its_song_to_another_at_once(
    tmp_path: Path, postgres_url: str, database: AsyncEngine
) -> None:
    async with FakeWaveSpeed(time_scale=0.04, api_key=WAVESPEED_KEY) as ws:
        ws.runtime = 100_000.0  # upstream for the whole test

        def settings(name: str) -> Settings:
            return wavespeed_settings(
                tmp_path / name, ws.base_url, database_url=postgres_url, lease_seconds=NEVER
            )

        async with (
            open_core(settings("chat"), generates=False) as chat,
            contextlib.AsyncExitStack() as first,
        ):
            job_id = await queue_song(chat, "handed over")
            goes = await first.enter_async_context(serving(settings("goes"), "worker"))
            await wait_for_job(chat, job_id, {JobState.SUBMITTED}, WAIT)
            assert await lease_owner(database, job_id) == goes.worker.owner
            async with serving(settings("stays"), "worker") as stays:
                await listener_pid(database, stays)
                await first.aclose()  # a graceful stop hands the lease back
                async with asyncio.timeout(WAIT):
                    while await lease_owner(database, job_id) != stays.worker.owner:
                        await asyncio.sleep(0.02)
                job = await chat.store.get(job_id)
                assert job is not None and job.state in {JobState.SUBMITTED, JobState.RUNNING}
    assert len(ws.submits) == 1  # taken over and polled, never sent again


async def test_a_split_deployment_shows_progress_and_delivers_as_soon_as_the_song_is_made(
    tmp_path: Path, postgres_url: str, database: AsyncEngine
) -> None:
    """`acejam run --role adapters` with Telegram beside `--role worker`: Alice sees her
    song's progress, then her track, with neither process waiting for a timer."""
    async with (
        FakeTelegram(token=TOKEN, bot_username="AceJamBot", time_scale=POLL_SCALE) as tg,
        FakeAceStep(time_scale=0.05) as ace,
    ):
        ace.runtime = 20.0  # 1 s: a few progress reports on the way

        def settings(name: str, **chat: str) -> Settings:
            return acestep_settings(
                tmp_path / name,
                ace.base_url,
                database_url=postgres_url,
                lease_seconds=NEVER,
                **chat,
            )

        stop = asyncio.Event()
        chat_side = settings("chat", telegram_token=TOKEN, telegram_api_base_url=tg.base_url)
        adapters = asyncio.create_task(run_bot(chat_side, stop, role="adapters"))
        try:
            async with serving(settings("worker"), "worker"):
                await tg.wait_until(lambda: tg.calls_to("getUpdates"), what="polling", timeout=WAIT)
                alice = tg.user(42, "Alice")
                chat = tg.private_chat(alice)
                await tg.send_message(chat, alice, "/song piano ballad | 10")
                track = await tg.wait_for_audio(chat, timeout=WAIT)
        finally:
            stop.set()
            await asyncio.wait_for(adapters, WAIT)
    assert track.audio is not None and abs(probe_audio(track.audio.data)[0] - 10) <= 0.1
    shown = [
        text
        for message in tg.chat_log(chat, include_deleted=True)
        for text in message.text_history
        if text and re.search(r"\d+%", text)
    ]
    assert shown, tg.describe(chat)
